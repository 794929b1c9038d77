package eventloop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of issue 5, "Diagnostics": Loop.Stats, UnobservedError, the error
// handler's own panics, WithSlowTaskThreshold and WithDebug.

// ---------------------------------------------------------------------------
// Helpers (all prefixed diag).

// diagSink is an error handler that records every error it gets and hands
// it to the test on ch, without ever blocking: it may be called on the
// runtime's cleanup goroutine, which must not be held up.
type diagSink struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newDiagSink() *diagSink { return &diagSink{ch: make(chan error, 1024)} }

func (s *diagSink) handler(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	select {
	case s.ch <- err:
	default:
	}
}

// list returns every error reported so far.
func (s *diagSink) list() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// diagOfType returns the errors of errs that are (wrap) an E.
func diagOfType[E error](errs []error) []E {
	var out []E
	for _, err := range errs {
		var e E
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	return out
}

// diagNext waits for the next report of s and requires it to be an E.
func diagNext[E error](t *testing.T, s *diagSink) E {
	t.Helper()
	err := recv(t, s.ch)
	var e E
	require.True(t, errors.As(err, &e), "want a %T, got %T: %v", e, err, err)
	return e
}

// diagNextLine returns "file:line" of the line after the caller's: call it
// on the line just above the call whose site a report should name.
func diagNextLine() string {
	_, file, line, _ := runtime.Caller(1)
	return fmt.Sprintf("%s:%d", file, line+1)
}

// diagCounts is s with MaxQueueWait zeroed, to compare the counts and
// gauges with an expected Stats.
func diagCounts(s eventloop.Stats) eventloop.Stats {
	s.MaxQueueWait = 0
	return s
}

// diagSettle runs a callback on l and waits for it: every piece of work
// queued before it has then been taken off the queue. It adds one to
// Submitted.
func diagSettle(t *testing.T, l *eventloop.Loop) {
	t.Helper()
	done := make(chan struct{})
	require.NoError(t, l.CallSoon(func() { close(done) }))
	require.True(t, closedWithin(done), "the settling callback ran")
}

// diagEventually polls cond every millisecond until it holds or long passes.
func diagEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out waiting: "+what)
		}
		time.Sleep(time.Millisecond)
	}
}

// diagCollect runs the garbage collector until s has received an
// *UnobservedError that match accepts, and returns it; it fails the test
// after long. The cleanups of collected futures run on the runtime's
// cleanup goroutine, so it waits a little after each collection.
func diagCollect(t *testing.T, s *diagSink, match func(*eventloop.UnobservedError) bool) *eventloop.UnobservedError {
	t.Helper()
	return diagCollectWithin(t, long, s, match)
}

// diagCollectWithin is diagCollect, failing after within.
func diagCollectWithin(t *testing.T, within time.Duration, s *diagSink, match func(*eventloop.UnobservedError) bool) *eventloop.UnobservedError {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		runtime.GC()
		timeout := time.After(10 * time.Millisecond)
	drain:
		for {
			select {
			case err := <-s.ch:
				var u *eventloop.UnobservedError
				if errors.As(err, &u) && match(u) {
					return u
				}
			case <-timeout:
				break drain
			}
		}
	}
	require.FailNow(t, "no matching *UnobservedError was reported after collecting garbage for "+within.String())
	return nil
}

// diagGCQuiet collects garbage a few times and lets pending cleanups run.
func diagGCQuiet() {
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// diagIs returns a matcher for diagCollect: the failure is target.
func diagIs(target error) func(*eventloop.UnobservedError) bool {
	return func(u *eventloop.UnobservedError) bool { return errors.Is(u, target) }
}

// diagDropFailed submits fn to l, waits for its future to end without
// reading the outcome (Done is not a read), and drops the future. It
// returns the site of the Submit call. Not inlined, so that the future is
// unreachable once it returns.
//
//go:noinline
func diagDropFailed(t *testing.T, l *eventloop.Loop, fn func(context.Context) (int, error)) string {
	t.Helper()
	site := diagNextLine()
	f, err := eventloop.Submit(l, fn)
	require.NoError(t, err)
	require.True(t, closedWithin(f.Done()), "the future ends")
	return site
}

// diagFailingTask is a task, with a name of its own, that fails with
// errDiagNamed.
func diagFailingTask(context.Context) (int, error) { return 0, errDiagNamed }

var errDiagNamed = errors.New("diag: the named task failed")

// diagSlog records what is logged with the default slog logger.
type diagSlog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *diagSlog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *diagSlog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// diagCaptureSlog makes slog.Default write to the returned buffer until the
// test ends. No test of the package runs in parallel with another.
func diagCaptureSlog(t *testing.T) *diagSlog {
	t.Helper()
	s := &diagSlog{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(s, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return s
}

// diagGoroutines returns the stacks of every goroutine.
func diagGoroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// ---------------------------------------------------------------------------
// Stats.

func TestStatsOnNilAndZeroLoop(t *testing.T) {
	var nilLoop *eventloop.Loop
	assert.Equal(t, eventloop.Stats{}, nilLoop.Stats(), "Stats on a nil *Loop")
	assert.Equal(t, eventloop.Stats{}, new(eventloop.Loop).Stats(), "Stats on a zero Loop")
	var zero eventloop.Loop
	assert.Equal(t, eventloop.Stats{}, zero.Stats(), "Stats on a zero Loop value")
}

func TestStatsOutcomes(t *testing.T) {
	errDiag := errors.New("diag: the task failed")

	t.Run("a task that returns a value is counted as Completed once its future has ended", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		_, err = f.Result(long)
		require.NoError(t, err)
		assert.Equal(t, eventloop.Stats{Submitted: 1, Completed: 1}, diagCounts(l.Stats()),
			"a caller that has seen a future end also sees it counted")
	})

	t.Run("a task that returns an error is counted as Failed", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 0, errDiag })
		require.NoError(t, err)
		_, err = f.Result(long)
		require.ErrorIs(t, err, errDiag)
		assert.Equal(t, eventloop.Stats{Submitted: 1, Failed: 1}, diagCounts(l.Stats()))
	})

	t.Run("a task that panics is counted as Panicked, not as a callback panic", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic("diag task panic") })
		require.NoError(t, err)
		_, err = f.Result(long)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, eventloop.Stats{Submitted: 1, Panicked: 1}, diagCounts(l.Stats()))
		assert.Empty(t, sink.list(), "a task's panic is its future's outcome, not a report")
	})

	t.Run("Cancel before the task starts counts it as Cancelled at once", func(t *testing.T) {
		l := started(t)
		release, busy := occupy(t, l)
		f, err := eventloop.Submit(l, value(2))
		require.NoError(t, err)
		require.True(t, f.Cancel())
		require.True(t, isClosed(f.Done()), "Cancel ended the unstarted task")
		s := l.Stats()
		assert.Equal(t, uint64(1), s.Cancelled, "counted by the time Cancel returns")
		assert.Equal(t, uint64(2), s.Submitted)
		release()
		_, err = busy.Result(long)
		require.NoError(t, err)
		diagSettle(t, l)
		assert.Equal(t, eventloop.Stats{Submitted: 3, Completed: 1, Cancelled: 1}, diagCounts(l.Stats()))
	})

	t.Run("Cancel of a running task counts it as Cancelled, not by what it returned", func(t *testing.T) {
		l := started(t)
		running := make(chan struct{})
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			return 1, nil // returns a value: still ends with ErrCancelled
		})
		require.NoError(t, err)
		recv(t, running)
		require.True(t, f.Cancel())
		_, err = f.Result(long)
		require.ErrorIs(t, err, eventloop.ErrCancelled)
		assert.Equal(t, eventloop.Stats{Submitted: 1, Cancelled: 1}, diagCounts(l.Stats()))
	})

	t.Run("Cancel of a task suspended in Sleep counts it as Cancelled; Suspended and Timers go back to 0", func(t *testing.T) {
		l := started(t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return 0, eventloop.Sleep(ctx, time.Hour)
		})
		require.NoError(t, err)
		diagEventually(t, "the task to suspend", func() bool { return l.Stats().Suspended == 1 })
		s := l.Stats()
		assert.Equal(t, 1, s.Timers, "the Sleep deadline is a pending timer")
		assert.Equal(t, 0, s.Queued)
		require.True(t, f.Cancel())
		_, err = f.Result(long)
		require.ErrorIs(t, err, eventloop.ErrCancelled)
		assert.Equal(t, eventloop.Stats{Submitted: 1, Cancelled: 1}, diagCounts(l.Stats()),
			"once the future has ended, the task is neither suspended nor sleeping")
	})

	t.Run("Close counts queued, running and suspended tasks as Closed; callbacks and timers are not tasks", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		sleeper, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return 0, eventloop.Sleep(ctx, time.Hour)
		})
		require.NoError(t, err)
		diagEventually(t, "the sleeper to suspend", func() bool { return l.Stats().Suspended == 1 })
		running := make(chan struct{})
		runner, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			return 0, errDiag // what it returns does not matter: Close decides
		})
		require.NoError(t, err)
		recv(t, running)
		var queued []*eventloop.Future[int]
		for range 3 {
			f, err := eventloop.Submit(l, value(3))
			require.NoError(t, err)
			queued = append(queued, f)
		}
		require.NoError(t, l.CallSoon(func() { t.Error("a callback queued at Close ran") }))
		_, err = l.CallLater(time.Hour, func() { t.Error("a timer pending at Close ran") })
		require.NoError(t, err)
		s := l.Stats()
		assert.Equal(t, 4, s.Queued, "3 tasks and a callback queued behind the running task")
		assert.Equal(t, 1, s.Suspended)
		assert.Equal(t, 2, s.Timers, "the Sleep deadline and the CallLater timer")

		require.NoError(t, l.Close())
		for _, f := range append([]*eventloop.Future[int]{sleeper, runner}, queued...) {
			_, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		}
		assert.Equal(t, eventloop.Stats{Submitted: 7, Closed: 5}, diagCounts(l.Stats()),
			"every task ended by Close is counted Closed; nothing is left queued, suspended or pending")
		assert.Empty(t, diagOfType[*eventloop.UnobservedError](sink.list()))
	})

	t.Run("Close of a loop that never ran counts its queued tasks as Closed", func(t *testing.T) {
		l := eventloop.New()
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		var fs []*eventloop.Future[int]
		for range 3 {
			f, err := eventloop.Submit(l, value(4))
			require.NoError(t, err)
			fs = append(fs, f)
		}
		require.NoError(t, l.CallSoon(func() {}))
		_, err := l.CallLater(0, func() {})
		require.NoError(t, err)
		_, err = l.CallLater(time.Hour, func() {})
		require.NoError(t, err)
		assert.Equal(t, eventloop.Stats{Submitted: 6, Queued: 5, Timers: 1}, diagCounts(l.Stats()),
			"a loop that has not started holds everything submitted: 3 tasks, a callback and a due timer queued, one timer pending")

		require.NoError(t, l.Close())
		for _, f := range fs {
			_, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		}
		assert.Equal(t, eventloop.Stats{Submitted: 6, Closed: 3}, diagCounts(l.Stats()))
	})

	t.Run("Go futures are counted by no loop", func(t *testing.T) {
		l := started(t)
		g := eventloop.Go(value(5))
		_, err := g.Result(long)
		require.NoError(t, err)
		assert.Equal(t, eventloop.Stats{}, diagCounts(l.Stats()))
	})
}

