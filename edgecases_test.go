package eventloop_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Close on a loop that never ran ends the queued futures on the calling
// goroutine and runs their done callbacks there. A callback that calls Close
// again (Close is idempotent and safe from any goroutine) must find Done
// closed already, not wait for its own caller.
func TestCloseFromDoneCallbackOfNeverRunLoop(t *testing.T) {
	l := eventloop.New()
	f, err := eventloop.Submit(l, value(1))
	require.NoError(t, err)
	inner := make(chan error, 1)
	f.AddDoneCallback(func(*eventloop.Future[int]) { inner <- l.Close() })

	outer := make(chan error, 1)
	go func() { outer <- l.Close() }()
	select {
	case err := <-outer:
		assert.NoError(t, err)
		assert.NoError(t, recv(t, inner))
	case <-time.After(2 * time.Second):
		t.Fatal("Close hangs: the done callback's nested Close waits for the Done its caller has not closed yet")
	}
}

// A done callback is a plain callback: Await on a pending future there
// returns ErrDeadlock. That holds also when a task ends another future on
// its own goroutine (here by cancelling a future that has not started), so
// that the callbacks run inside the task's coroutine: Await must not suspend
// the task in the middle of Cancel.
func TestAwaitInDoneCallbackRunInsideATask(t *testing.T) {
	l := started(t)
	other := eventloop.New() // never runs: its futures stay pending
	t.Cleanup(func() { _ = other.Close() })
	victim, err := eventloop.Submit(other, value(1))
	require.NoError(t, err)
	pending := eventloop.Go(func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	t.Cleanup(func() { pending.Cancel() })

	got := make(chan error, 1)
	victim.AddDoneCallback(func(*eventloop.Future[int]) {
		_, err := eventloop.Await(context.Background(), pending)
		got <- err
	})
	task, err := eventloop.Submit(l, func(ctx context.Context) (bool, error) {
		return victim.Cancel(), nil
	})
	require.NoError(t, err)

	select {
	case err := <-got:
		assert.ErrorIs(t, err, eventloop.ErrDeadlock, "Await in a done callback must not suspend")
	case <-time.After(time.Second):
		t.Fatal("Await in a done callback suspended the task that ran the callback")
	}
	_, err = task.Result(long)
	assert.NoError(t, err)
}

// Cancel ends a task that has not started on the goroutine that calls it,
// and that goroutine runs the done callbacks before Cancel returns: the
// future ends now, as the contract says, and a callback added just after
// Cancel runs at once. This holds while the loop is busy with other work.
func TestCancelRunsCallbacksOfAnUnstartedTaskOnTheCaller(t *testing.T) {
	l := started(t)
	release, busy := occupy(t, l) // loop work is running now

	queued, err := eventloop.Submit(l, value(1))
	require.NoError(t, err)
	var order []string
	queued.AddDoneCallback(func(*eventloop.Future[int]) {
		assert.False(t, l.InLoop(), "it runs on the goroutine that called Cancel")
		order = append(order, "added before Cancel")
	})
	require.True(t, queued.Cancel())
	assert.Equal(t, []string{"added before Cancel"}, order, "before Cancel returns")
	queued.AddDoneCallback(func(*eventloop.Future[int]) { order = append(order, "added after") })
	assert.Equal(t, []string{"added before Cancel", "added after"}, order)
	release()
	_, err = busy.Result(long)
	require.NoError(t, err)
}

// The contract: "AddDoneCallback on a done future runs fn at once, on the
// caller's goroutine, before returning", and "callbacks run ... in the order
// added; one added while others are being run runs after them". While the
// goroutine that ended the future is still inside its last callback, a
// callback added from elsewhere thus waits for it to return, then runs on
// the caller's goroutine before AddDoneCallback returns: never alongside it,
// never before it.
func TestAddDoneCallbackOnDoneFutureRunsBeforeReturning(t *testing.T) {
	l := started(t)
	unblock, _ := occupy(t, l) // so that f is pending when its first callback is added
	f, err := eventloop.Submit(l, value(1))
	require.NoError(t, err)
	inFirst := make(chan struct{})
	release := newGate()
	t.Cleanup(release.open)
	var order []string // written by the first callback, then by the second after it
	f.AddDoneCallback(func(*eventloop.Future[int]) {
		close(inFirst)
		_ = release.wait(context.Background())
		order = append(order, "first")
	})
	unblock()
	<-inFirst
	require.True(t, isClosed(f.Done()), "the future is done; its first callback is still running on the loop")

	returned := make(chan struct{})
	var ranOn, callerG string
	go func() {
		defer close(returned)
		callerG = goroutineLine()
		f.AddDoneCallback(func(*eventloop.Future[int]) {
			ranOn = goroutineLine()
			order = append(order, "second")
		})
	}()
	assert.False(t, closedWithinShort(returned), "AddDoneCallback waits while the first callback runs")
	release.open()
	require.True(t, closedWithin(returned))
	assert.Equal(t, []string{"first", "second"}, order, "the second runs after the first has returned")
	assert.Equal(t, callerG, ranOn, "on the goroutine that called AddDoneCallback, before it returned")
}

// goroutineLine returns the first line of the caller's stack ("goroutine
// N [running]:"), which names its goroutine.
func goroutineLine() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	}
	return string(buf)
}

