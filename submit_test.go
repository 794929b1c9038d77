package eventloop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSentinels(t *testing.T) {
	assert.ErrorIs(t, eventloop.ErrCancelled, context.Canceled)
	assert.ErrorIs(t, eventloop.ErrTimeout, context.DeadlineExceeded)
	assert.NotErrorIs(t, eventloop.ErrCancelled, context.DeadlineExceeded)
	for _, err := range []error{eventloop.ErrLoopStopped, eventloop.ErrLoopClosed, eventloop.ErrLoopRunning,
		eventloop.ErrQueueFull, eventloop.ErrCancelled, eventloop.ErrTimeout, eventloop.ErrDeadlock, eventloop.ErrInvalidArgument} {
		assert.Contains(t, err.Error(), "eventloop: ")
	}
}

func TestSubmitOutcomes(t *testing.T) {
	l := started(t)

	t.Run("a value", func(t *testing.T) {
		f, err := eventloop.Submit(l, value("hello"))
		require.NoError(t, err)
		v, err := f.Result(long)
		assert.NoError(t, err)
		assert.Equal(t, "hello", v)
		assert.NoError(t, f.Exception(0))
		v, err = f.Wait(context.Background())
		assert.NoError(t, err)
		assert.Equal(t, "hello", v)
	})

	t.Run("the error fn returned", func(t *testing.T) {
		boom := errors.New("boom")
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 9, boom })
		require.NoError(t, err)
		v, err := f.Result(long)
		assert.ErrorIs(t, err, boom)
		assert.Equal(t, 9, v, "the value is kept with the error, as fn returned it")
		assert.ErrorIs(t, f.Exception(0), boom)
	})

	t.Run("a panic becomes a *PanicError and the loop goes on", func(t *testing.T) {
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic("kaboom") })
		require.NoError(t, err)
		_, err = f.Result(long)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "kaboom", pe.Value)
		assert.Contains(t, string(pe.Stack), "submit_test.go", "the stack shows where it panicked")
		assert.Contains(t, pe.Error(), "kaboom")
		assert.Nil(t, pe.Unwrap())

		boom := errors.New("boom")
		f, err = eventloop.Submit(l, func(context.Context) (int, error) { panic(boom) })
		require.NoError(t, err)
		assert.ErrorIs(t, f.Exception(long), boom, "Unwrap exposes an error panic value")

		g, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		v, err := g.Result(long)
		assert.NoError(t, err, "the loop still runs work")
		assert.Equal(t, 1, v)
	})

	t.Run("the return of fn happens before the outcome is read", func(t *testing.T) {
		for range 100 {
			var written []int // not synchronised: the race detector checks the guarantee
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				written = append(written, 1)
				return len(written), nil
			})
			require.NoError(t, err)
			_, err = f.Wait(context.Background())
			require.NoError(t, err)
			assert.Len(t, written, 1)
		}
	})

	t.Run("many goroutines read one future", func(t *testing.T) {
		release := newGate()
		f, err := eventloop.Submit(l, blocker(nil, release, 5))
		require.NoError(t, err)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var v int
				var err error
				switch i % 3 {
				case 0:
					v, err = f.Result(long)
				case 1:
					v, err = f.Wait(context.Background())
				default:
					<-f.Done()
					v, err = f.Result(0)
				}
				assert.NoError(t, err)
				assert.Equal(t, 5, v)
			}()
		}
		release.open()
		wg.Wait()
	})

	t.Run("the task's context is cancelled once fn returns", func(t *testing.T) {
		var kept context.Context
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			kept = ctx
			return 0, nil
		})
		require.NoError(t, err)
		_, err = f.Result(long)
		require.NoError(t, err)
		assert.ErrorIs(t, kept.Err(), context.Canceled)
		assert.True(t, isClosed(kept.Done()))
	})
}