func TestStatsRejections(t *testing.T) {
	t.Run("after Stop, Submit, CallSoon and CallLater are counted as Rejected.Stopped", func(t *testing.T) {
		l := started(t)
		l.Stop()
		require.True(t, closedWithin(l.Done()))
		_, err := eventloop.Submit(l, value(1))
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopStopped)
		_, err = l.CallLater(time.Second, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		_, err = l.CallLater(0, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
		assert.Equal(t, eventloop.Stats{Rejected: eventloop.Rejections{Stopped: 4}}, diagCounts(l.Stats()))
	})

	t.Run("after Close, they are counted as Rejected.Closed", func(t *testing.T) {
		l := started(t)
		require.NoError(t, l.Close())
		_, err := eventloop.Submit(l, value(1))
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrLoopClosed)
		_, err = l.CallLater(time.Second, func() {})
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		assert.Equal(t, eventloop.Stats{Rejected: eventloop.Rejections{Closed: 3}}, diagCounts(l.Stats()))
	})

	t.Run("with a full bounded queue, they are counted as Rejected.QueueFull", func(t *testing.T) {
		l := eventloop.New(eventloop.WithQueueCapacity(2))
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		_, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		require.NoError(t, l.CallSoon(func() {}))
		_, err = eventloop.Submit(l, value(1))
		assert.ErrorIs(t, err, eventloop.ErrQueueFull)
		assert.ErrorIs(t, l.CallSoon(func() {}), eventloop.ErrQueueFull)
		_, err = l.CallLater(0, func() {})
		assert.ErrorIs(t, err, eventloop.ErrQueueFull)
		_, err = l.CallLater(time.Hour, func() {})
		assert.ErrorIs(t, err, eventloop.ErrQueueFull)
		assert.Equal(t, eventloop.Stats{
			Submitted: 2,
			Rejected:  eventloop.Rejections{QueueFull: 4},
			Queued:    2,
		}, diagCounts(l.Stats()))
	})

	t.Run("bad input is neither submitted nor rejected", func(t *testing.T) {
		l := started(t)
		_, err := eventloop.Submit[int](l, nil)
		assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
		assert.ErrorIs(t, l.CallSoon(nil), eventloop.ErrInvalidArgument)
		_, err = l.CallLater(0, nil)
		assert.ErrorIs(t, err, eventloop.ErrInvalidArgument)
		assert.Equal(t, eventloop.Stats{}, diagCounts(l.Stats()))
	})
}

func TestStatsCallbackPanics(t *testing.T) {
	sink := newDiagSink()
	l := started(t, eventloop.WithErrorHandler(sink.handler))

	require.NoError(t, l.CallSoon(func() { panic("diag CallSoon") }))
	_, err := l.CallLater(time.Millisecond, func() { panic("diag CallLater") })
	require.NoError(t, err)
	release := newGate()
	f, err := eventloop.Submit(l, blocker(nil, release, 1))
	require.NoError(t, err)
	f.AddDoneCallback(func(*eventloop.Future[int]) { panic("diag done callback on the loop") })
	release.open()
	_, err = f.Result(long)
	require.NoError(t, err)
	// On an ended future, the callback runs on this goroutine; it is still
	// a done callback of this loop's future.
	f.AddDoneCallback(func(*eventloop.Future[int]) { panic("diag done callback at once") })

	var values []any
	for range 4 {
		var pe *eventloop.PanicError
		require.ErrorAs(t, recv(t, sink.ch), &pe)
		values = append(values, pe.Value)
	}
	assert.ElementsMatch(t, []any{"diag CallSoon", "diag CallLater", "diag done callback on the loop", "diag done callback at once"}, values)
	s := l.Stats()
	assert.Equal(t, uint64(4), s.CallbackPanics, "CallSoon, CallLater and done callbacks (on the loop and at once)")
	assert.Equal(t, uint64(0), s.Panicked, "no task panicked")
	assert.Equal(t, uint64(1), s.Completed)
	assert.Equal(t, uint64(3), s.Submitted)
}

