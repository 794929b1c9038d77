package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newPromise returns a future, made by Go, that ends with the value passed to
// resolve (call it once; it never blocks). The test's cleanup cancels it and
// waits for it, so that no goroutine is left behind.
func newPromise[T any](t *testing.T) (f *eventloop.Future[T], resolve func(T)) {
	t.Helper()
	ch := make(chan T, 1)
	f = eventloop.Go(func(ctx context.Context) (T, error) {
		select {
		case v := <-ch:
			return v, nil
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	})
	t.Cleanup(func() {
		f.Cancel()
		<-f.Done()
	})
	return f, func(v T) { ch <- v }
}

// waitSuspended waits until the tasks submitted to l before the call have run
// up to their first suspension (or their end): one piece of loop work runs
// at a time, in order, so a callback queued after them runs only then.
func waitSuspended(t *testing.T, l *eventloop.Loop) {
	t.Helper()
	probe := make(chan struct{})
	require.NoError(t, l.CallSoon(func() { close(probe) }))
	waitClosed(t, probe, "the tasks queued before to suspend")
}

// awaitCtxKey is a context key for a ctx derived from a task's.
type awaitCtxKey struct{}

func TestAwait(t *testing.T) {
	// Await suspends a coroutine whatever ctx it is given: its own, one
	// derived from it, or (the godoc says) an unrelated one.
	awaitCtxs := map[string]func(ctx context.Context) (context.Context, context.CancelFunc){
		"its own ctx": func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} },
		"a ctx derived from its own": func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(context.WithValue(ctx, awaitCtxKey{}, 1))
		},
		"an unrelated ctx": func(context.Context) (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		},
	}
	for name, awaitCtx := range awaitCtxs {
		t.Run("a coroutine awaiting a Go future with "+name+" lets the loop run other work meanwhile", func(t *testing.T) {
			l := started(t)
			p, resolve := newPromise[int](t)
			var j journal
			a, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				actx, cancel := awaitCtx(ctx)
				defer cancel()
				j.add("a awaits")
				v, err := eventloop.Await(actx, p)
				j.add("a resumed")
				return v, err
			})
			require.NoError(t, err)
			b, err := eventloop.Submit(l, func(context.Context) (int, error) {
				j.add("b")
				return 2, nil
			})
			require.NoError(t, err)
			_, err = outcomeOf(t, b) // times out if Await blocked the loop
			require.NoError(t, err)
			assert.False(t, isClosed(a.Done()), "a is still waiting for p")
			resolve(1)
			v, err := outcomeOf(t, a)
			assert.NoError(t, err)
			assert.Equal(t, 1, v, "Await returns the Go future's value")
			assert.Equal(t, []string{"a awaits", "b", "a resumed"}, j.list(), "b ran while a was suspended")
		})
	}

	t.Run("Await returns the outcome of a future of the same loop", func(t *testing.T) {
		l := started(t)
		p, resolve := newPromise[int](t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (string, error) {
			// inner runs on this loop while this task is suspended in Await.
			inner, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				v, err := eventloop.Await(ctx, p)
				return v + 1, err
			})
			if err != nil {
				return "", err
			}
			v, err := eventloop.Await(ctx, inner)
			if err != nil {
				return "", err
			}
			failing, err := eventloop.Submit(l, func(context.Context) (int, error) { return 0, errWorkFailed })
			if err != nil {
				return "", err
			}
			_, ferr := eventloop.Await(ctx, failing)
			panicking, err := eventloop.Submit(l, func(context.Context) (int, error) { panic("inner panic") })
			if err != nil {
				return "", err
			}
			_, perr := eventloop.Await(ctx, panicking)
			var pe *eventloop.PanicError
			return fmt.Sprintf("%d %v %v", v, errors.Is(ferr, errWorkFailed), errors.As(perr, &pe) && pe.Value == "inner panic"), nil
		})
		require.NoError(t, err)
		waitSuspended(t, l)
		resolve(41)
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, "42 true true", v, "the value, fn's error and the *PanicError of same-loop futures")
	})

	t.Run("Await returns the outcome of a future of another loop", func(t *testing.T) {
		l, other := started(t), started(t)
		p, resolve := newPromise[int](t)
		inner, err := eventloop.Submit(other, func(ctx context.Context) (int, error) {
			v, err := eventloop.Await(ctx, p)
			return v * 2, err
		})
		require.NoError(t, err)
		failing, err := eventloop.Submit(other, func(context.Context) (int, error) { return 0, errWorkFailed })
		require.NoError(t, err)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if _, err := eventloop.Await(ctx, failing); !errors.Is(err, errWorkFailed) {
				return 0, fmt.Errorf("the other loop's error: got %v", err)
			}
			return eventloop.Await(ctx, inner)
		})
		require.NoError(t, err)
		waitSuspended(t, l)
		probe, err := eventloop.Submit(l, func(context.Context) (bool, error) { return true, nil })
		require.NoError(t, err)
		_, err = outcomeOf(t, probe)
		require.NoError(t, err, "l runs other work while its coroutine awaits the other loop")
		resolve(21)
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, 42, v)
	})

	t.Run("Await returns the outcome of a Go future, error and panic included", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (string, error) {
			v, err := eventloop.Await(ctx, eventloop.Go(func(context.Context) (int, error) { return 7, nil }))
			if err != nil {
				return "", err
			}
			_, ferr := eventloop.Await(ctx, eventloop.Go(func(context.Context) (int, error) { return 0, errWorkFailed }))
			_, perr := eventloop.Await(ctx, eventloop.Go(func(context.Context) (int, error) { panic("go panic") }))
			var pe *eventloop.PanicError
			return fmt.Sprintf("%d %v %v", v, errors.Is(ferr, errWorkFailed), errors.As(perr, &pe) && pe.Value == "go panic"), nil
		})
		require.NoError(t, err)
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, "7 true true", v)
	})

	t.Run("Await on a future that has ended returns at once without suspending", func(t *testing.T) {
		l := idleLoop(t)
		done := eventloop.Go(func(context.Context) (int, error) { return 5, nil })
		_, err := outcomeOf(t, done)
		require.NoError(t, err)
		var j journal
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			j.add("a before")
			v, err := eventloop.Await(ctx, done)
			j.add("a after")
			return v, err
		})
		require.NoError(t, err)
		require.NoError(t, l.CallSoon(func() { j.add("b") }))
		require.NoError(t, l.Start())
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, 5, v)
		waitSuspended(t, l)
		assert.Equal(t, []string{"a before", "a after", "b"}, j.list(), "the task did not yield to b")
	})

	t.Run("Await with a derived ctx that expires returns DeadlineExceeded and the future stays usable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			p, resolve := newPromise[int](t)
			type expiry struct {
				err     error
				elapsed time.Duration
			}
			expired := make(chan expiry, 1)
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
				defer cancel()
				start := time.Now()
				_, err := eventloop.Await(dctx, p)
				expired <- expiry{err, time.Since(start)}
				return eventloop.Await(ctx, p) // the same future, again
			})
			require.NoError(t, err)
			e := receiveWithin(t, expired, "the first Await to end")
			assert.ErrorIs(t, e.err, context.DeadlineExceeded, "Await with an expired ctx")
			assert.Equal(t, 10*time.Millisecond, e.elapsed, "Await returned when its ctx expired (virtual time)")
			assert.False(t, isClosed(p.Done()), "the awaited future is still pending")
			_, err = p.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrTimeout, "Result(0) on the pending future")
			assert.False(t, p.Cancelled(), "an expired Await does not cancel the future")
			resolve(5)
			v, err := outcomeOf(t, f)
			assert.NoError(t, err, "a second Await on the same future")
			assert.Equal(t, 5, v)
		})
	})

	t.Run("Await from a plain goroutine holding a task's ctx blocks like Wait", func(t *testing.T) {
		l := started(t)
		p, resolve := newPromise[int](t)
		// same is a pending future of l: loop work would get ErrDeadlock.
		same, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return eventloop.Await(ctx, p)
		})
		require.NoError(t, err)
		type helperResult struct {
			v      int
			err    error
			inLoop bool
		}
		helperCh := make(chan *eventloop.Future[helperResult], 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (helperResult, error) {
			h := eventloop.Go(func(context.Context) (helperResult, error) {
				v, err := eventloop.Await(ctx, same) // the task's ctx, on another goroutine
				return helperResult{v, err, l.InLoop()}, nil
			})
			helperCh <- h
			return eventloop.Await(ctx, h)
		})
		require.NoError(t, err)
		h := receiveWithin(t, helperCh, "the helper goroutine")
		probe, err := eventloop.Submit(l, func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
		_, err = outcomeOf(t, probe)
		require.NoError(t, err, "the loop runs other work while the helper waits")
		assert.False(t, isClosed(h.Done()), "the helper still waits for the pending future")
		resolve(9)
		r, err := outcomeOf(t, f)
		require.NoError(t, err)
		assert.NoError(t, r.err, "Await on another goroutine waits instead of failing with ErrDeadlock")
		assert.Equal(t, 9, r.v)
		assert.False(t, r.inLoop, "the helper goroutine is not loop work")
	})

	t.Run("Await with a nil future or a nil ctx is an invalid argument", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (string, error) {
			_, err1 := eventloop.Await[int](ctx, nil)
			_, err2 := eventloop.Await(nil, eventloop.Go(func(context.Context) (int, error) { return 0, nil })) // a nil ctx is the point
			return fmt.Sprintf("%v %v", errors.Is(err1, eventloop.ErrInvalidArgument), errors.Is(err2, eventloop.ErrInvalidArgument)), nil
		})
		require.NoError(t, err)
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, "true true", v, "Await(ctx, nil) and Await(nil, f) in a task")
		assert.NotPanics(t, func() {
			_, err := eventloop.Await[int](context.Background(), nil)
			assert.ErrorIs(t, err, eventloop.ErrInvalidArgument, "Await(ctx, nil) on a plain goroutine")
		})
	})
}

