package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Helpers of callback_test.go and coroutine_test.go.
//
// In a synctest bubble these helpers wait on channels only (a future's Done,
// then Result(0)), never with Result(timeout) or Wait on a pending future:
// see TestWaitingInSynctestBubbles for why.

// failAfter bounds waits that should end at once. It only matters when a
// test fails; in a synctest bubble it is virtual time and costs nothing.
const failAfter = 10 * time.Second

// idleLoop returns a loop that has not started and is closed when the test
// ends.
func idleLoop(t *testing.T, opts ...eventloop.Option) *eventloop.Loop {
	t.Helper()
	l := eventloop.New(opts...)
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

// waitClosed waits until ch is closed, failing the test after failAfter.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failAfter):
		require.FailNow(t, "timed out waiting: "+what)
	}
}

// receiveWithin waits for a value on ch, failing the test after failAfter.
func receiveWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(failAfter):
		require.FailNow(t, "timed out waiting: "+what)
		panic("unreachable")
	}
}

// outcomeOf waits for f to end, failing the test after failAfter, and
// returns its outcome.
func outcomeOf[T any](t *testing.T, f *eventloop.Future[T]) (T, error) {
	t.Helper()
	require.NotNil(t, f, "a future to wait for")
	waitClosed(t, f.Done(), "a future to end")
	return f.Result(0)
}

// isClosed reports whether ch is closed already.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// journal records what happened, in order. It is safe for concurrent use, so
// that the test goroutine may read it while the loop writes it.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// errorSink is an error handler that hands the test every error it gets,
// except reports of failed futures nobody read: those come from the
// runtime's cleanup goroutine whenever the garbage collector runs, maybe
// for futures of another test.
type errorSink chan error

func newErrorSink() errorSink { return make(errorSink, 64) }

func (s errorSink) handler(err error) {
	if _, unread := err.(*eventloop.UnobservedError); !unread {
		s <- err
	}
}

// next waits for the next error, failing the test after failAfter.
func (s errorSink) next(t *testing.T) error {
	t.Helper()
	return receiveWithin(t, (<-chan error)(s), "an error at the error handler")
}

// requirePanicError asserts that err is a *PanicError with value v and
// returns it.
func requirePanicError(t *testing.T, err error, v any) *eventloop.PanicError {
	t.Helper()
	var pe *eventloop.PanicError
	require.True(t, errors.As(err, &pe), "want a *PanicError, got %v", err)
	assert.Equal(t, v, pe.Value, "the panic value")
	assert.NotEmpty(t, pe.Stack, "the stack of the panic")
	return pe
}

// upTo returns 0, 1, …, n-1.
func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// errWorkFailed is what failing work returns.
var errWorkFailed = errors.New("work failed")