// closedWithinShort reports whether ch is closed within 50ms: for checking
// that something does not happen (a failure here is a false positive only
// on a machine stalled for that long).
func closedWithinShort(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(50 * time.Millisecond):
		return false
	}
}

// WithQueueCapacity(n): "with n tasks queued and not yet started, Submit ...
// return ErrQueueFull". A queued task that Cancel ended is no longer waiting
// to start (it never will), so it gives its slot back at once, not when the
// loop reaches it.
func TestCancelledQueuedTaskFreesItsQueueSlot(t *testing.T) {
	l := started(t, eventloop.WithQueueCapacity(1))
	release, _ := occupy(t, l)

	queued, err := eventloop.Submit(l, value(1))
	require.NoError(t, err)
	_, err = eventloop.Submit(l, value(2))
	require.ErrorIs(t, err, eventloop.ErrQueueFull, "precondition: the queue is full")

	require.True(t, queued.Cancel())
	require.True(t, isClosed(queued.Done()), "the cancelled task has ended and will never start")
	_, err = eventloop.Submit(l, value(3))
	assert.NoError(t, err, "no task is queued and not yet started")
	release()
}

// Result's waiters are pooled with their timers. Go 1.23 timers deliver no
// stale value after Stop, but that is a GODEBUG (asynctimerchan) that the
// program's main module or environment chooses, not this library. Under
// asynctimerchan=1 a timer that fired just as the future ended could leave a
// value in the pooled timer's channel and time out the next Result at once.
// The test re-runs itself in a child process with that GODEBUG.
func TestPooledResultTimerUnderAsyncTimerChan(t *testing.T) {
	if os.Getenv("EVENTLOOP_REVIEW_CHILD") == "1" {
		runtime.GOMAXPROCS(1) // the timer fires after the waiter was woken, before it runs
		for range 50 {
			const d = time.Millisecond
			f := eventloop.Go(func(context.Context) (int, error) {
				end := time.Now().Add(2 * d)
				for time.Now().Before(end) { // spin past the timeout without yielding
				}
				return 1, nil
			})
			_, _ = f.Result(d)
			g := eventloop.Go(func(context.Context) (int, error) {
				time.Sleep(20 * time.Millisecond)
				return 2, nil
			})
			start := time.Now()
			_, err := g.Result(time.Second)
			if errors.Is(err, eventloop.ErrTimeout) {
				t.Fatalf("Result(1s) returned ErrTimeout after %v", time.Since(start))
			}
		}
		return
	}
	runChild(t, "TestPooledResultTimerUnderAsyncTimerChan", "EVENTLOOP_REVIEW_CHILD=1", "GODEBUG=asynctimerchan=1")
}