func TestAwaitInPlainCallbacks(t *testing.T) {
	// awaited is what Await returned in a plain callback: on a pending Go
	// future, on a pending future of the loop, on a future that has ended.
	type awaited struct {
		pendingGo, pendingSame, doneOne error
		doneValue                       int
	}
	setup := func(t *testing.T) (l *eventloop.Loop, await func() awaited) {
		l = started(t)
		p, _ := newPromise[int](t)
		pendingSame, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, p) })
		require.NoError(t, err)
		done, err := eventloop.Submit(l, func(context.Context) (int, error) { return 3, nil })
		require.NoError(t, err)
		_, err = outcomeOf(t, done)
		require.NoError(t, err)
		return l, func() awaited {
			var a awaited
			_, a.pendingGo = eventloop.Await(context.Background(), p)
			_, a.pendingSame = eventloop.Await(context.Background(), pendingSame)
			a.doneValue, a.doneOne = eventloop.Await(context.Background(), done)
			return a
		}
	}
	check := func(t *testing.T, a awaited) {
		t.Helper()
		assert.ErrorIs(t, a.pendingGo, eventloop.ErrDeadlock, "Await on a pending Go future")
		assert.ErrorIs(t, a.pendingSame, eventloop.ErrDeadlock, "Await on a pending future of the same loop")
		assert.NoError(t, a.doneOne, "Await on a future that has ended")
		assert.Equal(t, 3, a.doneValue, "Await on a future that has ended")
	}

	t.Run("Await in a CallSoon callback on a pending future returns ErrDeadlock", func(t *testing.T) {
		l, await := setup(t)
		got := make(chan awaited, 1)
		require.NoError(t, l.CallSoon(func() { got <- await() }))
		check(t, receiveWithin(t, got, "the callback"))
	})

	t.Run("Await in a CallLater callback on a pending future returns ErrDeadlock", func(t *testing.T) {
		l, await := setup(t)
		got := make(chan awaited, 1)
		_, err := l.CallLater(time.Millisecond, func() { got <- await() })
		require.NoError(t, err)
		check(t, receiveWithin(t, got, "the timer"))
	})

	t.Run("Await in a done callback on a pending future returns ErrDeadlock", func(t *testing.T) {
		l, await := setup(t)
		q, resolve := newPromise[int](t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, q) })
		require.NoError(t, err)
		got := make(chan awaited, 1)
		inLoop := make(chan bool, 1)
		f.AddDoneCallback(func(*eventloop.Future[int]) { inLoop <- l.InLoop(); got <- await() })
		resolve(1)
		require.True(t, receiveWithin(t, inLoop, "the done callback"), "the done callback runs on the loop")
		check(t, receiveWithin(t, got, "the done callback"))
	})

	t.Run("Await in a callback with a task's ctx still returns ErrDeadlock", func(t *testing.T) {
		l := started(t)
		p, resolve := newPromise[int](t)
		got := make(chan error, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := l.CallSoon(func() { _, err := eventloop.Await(ctx, p); got <- err }); err != nil {
				return 0, err
			}
			return eventloop.Await(ctx, p)
		})
		require.NoError(t, err)
		assert.ErrorIs(t, receiveWithin(t, got, "the callback"), eventloop.ErrDeadlock,
			"a callback is not a coroutine, whatever ctx it holds")
		resolve(1)
		v, err := outcomeOf(t, f)
		assert.NoError(t, err, "the task that lent its ctx is unharmed")
		assert.Equal(t, 1, v)
	})
}