func TestCallSoon(t *testing.T) {
	t.Run("callbacks from one goroutine run in the order queued", func(t *testing.T) {
		l := started(t)
		const n = 1000
		var got []int // loop-owned: no lock
		done := make(chan struct{})
		for i := range n {
			require.NoError(t, l.CallSoon(func() { got = append(got, i) }))
		}
		require.NoError(t, l.CallSoon(func() { close(done) }))
		waitClosed(t, done, "the last callback")
		assert.Equal(t, upTo(n), got, "callbacks run in the order CallSoon was called")
	})

	t.Run("callbacks queued before the loop runs run in order once it runs", func(t *testing.T) {
		l := idleLoop(t)
		var got []int
		done := make(chan struct{})
		for i := range 100 {
			require.NoError(t, l.CallSoon(func() { got = append(got, i) }))
		}
		require.NoError(t, l.CallSoon(func() { close(done) }))
		assert.False(t, isClosed(done), "nothing runs before the loop runs")
		require.NoError(t, l.Start())
		waitClosed(t, done, "the last callback")
		assert.Equal(t, upTo(100), got, "callbacks run in the order queued")
	})

	t.Run("each goroutine's callbacks run in its order when many goroutines queue at once", func(t *testing.T) {
		l := started(t)
		const producers, n = 4, 500
		got := make([][]int, producers) // loop-owned
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for i := range n {
					assert.NoError(t, l.CallSoon(func() { got[p] = append(got[p], i) }))
				}
			})
		}
		wg.Wait()
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(done) }))
		waitClosed(t, done, "the last callback")
		for p := range producers {
			assert.Equal(t, upTo(n), got[p], "the callbacks of producer %d, in its order", p)
		}
	})

	t.Run("CallSoon and Submit share one queue in order", func(t *testing.T) {
		l := started(t)
		const n = 200
		var got []int // loop-owned
		var last *eventloop.Future[int]
		for i := range n {
			if i%2 == 0 {
				require.NoError(t, l.CallSoon(func() { got = append(got, i) }))
				continue
			}
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				got = append(got, i)
				return i, nil
			})
			require.NoError(t, err)
			last = f
		}
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(done) }))
		waitClosed(t, done, "the last callback")
		assert.Equal(t, upTo(n), got, "tasks and callbacks start in the order submitted")
		v, err := outcomeOf(t, last)
		assert.NoError(t, err)
		assert.Equal(t, n-1, v)
	})

	t.Run("CallSoon from loop work queues behind the work already queued", func(t *testing.T) {
		l := idleLoop(t)
		var j journal
		errs := make(chan error, 2)
		require.NoError(t, l.CallSoon(func() {
			j.add("callback a")
			errs <- l.CallSoon(func() { j.add("queued by callback a") })
		}))
		_, err := eventloop.Submit(l, func(context.Context) (int, error) {
			j.add("task t")
			errs <- l.CallSoon(func() { j.add("queued by task t") })
			return 0, nil
		})
		require.NoError(t, err)
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { j.add("callback x") }))
		require.NoError(t, l.Start())
		assert.NoError(t, receiveWithin(t, errs, "CallSoon in a callback"), "CallSoon from a callback is accepted")
		assert.NoError(t, receiveWithin(t, errs, "CallSoon in a task"), "CallSoon from a task is accepted")
		require.NoError(t, l.CallSoon(func() { close(done) }))
		waitClosed(t, done, "the last callback")
		assert.Equal(t, []string{
			"callback a", "task t", "callback x",
			"queued by callback a", "queued by task t",
		}, j.list(), "work queued from loop work runs after the work queued before it")
	})
}