// SPEC.md's API block, whose names and signatures are binding, declares
// "type State int".
func TestStateHasTheSpecifiedUnderlyingType(t *testing.T) {
	assert.Equal(t, reflect.Int, reflect.TypeOf(eventloop.StateNew).Kind(), "type State int")
}

// --- Guarantees found untested; these pass and fail if the guarantee breaks.

// promise returns a Go future that ends with v once release is called.
func promise[T any](t *testing.T, v T) (*eventloop.Future[T], func()) {
	t.Helper()
	g := newGate()
	f := eventloop.Go(func(ctx context.Context) (T, error) {
		if err := g.wait(ctx); err != nil {
			var zero T
			return zero, err
		}
		return v, nil
	})
	t.Cleanup(func() { f.Cancel(); _, _ = f.Result(long) })
	return f, g.open
}

func TestCloseEndsCoroutinesSuspendedOnOtherLoopsAndDerivedContexts(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	other := eventloop.New() // never runs: its future stays pending until it closes
	pending, err := eventloop.Submit(other, value(1))
	require.NoError(t, err)

	suspenders := map[string]func(ctx context.Context) error{
		"Await with context.Background()": func(context.Context) error {
			_, err := eventloop.Await(context.Background(), pending)
			return err
		},
		"Await with a derived ctx": func(ctx context.Context) error {
			dctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := eventloop.Await(dctx, pending)
			return err
		},
		"Await with a derived ctx that has values only": func(ctx context.Context) error {
			_, err := eventloop.Await(context.WithValue(ctx, struct{}{}, 1), pending)
			return err
		},
		"Sleep with a derived ctx": func(ctx context.Context) error {
			dctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			return eventloop.Sleep(dctx, time.Hour)
		},
		"Sleep with context.Background()": func(context.Context) error {
			return eventloop.Sleep(context.Background(), time.Hour)
		},
	}
	futures := map[string]*eventloop.Future[int]{}
	inside := make(chan string, len(suspenders))
	for name, suspend := range suspenders {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			inside <- name
			return 7, suspend(ctx)
		})
		require.NoError(t, err)
		futures[name] = f
	}
	for range suspenders {
		recv(t, inside)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	assert.NoError(t, recv(t, closed), "Close returns once every suspended coroutine has returned")
	for name, f := range futures {
		_, err := f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed, name)
	}
	assert.False(t, isClosed(pending.Done()), "the awaited future of the other loop is left alone")
	require.NoError(t, other.Close())
}

func TestLoopWorkInAResumedCoroutine(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	g, release := promise(t, 1)
	type seen struct {
		inLoop          bool
		resultErr       error
		waitErr         error
		closeReturned   bool
		stateAfterClose eventloop.State
	}
	out := make(chan seen, 1)
	task, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		if _, err := eventloop.Await(ctx, g); err != nil {
			return 0, err
		}
		// Resumed: this coroutine is not the dispatcher any more.
		var s seen
		s.inLoop = l.InLoop()
		p, err := eventloop.Submit(l, value(2)) // queued behind us: pending
		if err != nil {
			return 0, err
		}
		_, s.resultErr = p.Result(long)
		_, s.waitErr = p.Wait(context.Background())
		s.closeReturned = l.Close() == nil // from loop work: does not wait
		s.stateAfterClose = l.State()
		out <- s
		return 3, nil
	})
	require.NoError(t, err)
	release()
	s := recv(t, out)
	assert.True(t, s.inLoop, "InLoop in a resumed coroutine")
	assert.ErrorIs(t, s.resultErr, eventloop.ErrDeadlock, "Result in a resumed coroutine on a pending future of its loop")
	assert.ErrorIs(t, s.waitErr, eventloop.ErrDeadlock, "Wait in a resumed coroutine on a pending future of its loop")
	assert.True(t, s.closeReturned, "Close from a resumed coroutine returns without waiting")
	assert.Equal(t, eventloop.StateClosed, s.stateAfterClose)
	assert.True(t, closedWithin(l.Done()))
	_, err = task.Result(0)
	assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "the task that closed its loop ends with ErrLoopClosed")
}