func TestDeadlockGuard(t *testing.T) {
	// blocking holds what Result, Exception and Wait returned and how long
	// they took.
	type blocking struct {
		resultErr, exceptionErr, waitErr error
		elapsed                          time.Duration
	}
	try := func(f *eventloop.Future[int]) blocking {
		start := time.Now()
		var b blocking
		_, b.resultErr = f.Result(time.Hour)
		b.exceptionErr = f.Exception(time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, b.waitErr = f.Wait(ctx)
		b.elapsed = time.Since(start)
		return b
	}
	deadlocked := func(t *testing.T, b blocking, what string) {
		t.Helper()
		assert.ErrorIs(t, b.resultErr, eventloop.ErrDeadlock, "Result on %s", what)
		assert.ErrorIs(t, b.exceptionErr, eventloop.ErrDeadlock, "Exception on %s", what)
		assert.ErrorIs(t, b.waitErr, eventloop.ErrDeadlock, "Wait on %s", what)
		assert.Zero(t, b.elapsed, "the guard answers at once (virtual time) on %s", what)
	}

	t.Run("Result, Exception and Wait in a task on a pending future of the same loop return ErrDeadlock at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := idleLoop(t)
			p, resolve := newPromise[int](t)
			asleep, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, p) })
			require.NoError(t, err)
			selfCh := make(chan *eventloop.Future[int], 1)
			got := make(chan map[string]blocking, 1)
			queuedCh := make(chan *eventloop.Future[int], 1)
			self, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				queued, err := eventloop.Submit(l, func(context.Context) (int, error) { return 3, nil })
				if err != nil {
					return 0, err
				}
				queuedCh <- queued
				got <- map[string]blocking{
					"a task not started": try(queued),
					"a suspended task":   try(asleep),
					"its own future":     try(<-selfCh),
				}
				return 1, nil
			})
			require.NoError(t, err)
			selfCh <- self
			require.NoError(t, l.Start())
			results := receiveWithin(t, got, "the task")
			require.Len(t, results, 3)
			for what, b := range results {
				deadlocked(t, b, what)
			}
			queued := receiveWithin(t, queuedCh, "the task")
			resolve(2)
			for _, f := range []*eventloop.Future[int]{self, asleep, queued} {
				_, err := outcomeOf(t, f)
				assert.NoError(t, err, "the futures are unharmed")
			}
		})
	})

	t.Run("Result, Exception and Wait in a callback on a pending future of the same loop return ErrDeadlock at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			p, resolve := newPromise[int](t)
			asleep, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, p) })
			require.NoError(t, err)
			got := make(chan blocking, 3)
			require.NoError(t, l.CallSoon(func() { got <- try(asleep) }))
			_, err = l.CallLater(time.Millisecond, func() { got <- try(asleep) })
			require.NoError(t, err)
			deadlocked(t, receiveWithin(t, got, "the CallSoon callback"), "a suspended task, from CallSoon")
			deadlocked(t, receiveWithin(t, got, "the CallLater callback"), "a suspended task, from CallLater")
			q, resolveQ := newPromise[int](t)
			other, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, q) })
			require.NoError(t, err)
			other.AddDoneCallback(func(*eventloop.Future[int]) { got <- try(asleep) }) // other is pending: it runs on the loop
			resolveQ(1)
			deadlocked(t, receiveWithin(t, got, "the done callback"), "a suspended task, from a done callback")
			resolve(1)
			_, err = outcomeOf(t, asleep)
			assert.NoError(t, err)
		})
	})

	t.Run("Result, Exception and Wait in loop work on a future that has ended return its outcome", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			ok, err := eventloop.Submit(l, func(context.Context) (int, error) { return 5, nil })
			require.NoError(t, err)
			failed, err := eventloop.Submit(l, func(context.Context) (int, error) { return 0, errWorkFailed })
			require.NoError(t, err)
			_, err = outcomeOf(t, failed)
			require.ErrorIs(t, err, errWorkFailed)
			type seen struct {
				rv, wv             int
				rerr, eerr, werr   error
				frerr, feerr, fwer error
			}
			look := func() seen {
				var s seen
				s.rv, s.rerr = ok.Result(0)
				s.eerr = ok.Exception(time.Hour)
				s.wv, s.werr = ok.Wait(context.Background())
				_, s.frerr = failed.Result(time.Hour)
				s.feerr = failed.Exception(0)
				_, s.fwer = failed.Wait(context.Background())
				return s
			}
			fromTask, err := eventloop.Submit(l, func(context.Context) (seen, error) { return look(), nil })
			require.NoError(t, err)
			fromCallback := make(chan seen, 1)
			require.NoError(t, l.CallSoon(func() { fromCallback <- look() }))
			s1, err := outcomeOf(t, fromTask)
			require.NoError(t, err)
			for where, s := range map[string]seen{"a task": s1, "a callback": receiveWithin(t, fromCallback, "the callback")} {
				assert.NoError(t, s.rerr, "Result in %s", where)
				assert.Equal(t, 5, s.rv, "Result in %s", where)
				assert.NoError(t, s.eerr, "Exception in %s", where)
				assert.NoError(t, s.werr, "Wait in %s", where)
				assert.Equal(t, 5, s.wv, "Wait in %s", where)
				assert.ErrorIs(t, s.frerr, errWorkFailed, "Result of a failed future in %s", where)
				assert.ErrorIs(t, s.feerr, errWorkFailed, "Exception of a failed future in %s", where)
				assert.ErrorIs(t, s.fwer, errWorkFailed, "Wait of a failed future in %s", where)
			}
		})
	})

	t.Run("Await on the task's own future returns ErrDeadlock", func(t *testing.T) {
		l := idleLoop(t)
		selfCh := make(chan *eventloop.Future[int], 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			_, err := eventloop.Await(ctx, <-selfCh)
			return 7, err
		})
		require.NoError(t, err)
		selfCh <- f
		require.NoError(t, l.Start())
		_, err = outcomeOf(t, f)
		assert.ErrorIs(t, err, eventloop.ErrDeadlock)
	})
}