func TestCallLater(t *testing.T) {
	t.Run("timers fire in deadline order, each at its deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			start := time.Now()
			var got []time.Duration // loop-owned: when each fired, in firing order
			done := make(chan struct{})
			for _, d := range []time.Duration{30, 10, 20, 50, 40} {
				_, err := l.CallLater(d*time.Millisecond, func() { got = append(got, time.Since(start)) })
				require.NoError(t, err)
			}
			_, err := l.CallLater(60*time.Millisecond, func() { close(done) })
			require.NoError(t, err)
			waitClosed(t, done, "the last timer")
			assert.Equal(t, []time.Duration{
				10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond,
				40 * time.Millisecond, 50 * time.Millisecond,
			}, got, "timers fire in deadline order, at their deadlines (virtual time)")
		})
	})

	t.Run("timers with the same deadline fire in the order created", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			var got []int // loop-owned
			for i := range 100 {
				_, err := l.CallLater(10*time.Millisecond, func() { got = append(got, i) })
				require.NoError(t, err)
			}
			done := make(chan struct{})
			_, err := l.CallLater(10*time.Millisecond, func() { close(done) })
			require.NoError(t, err)
			waitClosed(t, done, "the last timer")
			assert.Equal(t, upTo(100), got, "ties fire in the order created")
		})
	})

	t.Run("timers created at different times for the same deadline fire in the order created", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			var j journal
			_, err := l.CallLater(20*time.Millisecond, func() { j.add("made first, for 20ms") })
			require.NoError(t, err)
			time.Sleep(10 * time.Millisecond)
			done := make(chan struct{})
			_, err = l.CallLater(10*time.Millisecond, func() { j.add("made second, for 10ms later"); close(done) })
			require.NoError(t, err)
			waitClosed(t, done, "the second timer")
			assert.Equal(t, []string{"made first, for 20ms", "made second, for 10ms later"}, j.list())
		})
	})

	t.Run("a timer with d <= 0 is due at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			start := time.Now()
			var j journal
			_, err := l.CallLater(time.Millisecond, func() { j.add("1ms at %v", time.Since(start)) })
			require.NoError(t, err)
			zero := make(chan struct{})
			negative := make(chan struct{})
			_, err = l.CallLater(0, func() { j.add("0 at %v", time.Since(start)); close(zero) })
			require.NoError(t, err)
			_, err = l.CallLater(-time.Hour, func() { j.add("-1h at %v", time.Since(start)); close(negative) })
			require.NoError(t, err)
			waitClosed(t, zero, "the timer for 0")
			waitClosed(t, negative, "the timer for -1h")
			got := j.list()
			assert.ElementsMatch(t, []string{"0 at 0s", "-1h at 0s"}, got,
				"timers with d <= 0 fire with no time passing, before a timer for 1ms")
		})
	})

	t.Run("a timer made before the loop runs fires once it runs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := idleLoop(t)
			start := time.Now()
			fired := make(chan time.Duration, 1)
			_, err := l.CallLater(10*time.Millisecond, func() { fired <- time.Since(start) })
			require.NoError(t, err)
			time.Sleep(time.Hour)
			synctest.Wait()
			assert.Empty(t, fired, "a timer does not fire before its loop runs")
			require.NoError(t, l.Start())
			assert.Equal(t, time.Hour, receiveWithin(t, fired, "the timer"), "an overdue timer fires as soon as the loop runs")
		})
	})

	t.Run("a timer's fn runs on the loop, one piece of work at a time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			inLoop := make(chan bool, 1)
			_, err := l.CallLater(5*time.Millisecond, func() { inLoop <- l.InLoop() })
			require.NoError(t, err)
			assert.True(t, receiveWithin(t, inLoop, "the timer"), "InLoop in a timer's fn")
		})
	})
}

func TestTimerStop(t *testing.T) {
	t.Run("Stop before the timer fires returns true and fn never runs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			ran := false // loop-owned
			tm, err := l.CallLater(10*time.Millisecond, func() { ran = true })
			require.NoError(t, err)
			require.NotNil(t, tm)
			assert.True(t, tm.Stop(), "Stop on a pending timer")
			done := make(chan struct{})
			_, err = l.CallLater(20*time.Millisecond, func() { close(done) })
			require.NoError(t, err)
			waitClosed(t, done, "a later timer")
			assert.False(t, ran, "a stopped timer's fn never runs")
			assert.False(t, tm.Stop(), "Stop on a stopped timer")
		})
	})

	t.Run("Stop after the timer fired returns false", func(t *testing.T) {
		l := started(t)
		var runs atomic.Int32
		fired := make(chan struct{})
		tm, err := l.CallLater(0, func() { runs.Add(1); close(fired) })
		require.NoError(t, err)
		waitClosed(t, fired, "the timer")
		assert.False(t, tm.Stop(), "Stop on a timer that fired")
		assert.Equal(t, int32(1), runs.Load(), "a timer fires once")
	})

	t.Run("Stop twice returns false the second time", func(t *testing.T) {
		l := started(t)
		tm, err := l.CallLater(time.Hour, func() {})
		require.NoError(t, err)
		assert.True(t, tm.Stop(), "the first Stop")
		assert.False(t, tm.Stop(), "the second Stop")
	})

	t.Run("Stop on a nil or zero Timer returns false", func(t *testing.T) {
		var nilTimer *eventloop.Timer
		assert.NotPanics(t, func() { assert.False(t, nilTimer.Stop(), "Stop on a nil *Timer") })
		assert.NotPanics(t, func() { assert.False(t, new(eventloop.Timer).Stop(), "Stop on a zero Timer") })
	})

	t.Run("Stop on a due timer waiting in the queue returns true and fn never runs", func(t *testing.T) {
		l := idleLoop(t)
		running := make(chan struct{})
		release := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(running); <-release }))
		ran := false // loop-owned
		tm, err := l.CallLater(0, func() { ran = true })
		require.NoError(t, err)
		require.NoError(t, l.Start())
		waitClosed(t, running, "the blocking callback") // the timer is due, queued behind it
		assert.True(t, tm.Stop(), "Stop on a due timer that has not run")
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(done) }))
		close(release)
		waitClosed(t, done, "a later callback")
		assert.False(t, ran, "a stopped timer's fn never runs")
	})

	t.Run("Stop racing the timer: either Stop returns true or fn runs, never both, never neither", func(t *testing.T) {
		l := started(t)
		for i := range 500 {
			var runs atomic.Int32
			tm, err := l.CallLater(time.Duration(i%3)*time.Microsecond, func() { runs.Add(1) })
			require.NoError(t, err)
			stopped := tm.Stop()
			// A timer made later with no earlier deadline fires after it.
			flushed := make(chan struct{})
			_, err = l.CallLater(time.Duration(i%3)*time.Microsecond, func() { close(flushed) })
			require.NoError(t, err)
			waitClosed(t, flushed, "a later timer")
			if stopped {
				require.Equal(t, int32(0), runs.Load(), "round %d: Stop returned true but fn ran", i)
			} else {
				require.Equal(t, int32(1), runs.Load(), "round %d: Stop returned false but fn did not run once", i)
			}
		}
	})
}