func TestStatsGauges(t *testing.T) {
	t.Run("work queued behind a busy loop is Queued until it runs", func(t *testing.T) {
		l := started(t)
		release, busy := occupy(t, l)
		for range 3 {
			_, err := eventloop.Submit(l, value(1))
			require.NoError(t, err)
		}
		require.NoError(t, l.CallSoon(func() {}))
		require.NoError(t, l.CallSoon(func() {}))
		_, err := l.CallLater(0, func() {})
		require.NoError(t, err)
		_, err = l.CallLater(time.Hour, func() {})
		require.NoError(t, err)
		s := l.Stats()
		assert.Equal(t, 6, s.Queued, "3 tasks, 2 callbacks and a due timer; the running task is not queued")
		assert.Equal(t, 1, s.Timers, "the timer for an hour")
		assert.Equal(t, 0, s.Suspended)
		assert.Equal(t, uint64(8), s.Submitted)
		release()
		_, err = busy.Result(long)
		require.NoError(t, err)
		diagSettle(t, l)
		s = l.Stats()
		assert.Equal(t, 0, s.Queued)
		assert.Equal(t, 1, s.Timers)
		assert.Equal(t, uint64(4), s.Completed)
	})

	t.Run("a stopped CallLater timer is no longer pending", func(t *testing.T) {
		l := started(t)
		tm, err := l.CallLater(time.Hour, func() {})
		require.NoError(t, err)
		assert.Equal(t, 1, l.Stats().Timers)
		require.True(t, tm.Stop())
		assert.Equal(t, 0, l.Stats().Timers)
	})

	t.Run("coroutines suspended in Sleep and Await are Suspended, Sleep deadlines are Timers (synctest)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			var sleepers []*eventloop.Future[int]
			for range 3 {
				f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
					return 1, eventloop.Sleep(ctx, time.Hour)
				})
				require.NoError(t, err)
				sleepers = append(sleepers, f)
			}
			release := newGate()
			g := eventloop.Go(func(ctx context.Context) (int, error) { return 2, release.wait(ctx) })
			var awaiters []*eventloop.Future[int]
			for range 2 {
				f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, g) })
				require.NoError(t, err)
				awaiters = append(awaiters, f)
			}
			_, err := l.CallLater(30*time.Minute, func() {})
			require.NoError(t, err)
			synctest.Wait()
			assert.Equal(t, eventloop.Stats{Submitted: 6, Suspended: 5, Timers: 4}, diagCounts(l.Stats()),
				"3 sleepers and 2 awaiters suspended; 3 Sleep deadlines and a CallLater timer pending")

			time.Sleep(time.Hour)
			synctest.Wait()
			for _, f := range sleepers {
				require.True(t, isClosed(f.Done()))
			}
			assert.Equal(t, eventloop.Stats{Submitted: 6, Completed: 3, Suspended: 2}, diagCounts(l.Stats()),
				"the sleepers and the timer are done (a timer is not a task); the awaiters are still suspended")

			release.open()
			synctest.Wait()
			for _, f := range awaiters {
				require.True(t, isClosed(f.Done()))
			}
			assert.Equal(t, eventloop.Stats{Submitted: 6, Completed: 5}, diagCounts(l.Stats()))
		})
	})
}

// The godoc of Stats.Queued says "work queued and not started now", the same
// words WithQueueCapacity uses; a task cancelled before it starts (or a due
// timer stopped) is no longer counted against the capacity, and it is
// counted as Cancelled: it should not be Queued too.
func TestStatsQueuedExcludesWorkEndedBeforeItStarts(t *testing.T) {
	t.Run("a task cancelled before it starts", func(t *testing.T) {
		l := eventloop.New()
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		_, err = eventloop.Submit(l, value(2))
		require.NoError(t, err)
		require.Equal(t, 2, l.Stats().Queued)
		require.True(t, f.Cancel())
		s := l.Stats()
		assert.Equal(t, uint64(1), s.Cancelled)
		assert.Equal(t, 1, s.Queued, "the cancelled task will never run: it is not queued work any more (it is counted as Cancelled already)")
	})

	t.Run("a due timer that is stopped", func(t *testing.T) {
		l := eventloop.New()
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		tm, err := l.CallLater(0, func() {})
		require.NoError(t, err)
		require.Equal(t, 1, l.Stats().Queued)
		require.True(t, tm.Stop())
		assert.Equal(t, 0, l.Stats().Queued, "the stopped timer will never run")
	})

	t.Run("with a bounded queue, Queued does not exceed the capacity", func(t *testing.T) {
		l := eventloop.New(eventloop.WithQueueCapacity(2))
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		_, err = eventloop.Submit(l, value(2))
		require.NoError(t, err)
		require.True(t, f.Cancel())
		_, err = eventloop.Submit(l, value(3))
		require.NoError(t, err, "the cancelled task made room")
		assert.LessOrEqual(t, l.Stats().Queued, 2, "Queued counts what the capacity counts")
	})
}

func TestStatsMaxQueueWait(t *testing.T) {
	t.Run("a batch queued behind a task that holds the loop waits at least as long (synctest, exact)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			assert.Zero(t, l.Stats().MaxQueueWait, "the first call starts the measurement")
			synctest.Wait() // the loop is idle
			hold, err := eventloop.Submit(l, func(context.Context) (int, error) {
				time.Sleep(20 * time.Millisecond) // holds the loop
				return 0, nil
			})
			require.NoError(t, err)
			synctest.Wait() // hold runs, blocked in time.Sleep
			f, err := eventloop.Submit(l, value(1))
			require.NoError(t, err)
			<-f.Done()
			require.True(t, isClosed(hold.Done()))
			assert.Equal(t, 20*time.Millisecond, l.Stats().MaxQueueWait, "f waited in the queue while hold ran")
			assert.Zero(t, l.Stats().MaxQueueWait, "Stats resets MaxQueueWait")

			// The maximum over several batches.
			for _, d := range []time.Duration{5, 30, 10} {
				hold, err := eventloop.Submit(l, func(context.Context) (int, error) {
					time.Sleep(d * time.Millisecond)
					return 0, nil
				})
				require.NoError(t, err)
				synctest.Wait()
				f, err := eventloop.Submit(l, value(1))
				require.NoError(t, err)
				<-f.Done()
				<-hold.Done()
				synctest.Wait()
			}
			assert.Equal(t, 30*time.Millisecond, l.Stats().MaxQueueWait, "the longest of the waits since the last call")

			// Work queued while the loop is idle starts at once.
			synctest.Wait()
			g, err := eventloop.Submit(l, value(1))
			require.NoError(t, err)
			<-g.Done()
			assert.Zero(t, l.Stats().MaxQueueWait, "work queued on an idle loop is not measured")
		})
	})

	t.Run("nothing is measured before the first call", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := started(t)
			synctest.Wait()
			hold, err := eventloop.Submit(l, func(context.Context) (int, error) {
				time.Sleep(20 * time.Millisecond)
				return 0, nil
			})
			require.NoError(t, err)
			synctest.Wait()
			f, err := eventloop.Submit(l, value(1))
			require.NoError(t, err)
			<-f.Done()
			<-hold.Done()
			assert.Zero(t, l.Stats().MaxQueueWait, "f waited 20ms, but nobody had asked yet")
		})
	})

	t.Run("a batch queued behind a task that holds the loop waits at least as long (real time)", func(t *testing.T) {
		l := started(t)
		l.Stats()
		release, busy := occupy(t, l)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		start := time.Now()
		time.Sleep(20 * time.Millisecond)
		release()
		_, err = f.Result(long)
		require.NoError(t, err)
		waited := time.Since(start)
		_, err = busy.Result(long)
		require.NoError(t, err)
		s := l.Stats()
		assert.GreaterOrEqual(t, s.MaxQueueWait, 20*time.Millisecond)
		assert.LessOrEqual(t, s.MaxQueueWait, waited, "no longer than the work was queued")
		assert.Zero(t, l.Stats().MaxQueueWait, "reset by the previous call")
	})
}