func TestInLoop(t *testing.T) {
	t.Run("InLoop is true in all loop work and false elsewhere", func(t *testing.T) {
		l, other := started(t), started(t)
		p, resolve := newPromise[int](t)
		var j journal
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			j.add("task before Await: %v", l.InLoop())
			j.add("task, the other loop: %v", other.InLoop())
			if _, err := eventloop.Await(ctx, p); err != nil {
				return 0, err
			}
			j.add("task after Await: %v", l.InLoop())
			if err := eventloop.Sleep(ctx, time.Millisecond); err != nil {
				return 0, err
			}
			j.add("task after Sleep: %v", l.InLoop())
			inGo, err := eventloop.Await(ctx, eventloop.Go(func(context.Context) (bool, error) { return l.InLoop(), nil }))
			j.add("a Go goroutine started by the task: %v", inGo)
			return 0, err
		})
		require.NoError(t, err)
		callbacksRan := make(chan struct{})
		f.AddDoneCallback(func(*eventloop.Future[int]) {
			j.add("done callback on the loop: %v", l.InLoop())
			close(callbacksRan)
		})
		waitSuspended(t, l)
		require.NoError(t, l.CallSoon(func() { j.add("CallSoon: %v", l.InLoop()) }))
		timer := make(chan struct{})
		_, err = l.CallLater(0, func() { j.add("CallLater: %v", l.InLoop()); close(timer) })
		require.NoError(t, err)
		waitClosed(t, timer, "the timer")
		resolve(1)
		_, err = outcomeOf(t, f)
		require.NoError(t, err)
		// Done may close before the callbacks have run; one added while they
		// run is queued behind them, so wait until they have.
		waitClosed(t, callbacksRan, "the done callback")
		f.AddDoneCallback(func(*eventloop.Future[int]) { j.add("done callback at once, on the test goroutine: %v", l.InLoop()) })
		j.add("the test goroutine: %v", l.InLoop())
		assert.Equal(t, []string{
			"task before Await: true",
			"task, the other loop: false",
			"CallSoon: true",
			"CallLater: true",
			"task after Await: true",
			"task after Sleep: true",
			"a Go goroutine started by the task: false",
			"done callback on the loop: true",
			"done callback at once, on the test goroutine: false",
			"the test goroutine: false",
		}, j.list())
		require.NoError(t, l.Close())
		assert.False(t, l.InLoop(), "InLoop after Close")
	})

	t.Run("InLoop is false on a loop that never ran", func(t *testing.T) {
		assert.False(t, idleLoop(t).InLoop())
	})
}