func TestNoStarvation(t *testing.T) {
	// maxSpins bounds how often self-requeuing work may run between the moment
	// other work is queued and the moment it runs. With one FIFO queue it is 1
	// or 2; the margin is for no implementation in particular.
	const maxSpins = 5

	// spinner starts work that queues itself again forever, until the loop
	// closes, and returns its run count once it has run a few times.
	spinner := func(t *testing.T, l *eventloop.Loop, requeue func(again func()) error) *atomic.Int64 {
		var spins atomic.Int64
		var again func()
		again = func() {
			spins.Add(1)
			_ = requeue(again) // fails once the loop closes: that ends it
		}
		require.NoError(t, requeue(again))
		for spins.Load() < 100 {
			spinning := make(chan struct{})
			require.NoError(t, l.CallSoon(func() { close(spinning) }))
			waitClosed(t, spinning, "the spinner to run")
		}
		return &spins
	}

	requeuers := map[string]func(l *eventloop.Loop) func(again func()) error{
		"a callback that calls CallSoon on itself": func(l *eventloop.Loop) func(func()) error {
			return l.CallSoon
		},
		"a task that submits itself": func(l *eventloop.Loop) func(func()) error {
			return func(again func()) error {
				_, err := eventloop.Submit(l, func(context.Context) (int, error) { again(); return 0, nil })
				return err
			}
		},
		"a timer that calls CallLater(0) on itself": func(l *eventloop.Loop) func(func()) error {
			return func(again func()) error {
				_, err := l.CallLater(0, again)
				return err
			}
		},
	}
	for name, requeuer := range requeuers {
		t.Run(name+" does not starve tasks, callbacks or timers", func(t *testing.T) {
			l := started(t)
			spins := spinner(t, l, requeuer(l))

			f, err := eventloop.Submit(l, func(context.Context) (int64, error) { return spins.Load(), nil })
			require.NoError(t, err)
			before := spins.Load()
			at, err := outcomeOf(t, f)
			require.NoError(t, err)
			assert.LessOrEqual(t, at-before, int64(maxSpins), "spins between Submit and the task's start")

			called := make(chan int64, 1)
			require.NoError(t, l.CallSoon(func() { called <- spins.Load() }))
			before = spins.Load()
			at = receiveWithin(t, called, "the callback")
			assert.LessOrEqual(t, at-before, int64(maxSpins), "spins between CallSoon and the callback")

			due := make(chan int64, 1)
			_, err = l.CallLater(0, func() { due <- spins.Load() })
			require.NoError(t, err)
			before = spins.Load()
			at = receiveWithin(t, due, "the timer due at once")
			assert.LessOrEqual(t, at-before, int64(maxSpins), "spins between CallLater(0) and the timer")

			later := make(chan struct{})
			_, err = l.CallLater(time.Millisecond, func() { close(later) })
			require.NoError(t, err)
			waitClosed(t, later, "a timer for 1ms while the spinner spins")
		})
	}
}