// Stats races submissions, completions, cancellations, suspensions and
// timers (run with -race). Counts never go down, gauges never go negative,
// and a future seen ended is counted.
func TestStatsRacingSubmissions(t *testing.T) {
	l := started(t)
	const producers, per = 4, 300
	var seenEnded atomic.Uint64 // futures some producer has seen end
	stop := make(chan struct{})
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		var prev eventloop.Stats
		for {
			select {
			case <-stop:
				return
			default:
			}
			seen := seenEnded.Load()
			s := l.Stats()
			ended := s.Completed + s.Failed + s.Panicked + s.Cancelled + s.Closed
			if ended < seen {
				t.Errorf("Stats counts %d ended tasks; %d were seen ended before it was called", ended, seen)
			}
			if s.Queued < 0 || s.Suspended < 0 || s.Timers < 0 {
				t.Errorf("a gauge went negative: %+v", s)
			}
			for _, c := range []struct {
				name      string
				prev, now uint64
			}{
				{"Submitted", prev.Submitted, s.Submitted},
				{"Completed", prev.Completed, s.Completed},
				{"Failed", prev.Failed, s.Failed},
				{"Cancelled", prev.Cancelled, s.Cancelled},
			} {
				if c.now < c.prev {
					t.Errorf("%s went down from %d to %d", c.name, c.prev, c.now)
				}
			}
			prev = s
			runtime.Gosched()
		}
	}()
	errDiag := errors.New("diag: racing failure")
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				var f *eventloop.Future[int]
				var err error
				switch i % 4 {
				case 0:
					f, err = eventloop.Submit(l, value(i))
				case 1:
					f, err = eventloop.Submit(l, func(ctx context.Context) (int, error) {
						return i, eventloop.Sleep(ctx, 0) // suspends and resumes
					})
				case 2:
					f, err = eventloop.Submit(l, func(context.Context) (int, error) { return 0, errDiag })
				case 3:
					f, err = eventloop.Submit(l, value(i))
					if err == nil {
						f.Done() // watched while it may be completing
						f.Cancel()
					}
				}
				if err != nil {
					t.Errorf("producer %d: Submit: %v", p, err)
					return
				}
				if i%8 == 0 {
					if err := l.CallSoon(func() {}); err != nil {
						t.Errorf("CallSoon: %v", err)
					}
				}
				f.Result(long)
				seenEnded.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-pollerDone
	diagSettle(t, l)
	s := l.Stats()
	callbacks := uint64(producers * ((per + 7) / 8))
	assert.Equal(t, uint64(producers*per)+callbacks+1, s.Submitted)
	assert.Equal(t, uint64(producers*per), s.Completed+s.Failed+s.Cancelled, "every task counted once")
	assert.Equal(t, uint64(producers*per/4), s.Failed)
	assert.Equal(t, 0, s.Queued)
	assert.Equal(t, 0, s.Suspended)
	assert.Equal(t, 0, s.Timers)
}

// ---------------------------------------------------------------------------
// UnobservedError.

func TestUnobservedError(t *testing.T) {
	t.Run("a failed future collected unread is reported as an *UnobservedError wrapping its error", func(t *testing.T) {
		errDiag := errors.New("diag: returned and never read")
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		diagDropFailed(t, l, func(context.Context) (int, error) { return 0, errDiag })
		u := diagCollect(t, sink, diagIs(errDiag))
		assert.ErrorIs(t, u, errDiag, "errors.Is sees the failure")
		assert.Equal(t, errDiag, u.Err)
		assert.Empty(t, u.Site, "no site without WithDebug or WithSlowTaskThreshold")
		assert.Contains(t, u.Error(), errDiag.Error())
		assert.Contains(t, u.Error(), "nobody read")
	})

	t.Run("a panicked future collected unread is reported with its *PanicError", func(t *testing.T) {
		errValue := errors.New("diag: panicked and never read")
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		diagDropFailed(t, l, func(context.Context) (int, error) { panic(errValue) })
		u := diagCollect(t, sink, diagIs(errValue))
		var pe *eventloop.PanicError
		require.ErrorAs(t, u, &pe, "errors.As finds the *PanicError inside")
		assert.Equal(t, errValue, pe.Value)
		assert.NotEmpty(t, pe.Stack)
		assert.Same(t, pe, u.Err)
	})

	t.Run("with WithDebug the report names the Submit site and the function", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		site := diagDropFailed(t, l, diagFailingTask)
		u := diagCollect(t, sink, diagIs(errDiagNamed))
		assert.Equal(t, site, u.Site, "the line of the Submit call")
		assert.Equal(t, "github.com/corun-go/eventloop_test.diagFailingTask", u.Func)
		assert.Contains(t, u.Error(), "submitted at "+site)
	})

	t.Run("a panicked future on a debug loop: the *PanicError inside has the Site too", func(t *testing.T) {
		errValue := errors.New("diag: debug panic never read")
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		site := diagDropFailed(t, l, func(context.Context) (int, error) { panic(errValue) })
		u := diagCollect(t, sink, diagIs(errValue))
		var pe *eventloop.PanicError
		require.ErrorAs(t, u, &pe)
		assert.Equal(t, site, pe.Site())
		assert.Equal(t, site, u.Site)
	})

	t.Run("a Result that timed out before the end did not read the outcome", func(t *testing.T) {
		errDiag := errors.New("diag: failed after a Result timed out")
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		func() {
			release := newGate()
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				if err := release.wait(ctx); err != nil {
					return 0, err
				}
				return 0, errDiag
			})
			require.NoError(t, err)
			_, err = f.Result(time.Millisecond)
			require.ErrorIs(t, err, eventloop.ErrTimeout)
			release.open()
			require.True(t, closedWithin(f.Done()))
		}()
		diagCollect(t, sink, diagIs(errDiag))
	})

	t.Run("a failure is reported after its loop has closed", func(t *testing.T) {
		errDiag := errors.New("diag: failed on a loop closed since")
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		diagDropFailed(t, l, func(context.Context) (int, error) { return 0, errDiag })
		require.NoError(t, l.Close())
		diagCollect(t, sink, diagIs(errDiag))
	})

	t.Run("a Go future collected unread is logged with slog", func(t *testing.T) {
		logged := diagCaptureSlog(t)
		const msg = "diag: a Go future failed and nobody read it"
		func() {
			g := eventloop.Go(func(context.Context) (int, error) { return 0, errors.New(msg) })
			require.True(t, closedWithin(g.Done()))
		}()
		deadline := time.Now().Add(long)
		for !strings.Contains(logged.String(), msg) && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		out := logged.String()
		require.Contains(t, out, msg)
		var line string
		for l := range strings.Lines(out) {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		assert.Contains(t, line, "nobody read its outcome", "logged as an UnobservedError")
		assert.Contains(t, line, "level=ERROR")
	})
}