func TestCoroutinePingPong(t *testing.T) {
	l := started(t)
	const rounds = 500
	type promise struct {
		f       *eventloop.Future[int]
		resolve func(int)
	}
	pings, pongs := make([]promise, rounds), make([]promise, rounds)
	for i := range rounds {
		pings[i].f, pings[i].resolve = newPromise[int](t)
		pongs[i].f, pongs[i].resolve = newPromise[int](t)
	}
	var trace []string // loop-owned: the two coroutines share it with no lock
	a, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		for i := range rounds {
			trace = append(trace, "a")
			pings[i].resolve(2 * i)
			v, err := eventloop.Await(ctx, pongs[i].f)
			if err != nil {
				return i, err
			}
			if v != 2*i+1 {
				return i, fmt.Errorf("round %d: a got %d", i, v)
			}
		}
		return rounds, nil
	})
	require.NoError(t, err)
	b, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		for i := range rounds {
			v, err := eventloop.Await(ctx, pings[i].f)
			if err != nil {
				return i, err
			}
			trace = append(trace, "b")
			pongs[i].resolve(v + 1)
		}
		return rounds, nil
	})
	require.NoError(t, err)
	for name, f := range map[string]*eventloop.Future[int]{"a": a, "b": b} {
		n, err := outcomeOf(t, f)
		assert.NoError(t, err, "coroutine %s", name)
		assert.Equal(t, rounds, n, "rounds played by coroutine %s", name)
	}
	want := make([]string, 0, 2*rounds)
	for range rounds {
		want = append(want, "a", "b")
	}
	assert.Equal(t, want, trace, "the coroutines take turns")
}