func TestCallbackPanics(t *testing.T) {
	t.Run("a panic in a CallSoon callback goes to the error handler and the loop goes on", func(t *testing.T) {
		sink := newErrorSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		require.NoError(t, l.CallSoon(func() { panic("boom in CallSoon") }))
		requirePanicError(t, sink.next(t), "boom in CallSoon")
		loopGoesOn(t, l)
		assert.Empty(t, sink, "one panic, one report")
	})

	t.Run("a panic in a CallLater callback goes to the error handler and the loop goes on", func(t *testing.T) {
		sink := newErrorSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		_, err := l.CallLater(time.Millisecond, func() { panic("boom in CallLater") })
		require.NoError(t, err)
		requirePanicError(t, sink.next(t), "boom in CallLater")
		loopGoesOn(t, l)
		assert.Empty(t, sink, "one panic, one report")
	})

	t.Run("a panic with an error value is seen through by errors.Is", func(t *testing.T) {
		sink := newErrorSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		require.NoError(t, l.CallSoon(func() { panic(errWorkFailed) }))
		err := sink.next(t)
		requirePanicError(t, err, errWorkFailed)
		assert.ErrorIs(t, err, errWorkFailed, "PanicError unwraps an error value")
		loopGoesOn(t, l)
	})

	t.Run("a panic in a done callback goes to the error handler and the other callbacks still run", func(t *testing.T) {
		sink := newErrorSink()
		l := idleLoop(t, eventloop.WithErrorHandler(sink.handler))
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
		var j journal
		f.AddDoneCallback(func(*eventloop.Future[int]) { j.add("first") })
		f.AddDoneCallback(func(*eventloop.Future[int]) { panic("boom in a done callback") })
		f.AddDoneCallback(func(*eventloop.Future[int]) { j.add("third, inLoop=%v", l.InLoop()) })
		require.NoError(t, l.Start())
		requirePanicError(t, sink.next(t), "boom in a done callback")
		v, err := outcomeOf(t, f)
		assert.NoError(t, err, "a done callback's panic does not change the outcome")
		assert.Equal(t, 1, v)
		loopGoesOn(t, l) // also orders the callbacks before the check below
		assert.Equal(t, []string{"first", "third, inLoop=true"}, j.list(), "the callbacks after the panicking one run")
	})

	t.Run("a panic in a done callback run at once by AddDoneCallback goes to the error handler", func(t *testing.T) {
		sink := newErrorSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
		_, err = outcomeOf(t, f)
		require.NoError(t, err)
		ranAtOnce := false
		assert.NotPanics(t, func() {
			f.AddDoneCallback(func(*eventloop.Future[int]) { ranAtOnce = true; panic("boom at once") })
		})
		assert.True(t, ranAtOnce, "a callback added to an ended future runs before AddDoneCallback returns")
		requirePanicError(t, sink.next(t), "boom at once")
		loopGoesOn(t, l)
	})

	t.Run("a panicking error handler does not kill the loop", func(t *testing.T) {
		var calls atomic.Int32
		handled := make(chan struct{}, 2)
		l := started(t, eventloop.WithErrorHandler(func(err error) {
			if _, unread := err.(*eventloop.UnobservedError); unread {
				return // from the garbage collector, maybe another test's
			}
			calls.Add(1)
			handled <- struct{}{}
			panic("the error handler panicked")
		}))
		require.NoError(t, l.CallSoon(func() { panic("first") }))
		receiveWithin(t, handled, "the error handler")
		_, err := l.CallLater(0, func() { panic("second") })
		require.NoError(t, err)
		receiveWithin(t, handled, "the error handler, again")
		loopGoesOn(t, l)
		assert.Equal(t, int32(2), calls.Load(), "the handler is still called after it panicked")
	})
}