// Futures whose outcome was read, in every way the godoc lists, before or
// after they ended, are not reported; nor are those that ended with
// ErrCancelled, ErrLoopClosed or a value. Each is dropped before a canary (a
// failure nobody reads), so that once the canary is reported, their
// reports would have been made too.
func TestUnobservedErrorNotReported(t *testing.T) {
	sink := newDiagSink()
	l := started(t, eventloop.WithErrorHandler(sink.handler))
	other := started(t)

	type read struct {
		name   string
		before func(t *testing.T, f *eventloop.Future[int]) (wait func()) // starts reading a pending future
		after  func(t *testing.T, f *eventloop.Future[int])               // reads an ended one
	}
	inTask := func(t *testing.T, on *eventloop.Loop, fn func(ctx context.Context) error) func() {
		t.Helper()
		g, err := eventloop.Submit(on, func(ctx context.Context) (int, error) { return 0, fn(ctx) })
		require.NoError(t, err)
		return func() {
			_, err := g.Result(long)
			assert.NoError(t, err)
		}
	}
	inGoroutine := func(fn func()) func() {
		done := make(chan struct{})
		go func() { defer close(done); fn() }()
		return func() { recv(t, done) }
	}
	reads := []read{
		{"Result",
			func(t *testing.T, f *eventloop.Future[int]) func() { return inGoroutine(func() { f.Result(long) }) },
			func(t *testing.T, f *eventloop.Future[int]) { f.Result(0) }},
		{"Exception",
			func(t *testing.T, f *eventloop.Future[int]) func() { return inGoroutine(func() { f.Exception(long) }) },
			func(t *testing.T, f *eventloop.Future[int]) { f.Exception(0) }},
		{"Wait",
			func(t *testing.T, f *eventloop.Future[int]) func() {
				return inGoroutine(func() { f.Wait(context.Background()) })
			},
			func(t *testing.T, f *eventloop.Future[int]) { f.Wait(context.Background()) }},
		{"Await in a task of the same loop",
			func(t *testing.T, f *eventloop.Future[int]) func() {
				return inTask(t, l, func(ctx context.Context) error { _, err := eventloop.Await(ctx, f); return diagIgnore(err) })
			},
			func(t *testing.T, f *eventloop.Future[int]) {
				inTask(t, l, func(ctx context.Context) error { _, err := eventloop.Await(ctx, f); return diagIgnore(err) })()
			}},
		{"Await in a task of another loop",
			func(t *testing.T, f *eventloop.Future[int]) func() {
				return inTask(t, other, func(ctx context.Context) error { _, err := eventloop.Await(ctx, f); return diagIgnore(err) })
			},
			func(t *testing.T, f *eventloop.Future[int]) {
				inTask(t, other, func(ctx context.Context) error { _, err := eventloop.Await(ctx, f); return diagIgnore(err) })()
			}},
		{"Await from a goroutine",
			func(t *testing.T, f *eventloop.Future[int]) func() {
				return inGoroutine(func() { eventloop.Await(context.Background(), f) })
			},
			func(t *testing.T, f *eventloop.Future[int]) { eventloop.Await(context.Background(), f) }},
		{"AddDoneCallback",
			func(t *testing.T, f *eventloop.Future[int]) func() {
				called := make(chan struct{})
				f.AddDoneCallback(func(*eventloop.Future[int]) { close(called) })
				return func() { recv(t, called) }
			},
			func(t *testing.T, f *eventloop.Future[int]) {
				called := false
				f.AddDoneCallback(func(*eventloop.Future[int]) { called = true })
				assert.True(t, called)
			}},
	}

	for _, r := range reads {
		errBefore := fmt.Errorf("diag: read by %s before the end", r.name)
		errAfter := fmt.Errorf("diag: read by %s after the end", r.name)
		panicAfter := fmt.Errorf("diag: panic read by %s after the end", r.name)
		func() {
			release := newGate()
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				if err := release.wait(ctx); err != nil {
					return 0, err
				}
				return 0, errBefore
			})
			require.NoError(t, err)
			wait := r.before(t, f)
			time.Sleep(time.Millisecond) // most likely registered by now; either way it reads
			release.open()
			wait()
			require.True(t, isClosed(f.Done()))
		}()
		func() {
			f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 0, errAfter })
			require.NoError(t, err)
			require.True(t, closedWithin(f.Done()))
			r.after(t, f)
		}()
		func() {
			f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic(panicAfter) })
			require.NoError(t, err)
			require.True(t, closedWithin(f.Done()))
			r.after(t, f)
		}()
	}

	// Outcomes chosen by whoever cancelled or closed, and successes.
	func() {
		release, busy := occupy(t, l)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		require.True(t, f.Cancel(), "cancelled before it started")
		release()
		require.True(t, closedWithin(busy.Done()))
		running := make(chan struct{})
		g, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			return 0, errors.New("diag: returned by a cancelled task")
		})
		require.NoError(t, err)
		recv(t, running)
		require.True(t, g.Cancel(), "cancelled while running")
		require.True(t, closedWithin(g.Done()))
		s, err := eventloop.Submit(l, value(2))
		require.NoError(t, err)
		require.True(t, closedWithin(s.Done()))
	}()
	func() {
		closing := eventloop.New(eventloop.WithErrorHandler(sink.handler))
		require.NoError(t, closing.Start())
		running := make(chan struct{})
		f, err := eventloop.Submit(closing, func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			return 0, errors.New("diag: returned by a task Close caught")
		})
		require.NoError(t, err)
		queued, err := eventloop.Submit(closing, value(3))
		require.NoError(t, err)
		recv(t, running)
		require.NoError(t, closing.Close())
		require.True(t, isClosed(f.Done()))
		require.True(t, isClosed(queued.Done()))
	}()

	errCanary := errors.New("diag: the canary nobody reads")
	diagDropFailed(t, l, func(context.Context) (int, error) { return 0, errCanary })
	diagCollect(t, sink, diagIs(errCanary))
	diagGCQuiet()
	for _, u := range diagOfType[*eventloop.UnobservedError](sink.list()) {
		if !errors.Is(u, errCanary) {
			t.Errorf("reported although its outcome was read, or it was cancelled, closed or succeeded: %v", u)
		}
	}
}

// diagIgnore drops the error of a failure a task read on purpose.
func diagIgnore(error) error { return nil }

// With WithDebug, the cleanup's argument holds the submitted function; a
// function that refers to its own future (a task that reschedules itself,
// say) then keeps the future reachable from a GC root for ever: it is
// never collected, and its failure never reported. Without WithDebug it is.
func TestUnobservedErrorSelfReferencingTask(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []eventloop.Option
	}{
		{"without WithDebug", nil},
		{"with WithDebug", []eventloop.Option{eventloop.WithDebug()}},
	} {
		t.Run("a failed task whose function refers to its own future is reported "+tc.name, func(t *testing.T) {
			sink := newDiagSink()
			l := started(t, append(tc.opts, eventloop.WithErrorHandler(sink.handler))...)
			errSelf := fmt.Errorf("diag: self-referencing task failed (%s)", tc.name)
			diagDropSelfReferencing(t, l, errSelf)
			// Others are reported within milliseconds; a few seconds
			// of collections are plenty.
			diagCollectWithin(t, 3*time.Second, sink, diagIs(errSelf))
		})
	}
}

//go:noinline
func diagDropSelfReferencing(t *testing.T, l *eventloop.Loop, errSelf error) {
	var self *eventloop.Future[int]
	ready := make(chan struct{})
	f, err := eventloop.Submit(l, func(context.Context) (int, error) {
		<-ready
		if self.Cancelled() { // refers to its own future
			return 1, nil
		}
		return 0, errSelf
	})
	require.NoError(t, err)
	self = f
	close(ready)
	require.True(t, closedWithin(f.Done()))
}

// ---------------------------------------------------------------------------
// The error handler's own panics.

func TestDiagPanickingErrorHandler(t *testing.T) {
	t.Run("a panic in the handler is logged with slog and not passed back to it", func(t *testing.T) {
		logged := diagCaptureSlog(t)
		var calls atomic.Int32
		l := started(t, eventloop.WithErrorHandler(func(err error) {
			calls.Add(1)
			panic("diag: the handler panicked")
		}))
		require.NoError(t, l.CallSoon(func() { panic("diag: the callback panicked") }))
		diagSettle(t, l)
		assert.Equal(t, int32(1), calls.Load(), "the handler is called once, not again with its own panic")
		out := logged.String()
		assert.Contains(t, out, "error handler panicked")
		assert.Contains(t, out, "diag: the handler panicked", "the handler's panic value is logged")
		assert.Contains(t, out, "diag: the callback panicked", "the error it was handling is logged")
		f, err := eventloop.Submit(l, value(7))
		require.NoError(t, err)
		v, err := f.Result(long)
		assert.NoError(t, err)
		assert.Equal(t, 7, v, "the loop goes on")
	})

	t.Run("a panic in the handler on the cleanup goroutine (UnobservedError) is logged too", func(t *testing.T) {
		logged := diagCaptureSlog(t)
		var calls atomic.Int32
		l := started(t, eventloop.WithErrorHandler(func(err error) {
			calls.Add(1)
			panic("diag: the handler panicked on an unobserved failure")
		}))
		const msg = "diag: a failure nobody read, for a panicking handler"
		diagDropFailed(t, l, func(context.Context) (int, error) { return 0, errors.New(msg) })
		deadline := time.Now().Add(long)
		for !strings.Contains(logged.String(), msg) && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		out := logged.String()
		assert.Contains(t, out, "error handler panicked")
		assert.Contains(t, out, msg)
		assert.Equal(t, int32(1), calls.Load())
	})

	t.Run("a panic in the handler on the watchdog goroutine is logged and the watchdog goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			logged := diagCaptureSlog(t)
			var calls atomic.Int32
			l := started(t, eventloop.WithSlowTaskThreshold(10*time.Millisecond), eventloop.WithErrorHandler(func(err error) {
				calls.Add(1)
				panic("diag: the handler panicked on a slow task")
			}))
			for range 2 {
				f, err := eventloop.Submit(l, func(context.Context) (int, error) {
					time.Sleep(30 * time.Millisecond)
					return 0, nil
				})
				require.NoError(t, err)
				<-f.Done()
				synctest.Wait()
			}
			assert.Equal(t, int32(4), calls.Load(), "two reports on each of two slow tasks, each once")
			assert.Equal(t, 4, strings.Count(logged.String(), "error handler panicked"))
		})
	})
}