func TestSleep(t *testing.T) {
	t.Run("Sleep suspends the coroutine on the loop's timers while the loop runs other work", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			start := time.Now()
			var j journal
			a, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				j.add("a sleeps at %v", time.Since(start))
				err := eventloop.Sleep(ctx, 10*time.Millisecond)
				j.add("a wakes at %v", time.Since(start))
				return 0, err
			})
			require.NoError(t, err)
			_, err = eventloop.Submit(l, func(context.Context) (int, error) {
				j.add("b at %v", time.Since(start))
				return 0, nil
			})
			require.NoError(t, err)
			_, err = l.CallLater(5*time.Millisecond, func() { j.add("timer at %v", time.Since(start)) })
			require.NoError(t, err)
			_, err = outcomeOf(t, a)
			assert.NoError(t, err, "Sleep returns nil once d has passed")
			assert.Equal(t, []string{"a sleeps at 0s", "b at 0s", "timer at 5ms", "a wakes at 10ms"}, j.list())
		})
	})

	t.Run("Sleep(ctx, 0) yields to the work queued before it", func(t *testing.T) {
		for _, d := range []time.Duration{0, -time.Second} {
			l := idleLoop(t)
			var j journal
			a, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				j.add("a before")
				err := eventloop.Sleep(ctx, d)
				j.add("a after")
				return 0, err
			})
			require.NoError(t, err)
			require.NoError(t, l.CallSoon(func() { j.add("b") }))
			_, err = eventloop.Submit(l, func(context.Context) (int, error) { j.add("c"); return 0, nil })
			require.NoError(t, err)
			require.NoError(t, l.Start())
			_, err = outcomeOf(t, a)
			assert.NoError(t, err, "Sleep(ctx, %v)", d)
			assert.Equal(t, []string{"a before", "b", "c", "a after"}, j.list(), "Sleep(ctx, %v)", d)
		}
	})

	t.Run("a coroutine yielding with Sleep(ctx, 0) forever does not starve other work", func(t *testing.T) {
		l := started(t)
		spins := make(chan int64, 1)
		var n int64 // loop-owned
		spinner, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			for eventloop.Sleep(ctx, 0) == nil {
				n++
				if n == 100 {
					spins <- n
				}
			}
			return 0, ctx.Err()
		})
		require.NoError(t, err)
		receiveWithin(t, spins, "the spinner")
		// Queue two tasks in one step, from loop work: the spinner may take
		// its turn before them or after them, but not between them.
		pair := make(chan [2]*eventloop.Future[int64], 1)
		require.NoError(t, l.CallSoon(func() {
			first, err1 := eventloop.Submit(l, func(context.Context) (int64, error) { return n, nil })
			second, err2 := eventloop.Submit(l, func(context.Context) (int64, error) { return n, nil })
			if assert.NoError(t, err1) && assert.NoError(t, err2) {
				pair <- [2]*eventloop.Future[int64]{first, second}
			}
		}))
		p := receiveWithin(t, pair, "the tasks")
		at1, err := outcomeOf(t, p[0])
		require.NoError(t, err)
		at2, err := outcomeOf(t, p[1])
		require.NoError(t, err)
		assert.LessOrEqual(t, at2-at1, int64(1), "the spinner's turns between two tasks queued one after the other")
		assert.True(t, spinner.Cancel())
		_, err = outcomeOf(t, spinner)
		assert.ErrorIs(t, err, eventloop.ErrCancelled)
	})

	t.Run("Sleep with a ctx that has ended returns at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			cancelled, cancel := context.WithCancel(context.Background())
			cancel()
			start := time.Now()
			assert.ErrorIs(t, eventloop.Sleep(cancelled, time.Hour), context.Canceled, "Sleep on a plain goroutine")
			assert.Zero(t, time.Since(start), "Sleep on a plain goroutine returned at once")
			f, err := eventloop.Submit(l, func(ctx context.Context) (time.Duration, error) {
				dctx, cancel := context.WithCancel(ctx)
				cancel()
				start := time.Now()
				err := eventloop.Sleep(dctx, time.Hour)
				return time.Since(start), err
			})
			require.NoError(t, err)
			elapsed, err := outcomeOf(t, f)
			assert.ErrorIs(t, err, context.Canceled, "Sleep in a task with a cancelled ctx")
			assert.Zero(t, elapsed, "Sleep in a task returned at once")
		})
	})

	t.Run("Sleep with a derived ctx that expires returns DeadlineExceeded when it expires", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			f, err := eventloop.Submit(l, func(ctx context.Context) (time.Duration, error) {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
				defer cancel()
				start := time.Now()
				err := eventloop.Sleep(dctx, time.Hour)
				return time.Since(start), err
			})
			require.NoError(t, err)
			elapsed, err := outcomeOf(t, f)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, 5*time.Millisecond, elapsed)
		})
	})

	t.Run("Sleep on a plain goroutine, even with a task's ctx, blocks it like a timer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			start := time.Now()
			require.NoError(t, eventloop.Sleep(context.Background(), 10*time.Millisecond))
			assert.Equal(t, 10*time.Millisecond, time.Since(start), "Sleep on the test goroutine")
			var j journal
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				h := eventloop.Go(func(context.Context) (time.Duration, error) {
					start := time.Now()
					err := eventloop.Sleep(ctx, 20*time.Millisecond) // the task's ctx, on another goroutine
					j.add("helper slept %v, inLoop=%v", time.Since(start), l.InLoop())
					return 0, err
				})
				_, err := eventloop.Await(ctx, h)
				return 0, err
			})
			require.NoError(t, err)
			waitSuspended(t, l)
			time.Sleep(10 * time.Millisecond)
			require.NoError(t, l.CallSoon(func() { j.add("the loop runs meanwhile") }))
			_, err = outcomeOf(t, f)
			assert.NoError(t, err)
			assert.Equal(t, []string{"the loop runs meanwhile", "helper slept 20ms, inLoop=false"}, j.list())
		})
	})

	t.Run("Sleep with a nil ctx is an invalid argument", func(t *testing.T) {
		assert.NotPanics(t, func() {
			assert.ErrorIs(t, eventloop.Sleep(nil, time.Hour), eventloop.ErrInvalidArgument) // a nil ctx is the point
		})
	})

	t.Run("1000 coroutines sleeping at once all resume, each at its time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			const n = 1000
			start := time.Now()
			futures := make([]*eventloop.Future[time.Duration], n)
			for i := range n {
				var err error
				futures[i], err = eventloop.Submit(l, func(ctx context.Context) (time.Duration, error) {
					err := eventloop.Sleep(ctx, time.Duration(1+i%10)*time.Millisecond)
					return time.Since(start), err
				})
				require.NoError(t, err)
			}
			for i, f := range futures {
				woke, err := outcomeOf(t, f)
				require.NoError(t, err, "coroutine %d", i)
				require.Equal(t, time.Duration(1+i%10)*time.Millisecond, woke, "when coroutine %d woke", i)
			}
			assert.Equal(t, 10*time.Millisecond, time.Since(start), "they slept at the same time")
		})
	})
}