func TestCallbacksRejected(t *testing.T) {
	t.Run("after Stop CallSoon and CallLater return ErrLoopStopped", func(t *testing.T) {
		l := started(t)
		l.Stop()
		ran := make(chan struct{}, 2)
		assert.ErrorIs(t, l.CallSoon(func() { ran <- struct{}{} }), eventloop.ErrLoopStopped, "CallSoon while stopping")
		tm, err := l.CallLater(0, func() { ran <- struct{}{} })
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped, "CallLater while stopping")
		assert.Nil(t, tm, "the timer of a rejected CallLater")
		waitClosed(t, l.Done(), "the loop to stop")
		require.Equal(t, eventloop.StateStopped, l.State())
		assert.ErrorIs(t, l.CallSoon(func() { ran <- struct{}{} }), eventloop.ErrLoopStopped, "CallSoon once stopped")
		tm, err = l.CallLater(0, func() { ran <- struct{}{} })
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped, "CallLater once stopped")
		assert.Nil(t, tm, "the timer of a rejected CallLater")
		assert.Empty(t, ran, "rejected callbacks never run")
	})

	t.Run("after Close CallSoon and CallLater return ErrLoopClosed", func(t *testing.T) {
		l := started(t)
		require.NoError(t, l.Close())
		ran := make(chan struct{}, 2)
		assert.ErrorIs(t, l.CallSoon(func() { ran <- struct{}{} }), eventloop.ErrLoopClosed, "CallSoon once closed")
		tm, err := l.CallLater(0, func() { ran <- struct{}{} })
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "CallLater once closed")
		assert.Nil(t, tm, "the timer of a rejected CallLater")
		assert.Empty(t, ran, "rejected callbacks never run")
	})

	t.Run("a loop that never ran rejects callbacks after Stop and after Close", func(t *testing.T) {
		l := idleLoop(t)
		l.Stop()
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopStopped)
		_, err := l.CallLater(0, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		require.NoError(t, l.Close())
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopClosed)
		_, err = l.CallLater(0, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	})

	t.Run("a callback that stops the loop cannot queue more, but what was queued before runs", func(t *testing.T) {
		l := idleLoop(t)
		var j journal
		errs := make(chan error, 2)
		require.NoError(t, l.CallSoon(func() {
			l.Stop()
			errs <- l.CallSoon(func() { j.add("queued after Stop") })
			_, err := l.CallLater(0, func() { j.add("timer made after Stop") })
			errs <- err
		}))
		require.NoError(t, l.CallSoon(func() { j.add("queued before Stop") }))
		require.NoError(t, l.Start())
		waitClosed(t, l.Done(), "the loop to stop")
		assert.ErrorIs(t, <-errs, eventloop.ErrLoopStopped, "CallSoon after Stop from loop work")
		assert.ErrorIs(t, <-errs, eventloop.ErrLoopStopped, "CallLater after Stop from loop work")
		assert.Equal(t, []string{"queued before Stop"}, j.list())
	})
}

func TestTimersDropped(t *testing.T) {
	t.Run("at Stop, timers that have not fired are dropped and the loop does not wait for them", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			start := time.Now()
			var ran atomic.Bool
			tm, err := l.CallLater(time.Hour, func() { ran.Store(true) })
			require.NoError(t, err)
			fired := make(chan struct{})
			_, err = l.CallLater(0, func() { close(fired) })
			require.NoError(t, err)
			waitClosed(t, fired, "a timer due at once") // the loop has seen both timers
			l.Stop()
			waitClosed(t, l.Done(), "the loop to stop")
			assert.Less(t, time.Since(start), time.Hour, "Stop does not wait for a pending timer")
			assert.Equal(t, eventloop.StateStopped, l.State())
			time.Sleep(2 * time.Hour)
			assert.False(t, ran.Load(), "a dropped timer never runs")
			assert.False(t, tm.Stop(), "Stop on a dropped timer")
		})
	})

	t.Run("at Close, timers that have not fired are dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			var ran atomic.Bool
			tm, err := l.CallLater(time.Millisecond, func() { ran.Store(true) })
			require.NoError(t, err)
			require.NoError(t, l.Close())
			time.Sleep(time.Hour)
			assert.False(t, ran.Load(), "a dropped timer never runs")
			assert.False(t, tm.Stop(), "Stop on a dropped timer")
		})
	})

	t.Run("at Close of a loop that never ran, its timers are dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := idleLoop(t)
			var ran atomic.Bool
			tm, err := l.CallLater(0, func() { ran.Store(true) })
			require.NoError(t, err)
			require.NoError(t, l.Close())
			assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrLoopClosed)
			time.Sleep(time.Hour)
			assert.False(t, ran.Load(), "a dropped timer never runs")
			assert.False(t, tm.Stop(), "Stop on a dropped timer")
		})
	})
}

