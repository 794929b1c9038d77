package eventloop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestStateNames(t *testing.T) {
	names := map[eventloop.State]string{
		eventloop.StateNew:      "new",
		eventloop.StateRunning:  "running",
		eventloop.StateStopping: "stopping",
		eventloop.StateStopped:  "stopped",
		eventloop.StateClosed:   "closed",
		eventloop.State(42):     "State(42)",
	}
	for s, want := range names {
		assert.Equal(t, want, s.String())
	}
}

func TestLifecycle(t *testing.T) {
	t.Run("a new loop queues work and runs it in order once started", func(t *testing.T) {
		l := eventloop.New()
		defer l.Close()
		assert.Equal(t, eventloop.StateNew, l.State())
		var order []int
		var futures []*eventloop.Future[int]
		for i := range 10 {
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				order = append(order, i) // loop-owned: no lock
				return i, nil
			})
			require.NoError(t, err)
			futures = append(futures, f)
		}
		require.NoError(t, l.Start())
		assert.Equal(t, eventloop.StateRunning, l.State())
		for i, f := range futures {
			v, err := f.Result(long)
			require.NoError(t, err)
			assert.Equal(t, i, v)
		}
		assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, order)
	})

	t.Run("a loop runs once", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		assert.ErrorIs(t, l.Start(), eventloop.ErrLoopRunning)
		assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopRunning)
		l.Stop()
		assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopRunning, "a stopping loop is still running")
		require.True(t, closedWithin(l.Done()))
		assert.Equal(t, eventloop.StateStopped, l.State())
		assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopStopped)
		assert.ErrorIs(t, l.Start(), eventloop.ErrLoopStopped)
		require.NoError(t, l.Close())
		assert.Equal(t, eventloop.StateClosed, l.State())
		assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopClosed)
		assert.ErrorIs(t, l.Start(), eventloop.ErrLoopClosed)
	})

	t.Run("Run returns nil after Stop once accepted work has finished", func(t *testing.T) {
		l := eventloop.New()
		release := newGate()
		f, err := eventloop.Submit(l, blocker(nil, release, 7))
		require.NoError(t, err)
		ran := make(chan error, 1)
		go func() { ran <- l.Run(context.Background()) }()
		l.Stop()
		assert.Equal(t, eventloop.StateStopping, l.State())
		_, err = eventloop.Submit(l, value(1))
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopStopped)
		_, err = l.CallLater(time.Millisecond, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		assert.False(t, isClosed(l.Done()), "accepted work is not finished")
		release.open()
		assert.NoError(t, recv(t, ran))
		v, err := f.Result(0)
		assert.NoError(t, err, "Stop lets accepted work finish")
		assert.Equal(t, 7, v)
		assert.Equal(t, eventloop.StateStopped, l.State())
		assert.True(t, isClosed(l.Done()))
		require.NoError(t, l.Close())
	})

	t.Run("a loop stopped before it ran still runs what it accepted", func(t *testing.T) {
		l := eventloop.New()
		f, err := eventloop.Submit(l, value("queued"))
		require.NoError(t, err)
		l.Stop()
		_, err = eventloop.Submit(l, value("late"))
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		assert.NoError(t, l.Run(context.Background()))
		v, err := f.Result(0)
		assert.NoError(t, err)
		assert.Equal(t, "queued", v)
	})

	t.Run("Stop keeps the loop stopping while a coroutine sleeps", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := eventloop.New()
			require.NoError(t, l.Start())
			f, err := eventloop.Submit(l, func(ctx context.Context) (string, error) {
				return "woke", eventloop.Sleep(ctx, time.Hour)
			})
			require.NoError(t, err)
			synctest.Wait() // the task is asleep
			l.Stop()
			time.Sleep(59 * time.Minute)
			synctest.Wait()
			assert.Equal(t, eventloop.StateStopping, l.State())
			assert.False(t, isClosed(l.Done()))
			time.Sleep(time.Minute)
			<-l.Done()
			assert.Equal(t, eventloop.StateStopped, l.State())
			v, err := f.Result(0)
			assert.NoError(t, err)
			assert.Equal(t, "woke", v)
			require.NoError(t, l.Close())
		})
	})

	t.Run("Stop drops timers that have not fired once the queue drains", func(t *testing.T) {
		l := eventloop.New()
		fired := make(chan struct{}, 1)
		timer, err := l.CallLater(time.Hour, func() { fired <- struct{}{} })
		require.NoError(t, err)
		require.NoError(t, l.Start())
		l.Stop()
		require.True(t, closedWithin(l.Done()), "a pending timer does not keep a stopping loop alive")
		assert.False(t, timer.Stop(), "the timer was dropped, not stopped by this call")
		assert.Empty(t, fired)
		require.NoError(t, l.Close())
	})

	t.Run("Stop, Close and Shutdown are idempotent", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		l.Stop()
		l.Stop()
		require.True(t, closedWithin(l.Done()))
		require.NoError(t, l.Shutdown(context.Background()))
		require.NoError(t, l.Close())
		require.NoError(t, l.Close())
		l.Stop()
		assert.Equal(t, eventloop.StateClosed, l.State(), "Stop does not reopen a closed loop")
		require.NoError(t, l.Shutdown(context.Background()))
	})

	t.Run("Done is the same channel on every call", func(t *testing.T) {
		l := eventloop.New()
		assert.Equal(t, l.Done(), l.Done())
		require.NoError(t, l.Close())
		assert.True(t, isClosed(l.Done()))
	})
}

