package eventloop_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Cancel that comes after Close on a running task must not turn the
// close into a cancellation: the task's context was cancelled by Close
// (its Err is already non-nil), so Cause stays ErrLoopClosed, Cancel reports
// false, and the future ends with ErrLoopClosed.
func TestCancelAfterCloseOfRunningTask(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	running := make(chan struct{})
	sawClose := make(chan struct{})
	release := newGate()
	cause := make(chan error, 1)
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		close(running)
		for ctx.Err() == nil { // the task never suspends: Close reaches it only through its context
			runtime.Gosched()
		}
		close(sawClose)
		<-release
		cause <- context.Cause(ctx)
		return 1, nil
	})
	require.NoError(t, err)
	recv(t, running)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	recv(t, sawClose) // the task's context is cancelled by Close
	assert.False(t, f.Cancel(), "Cancel after Close cancelled the task's context")
	release.open()
	assert.ErrorIs(t, recv(t, cause), eventloop.ErrLoopClosed, "context.Cause of a context Close cancelled first")
	assert.NoError(t, recv(t, closed))
	_, err = f.Result(0)
	assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	assert.False(t, f.Cancelled())
}

// Close reaches a started task however it observes its context: a
// context.AfterFunc registered before or after Close, helper goroutines that
// hold the task's context and block in Sleep, Await or Wait, and Await or
// Sleep with an unrelated context in the task itself once Close has come.
func TestCloseReachesEveryObserver(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	never := eventloop.Go(func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	defer never.Cancel()

	type seen struct {
		afterBefore, afterAfter          bool
		helperSleep, helperAwait, helper error
		awaitBg, sleepBg, awaitOwn       error
		took                             time.Duration
	}
	ready := make(chan struct{})
	out := make(chan seen, 1)
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		var s seen
		before := make(chan struct{})
		context.AfterFunc(ctx, func() { close(before) })
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); s.helperSleep = eventloop.Sleep(ctx, time.Hour) }()
		go func() { defer wg.Done(); _, s.helperAwait = eventloop.Await(ctx, never) }()
		go func() { defer wg.Done(); _, s.helper = never.Wait(ctx) }()
		close(ready)
		for ctx.Err() == nil { // busy, not suspended: Close cannot see it in the loop's lists
			runtime.Gosched()
		}
		start := time.Now()
		_, s.awaitBg = eventloop.Await(context.Background(), never)
		s.sleepBg = eventloop.Sleep(context.Background(), time.Hour)
		_, s.awaitOwn = eventloop.Await(ctx, never)
		s.took = time.Since(start)
		after := make(chan struct{})
		context.AfterFunc(ctx, func() { close(after) })
		s.afterBefore = closedWithin(before)
		s.afterAfter = closedWithin(after)
		wg.Wait()
		out <- s
		return 1, nil
	})
	require.NoError(t, err)
	recv(t, ready)
	require.NoError(t, l.Close())
	s := recv(t, out)
	assert.True(t, s.afterBefore, "context.AfterFunc registered before Close runs")
	assert.True(t, s.afterAfter, "context.AfterFunc registered after Close runs")
	assert.ErrorIs(t, s.helperSleep, context.Canceled, "Sleep on a helper goroutine with the task's ctx")
	assert.ErrorIs(t, s.helperAwait, context.Canceled, "Await on a helper goroutine with the task's ctx")
	assert.ErrorIs(t, s.helper, context.Canceled, "Wait on a helper goroutine with the task's ctx")
	assert.ErrorIs(t, s.awaitBg, context.Canceled, "Await(context.Background()) in a closed task")
	assert.ErrorIs(t, s.sleepBg, context.Canceled, "Sleep(context.Background()) in a closed task")
	assert.ErrorIs(t, s.awaitOwn, context.Canceled, "Await(ctx) in a closed task")
	assert.Less(t, s.took, long, "none of them suspended")
	_, err = f.Result(0)
	assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
}

// A coroutine suspended in Await with an unrelated context wakes on Close.
func TestCloseWakesAwaitWithUnrelatedContext(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	never := eventloop.Go(func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	defer never.Cancel()
	suspended := make(chan struct{})
	res := make(chan error, 2)
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		close(suspended)
		_, err := eventloop.Await(context.Background(), never)
		res <- err
		res <- eventloop.Sleep(context.Background(), time.Hour)
		return 0, nil
	})
	require.NoError(t, err)
	recv(t, suspended)
	require.NoError(t, l.Close())
	assert.ErrorIs(t, recv(t, res), context.Canceled)
	assert.ErrorIs(t, recv(t, res), context.Canceled)
	_, err = f.Result(0)
	assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
}

// The context.Context contract: once Err is non-nil, Done is closed. A
// helper goroutine that polls the task's context while the task returns
// must never see Err non-nil with Done still open.
func TestErrNeverBeforeDone(t *testing.T) {
	l := started(t)
	bad := 0
	for range 2000 {
		ctxs := make(chan context.Context, 1)
		release := newGate()
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			ctxs <- ctx
			<-release
			return 1, nil
		})
		require.NoError(t, err)
		ctx := recv(t, ctxs)
		done := ctx.Done() // a real context behind the task's
		polling := make(chan struct{})
		result := make(chan bool, 1)
		go func() {
			close(polling)
			for {
				if ctx.Err() != nil {
					result <- isClosed(done)
					return
				}
			}
		}()
		<-polling
		release.open()
		if !recv(t, result) {
			bad++
		}
		_, err = f.Result(long)
		require.NoError(t, err)
	}
	assert.Zero(t, bad, "times ctx.Err() was non-nil while ctx.Done() was still open")
}