func TestQueueCapacity(t *testing.T) {
	t.Run("a full queue refuses Submit, CallSoon and CallLater until the loop drains it", func(t *testing.T) {
		l := idleLoop(t, eventloop.WithQueueCapacity(3))
		var accepted, rejected atomic.Int32
		f1, err := eventloop.Submit(l, func(context.Context) (int, error) { accepted.Add(1); return 1, nil })
		require.NoError(t, err)
		require.NoError(t, l.CallSoon(func() { accepted.Add(1) }))
		f3, err := eventloop.Submit(l, func(context.Context) (int, error) { accepted.Add(1); return 3, nil })
		require.NoError(t, err)
		require.Equal(t, eventloop.StateNew, l.State())

		f, err := eventloop.Submit(l, func(context.Context) (int, error) { rejected.Add(1); return 0, nil })
		assert.ErrorIs(t, err, eventloop.ErrQueueFull, "Submit on a full queue")
		assert.Nil(t, f, "the future of a refused Submit")
		assert.ErrorIs(t, l.CallSoon(func() { rejected.Add(1) }), eventloop.ErrQueueFull, "CallSoon on a full queue")
		tm, err := l.CallLater(0, func() { rejected.Add(1) })
		assert.ErrorIs(t, err, eventloop.ErrQueueFull, "CallLater on a full queue")
		assert.Nil(t, tm, "the timer of a refused CallLater")

		require.NoError(t, l.Start())
		v, err := outcomeOf(t, f1)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
		v, err = outcomeOf(t, f3)
		assert.NoError(t, err)
		assert.Equal(t, 3, v)
		done := make(chan struct{})
		assert.NoError(t, l.CallSoon(func() { close(done) }), "CallSoon once the queue has drained")
		waitClosed(t, done, "a callback once the queue has drained")
		assert.Equal(t, int32(3), accepted.Load(), "everything accepted ran")
		assert.Equal(t, int32(0), rejected.Load(), "nothing refused ran")
	})

	t.Run("nothing accepted is dropped when many goroutines fill the queue", func(t *testing.T) {
		l := started(t, eventloop.WithQueueCapacity(8))
		release := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { <-release })) // hold the loop so the queue fills
		var accepted, full, ran atomic.Int64
		const producers, attempts = 4, 2000
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for i := range attempts {
					var err error
					switch (p + i) % 3 {
					case 0:
						err = l.CallSoon(func() { ran.Add(1) })
					case 1:
						_, err = eventloop.Submit(l, func(context.Context) (int, error) { ran.Add(1); return 0, nil })
					case 2:
						_, err = l.CallLater(0, func() { ran.Add(1) })
					}
					switch {
					case err == nil:
						accepted.Add(1)
					case errors.Is(err, eventloop.ErrQueueFull):
						full.Add(1)
					default:
						assert.NoError(t, err, "the only refusal is ErrQueueFull")
					}
					if p == 0 && i == attempts/4 {
						close(release)
					}
				}
			})
		}
		wg.Wait()
		assert.Positive(t, full.Load(), "some submissions met a full queue")
		// Flush: a callback after every accepted callback and task, and a
		// timer after every accepted timer.
		flushed := make(chan struct{})
		for err := l.CallSoon(func() { close(flushed) }); err != nil; err = l.CallSoon(func() { close(flushed) }) {
			require.ErrorIs(t, err, eventloop.ErrQueueFull)
			runtime.Gosched() // full: let the loop drain
		}
		waitClosed(t, flushed, "the flushing callback")
		timersFlushed := make(chan struct{})
		for {
			_, err := l.CallLater(0, func() { close(timersFlushed) })
			if err == nil {
				break
			}
			require.ErrorIs(t, err, eventloop.ErrQueueFull)
			runtime.Gosched()
		}
		waitClosed(t, timersFlushed, "the flushing timer")
		assert.Equal(t, accepted.Load(), ran.Load(), "every accepted piece of work ran, once")
		assert.Equal(t, int64(producers*attempts), accepted.Load()+full.Load())
	})
}