// ---------------------------------------------------------------------------
// WithSlowTaskThreshold.

// diagDebugCases runs f with and without WithDebug: the watchdog's reports
// name the submission site with it, and where the function is defined
// without.
var diagDebugCases = []struct {
	name  string
	debug bool
}{
	{"without WithDebug", false},
	{"with WithDebug", true},
}

// diagOpts returns opts, plus WithDebug if debug.
func diagOpts(debug bool, opts ...eventloop.Option) []eventloop.Option {
	if debug {
		opts = append(opts, eventloop.WithDebug())
	}
	return opts
}

// The report is made while the task still runs: the task itself waits for
// it, so it could not have been made after.
func TestSlowTaskReportedWhileRunning(t *testing.T) {
	const threshold = 10 * time.Millisecond
	sink := newDiagSink()
	l := started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))
	type seen struct {
		running *eventloop.SlowTaskError
		held    time.Duration
	}
	defined := diagNextLine()
	task := func(context.Context) (seen, error) {
		start := time.Now()
		var r *eventloop.SlowTaskError
		select {
		case err := <-sink.ch:
			if !errors.As(err, &r) {
				return seen{}, fmt.Errorf("want a *SlowTaskError, got %v", err)
			}
		case <-time.After(long):
			return seen{}, errors.New("no report while the task held the loop")
		}
		time.Sleep(3 * threshold) // holds the loop on: still one running report
		return seen{running: r, held: time.Since(start)}, nil
	}
	f, err := eventloop.Submit(l, task)
	require.NoError(t, err)
	got, err := f.Result(long)
	require.NoError(t, err)
	r := got.running
	assert.False(t, r.Finished, "the first report is made while the task runs")
	assert.GreaterOrEqual(t, r.Held, threshold)
	assert.Equal(t, defined, r.Site, "without WithDebug: where the function literal is defined")
	assert.Contains(t, r.Func, "TestSlowTaskReportedWhileRunning", "the task's function")
	assert.Contains(t, r.Error(), "has held the loop")
	assert.Contains(t, r.Error(), defined)

	fin := diagNext[*eventloop.SlowTaskError](t, sink)
	assert.True(t, fin.Finished, "the second report is made once it has let go")
	assert.GreaterOrEqual(t, fin.Held, got.held, "Held is the total")
	assert.GreaterOrEqual(t, fin.Held, 3*threshold)
	assert.Equal(t, defined, fin.Site)
	assert.Equal(t, r.Func, fin.Func)
	assert.Contains(t, fin.Error(), "held the loop for")

	time.Sleep(3 * threshold)
	assert.Len(t, sink.list(), 2, "one report while running and one at the end, no more")
}