func TestCancelSuspendedCoroutine(t *testing.T) {
	type inside struct {
		err              error // what Await or Sleep returned
		cause            error // context.Cause(ctx) then
		elapsed          time.Duration
		doneWhileRunning bool
		sleepAfter       error // a Sleep after the cancellation
	}
	suspenders := map[string]func(ctx context.Context, p *eventloop.Future[int]) error{
		"Await": func(ctx context.Context, p *eventloop.Future[int]) error {
			_, err := eventloop.Await(ctx, p)
			return err
		},
		"Await with a derived ctx": func(ctx context.Context, p *eventloop.Future[int]) error {
			dctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			_, err := eventloop.Await(dctx, p)
			return err
		},
		"Sleep": func(ctx context.Context, _ *eventloop.Future[int]) error {
			return eventloop.Sleep(ctx, time.Hour)
		},
	}
	returns := map[string]error{"a value": nil, "an error": errWorkFailed}
	for name, suspend := range suspenders {
		for what, fnErr := range returns {
			t.Run(fmt.Sprintf("Cancel of a coroutine in %s returns at once; fn returns %s and the future ends with ErrCancelled", name, what), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					l := started(t)
					p, _ := newPromise[int](t)
					selfCh := make(chan *eventloop.Future[int], 1)
					seen := make(chan inside, 1)
					f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
						start := time.Now()
						err := suspend(ctx, p)
						in := inside{err: err, cause: context.Cause(ctx), elapsed: time.Since(start)}
						in.doneWhileRunning = isClosed((<-selfCh).Done())
						in.sleepAfter = eventloop.Sleep(ctx, time.Hour)
						seen <- in
						return 99, fnErr
					})
					require.NoError(t, err)
					selfCh <- f
					waitSuspended(t, l)
					time.Sleep(time.Minute)
					require.False(t, isClosed(f.Done()), "the coroutine is suspended")
					assert.True(t, f.Cancel(), "Cancel on a suspended coroutine")
					v, err := outcomeOf(t, f)
					assert.ErrorIs(t, err, eventloop.ErrCancelled, "the outcome, whatever fn returned")
					assert.Zero(t, v, "no value with ErrCancelled")
					assert.True(t, f.Cancelled())
					in := receiveWithin(t, seen, "the coroutine")
					assert.ErrorIs(t, in.err, context.Canceled, "what %s returned", name)
					assert.ErrorIs(t, in.cause, eventloop.ErrCancelled, "context.Cause(ctx)")
					assert.Equal(t, time.Minute, in.elapsed, "%s returned as soon as Cancel was called (virtual time)", name)
					assert.False(t, in.doneWhileRunning, "Done is not closed while fn still runs")
					assert.ErrorIs(t, in.sleepAfter, context.Canceled, "Sleep after Cancel returns at once")
					assert.False(t, isClosed(p.Done()), "the awaited future is not cancelled with the coroutine")
				})
			})
		}
	}
}