func TestResultWaiting(t *testing.T) {
	l := started(t)
	release := newGate()
	defer release.open()
	f, err := eventloop.Submit(l, blocker(nil, release, 1))
	require.NoError(t, err)

	t.Run("a timeout returns ErrTimeout and leaves the task alone", func(t *testing.T) {
		_, err := f.Result(time.Millisecond)
		assert.ErrorIs(t, err, eventloop.ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, f.Exception(time.Millisecond), eventloop.ErrTimeout)
		assert.False(t, f.Cancelled())
		assert.False(t, isClosed(f.Done()))
	})

	t.Run("timeouts end in deadline order, whatever order they started in", func(t *testing.T) {
		// All Result timeouts share one timer armed for the earliest
		// deadline: a short timeout that starts after long ones must still
		// end on time, and the long ones must not end with it.
		release := newGate()
		f, err := eventloop.Submit(started(t), blocker(nil, release, 1)) // a loop of its own: l is busy
		require.NoError(t, err)
		long1 := make(chan error, 1)
		go func() { _, err := f.Result(time.Hour); long1 <- err }()
		start := time.Now()
		_, err = f.Result(20 * time.Millisecond)
		assert.ErrorIs(t, err, eventloop.ErrTimeout)
		assert.Less(t, time.Since(start), long, "the short timeout ended on time")
		select {
		case err := <-long1:
			t.Fatalf("a Result(time.Hour) ended early: %v", err)
		default:
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.Result(time.Duration(20-i) * time.Millisecond)
				assert.ErrorIs(t, err, eventloop.ErrTimeout)
			}()
		}
		wg.Wait()
		release.open()
		assert.NoError(t, recv(t, long1), "the long wait sees the outcome")
	})

	t.Run("timeout <= 0 does not wait", func(t *testing.T) {
		for _, d := range []time.Duration{0, -time.Hour} {
			_, err := f.Result(d)
			assert.ErrorIs(t, err, eventloop.ErrTimeout)
		}
	})

	t.Run("Wait returns ctx.Err() when ctx ends first", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.Wait(ctx)
		assert.ErrorIs(t, err, context.Canceled)
		ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, err = f.Wait(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("the future stays usable after a timeout", func(t *testing.T) {
		release.open()
		v, err := f.Result(long)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
	})

	t.Run("Done is the same channel before and after the end", func(t *testing.T) {
		g := newGate()
		f, err := eventloop.Submit(l, blocker(nil, g, 1))
		require.NoError(t, err)
		ch := f.Done()
		assert.Equal(t, ch, f.Done())
		g.open()
		assert.True(t, closedWithin(ch))
		assert.Equal(t, ch, f.Done())
	})
}

func TestDoneCallbacks(t *testing.T) {
	t.Run("run on the loop in the order added once the future ends", func(t *testing.T) {
		l := started(t)
		release := newGate()
		f, err := eventloop.Submit(l, blocker(nil, release, 1))
		require.NoError(t, err)
		var order []int
		done := make(chan struct{})
		for i := range 5 {
			f.AddDoneCallback(func(f *eventloop.Future[int]) {
				assert.True(t, l.InLoop(), "a task's callbacks run on the loop")
				v, err := f.Result(0)
				assert.NoError(t, err, "the outcome is visible")
				assert.Equal(t, 1, v)
				order = append(order, i)
				if i == 4 {
					close(done)
				}
			})
		}
		release.open()
		recv(t, done)
		assert.Equal(t, []int{0, 1, 2, 3, 4}, order)
	})

	t.Run("on an ended future run at once on the caller", func(t *testing.T) {
		f := eventloop.Go(value(2))
		<-f.Done()
		ran := false
		f.AddDoneCallback(func(*eventloop.Future[int]) { ran = true })
		assert.True(t, ran, "before AddDoneCallback returns")
	})

	t.Run("one added while others run runs after them", func(t *testing.T) {
		l := started(t)
		release := newGate()
		f, err := eventloop.Submit(l, blocker(nil, release, 1))
		require.NoError(t, err)
		var order []string
		done := make(chan struct{})
		f.AddDoneCallback(func(f *eventloop.Future[int]) {
			order = append(order, "first")
			f.AddDoneCallback(func(*eventloop.Future[int]) {
				order = append(order, "added by first")
				close(done)
			})
			order = append(order, "first returns")
		})
		f.AddDoneCallback(func(*eventloop.Future[int]) { order = append(order, "second") })
		release.open()
		recv(t, done)
		assert.Equal(t, []string{"first", "first returns", "second", "added by first"}, order)
	})

	t.Run("a panicking callback is reported and the rest still run", func(t *testing.T) {
		reported := make(chan error, 4)
		l := started(t, eventloop.WithErrorHandler(func(err error) { reported <- err }))
		release := newGate()
		f, err := eventloop.Submit(l, blocker(nil, release, 1))
		require.NoError(t, err)
		ran := make(chan struct{})
		f.AddDoneCallback(func(*eventloop.Future[int]) { panic("callback") })
		f.AddDoneCallback(func(*eventloop.Future[int]) { close(ran) })
		release.open()
		recv(t, ran)
		var pe *eventloop.PanicError
		require.ErrorAs(t, recv(t, reported), &pe)
		assert.Equal(t, "callback", pe.Value)

		f.AddDoneCallback(func(*eventloop.Future[int]) { panic("at once") })
		require.ErrorAs(t, recv(t, reported), &pe, "a callback run at once reports its panic too")
		assert.Equal(t, "at once", pe.Value)
	})

	t.Run("nil callbacks are ignored", func(t *testing.T) {
		f := eventloop.Go(value(1))
		assert.NotPanics(t, func() { f.AddDoneCallback(nil) })
		<-f.Done()
		assert.NotPanics(t, func() { f.AddDoneCallback(nil) })
	})
}

func TestCancel(t *testing.T) {
	t.Run("a queued task never runs and ends now", func(t *testing.T) {
		l := eventloop.New() // not running: everything stays queued
		defer l.Close()
		var ran atomic.Bool
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
		require.NoError(t, err)
		callbackOnCaller := make(chan bool, 1)
		f.AddDoneCallback(func(*eventloop.Future[int]) { callbackOnCaller <- !l.InLoop() })
		assert.True(t, f.Cancel())
		assert.True(t, isClosed(f.Done()), "the future ends now")
		assert.True(t, recv(t, callbackOnCaller), "callbacks ran on the goroutine that called Cancel")
		assert.True(t, f.Cancelled())
		assert.True(t, f.Cancel(), "true again for a cancelled future")
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrCancelled)
		assert.ErrorIs(t, err, context.Canceled)

		after, err := eventloop.Submit(l, value(2))
		require.NoError(t, err)
		require.NoError(t, l.Start())
		_, err = after.Result(long)
		require.NoError(t, err)
		assert.False(t, ran.Load(), "a cancelled task never runs")
	})

	t.Run("a running task has its context cancelled and ends when fn returns", func(t *testing.T) {
		l := started(t)
		running := make(chan struct{})
		finish := newGate()
		var cause error
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			cause = context.Cause(ctx)
			<-finish // fn keeps running after the cancel
			return 42, nil
		})
		require.NoError(t, err)
		<-running
		assert.True(t, f.Cancel())
		assert.True(t, f.Cancelled())
		assert.False(t, isClosed(f.Done()), "Done never closes while fn still runs")
		_, err = f.Result(time.Millisecond)
		assert.ErrorIs(t, err, eventloop.ErrTimeout)
		finish.open()
		v, err := f.Result(long)
		assert.ErrorIs(t, err, eventloop.ErrCancelled, "whatever fn returned")
		assert.Zero(t, v)
		assert.ErrorIs(t, cause, eventloop.ErrCancelled)
	})

	t.Run("contexts derived from the task's are cancelled with it", func(t *testing.T) {
		l := started(t)
		derived := make(chan context.Context, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			derived <- child
			<-child.Done()
			return 0, context.Cause(child)
		})
		require.NoError(t, err)
		child := recv(t, derived)
		f.Cancel()
		assert.True(t, closedWithin(child.Done()))
		assert.ErrorIs(t, context.Cause(child), eventloop.ErrCancelled)
		_, err = f.Result(long)
		assert.ErrorIs(t, err, eventloop.ErrCancelled)
	})

	t.Run("an ended future is not cancelled", func(t *testing.T) {
		f := eventloop.Go(value(1))
		<-f.Done()
		assert.False(t, f.Cancel())
		assert.False(t, f.Cancelled())
		v, err := f.Result(0)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
	})

	t.Run("Cancel races the start of the task", func(t *testing.T) {
		l := started(t)
		for range 500 {
			var ran atomic.Bool
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				ran.Store(true)
				return 1, nil
			})
			require.NoError(t, err)
			cancelled := f.Cancel()
			<-f.Done()
			v, err := f.Result(0)
			if cancelled {
				// Either it never ran, or it ran and Cancel reached its
				// context: the outcome is ErrCancelled both ways.
				assert.ErrorIs(t, err, eventloop.ErrCancelled)
				assert.True(t, f.Cancelled())
			} else {
				assert.NoError(t, err)
				assert.Equal(t, 1, v)
				assert.True(t, ran.Load())
			}
		}
	})
}