func TestSlowTaskWatchdog(t *testing.T) {
	const threshold = 10 * time.Millisecond

	for _, dc := range diagDebugCases {
		t.Run("a task that holds the loop: one report at the threshold, one at the end with the total, "+dc.name+" (synctest)", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sink := newDiagSink()
				l := started(t, diagOpts(dc.debug, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))...)
				reportedWhileRunning := make(chan bool, 1)
				defined := diagNextLine()
				task := func(context.Context) (int, error) {
					select {
					case <-sink.ch: // the task waits for the report: time passes only while it blocks
						reportedWhileRunning <- true
					case <-time.After(time.Second):
						reportedWhileRunning <- false
					}
					time.Sleep(30 * time.Millisecond)
					return 0, nil
				}
				submitted := diagNextLine()
				f, err := eventloop.Submit(l, task)
				require.NoError(t, err)
				<-f.Done()
				synctest.Wait()
				assert.True(t, <-reportedWhileRunning, "reported while the task ran")
				reports := diagOfType[*eventloop.SlowTaskError](sink.list())
				require.Len(t, reports, 2, "once while running, once at the end")
				r, fin := reports[0], reports[1]
				assert.False(t, r.Finished)
				assert.GreaterOrEqual(t, r.Held, threshold)
				assert.LessOrEqual(t, r.Held, threshold+threshold/4, "reported within d/4 of passing d")
				assert.True(t, fin.Finished)
				assert.Equal(t, r.Held+30*time.Millisecond, fin.Held, "the total time it held the loop")
				site := defined
				if dc.debug {
					site = submitted
				}
				for _, rep := range reports {
					assert.Equal(t, site, rep.Site)
					assert.Contains(t, rep.Func, "TestSlowTaskWatchdog")
				}
			})
		})

		t.Run("a CallSoon callback and a CallLater timer are reported likewise, "+dc.name+" (synctest)", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sink := newDiagSink()
				l := started(t, diagOpts(dc.debug, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))...)
				defined := diagNextLine()
				hold := func() { time.Sleep(40 * time.Millisecond) }
				soonSite := diagNextLine()
				require.NoError(t, l.CallSoon(hold))
				synctest.Wait()
				laterSite := diagNextLine()
				_, err := l.CallLater(5*time.Millisecond, hold)
				require.NoError(t, err)
				time.Sleep(time.Second)
				synctest.Wait()
				reports := diagOfType[*eventloop.SlowTaskError](sink.list())
				require.Len(t, reports, 4)
				sites := []string{defined, defined, defined, defined}
				if dc.debug {
					sites = []string{soonSite, soonSite, laterSite, laterSite}
				}
				for i, site := range sites {
					r := reports[i]
					assert.Equal(t, site, r.Site, "report %d", i)
					assert.Equal(t, i%2 == 1, r.Finished, "report %d", i)
					assert.Contains(t, r.Func, "TestSlowTaskWatchdog", "report %d", i)
					if r.Finished {
						assert.Equal(t, 40*time.Millisecond, r.Held, "report %d", i)
					} else {
						assert.GreaterOrEqual(t, r.Held, threshold, "report %d", i)
						assert.Less(t, r.Held, 40*time.Millisecond, "report %d: made while it ran", i)
					}
				}
			})
		})

		t.Run("a resumed coroutine that holds the loop is reported as its task, "+dc.name+" (synctest)", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sink := newDiagSink()
				l := started(t, diagOpts(dc.debug, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))...)
				defined := diagNextLine()
				task := func(ctx context.Context) (int, error) {
					time.Sleep(threshold / 2)
					if err := eventloop.Sleep(ctx, time.Second); err != nil {
						return 0, err
					}
					time.Sleep(25 * time.Millisecond)
					return 0, nil
				}
				submitted := diagNextLine()
				f, err := eventloop.Submit(l, task)
				require.NoError(t, err)
				<-f.Done()
				synctest.Wait()
				reports := diagOfType[*eventloop.SlowTaskError](sink.list())
				require.Len(t, reports, 2)
				assert.False(t, reports[0].Finished)
				assert.True(t, reports[1].Finished)
				assert.Equal(t, 25*time.Millisecond, reports[1].Held, "only the stretch after the resumption")
				site := defined
				if dc.debug {
					site = submitted
				}
				for _, r := range reports {
					assert.Equal(t, site, r.Site)
					assert.Contains(t, r.Func, "TestSlowTaskWatchdog")
				}
			})
		})
	}

	t.Run("a named function is reported with its name (synctest)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := newDiagSink()
			l := started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))
			f, err := eventloop.Submit(l, diagSlowTask)
			require.NoError(t, err)
			<-f.Done()
			synctest.Wait()
			reports := diagOfType[*eventloop.SlowTaskError](sink.list())
			require.Len(t, reports, 2)
			for _, r := range reports {
				assert.Equal(t, "github.com/corun-go/eventloop_test.diagSlowTask", r.Func)
				assert.Equal(t, diagSlowTaskSite, r.Site, "where the function is defined")
			}
		})
	})

	t.Run("a coroutine that sleeps between short busy stretches is not reported (synctest)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := newDiagSink()
			l := started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))
			release := newGate()
			g := eventloop.Go(func(ctx context.Context) (int, error) { return 0, release.wait(ctx) })
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				time.Sleep(threshold * 6 / 10) // holds the loop
				if err := eventloop.Sleep(ctx, time.Second); err != nil {
					return 0, err
				}
				time.Sleep(threshold * 6 / 10)
				if _, err := eventloop.Await(ctx, g); err != nil {
					return 0, err
				}
				time.Sleep(threshold * 6 / 10)
				return 0, nil
			})
			require.NoError(t, err)
			synctest.Wait()
			time.Sleep(2 * time.Second)
			release.open()
			<-f.Done()
			synctest.Wait()
			_, err = f.Result(0)
			require.NoError(t, err)
			assert.Empty(t, sink.list(), "each stretch held the loop for less than the threshold; the sleep and the await do not count")
		})
	})

	t.Run("fast work is not reported (synctest)", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := newDiagSink()
			l := started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))
			var last *eventloop.Future[int]
			for i := range 200 {
				f, err := eventloop.Submit(l, func(context.Context) (int, error) {
					time.Sleep(threshold / 2)
					return i, nil
				})
				require.NoError(t, err)
				require.NoError(t, l.CallSoon(func() { time.Sleep(threshold / 2) }))
				last = f
			}
			<-last.Done()
			time.Sleep(time.Second)
			synctest.Wait()
			assert.Empty(t, sink.list(), "400 pieces of half the threshold each: none is slow, though together they held the loop 200×")
		})
	})

	t.Run("fast work is not reported (real time)", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithSlowTaskThreshold(time.Second), eventloop.WithErrorHandler(sink.handler))
		var fs []*eventloop.Future[int]
		for i := range 1000 {
			f, err := eventloop.Submit(l, value(i))
			require.NoError(t, err)
			fs = append(fs, f)
		}
		for _, f := range fs {
			_, err := f.Result(long)
			require.NoError(t, err)
		}
		assert.Empty(t, sink.list())
	})

	t.Run("off by default, and with a threshold <= 0: no reports and no watchdog goroutine (synctest)", func(t *testing.T) {
		for _, opts := range [][]eventloop.Option{
			nil,
			{eventloop.WithSlowTaskThreshold(0)},
			{eventloop.WithSlowTaskThreshold(-time.Second)},
			{eventloop.WithSlowTaskThreshold(threshold), eventloop.WithSlowTaskThreshold(0)},
		} {
			synctest.Test(t, func(t *testing.T) {
				sink := newDiagSink()
				l := started(t, append(opts, eventloop.WithErrorHandler(sink.handler))...)
				f, err := eventloop.Submit(l, func(context.Context) (int, error) {
					time.Sleep(time.Second)
					return 0, nil
				})
				require.NoError(t, err)
				require.NoError(t, l.CallSoon(func() { time.Sleep(time.Second) }))
				synctest.Wait()
				assert.NotContains(t, diagGoroutines(), "eventloop.(*watchdog).run", "no watchdog goroutine")
				time.Sleep(3 * time.Second)
				synctest.Wait()
				require.True(t, isClosed(f.Done()))
				assert.Empty(t, sink.list())
				pf, err := eventloop.Submit(l, func(context.Context) (int, error) { panic("diag: no site") })
				require.NoError(t, err)
				<-pf.Done()
				_, err = pf.Result(0)
				var pe *eventloop.PanicError
				require.ErrorAs(t, err, &pe)
				assert.Empty(t, pe.Site(), "no site is recorded without WithDebug")
			})
		}
	})

	t.Run("the watchdog goroutine runs only while the loop runs", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := eventloop.New(eventloop.WithSlowTaskThreshold(threshold))
			synctest.Wait()
			assert.NotContains(t, diagGoroutines(), "eventloop.(*watchdog).run", "not before the loop runs")
			require.NoError(t, l.Start())
			synctest.Wait()
			assert.Contains(t, diagGoroutines(), "eventloop.(*watchdog).run", "while the loop runs")
			require.NoError(t, l.Close())
			synctest.Wait() // lets goroutines that are returning exit
			assert.NotContains(t, diagGoroutines(), "eventloop.(*watchdog).run", "gone once the loop has closed")
		})
	})

	t.Run("a slow task that Close cuts short gets its final report", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sink := newDiagSink()
			l := eventloop.New(eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(sink.handler))
			require.NoError(t, l.Start())
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				<-ctx.Done()
				return 0, nil
			})
			require.NoError(t, err)
			time.Sleep(5 * threshold)
			synctest.Wait()
			require.NoError(t, l.Close())
			require.True(t, isClosed(f.Done()))
			reports := diagOfType[*eventloop.SlowTaskError](sink.list())
			require.Len(t, reports, 2)
			assert.False(t, reports[0].Finished)
			assert.True(t, reports[1].Finished)
			assert.Equal(t, 5*threshold, reports[1].Held)
		})
	})
}

// diagSlowTask holds the loop for 30ms; diagSlowTaskSite is where it is
// defined.
var diagSlowTaskSite = func() string {
	_, file, line, _ := runtime.Caller(0)
	return fmt.Sprintf("%s:%d", file, line+4)
}()

func diagSlowTask(context.Context) (int, error) {
	time.Sleep(30 * time.Millisecond)
	return 0, nil
}

// ---------------------------------------------------------------------------
// WithDebug.

func TestDebugPanicErrorSite(t *testing.T) {
	t.Run("a task's *PanicError names the line of its Submit", func(t *testing.T) {
		l := started(t, eventloop.WithDebug())
		task := func(context.Context) (int, error) { panic("diag: task") }
		site := diagNextLine()
		f, err := eventloop.Submit(l, task)
		require.NoError(t, err)
		_, err = f.Result(long)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "diag: task", pe.Value)
		assert.Equal(t, site, pe.Site())
	})

	t.Run("a resumed task's *PanicError names the line of its Submit", func(t *testing.T) {
		l := started(t, eventloop.WithDebug())
		task := func(ctx context.Context) (int, error) {
			if err := eventloop.Sleep(ctx, time.Millisecond); err != nil {
				return 0, err
			}
			panic("diag: resumed task")
		}
		site := diagNextLine()
		f, err := eventloop.Submit(l, task)
		require.NoError(t, err)
		_, err = f.Result(long)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, site, pe.Site())
	})

	t.Run("CallSoon and CallLater panics name the line of the call", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		soon := func() { panic("diag: CallSoon") }
		later := func() { panic("diag: CallLater") }
		soonSite := diagNextLine()
		require.NoError(t, l.CallSoon(soon))
		pe := diagNext[*eventloop.PanicError](t, sink)
		assert.Equal(t, "diag: CallSoon", pe.Value)
		assert.Equal(t, soonSite, pe.Site())
		laterSite := diagNextLine()
		_, err := l.CallLater(time.Millisecond, later)
		require.NoError(t, err)
		pe = diagNext[*eventloop.PanicError](t, sink)
		assert.Equal(t, "diag: CallLater", pe.Value)
		assert.Equal(t, laterSite, pe.Site())
		zeroSite := diagNextLine()
		_, err = l.CallLater(0, later)
		require.NoError(t, err)
		pe = diagNext[*eventloop.PanicError](t, sink)
		assert.Equal(t, zeroSite, pe.Site(), "a timer due at once")
	})

	t.Run("a debug loop that has not started records the site too", func(t *testing.T) {
		sink := newDiagSink()
		l := eventloop.New(eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
		soon := func() { panic("diag: queued before Start") }
		site := diagNextLine()
		require.NoError(t, l.CallSoon(soon))
		require.NoError(t, l.Start())
		pe := diagNext[*eventloop.PanicError](t, sink)
		assert.Equal(t, site, pe.Site())
	})

	t.Run("a done callback's panic has no site: it was not submitted", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		_, err = f.Result(long)
		require.NoError(t, err)
		f.AddDoneCallback(func(*eventloop.Future[int]) { panic("diag: done callback") })
		pe := diagNext[*eventloop.PanicError](t, sink)
		assert.Equal(t, "diag: done callback", pe.Value)
		assert.Empty(t, pe.Site())
	})

	t.Run("without WithDebug, Site is empty", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithErrorHandler(sink.handler))
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic("diag: no site") })
		require.NoError(t, err)
		_, err = f.Result(long)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Empty(t, pe.Site())
		require.NoError(t, l.CallSoon(func() { panic("diag: no site either") }))
		assert.Empty(t, diagNext[*eventloop.PanicError](t, sink).Site())
	})
}