func TestClose(t *testing.T) {
	t.Run("fails queued tasks, cancels started ones, and waits for them", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		running := make(chan struct{}, 1)
		var cause error
		returned := make(chan struct{})
		first, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			running <- struct{}{}
			<-ctx.Done()
			cause = context.Cause(ctx)
			close(returned)
			return 1, nil // Close decides the outcome, not this value
		})
		require.NoError(t, err)
		queuedRan := atomic.Bool{}
		queued, err := eventloop.Submit(l, func(context.Context) (int, error) {
			queuedRan.Store(true)
			return 2, nil
		})
		require.NoError(t, err)
		callbackRan := atomic.Bool{}
		require.NoError(t, l.CallSoon(func() { callbackRan.Store(true) }))
		recv(t, running)

		require.NoError(t, l.Close())
		assert.True(t, isClosed(returned), "Close waits until started work has returned")
		assert.True(t, isClosed(l.Done()), "Close returns once Done is closed")
		assert.ErrorIs(t, cause, eventloop.ErrLoopClosed, "the cause of the task's ctx")
		_, err = first.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		_, err = queued.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		assert.False(t, queuedRan.Load(), "a task that had not started never runs")
		assert.False(t, callbackRan.Load(), "a queued callback is dropped")
		assert.Equal(t, eventloop.StateClosed, l.State())

		_, err = eventloop.Submit(l, value(3))
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopClosed)
		_, err = l.CallLater(0, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("ends suspended coroutines with ErrLoopClosed", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		never := eventloop.Go(func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		defer never.Cancel()
		suspended := make(chan struct{})
		var awaitErr error
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(suspended)
			_, awaitErr = eventloop.Await(ctx, never)
			return 5, nil
		})
		require.NoError(t, err)
		sleeper, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return 0, eventloop.Sleep(ctx, time.Hour)
		})
		require.NoError(t, err)
		<-suspended
		require.NoError(t, l.Close())
		assert.ErrorIs(t, awaitErr, context.Canceled, "Await returns when the loop closes")
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		_, err = sleeper.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("a started task's context reports the close however it is asked", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		type seen struct {
			err, cause, lateCause error
			doneBefore, doneAfter bool
		}
		running := make(chan struct{})
		out := make(chan seen, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			early := ctx.Done() // a real context made before Close
			derived, cancel := context.WithCancel(ctx)
			defer cancel()
			close(running)
			<-derived.Done() // only Close ends this
			var s seen
			s.err = ctx.Err()
			s.doneBefore = isClosed(early)
			s.cause = context.Cause(derived)
			late := ctx.Value("anything") // asking again after Close
			_ = late
			s.doneAfter = isClosed(ctx.Done())
			s.lateCause = context.Cause(ctx)
			out <- s
			return 1, nil
		})
		require.NoError(t, err)
		<-running
		closeReturned := make(chan error, 1)
		go func() { closeReturned <- l.Close() }()
		s := recv(t, out)
		assert.ErrorIs(t, s.err, context.Canceled, "Err")
		assert.True(t, s.doneBefore, "Done channels made before Close are closed")
		assert.ErrorIs(t, s.cause, eventloop.ErrLoopClosed, "the cause reaches derived contexts")
		assert.True(t, s.doneAfter, "a Done asked for after Close is closed")
		assert.ErrorIs(t, s.lateCause, eventloop.ErrLoopClosed)
		assert.NoError(t, recv(t, closeReturned))
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("a loop that never ran closes the same way", func(t *testing.T) {
		l := eventloop.New()
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		onGoroutine := make(chan bool, 1)
		f.AddDoneCallback(func(*eventloop.Future[int]) { onGoroutine <- true })
		require.NoError(t, l.Close())
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		assert.True(t, recv(t, onGoroutine), "its callbacks ran")
		assert.True(t, isClosed(l.Done()))
		assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopClosed)
	})

	t.Run("Run returns ErrLoopClosed after Close", func(t *testing.T) {
		l := eventloop.New()
		ran := make(chan error, 1)
		started := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(started) }))
		go func() { ran <- l.Run(context.Background()) }()
		<-started
		require.NoError(t, l.Close())
		assert.ErrorIs(t, recv(t, ran), eventloop.ErrLoopClosed)
	})

	t.Run("no goroutine of the loop remains after Close", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		l := eventloop.New()
		require.NoError(t, l.Start())
		for range 50 {
			_, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				return 0, eventloop.Sleep(ctx, time.Hour)
			})
			require.NoError(t, err)
		}
		_, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		goleak.VerifyNone(t, before)
	})
}