func TestCallbackBadInput(t *testing.T) {
	t.Run("a nil fn is an invalid argument", func(t *testing.T) {
		sink := newErrorSink()
		for _, l := range []*eventloop.Loop{
			idleLoop(t, eventloop.WithErrorHandler(sink.handler)),
			started(t, eventloop.WithErrorHandler(sink.handler)),
		} {
			assert.NotPanics(t, func() {
				assert.ErrorIs(t, l.CallSoon(nil), eventloop.ErrInvalidArgument, "CallSoon(nil) in state %v", l.State())
				tm, err := l.CallLater(time.Millisecond, nil)
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument, "CallLater(d, nil) in state %v", l.State())
				assert.Nil(t, tm, "the timer of CallLater(d, nil)")
				tm, err = l.CallLater(0, nil)
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument, "CallLater(0, nil) in state %v", l.State())
				assert.Nil(t, tm, "the timer of CallLater(0, nil)")
			})
			if l.State() == eventloop.StateNew {
				require.NoError(t, l.Start())
			}
			done := make(chan struct{})
			_, err := l.CallLater(time.Millisecond, func() { close(done) })
			require.NoError(t, err)
			waitClosed(t, done, "a timer after the nil ones")
		}
		assert.Empty(t, sink, "nothing nil was queued to panic on the loop")
	})

	for name, l := range map[string]*eventloop.Loop{"a nil *Loop": nil, "a zero Loop": new(eventloop.Loop)} {
		t.Run(name+" returns ErrInvalidArgument and does not panic", func(t *testing.T) {
			ran := false
			fn := func() { ran = true }
			assert.NotPanics(t, func() {
				assert.ErrorIs(t, l.CallSoon(fn), eventloop.ErrInvalidArgument, "CallSoon")
				assert.ErrorIs(t, l.CallSoon(nil), eventloop.ErrInvalidArgument, "CallSoon(nil)")
				tm, err := l.CallLater(time.Millisecond, fn)
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument, "CallLater")
				assert.Nil(t, tm, "the timer of CallLater")
				assert.False(t, tm.Stop(), "Stop on that nil timer")
				f, err := eventloop.Submit(l, func(context.Context) (int, error) { ran = true; return 0, nil })
				assert.ErrorIs(t, err, eventloop.ErrInvalidArgument, "Submit")
				assert.Nil(t, f, "the future of Submit")
				assert.ErrorIs(t, l.Run(context.Background()), eventloop.ErrInvalidArgument, "Run")
				assert.ErrorIs(t, l.Start(), eventloop.ErrInvalidArgument, "Start")
				l.Stop()
				assert.ErrorIs(t, l.Close(), eventloop.ErrInvalidArgument, "Close")
				assert.ErrorIs(t, l.Shutdown(context.Background()), eventloop.ErrInvalidArgument, "Shutdown")
				assert.True(t, isClosed(l.Done()), "Done is closed: there is nothing to wait for")
				assert.Equal(t, eventloop.StateClosed, l.State(), "State (the godoc: it accepts nothing)")
				assert.False(t, l.InLoop(), "InLoop")
			})
			assert.False(t, ran, "nothing ran")
		})
	}
}