func TestDebugBlockingWait(t *testing.T) {
	// Each case waits for g in a task and records the site of its call.
	type blockingCase struct {
		name, call string
		wait       func(ctx context.Context, g *eventloop.Future[int]) (int, error)
		site       *string
	}
	var site string
	cases := []blockingCase{
		{"Result", "Result", func(ctx context.Context, g *eventloop.Future[int]) (int, error) {
			site = diagNextLine()
			return g.Result(long)
		}, &site},
		{"Exception", "Result", func(ctx context.Context, g *eventloop.Future[int]) (int, error) {
			site = diagNextLine()
			return 0, g.Exception(long)
		}, &site},
		{"Wait", "Wait", func(ctx context.Context, g *eventloop.Future[int]) (int, error) {
			site = diagNextLine()
			return g.Wait(ctx)
		}, &site},
	}
	for _, tc := range cases {
		for _, owner := range []string{"another loop", "Go"} {
			t.Run(tc.name+" in a task of a debug loop on a pending future of "+owner+" is reported with its site", func(t *testing.T) {
				sink := newDiagSink()
				l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
				release := newGate()
				var g *eventloop.Future[int]
				if owner == "Go" {
					g = eventloop.Go(blocker(nil, release, 9))
				} else {
					var err error
					g, err = eventloop.Submit(started(t), blocker(nil, release, 9))
					require.NoError(t, err)
				}
				f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return tc.wait(ctx, g) })
				require.NoError(t, err)
				bw := diagNext[*eventloop.BlockingWaitError](t, sink) // reported before the wait, which goes on
				assert.False(t, isClosed(f.Done()), "the wait goes on")
				release.open()
				v, err := f.Result(long)
				require.NoError(t, err)
				if tc.name != "Exception" {
					assert.Equal(t, 9, v, "a warning, not an outcome")
				}
				if tc.name == "Exception" {
					assert.Contains(t, []string{"Result", "Exception"}, bw.Call)
				} else {
					assert.Equal(t, tc.call, bw.Call)
				}
				assert.Equal(t, *tc.site, bw.Site, "the line of the call in the task")
				assert.Contains(t, bw.Error(), *tc.site)
				assert.Len(t, sink.list(), 1, "one report per blocking wait")
			})
		}
	}

	t.Run("Result in a CallSoon callback of a debug loop on a pending future of another loop is reported", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		release := newGate()
		g, err := eventloop.Submit(started(t), blocker(nil, release, 1))
		require.NoError(t, err)
		var callSite string
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() {
			defer close(done)
			callSite = diagNextLine()
			g.Result(long)
		}))
		bw := diagNext[*eventloop.BlockingWaitError](t, sink)
		release.open()
		recv(t, done)
		assert.Equal(t, "Result", bw.Call)
		assert.Equal(t, callSite, bw.Site)
	})

	t.Run("nothing is reported when the wait does not block the loop, or the loop is not a debug loop", func(t *testing.T) {
		sink := newDiagSink()
		l := started(t, eventloop.WithDebug(), eventloop.WithErrorHandler(sink.handler))
		plainSink := newDiagSink()
		plain := started(t, eventloop.WithErrorHandler(plainSink.handler))
		other := started(t)
		ended, err := eventloop.Submit(other, value(2))
		require.NoError(t, err)
		_, err = ended.Result(long)
		require.NoError(t, err)
		release := newGate()
		pending, err := eventloop.Submit(other, blocker(nil, release, 1))
		require.NoError(t, err)

		// Await in a task suspends it.
		awaiter, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, pending) })
		require.NoError(t, err)
		diagEventually(t, "the awaiting task to suspend", func() bool { return l.Stats().Suspended == 1 })
		// Waits that do not block: an ended future, a timeout <= 0, the
		// loop's own future (ErrDeadlock), Await in a plain callback
		// (ErrDeadlock).
		checks, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if _, err := ended.Result(long); err != nil {
				return 0, err
			}
			if _, err := ended.Wait(ctx); err != nil {
				return 0, err
			}
			if _, err := pending.Result(0); !errors.Is(err, eventloop.ErrTimeout) {
				return 0, fmt.Errorf("Result(0) on a pending future: %v", err)
			}
			if err := pending.Exception(-1); !errors.Is(err, eventloop.ErrTimeout) {
				return 0, fmt.Errorf("Exception(-1) on a pending future: %v", err)
			}
			if _, err := awaiter.Result(long); !errors.Is(err, eventloop.ErrDeadlock) {
				return 0, fmt.Errorf("Result on the loop's own pending future: %v", err)
			}
			return 0, nil
		})
		require.NoError(t, err)
		_, err = checks.Result(long)
		require.NoError(t, err)
		inCallback := make(chan error, 1)
		require.NoError(t, l.CallSoon(func() {
			_, err := eventloop.Await(context.Background(), pending)
			inCallback <- err
		}))
		assert.ErrorIs(t, recv(t, inCallback), eventloop.ErrDeadlock)

		// A loop without WithDebug blocks without a warning.
		plainDone := make(chan struct{})
		require.NoError(t, plain.CallSoon(func() {
			defer close(plainDone)
			pending.Result(long)
		}))
		// Neither does a goroutine that is not loop work.
		goroutineDone := make(chan struct{})
		go func() {
			defer close(goroutineDone)
			pending.Result(long)
		}()
		time.Sleep(5 * time.Millisecond)
		release.open()
		recv(t, plainDone)
		recv(t, goroutineDone)
		v, err := awaiter.Result(long)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Empty(t, sink.list(), "nothing blocked the debug loop")
		assert.Empty(t, plainSink.list(), "the plain loop does not warn")
	})
}

// The reports' Error methods name what they report.
func TestDiagErrorMessages(t *testing.T) {
	s := &eventloop.SlowTaskError{Func: "pkg.fn", Site: "f.go:3", Held: time.Second}
	assert.Equal(t, "eventloop: pkg.fn (f.go:3) has held the loop for 1s", s.Error())
	s.Finished = true
	assert.Equal(t, "eventloop: pkg.fn (f.go:3) held the loop for 1s", s.Error())
	assert.Equal(t, "eventloop: loop work held the loop for 2s", (&eventloop.SlowTaskError{Held: 2 * time.Second, Finished: true}).Error())

	u := &eventloop.UnobservedError{Err: errors.New("x")}
	assert.Equal(t, "eventloop: a future failed and nobody read its outcome: x", u.Error())
	assert.Equal(t, u.Err, errors.Unwrap(u))

	b := &eventloop.BlockingWaitError{Call: "Wait", Site: "f.go:9"}
	assert.Contains(t, b.Error(), "Wait at f.go:9")
	assert.True(t, strings.HasPrefix(b.Error(), "eventloop: "))
}