func TestGo(t *testing.T) {
	t.Run("runs fn on its own goroutine", func(t *testing.T) {
		f := eventloop.Go(value("go"))
		v, err := f.Wait(context.Background())
		assert.NoError(t, err)
		assert.Equal(t, "go", v)
	})

	t.Run("Cancel cancels fn's context and the future ends with ErrCancelled", func(t *testing.T) {
		running := make(chan struct{})
		f := eventloop.Go(func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			return 1, context.Cause(ctx)
		})
		<-running
		assert.True(t, f.Cancel())
		_, err := f.Result(long)
		assert.ErrorIs(t, err, eventloop.ErrCancelled)
	})

	t.Run("a panic becomes a *PanicError", func(t *testing.T) {
		f := eventloop.Go(func(context.Context) (int, error) { panic("go panic") })
		var pe *eventloop.PanicError
		require.ErrorAs(t, f.Exception(long), &pe)
		assert.Equal(t, "go panic", pe.Value)
	})

	t.Run("a nil fn gives an ended future", func(t *testing.T) {
		f := eventloop.Go[int](nil)
		require.NotNil(t, f)
		assert.True(t, isClosed(f.Done()))
		assert.ErrorIs(t, f.Exception(0), eventloop.ErrInvalidArgument)
	})
}