func TestRunContext(t *testing.T) {
	t.Run("its end closes the loop and Run returns ctx.Err()", func(t *testing.T) {
		l := eventloop.New()
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		started := make(chan struct{})
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, nil
		})
		require.NoError(t, err)
		go func() { ran <- l.Run(ctx) }()
		<-started
		cancel()
		assert.ErrorIs(t, recv(t, ran), context.Canceled)
		assert.Equal(t, eventloop.StateClosed, l.State())
		assert.True(t, isClosed(l.Done()))
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("a context that has ended closes the loop at once", func(t *testing.T) {
		l := eventloop.New()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.ErrorIs(t, l.Run(ctx), context.Canceled)
		assert.Equal(t, eventloop.StateClosed, l.State())
	})

	t.Run("its values reach task contexts but its cancellation does not", func(t *testing.T) {
		type key struct{}
		l := eventloop.New()
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		defer cancel()
		ran := make(chan error, 1)
		go func() { ran <- l.Run(ctx) }()
		f, err := eventloop.Submit(l, func(ctx context.Context) (any, error) {
			_, hasDeadline := ctx.Deadline()
			if hasDeadline {
				return nil, errors.New("a task context has no deadline")
			}
			return ctx.Value(key{}), nil
		})
		require.NoError(t, err)
		v, err := f.Result(long)
		require.NoError(t, err)
		assert.Equal(t, "v", v)
		l.Stop()
		assert.NoError(t, recv(t, ran))
	})
}

func TestShutdown(t *testing.T) {
	t.Run("returns nil once the loop has drained", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return 3, eventloop.Sleep(ctx, time.Millisecond)
		})
		require.NoError(t, err)
		require.NoError(t, l.Shutdown(context.Background()))
		v, err := f.Result(0)
		assert.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, eventloop.StateStopped, l.State(), "a drained loop is stopped, not closed")
		_, err = eventloop.Submit(l, value(4))
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		require.NoError(t, l.Close())
	})

	t.Run("closes the loop when its deadline passes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := eventloop.New()
			require.NoError(t, l.Start())
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				return 0, eventloop.Sleep(ctx, time.Hour)
			})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			assert.ErrorIs(t, l.Shutdown(ctx), context.DeadlineExceeded)
			assert.Equal(t, eventloop.StateClosed, l.State())
			assert.True(t, isClosed(l.Done()))
			_, err = f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		})
	})

	t.Run("closes a loop that never ran at once", func(t *testing.T) {
		l := eventloop.New()
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		require.NoError(t, l.Shutdown(context.Background()))
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})
}

func TestLifecycleFromInsideTheLoop(t *testing.T) {
	t.Run("Stop returns without waiting and the loop drains", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		after, err := eventloop.Submit(l, value(2))
		require.NoError(t, err)
		_ = after
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			l.Stop()
			_, err := eventloop.Submit(l, value(0))
			if !errors.Is(err, eventloop.ErrLoopStopped) {
				return 0, err
			}
			return 1, nil
		})
		require.NoError(t, err)
		// The order is f then the stop; `after` was queued before the stop.
		require.True(t, closedWithin(l.Done()))
		v, err := f.Result(0)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
		require.NoError(t, l.Close())
	})

	t.Run("Close returns without waiting and ends the calling task with ErrLoopClosed", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		returned := make(chan error, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			returned <- l.Close()
			if ctx.Err() == nil {
				return 0, errors.New("Close did not cancel the calling task's context")
			}
			return 1, nil
		})
		require.NoError(t, err)
		assert.NoError(t, recv(t, returned))
		require.True(t, closedWithin(l.Done()))
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("Close from a callback returns without waiting", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		returned := make(chan error, 1)
		require.NoError(t, l.CallSoon(func() { returned <- l.Close() }))
		assert.NoError(t, recv(t, returned))
		require.True(t, closedWithin(l.Done()))
	})

	t.Run("Shutdown returns ErrDeadlock", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (error, error) {
			return l.Shutdown(context.Background()), nil
		})
		require.NoError(t, err)
		v, err := f.Result(long)
		require.NoError(t, err)
		assert.ErrorIs(t, v, eventloop.ErrDeadlock)
		assert.Equal(t, eventloop.StateRunning, l.State(), "a refused Shutdown changes nothing")
	})
}