// Ended tasks whose context had a real context behind it (so they were in
// the loop's list for Close) must not be kept alive by the loop.
func TestEndedTasksAreNotKeptByTheLoop(t *testing.T) {
	l := started(t)
	var ptrs []weak.Pointer[eventloop.Future[int]]
	for range 10 {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			_ = ctx.Done()
			return 1, nil
		})
		require.NoError(t, err)
		_, err = f.Result(long)
		require.NoError(t, err)
		ptrs = append(ptrs, weak.Make(f))
	}
	// Let the loop move on past the last task.
	g, err := eventloop.Submit(l, value(0))
	require.NoError(t, err)
	_, err = g.Result(long)
	require.NoError(t, err)
	for range 5 {
		runtime.GC()
	}
	kept := 0
	for _, p := range ptrs {
		if p.Value() != nil {
			kept++
		}
	}
	assert.Zero(t, kept, "ended futures still reachable")
}

// A Result whose future ends just as its timeout passes gets two tokens; a
// pooled waiter must leave none behind, or a later Result would return
// ErrTimeout early. And the shared deadline timer must still fire for a
// later deadline after the earliest one was removed.
func TestSharedDeadlines(t *testing.T) {
	t.Run("no token left in a pooled waiter", func(t *testing.T) {
		l := started(t)
		release := newGate()
		defer release.open()
		pending, err := eventloop.Submit(started(t), blocker(nil, release, 1))
		require.NoError(t, err)
		for i := range 200 {
			d := time.Duration(50+i%100) * time.Microsecond
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				time.Sleep(d)
				return 1, nil
			})
			require.NoError(t, err)
			_, _ = f.Result(d)
			start := time.Now()
			_, err = pending.Result(2 * time.Millisecond)
			require.ErrorIs(t, err, eventloop.ErrTimeout)
			require.GreaterOrEqual(t, time.Since(start), 2*time.Millisecond, "a Result returned before its timeout (iteration %d)", i)
		}
	})

	t.Run("a later deadline fires after the earliest is removed", func(t *testing.T) {
		release := newGate()
		defer release.open()
		pending, err := eventloop.Submit(started(t), blocker(nil, release, 1))
		require.NoError(t, err)
		soon := make(chan struct{})
		ends, err := eventloop.Submit(started(t), blocker(nil, gate(soon), 2))
		require.NoError(t, err)
		earliest := make(chan error, 1)
		go func() { _, err := ends.Result(30 * time.Millisecond); earliest <- err }()
		time.Sleep(5 * time.Millisecond) // the earliest deadline is in
		later := make(chan error, 1)
		start := time.Now()
		go func() { _, err := pending.Result(100 * time.Millisecond); later <- err }()
		time.Sleep(5 * time.Millisecond)
		close(soon) // the earliest deadline is removed
		assert.NoError(t, recv(t, earliest))
		assert.ErrorIs(t, recv(t, later), eventloop.ErrTimeout)
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 100*time.Millisecond)
		assert.Less(t, took, 2*time.Second, "the later timeout fired")
	})
}

// A loop made outside a synctest bubble (New in a test helper, say) and run
// inside one: a Result(timeout) in the bubble must not break the
// process-wide deadlines, so Result timeouts outside the bubble still fire.
// (The Result in the bubble reads the bubble's clock, so it must use a timer
// of its own.) Run in a child process, since a broken shared timer would
// hang every later test.
func TestBubbleDoesNotPoisonSharedDeadlines(t *testing.T) {
	if os.Getenv("EVENTLOOP_TEST_DEADLINES_CHILD") == "1" {
		poisonDeadlines(t)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	runChild(t, "TestBubbleDoesNotPoisonSharedDeadlines", "EVENTLOOP_TEST_DEADLINES_CHILD=1")
}

func poisonDeadlines(t *testing.T) {
	l := started(t)
	release := newGate()
	defer release.open()
	pending, err := eventloop.Submit(l, blocker(nil, release, 1))
	require.NoError(t, err)
	// Fill the waiter pool with waiters made outside a bubble, on every P.
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = pending.Result(time.Millisecond) }()
	}
	wg.Wait()

	inner := eventloop.New() // made outside the bubble, run inside it
	synctest.Test(t, func(t *testing.T) {
		require.NoError(t, inner.Start())
		for range 8 {
			g := newGate()
			f, err := eventloop.Submit(inner, blocker(nil, g, 1))
			require.NoError(t, err)
			go func() {
				for range 100 {
					runtime.Gosched()
				}
				g.open()
			}()
			v, err := f.Result(time.Hour)
			require.NoError(t, err)
			require.Equal(t, 1, v)
		}
		require.NoError(t, inner.Close())
	})

	timedOut := make(chan error, 1)
	go func() { _, err := pending.Result(20 * time.Millisecond); timedOut <- err }()
	select {
	case err := <-timedOut:
		assert.ErrorIs(t, err, eventloop.ErrTimeout)
	case <-time.After(5 * time.Second):
		t.Error("Result(20ms) outside the bubble did not time out within 5s")
		release.open()
		<-timedOut
	}
}