func TestFutureBadInput(t *testing.T) {
	var nilFuture *eventloop.Future[int]
	zero := &eventloop.Future[int]{}
	for name, f := range map[string]*eventloop.Future[int]{"nil": nilFuture, "zero": zero} {
		t.Run(name, func(t *testing.T) {
			assert.NotPanics(t, func() {
				_, err := f.Result(time.Second)
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
				assert.ErrorIs(t, f.Exception(time.Second), eventloop.ErrInvalidArgument)
				_, err = f.Wait(context.Background())
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
				_, err = eventloop.Await(context.Background(), f)
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
				assert.False(t, f.Cancel())
				assert.False(t, f.Cancelled())
				assert.True(t, isClosed(f.Done()))
				f.AddDoneCallback(func(*eventloop.Future[int]) {})
			})
		})
	}
	t.Run("nil context", func(t *testing.T) {
		f := eventloop.Go(value(1))
		assert.NotPanics(t, func() {
			_, err := f.Wait(nil) //nolint:staticcheck
			assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
			_, err = eventloop.Await(nil, f) //nolint:staticcheck
			assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
			assert.ErrorIs(t, eventloop.Sleep(nil, time.Second), eventloop.ErrInvalidArgument) //nolint:staticcheck
		})
	})
}

func TestAllocations(t *testing.T) {
	f := eventloop.Go(value(1))
	<-f.Done()
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = f.Result(time.Second) }), "Result on an ended future")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = f.Wait(context.Background()) }), "Wait on an ended future")

	l := started(t)
	release := newGate()
	defer release.open()
	pending, err := eventloop.Submit(l, blocker(nil, release, 1))
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = pending.Result(time.Microsecond) }),
		"Result on a pending future that times out: waiters and deadlines are pooled")

	require.NoError(t, l.CallSoon(func() {})) // grow the queue once
	assert.LessOrEqual(t, testing.AllocsPerRun(1000, func() { _ = l.CallSoon(func() {}) }), 0.1, "CallSoon, amortised")
}