// TestSubmitRacingClose submits from many goroutines while the loop closes
// and checks the ledger: every attempt is either rejected or accepted, and
// every accepted future ends: with its value, which means its task ran, or
// (Close only) with ErrLoopClosed, which a task that had started and was
// caught by the close may end with too.
func TestSubmitRacingClose(t *testing.T) {
	for _, how := range []string{"Close", "Stop", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			for round := range 20 {
				l := eventloop.New()
				require.NoError(t, l.Start())
				const producers, each = 8, 200
				var accepted, rejected atomic.Int64
				type record struct {
					f   *eventloop.Future[int]
					ran *atomic.Bool
				}
				var mu sync.Mutex
				var futures []record
				var wg sync.WaitGroup
				startLine := newGate()
				for range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-startLine
						for i := range each {
							ran := new(atomic.Bool)
							f, err := eventloop.Submit(l, func(context.Context) (int, error) {
								ran.Store(true)
								return i, nil
							})
							if err != nil {
								assert.True(t, errors.Is(err, eventloop.ErrLoopClosed) || errors.Is(err, eventloop.ErrLoopStopped), "unexpected rejection %v", err)
								assert.Nil(t, f)
								rejected.Add(1)
								continue
							}
							accepted.Add(1)
							mu.Lock()
							futures = append(futures, record{f, ran})
							mu.Unlock()
						}
					}()
				}
				startLine.open()
				switch how {
				case "Close":
					require.NoError(t, l.Close())
				case "Stop":
					l.Stop()
				case "Shutdown":
					require.NoError(t, l.Shutdown(context.Background()))
				}
				wg.Wait()
				require.True(t, closedWithin(l.Done()))
				require.NoError(t, l.Close())
				assert.Equal(t, int64(producers*each), accepted.Load()+rejected.Load(), "round %d: rejected + accepted = attempts", round)
				require.Len(t, futures, int(accepted.Load()))
				var values, closed int64
				for _, r := range futures {
					require.True(t, isClosed(r.f.Done()), "round %d: every accepted future ends", round)
					_, err := r.f.Result(0)
					switch {
					case err == nil:
						require.True(t, r.ran.Load(), "round %d: a future with a value ran its task", round)
						values++
					case errors.Is(err, eventloop.ErrLoopClosed):
						require.Equal(t, "Close", how, "only Close fails accepted work")
						closed++
					default:
						t.Fatalf("round %d: unexpected outcome %v", round, err)
					}
				}
				assert.Equal(t, accepted.Load(), values+closed)
			}
		})
	}
}

func TestNilAndZeroLoop(t *testing.T) {
	for name, l := range map[string]*eventloop.Loop{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			assert.NotPanics(t, func() {
				assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrInvalidArgument)
				assert.ErrorIs(t, l.Start(), eventloop.ErrInvalidArgument)
				assert.ErrorIs(t, l.Close(), eventloop.ErrInvalidArgument)
				assert.ErrorIs(t, l.Shutdown(context.Background()), eventloop.ErrInvalidArgument)
				assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrInvalidArgument)
				_, err := l.CallLater(time.Second, func() {})
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
				f, err := eventloop.Submit(l, value(1))
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
				assert.Nil(t, f)
				l.Stop()
				assert.False(t, l.InLoop())
				assert.Equal(t, eventloop.StateClosed, l.State())
				assert.True(t, isClosed(l.Done()))
			})
		})
	}
	t.Run("nil arguments", func(t *testing.T) {
		l := started(t)
		assert.NotPanics(t, func() {
			//lint:ignore SA1012 testing nil input on purpose
			assert.ErrorIs(t, l.Run(nil), eventloop.ErrInvalidArgument)      //nolint:staticcheck
			assert.ErrorIs(t, l.Shutdown(nil), eventloop.ErrInvalidArgument) //nolint:staticcheck
			assert.ErrorIs(t, l.CallSoon(nil), eventloop.ErrInvalidArgument)
			_, err := l.CallLater(0, nil)
			assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
			_, err = eventloop.Submit[int](l, nil)
			assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
		})
	})
}