func TestPanicAfterResume(t *testing.T) {
	t.Run("a coroutine that panics after it resumed ends with a *PanicError and the loop goes on", func(t *testing.T) {
		l := started(t)
		p, resolve := newPromise[int](t)
		q, resolveQ := newPromise[int](t)
		panicking, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if _, err := eventloop.Await(ctx, p); err != nil {
				return 0, err
			}
			panic("after Await")
		})
		require.NoError(t, err)
		sleeper, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := eventloop.Sleep(ctx, time.Millisecond); err != nil {
				return 0, err
			}
			panic(errWorkFailed)
		})
		require.NoError(t, err)
		// bystander is suspended while the others panic; it must resume fine.
		bystander, err := eventloop.Submit(l, func(ctx context.Context) (bool, error) {
			_, err := eventloop.Await(ctx, q)
			return l.InLoop(), err
		})
		require.NoError(t, err)
		waitSuspended(t, l)
		resolve(1)
		_, err = outcomeOf(t, panicking)
		requirePanicError(t, err, "after Await")
		_, err = outcomeOf(t, sleeper)
		requirePanicError(t, err, errWorkFailed)
		assert.ErrorIs(t, err, errWorkFailed, "a panic with an error value unwraps to it")

		assert.Equal(t, eventloop.StateRunning, l.State())
		after, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := eventloop.Sleep(ctx, 0); err != nil {
				return 0, err
			}
			return 3, nil
		})
		require.NoError(t, err)
		v, err := outcomeOf(t, after)
		assert.NoError(t, err, "a coroutine after the panics")
		assert.Equal(t, 3, v)
		resolveQ(1)
		inLoop, err := outcomeOf(t, bystander)
		assert.NoError(t, err, "a coroutine suspended across the panics")
		assert.True(t, inLoop, "it resumed on the loop")
	})
}

// TestWaitingInSynctestBubbles runs, in a child process (a failure there is
// a fatal error of the runtime, which would take every test down with it),
// a few synctest bubbles that each wait with Result and Wait on a pending
// future, then a plain test that does the same.
func TestWaitingInSynctestBubbles(t *testing.T) {
	if os.Getenv("EVENTLOOP_TEST_BUBBLES_CHILD") == "1" {
		waitInBubbles(t)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	// Result and Wait on pending futures in synctest bubbles, then outside.
	runChild(t, "TestWaitingInSynctestBubbles", "EVENTLOOP_TEST_BUBBLES_CHILD=1")
}

func waitInBubbles(t *testing.T) {
	wait := func(t *testing.T, l *eventloop.Loop) {
		for range 5 {
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				return 1, eventloop.Sleep(ctx, time.Millisecond)
			})
			require.NoError(t, err)
			v, err := f.Result(time.Second)
			require.NoError(t, err)
			require.Equal(t, 1, v)
			g, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				return 2, eventloop.Sleep(ctx, time.Millisecond)
			})
			require.NoError(t, err)
			v, err = g.Wait(context.Background())
			require.NoError(t, err)
			require.Equal(t, 2, v)
		}
	}
	for range 10 {
		synctest.Test(t, func(t *testing.T) { wait(t, started(t)) })
	}
	wait(t, started(t))
}