func TestFullQueueNeverRefusesResumptions(t *testing.T) {
	l := started(t, eventloop.WithQueueCapacity(1))
	g, release := promise(t, 5)
	suspended := make(chan struct{}, 2)
	var awaiting []*eventloop.Future[int]
	for range 2 {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			suspended <- struct{}{}
			return eventloop.Await(ctx, g)
		})
		require.NoError(t, err)
		recv(t, suspended) // it started, so the queue is empty again
		awaiting = append(awaiting, f)
	}
	unblock, _ := occupy(t, l)
	queued, err := eventloop.Submit(l, value(9))
	require.NoError(t, err)
	_, err = eventloop.Submit(l, value(10))
	require.ErrorIs(t, err, eventloop.ErrQueueFull, "precondition: the queue is full")

	release() // both coroutines' resumptions are queued while the queue is full
	unblock()
	for i, f := range awaiting {
		v, err := f.Result(long)
		assert.NoError(t, err, "coroutine %d", i)
		assert.Equal(t, 5, v, "coroutine %d resumed", i)
	}
	v, err := queued.Result(long)
	assert.NoError(t, err)
	assert.Equal(t, 9, v)
}

func TestStopWaitsForACoroutineAwaitingAGoFuture(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	g, release := promise(t, 4)
	suspended := make(chan struct{})
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		close(suspended)
		return eventloop.Await(ctx, g)
	})
	require.NoError(t, err)
	<-suspended
	l.Stop()
	assert.Equal(t, eventloop.StateStopping, l.State())
	select {
	case <-l.Done():
		t.Fatal("the loop stopped while a coroutine it accepted was suspended")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	require.True(t, closedWithin(l.Done()))
	assert.Equal(t, eventloop.StateStopped, l.State())
	v, err := f.Result(0)
	assert.NoError(t, err)
	assert.Equal(t, 4, v)
}

func TestCancelWhileTheResumptionIsQueued(t *testing.T) {
	l := started(t)
	g, release := promise(t, 1)
	suspended := make(chan struct{})
	awaitErr := make(chan error, 1)
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		close(suspended)
		_, err := eventloop.Await(ctx, g)
		awaitErr <- err
		return 2, nil
	})
	require.NoError(t, err)
	<-suspended
	unblock, _ := occupy(t, l)
	release()
	_, err = g.Result(long) // g has ended: f's resumption is queued behind the blocker
	require.NoError(t, err)

	assert.True(t, f.Cancel(), "Cancel on a started task whose resumption is queued")
	assert.False(t, isClosed(f.Done()), "Done stays open while fn has not returned")
	unblock()
	assert.NoError(t, recv(t, awaitErr), "g had ended before the Cancel: Await returns its outcome")
	_, err = f.Result(long)
	assert.ErrorIs(t, err, eventloop.ErrCancelled, "the future ends with ErrCancelled whatever fn returned")
	assert.True(t, f.Cancelled())
}

// "CallLater(d, fn) with d <= 0 is due at once" and "once due, [timers] join
// the queue", which is FIFO for work from one goroutine: a timer for 0 runs
// before work queued after it.
func TestZeroDelayTimerJoinsTheQueueAtOnce(t *testing.T) {
	l := started(t)
	release, _ := occupy(t, l) // the loop is busy: what follows waits in order

	order := make(chan string, 2)
	_, err := l.CallLater(0, func() { order <- "CallLater(0) first" })
	require.NoError(t, err)
	require.NoError(t, l.CallSoon(func() { order <- "CallSoon second" }))
	release()
	got := []string{recv(t, order), recv(t, order)}
	assert.Equal(t, []string{"CallLater(0) first", "CallSoon second"}, got,
		"a timer due at once is queued when it is made, before later work from the same goroutine")
}
