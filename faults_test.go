package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Faults inside user code: panics in every kind of loop work, loop work that
// ends its own loop, and work that ignores its context. For each, the loop
// goes on (or shuts down as the contract says), every future ends, a
// *PanicError carries the value and the stack, and the error handler gets
// exactly the reports expected.

// faultReports is an error handler that records every error it gets.
type faultReports struct {
	mu   sync.Mutex
	errs []error
}

func newFaultReports() *faultReports { return &faultReports{} }

func (r *faultReports) handler(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// list returns the reports so far.
func (r *faultReports) list() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// faultLoop returns a started loop whose error handler is r, closed when the
// test ends.
func faultLoop(t *testing.T, opts ...eventloop.Option) (*eventloop.Loop, *faultReports) {
	t.Helper()
	r := newFaultReports()
	return started(t, append(opts, eventloop.WithErrorHandler(r.handler))...), r
}

// faultIdleLoop is faultLoop for a loop that has not started.
func faultIdleLoop(t *testing.T, opts ...eventloop.Option) (*eventloop.Loop, *faultReports) {
	t.Helper()
	r := newFaultReports()
	return idleLoop(t, append(opts, eventloop.WithErrorHandler(r.handler))...), r
}

// faultPanicError asserts that err is a *PanicError with value v whose stack
// shows the panic in this file, and returns it.
func faultPanicError(t *testing.T, err error, v any) *eventloop.PanicError {
	t.Helper()
	pe := requirePanicError(t, err, v)
	assert.Contains(t, string(pe.Stack), "faults_test.go", "the stack is the one of the panic, taken where it happened")
	assert.Contains(t, pe.Error(), fmt.Sprint(v), "Error() shows the panic value")
	return pe
}

// faultSlog captures what the package logs with log/slog (the error
// handler's own panics, and done callbacks of Go futures).
type faultSlog struct {
	mu      sync.Mutex
	records []faultSlogRecord
}

type faultSlogRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

type faultSlogHandler struct{ s *faultSlog }

func (h faultSlogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h faultSlogHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h faultSlogHandler) WithGroup(string) slog.Handler            { return h }
func (h faultSlogHandler) Handle(_ context.Context, r slog.Record) error {
	rec := faultSlogRecord{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.s.mu.Lock()
	h.s.records = append(h.s.records, rec)
	h.s.mu.Unlock()
	return nil
}

// list returns the records so far.
func (s *faultSlog) list() []faultSlogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]faultSlogRecord(nil), s.records...)
}

// faultCaptureSlog makes the default slog logger record into the returned
// faultSlog until the test ends. The tests of this package do not run in
// parallel with it.
func faultCaptureSlog(t *testing.T) *faultSlog {
	t.Helper()
	s := &faultSlog{}
	old := slog.Default()
	slog.SetDefault(slog.New(faultSlogHandler{s}))
	t.Cleanup(func() { slog.SetDefault(old) })
	return s
}

func TestFaultPanicInATask(t *testing.T) {
	errBoom := errors.New("boom as an error")
	for _, tc := range []struct {
		name  string
		value any
		panic func()
	}{
		{"a string value", "boom in a task", func() { panic("boom in a task") }},
		{"an error value", errBoom, func() { panic(errBoom) }},
		{"an int value", 7, func() { panic(7) }},
	} {
		t.Run("a task that panics with "+tc.name+" ends with a *PanicError and the loop goes on", func(t *testing.T) {
			l, reports := faultLoop(t)
			seen := make(chan error, 1)
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				tc.panic()
				return 1, nil
			})
			require.NoError(t, err)
			f.AddDoneCallback(func(f *eventloop.Future[int]) { seen <- f.Exception(0) })
			v, err := outcomeOf(t, f)
			assert.Zero(t, v, "no value from a task that panicked")
			faultPanicError(t, err, tc.value)
			if e, ok := tc.value.(error); ok {
				assert.ErrorIs(t, err, e, "a *PanicError unwraps an error value")
			}
			faultPanicError(t, receiveWithin(t, seen, "the done callback"), tc.value)
			assert.False(t, f.Cancelled())
			loopGoesOn(t, l)
			assert.Empty(t, reports.list(), "a task's panic is its future's outcome, not a report")
		})
	}

	t.Run("a task that panics with nil ends with a *PanicError holding a *runtime.PanicNilError", func(t *testing.T) {
		l, reports := faultLoop(t)
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic(nil) })
		require.NoError(t, err)
		_, err = outcomeOf(t, f)
		var pe *eventloop.PanicError
		require.ErrorAs(t, err, &pe)
		assert.IsType(t, &runtime.PanicNilError{}, pe.Value, "since Go 1.21 panic(nil) panics with a *runtime.PanicNilError")
		assert.NotEmpty(t, pe.Stack)
		loopGoesOn(t, l)
		assert.Empty(t, reports.list())
	})

	t.Run("many panicking tasks in a row leave the loop working", func(t *testing.T) {
		l, reports := faultLoop(t)
		var fs []*eventloop.Future[int]
		for i := range 100 {
			f, err := eventloop.Submit(l, func(context.Context) (int, error) {
				if i%2 == 0 {
					panic(i)
				}
				return i, nil
			})
			require.NoError(t, err)
			fs = append(fs, f)
		}
		for i, f := range fs {
			v, err := outcomeOf(t, f)
			if i%2 == 0 {
				faultPanicError(t, err, i)
			} else {
				assert.NoError(t, err)
				assert.Equal(t, i, v)
			}
		}
		loopGoesOn(t, l)
		assert.Empty(t, reports.list())
	})
}

func TestFaultPanicInAResumedCoroutine(t *testing.T) {
	suspenders := map[string]func(t *testing.T, l *eventloop.Loop, ctx context.Context) error{
		"Await on a future of its own loop": func(t *testing.T, l *eventloop.Loop, ctx context.Context) error {
			inner, err := eventloop.Submit(l, value(2)) // queued behind this task: Await suspends
			if err != nil {
				return err
			}
			_, err = eventloop.Await(ctx, inner)
			return err
		},
		"Await on a Go future": func(t *testing.T, l *eventloop.Loop, ctx context.Context) error {
			p := eventloop.Go(func(context.Context) (int, error) {
				time.Sleep(time.Minute) // virtual time
				return 2, nil
			})
			_, err := eventloop.Await(ctx, p)
			return err
		},
		"Sleep": func(t *testing.T, l *eventloop.Loop, ctx context.Context) error {
			return eventloop.Sleep(ctx, time.Hour)
		},
		"Sleep(0), a yield": func(t *testing.T, l *eventloop.Loop, ctx context.Context) error {
			return eventloop.Sleep(ctx, 0)
		},
	}
	for name, suspend := range suspenders {
		t.Run("a coroutine that panics after it resumed from "+name+" ends with a *PanicError and the loop goes on", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, reports := faultLoop(t)
				resumed := make(chan bool, 1)
				f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
					if err := suspend(t, l, ctx); err != nil {
						return 0, err
					}
					resumed <- l.InLoop()
					panic("boom after " + name)
				})
				require.NoError(t, err)
				// A bystander suspended across the panic resumes fine.
				bystander, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
					return 5, eventloop.Sleep(ctx, 2*time.Hour)
				})
				require.NoError(t, err)
				// In the bubble a wait with a timeout would time out first
				// (virtual time); a deadlock would make synctest fail instead.
				<-f.Done()
				_, err = f.Result(0)
				assert.True(t, <-resumed, "it resumed on the loop")
				faultPanicError(t, err, "boom after "+name)
				loopGoesOn(t, l)
				<-bystander.Done()
				v, err := bystander.Result(0)
				assert.NoError(t, err, "a coroutine suspended across the panic")
				assert.Equal(t, 5, v)
				assert.Empty(t, reports.list())
			})
		})
	}
}

func TestFaultPanicInPlainCallbacks(t *testing.T) {
	t.Run("a CallSoon callback that panics is reported once and the loop goes on", func(t *testing.T) {
		l, reports := faultLoop(t)
		var after atomic.Bool
		require.NoError(t, l.CallSoon(func() { panic("boom in CallSoon") }))
		require.NoError(t, l.CallSoon(func() { after.Store(true) }))
		loopGoesOn(t, l)
		assert.True(t, after.Load(), "the callback queued after the panicking one ran")
		errs := reports.list()
		require.Len(t, errs, 1, "exactly one report: %v", errs)
		faultPanicError(t, errs[0], "boom in CallSoon")
	})

	t.Run("a CallLater timer that panics is reported once and the loop goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, reports := faultLoop(t)
			start := time.Now()
			var firedAt time.Time
			_, err := l.CallLater(time.Minute, func() { firedAt = time.Now(); panic(errWorkFailed) })
			require.NoError(t, err)
			var later atomic.Bool
			_, err = l.CallLater(2*time.Minute, func() { later.Store(true) })
			require.NoError(t, err)
			time.Sleep(time.Minute)
			synctest.Wait()
			errs := reports.list()
			require.Len(t, errs, 1, "exactly one report: %v", errs)
			faultPanicError(t, errs[0], errWorkFailed)
			assert.ErrorIs(t, errs[0], errWorkFailed, "a *PanicError unwraps an error value")
			assert.Equal(t, time.Minute, firedAt.Sub(start), "it fired on time (virtual); read after the report, which orders it")
			assert.False(t, later.Load())
			time.Sleep(time.Minute)
			synctest.Wait()
			assert.True(t, later.Load(), "the next timer fired after the panic")
			loopGoesOn(t, l)
			assert.Len(t, reports.list(), 1, "one panic, one report")
		})
	})

	t.Run("many panicking callbacks and timers are each reported once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, reports := faultLoop(t)
			const n = 50
			for i := range n {
				require.NoError(t, l.CallSoon(func() { panic(fmt.Sprint("soon ", i)) }))
				_, err := l.CallLater(time.Duration(i)*time.Second, func() { panic(fmt.Sprint("later ", i)) })
				require.NoError(t, err)
			}
			time.Sleep(n * time.Second)
			synctest.Wait()
			errs := reports.list()
			loopGoesOn(t, l)
			got := map[any]int{}
			for _, err := range reports.list() {
				var pe *eventloop.PanicError
				require.ErrorAs(t, err, &pe)
				assert.NotEmpty(t, pe.Stack)
				got[pe.Value]++
			}
			assert.Len(t, errs, 2*n)
			assert.Len(t, got, 2*n, "each panic reported once")
		})
	})
}

func TestFaultPanicInDoneCallbacks(t *testing.T) {
	t.Run("of a loop task: reported once on the loop, the rest still run, the outcome stands", func(t *testing.T) {
		l, reports := faultIdleLoop(t)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		var j journal
		f.AddDoneCallback(func(*eventloop.Future[int]) { j.add("first") })
		f.AddDoneCallback(func(*eventloop.Future[int]) {
			j.add("panicking, inLoop=%v", l.InLoop())
			panic("boom in a done callback")
		})
		f.AddDoneCallback(func(*eventloop.Future[int]) { j.add("third") })
		require.NoError(t, l.Start())
		v, err := outcomeOf(t, f)
		assert.NoError(t, err)
		assert.Equal(t, 1, v, "a done callback's panic does not change the outcome")
		loopGoesOn(t, l)
		assert.Equal(t, []string{"first", "panicking, inLoop=true", "third"}, j.list())
		errs := reports.list()
		require.Len(t, errs, 1, "exactly one report: %v", errs)
		faultPanicError(t, errs[0], "boom in a done callback")
	})

	t.Run("of a Go future: logged with slog, the rest still run, the loop's handlers are not involved", func(t *testing.T) {
		logged := faultCaptureSlog(t)
		l, reports := faultLoop(t)
		release := newGate()
		g := eventloop.Go(func(ctx context.Context) (int, error) { return 3, release.wait(ctx) })
		var j journal
		g.AddDoneCallback(func(*eventloop.Future[int]) { j.add("first") })
		g.AddDoneCallback(func(*eventloop.Future[int]) { panic("boom in a Go done callback") })
		g.AddDoneCallback(func(*eventloop.Future[int]) { j.add("third") })
		last := make(chan struct{})
		g.AddDoneCallback(func(*eventloop.Future[int]) { close(last) })
		// A coroutine awaits it, and resumes normally.
		awaiter, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { return eventloop.Await(ctx, g) })
		require.NoError(t, err)
		waitSuspended(t, l)
		release.open()
		v, err := outcomeOf(t, awaiter)
		assert.NoError(t, err)
		assert.Equal(t, 3, v)
		v, err = outcomeOf(t, g)
		assert.NoError(t, err)
		assert.Equal(t, 3, v)
		// The callbacks run on fn's goroutine: wait until the last one ran.
		waitClosed(t, last, "the last done callback")
		assert.Equal(t, []string{"first", "third"}, j.list())
		records := logged.list()
		require.Len(t, records, 1, "one slog record: %v", records)
		err, _ = records[0].attrs["err"].(error)
		faultPanicError(t, err, "boom in a Go done callback")
		loopGoesOn(t, l)
		assert.Empty(t, reports.list(), "a Go future has no loop: nothing goes to a loop's handler")
	})

	t.Run("of a future cancelled before it started: reported on the canceller, Cancel does not panic", func(t *testing.T) {
		l, reports := faultLoop(t)
		release, busy := occupy(t, l)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		var j journal
		f.AddDoneCallback(func(*eventloop.Future[int]) {
			j.add("panicking, inLoop=%v", l.InLoop())
			panic("boom on the canceller")
		})
		f.AddDoneCallback(func(f *eventloop.Future[int]) { j.add("second sees %v", f.Exception(0)) })
		var cancelled bool
		assert.NotPanics(t, func() { cancelled = f.Cancel() }, "Cancel runs the callbacks and must not pass their panic on")
		assert.True(t, cancelled)
		assert.Equal(t, []string{"panicking, inLoop=false", "second sees " + eventloop.ErrCancelled.Error()}, j.list(),
			"both ran on the canceller before Cancel returned")
		errs := reports.list()
		require.Len(t, errs, 1, "exactly one report, made on the canceller's goroutine: %v", errs)
		faultPanicError(t, errs[0], "boom on the canceller")
		_, err = f.Result(0)
		assert.ErrorIs(t, err, eventloop.ErrCancelled)
		release()
		_, err = outcomeOf(t, busy)
		require.NoError(t, err)
		loopGoesOn(t, l)
		assert.Len(t, reports.list(), 1)
	})

	t.Run("of a future that Close failed on a loop that never ran: reported on the closer, Close returns", func(t *testing.T) {
		r := newFaultReports()
		l := eventloop.New(eventloop.WithErrorHandler(r.handler))
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		g, err := eventloop.Submit(l, value(2))
		require.NoError(t, err)
		f.AddDoneCallback(func(*eventloop.Future[int]) { panic("boom on the closer") })
		var gRan atomic.Bool
		g.AddDoneCallback(func(*eventloop.Future[int]) { gRan.Store(true) })
		assert.NotPanics(t, func() { assert.NoError(t, l.Close()) })
		assert.True(t, isClosed(l.Done()))
		for _, x := range []*eventloop.Future[int]{f, g} {
			_, err := x.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		}
		assert.True(t, gRan.Load(), "the other future's callback ran too")
		errs := r.list()
		require.Len(t, errs, 1, "exactly one report: %v", errs)
		faultPanicError(t, errs[0], "boom on the closer")
	})

	t.Run("added to an ended future: runs at once, reported, AddDoneCallback does not panic", func(t *testing.T) {
		l, reports := faultLoop(t)
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		_, err = outcomeOf(t, f)
		require.NoError(t, err)
		assert.NotPanics(t, func() {
			f.AddDoneCallback(func(*eventloop.Future[int]) { panic("boom at once") })
		})
		errs := reports.list()
		require.Len(t, errs, 1, "reported before AddDoneCallback returned: %v", errs)
		faultPanicError(t, errs[0], "boom at once")
		loopGoesOn(t, l)
		assert.Len(t, reports.list(), 1)
	})
}

// The error handler's own panic is logged with slog and not passed back to
// it; the loop goes on.
func TestFaultPanickingErrorHandler(t *testing.T) {
	logged := faultCaptureSlog(t)
	var mu sync.Mutex
	var got []error
	handled := make(chan struct{}, 16)
	l := eventloop.New(eventloop.WithErrorHandler(func(err error) {
		if _, unread := err.(*eventloop.UnobservedError); unread {
			return // from the garbage collector, maybe another test's
		}
		mu.Lock()
		got = append(got, err)
		mu.Unlock()
		handled <- struct{}{}
		panic(fmt.Sprint("the handler panicked on ", err.(*eventloop.PanicError).Value))
	}))
	require.NoError(t, l.Start())
	t.Cleanup(func() { assert.NoError(t, l.Close()) })

	// 1. A CallSoon callback.
	require.NoError(t, l.CallSoon(func() { panic("from CallSoon") }))
	receiveWithin(t, handled, "the handler, for CallSoon")
	// 2. A timer.
	_, err := l.CallLater(time.Millisecond, func() { panic("from CallLater") })
	require.NoError(t, err)
	receiveWithin(t, handled, "the handler, for CallLater")
	// 3. A done callback on the loop.
	f, err := eventloop.Submit(l, value(1))
	require.NoError(t, err)
	f.AddDoneCallback(func(*eventloop.Future[int]) { panic("from a done callback") })
	receiveWithin(t, handled, "the handler, for a done callback")
	// 4. A done callback run by Cancel on this goroutine: the handler
	// panics here, and Cancel must not pass it on.
	release, busy := occupy(t, l)
	queued, err := eventloop.Submit(l, value(2))
	require.NoError(t, err)
	queued.AddDoneCallback(func(*eventloop.Future[int]) { panic("from a cancelled future's callback") })
	assert.NotPanics(t, func() { assert.True(t, queued.Cancel()) })
	receiveWithin(t, handled, "the handler, for a callback run by Cancel")
	release()
	_, err = outcomeOf(t, busy)
	require.NoError(t, err)
	v, err := outcomeOf(t, f)
	assert.NoError(t, err)
	assert.Equal(t, 1, v)

	loopGoesOn(t, l)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"from CallSoon", "from CallLater", "from a done callback", "from a cancelled future's callback"}
	require.Len(t, got, len(want), "the handler ran once per fault, never for its own panic: %v", got)
	for i, err := range got {
		faultPanicError(t, err, want[i])
	}
	records := logged.list()
	assert.Len(t, records, len(want), "each of the handler's panics is logged with slog once: %v", records)
	for _, r := range records {
		assert.Contains(t, fmt.Sprint(r.attrs), "the handler panicked on", "the record shows the handler's panic")
	}
}

// faultLifecycleWhere lists the kinds of loop work that may call Stop, Close
// or Shutdown on their own loop. arrange makes call run there on l, which
// has not started; host is the task the call runs in or after, if any;
// hostEndsFirst says the host's future has ended before call runs.
var faultLifecycleWhere = []struct {
	name          string
	hostEndsFirst bool
	arrange       func(t *testing.T, l *eventloop.Loop, call func()) (host *eventloop.Future[int])
}{
	{"a CallSoon callback", false, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		require.NoError(t, l.CallSoon(call))
		return nil
	}},
	{"a CallLater timer", false, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		_, err := l.CallLater(time.Millisecond, call)
		require.NoError(t, err)
		return nil
	}},
	{"a done callback of a loop task", true, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		f, err := eventloop.Submit(l, value(1))
		require.NoError(t, err)
		f.AddDoneCallback(func(*eventloop.Future[int]) { call() })
		return f
	}},
	{"a task", false, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) { call(); return 1, nil })
		require.NoError(t, err)
		return f
	}},
	{"a coroutine resumed from Await", false, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			inner, err := eventloop.Submit(l, value(2)) // queued behind this task: Await suspends
			if err != nil {
				return 0, err
			}
			if _, err := eventloop.Await(ctx, inner); err != nil {
				return 0, err
			}
			call()
			return 1, nil
		})
		require.NoError(t, err)
		return f
	}},
	{"a coroutine resumed from Sleep", false, func(t *testing.T, l *eventloop.Loop, call func()) *eventloop.Future[int] {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := eventloop.Sleep(ctx, time.Millisecond); err != nil {
				return 0, err
			}
			call()
			return 1, nil
		})
		require.NoError(t, err)
		return f
	}},
}

func TestFaultLoopWorkEndsItsOwnLoop(t *testing.T) {
	type outcome struct {
		inLoop bool
		err    error
	}
	for _, where := range faultLifecycleWhere {
		t.Run("Stop from "+where.name+" returns at once and the loop drains and stops", func(t *testing.T) {
			l, reports := faultIdleLoop(t)
			out := make(chan outcome, 1)
			host := where.arrange(t, l, func() {
				l.Stop()
				out <- outcome{inLoop: l.InLoop()}
			})
			require.NoError(t, l.Start())
			o := receiveWithin(t, out, "Stop to return")
			require.True(t, o.inLoop, "precondition: the call ran as loop work")
			waitClosed(t, l.Done(), "the loop to stop")
			assert.Equal(t, eventloop.StateStopped, l.State())
			_, err := eventloop.Submit(l, value(0))
			assert.ErrorIs(t, err, eventloop.ErrLoopStopped, "Submit to the stopped loop")
			if host != nil {
				v, err := outcomeOf(t, host)
				assert.NoError(t, err, "the task that stopped its loop finishes")
				assert.Equal(t, 1, v)
			}
			assert.Empty(t, reports.list())
		})

		t.Run("Close from "+where.name+" returns nil at once and the loop closes", func(t *testing.T) {
			l, reports := faultIdleLoop(t)
			out := make(chan outcome, 1)
			host := where.arrange(t, l, func() {
				err := l.Close()
				out <- outcome{inLoop: l.InLoop(), err: err}
			})
			require.NoError(t, l.Start())
			o := receiveWithin(t, out, "Close to return")
			require.True(t, o.inLoop, "precondition: the call ran as loop work")
			assert.NoError(t, o.err, "Close from loop work")
			waitClosed(t, l.Done(), "the loop to close")
			assert.Equal(t, eventloop.StateClosed, l.State())
			_, err := eventloop.Submit(l, value(0))
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "Submit to the closed loop")
			if host != nil {
				v, err := outcomeOf(t, host)
				if where.hostEndsFirst {
					assert.NoError(t, err, "the task had ended before its done callback closed the loop")
					assert.Equal(t, 1, v)
				} else {
					assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "a started task caught by Close ends with ErrLoopClosed, whatever it returned")
				}
			}
			assert.Empty(t, reports.list())
		})

		t.Run("Shutdown from "+where.name+" returns ErrDeadlock and the loop goes on", func(t *testing.T) {
			l, reports := faultIdleLoop(t)
			out := make(chan outcome, 1)
			host := where.arrange(t, l, func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				defer cancel()
				err := l.Shutdown(ctx)
				out <- outcome{inLoop: l.InLoop(), err: err}
			})
			require.NoError(t, l.Start())
			o := receiveWithin(t, out, "Shutdown to return")
			require.True(t, o.inLoop, "precondition: the call ran as loop work")
			assert.ErrorIs(t, o.err, eventloop.ErrDeadlock, "Shutdown from loop work")
			if host != nil {
				v, err := outcomeOf(t, host)
				assert.NoError(t, err)
				assert.Equal(t, 1, v)
			}
			loopGoesOn(t, l)
			assert.Empty(t, reports.list())
		})
	}
}

func TestFaultTaskSubmitsToAClosedLoop(t *testing.T) {
	type rejections struct{ submit, callSoon, callLater error }
	try := func(l *eventloop.Loop) rejections {
		var r rejections
		f, err := eventloop.Submit(l, value(0))
		if f != nil {
			err = errors.New("Submit returned a future with its error")
		}
		r.submit = err
		r.callSoon = l.CallSoon(func() {})
		tm, err := l.CallLater(0, func() {})
		if tm != nil {
			err = errors.New("CallLater returned a timer with its error")
		}
		r.callLater = err
		return r
	}
	check := func(t *testing.T, r rejections, want error) {
		t.Helper()
		assert.ErrorIs(t, r.submit, want, "Submit")
		assert.ErrorIs(t, r.callSoon, want, "CallSoon")
		assert.ErrorIs(t, r.callLater, want, "CallLater")
	}

	t.Run("a task that closed its own loop gets ErrLoopClosed and ends with ErrLoopClosed", func(t *testing.T) {
		l, reports := faultLoop(t)
		out := make(chan rejections, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := l.Close(); err != nil {
				return 0, err
			}
			out <- try(l)
			return 1, nil
		})
		require.NoError(t, err)
		check(t, receiveWithin(t, out, "the task"), eventloop.ErrLoopClosed)
		_, err = outcomeOf(t, f)
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
		waitClosed(t, l.Done(), "the loop to close")
		assert.Empty(t, reports.list())
	})

	t.Run("a task that submits to another loop that is closed gets ErrLoopClosed and its loop goes on", func(t *testing.T) {
		l, reports := faultLoop(t)
		other := eventloop.New()
		require.NoError(t, other.Start())
		require.NoError(t, other.Close())
		f, err := eventloop.Submit(l, func(ctx context.Context) (rejections, error) { return try(other), nil })
		require.NoError(t, err)
		r, err := outcomeOf(t, f)
		require.NoError(t, err)
		check(t, r, eventloop.ErrLoopClosed)
		loopGoesOn(t, l)
		assert.Empty(t, reports.list())
	})

	t.Run("a coroutine whose target loop closed while it was suspended gets ErrLoopClosed on resuming", func(t *testing.T) {
		l, reports := faultLoop(t)
		other := eventloop.New()
		require.NoError(t, other.Start())
		p, resolve := newPromise[int](t)
		f, err := eventloop.Submit(l, func(ctx context.Context) (rejections, error) {
			if _, err := eventloop.Await(ctx, p); err != nil {
				return rejections{}, err
			}
			return try(other), nil
		})
		require.NoError(t, err)
		waitSuspended(t, l)
		require.NoError(t, other.Close())
		resolve(1)
		r, err := outcomeOf(t, f)
		require.NoError(t, err)
		check(t, r, eventloop.ErrLoopClosed)
		loopGoesOn(t, l)
		assert.Empty(t, reports.list())
	})

	t.Run("a task that submits to a stopped loop gets ErrLoopStopped", func(t *testing.T) {
		l, reports := faultLoop(t)
		other := eventloop.New()
		require.NoError(t, other.Start())
		other.Stop()
		waitClosed(t, other.Done(), "the other loop to stop")
		f, err := eventloop.Submit(l, func(ctx context.Context) (rejections, error) { return try(other), nil })
		require.NoError(t, err)
		r, err := outcomeOf(t, f)
		require.NoError(t, err)
		check(t, r, eventloop.ErrLoopStopped)
		require.NoError(t, other.Close())
		loopGoesOn(t, l)
		assert.Empty(t, reports.list())
	})
}

// A coroutine that goes on after its context is cancelled, blocking the
// loop, keeps Close waiting; its future does not end while it runs.
func TestFaultCoroutineIgnoresItsContext(t *testing.T) {
	suspenders := map[string]func(ctx context.Context, never *eventloop.Future[int]) error{
		"running": func(ctx context.Context, _ *eventloop.Future[int]) error {
			<-ctx.Done()
			return nil
		},
		"suspended in Await": func(ctx context.Context, never *eventloop.Future[int]) error {
			_, err := eventloop.Await(ctx, never)
			return err
		},
		"suspended in Await with context.Background()": func(_ context.Context, never *eventloop.Future[int]) error {
			_, err := eventloop.Await(context.Background(), never)
			return err
		},
		"suspended in Sleep": func(ctx context.Context, _ *eventloop.Future[int]) error {
			return eventloop.Sleep(ctx, time.Hour)
		},
	}
	for name, suspend := range suspenders {
		for _, cancelFirst := range []bool{true, false} {
			how := "Close"
			if cancelFirst {
				how = "Cancel, then Close"
			}
			t.Run(how+" on a coroutine "+name+" that ignores its ctx: Close waits for it", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					l, reports := faultLoop(t)
					never, _ := newPromise[int](t)
					ignore := newGate()
					self := make(chan *eventloop.Future[int], 1)
					woke := make(chan error, 1)
					var doneWhileRunning atomic.Bool
					var ctxErr atomic.Value
					f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
						me := <-self
						woke <- suspend(ctx, never)
						<-ctx.Done()
						ctxErr.Store(context.Cause(ctx))
						<-ignore // ignores the cancellation, blocking the loop
						doneWhileRunning.Store(isClosed(me.Done()))
						return 7, nil
					})
					require.NoError(t, err)
					self <- f
					synctest.Wait()
					require.Empty(t, woke, "precondition: the task is blocked or suspended")

					if cancelFirst {
						require.True(t, f.Cancel())
						assert.True(t, f.Cancelled())
						synctest.Wait()
						if name != "running" {
							assert.ErrorIs(t, <-woke, context.Canceled, "Cancel wakes the suspended coroutine")
						}
						assert.Equal(t, eventloop.ErrCancelled, ctxErr.Load(), "context.Cause after Cancel")
						assert.False(t, isClosed(f.Done()), "Done stays open while fn runs")
						_, err = f.Result(0)
						assert.ErrorIs(t, err, eventloop.ErrTimeout, "still pending")
					}

					closed := make(chan error, 1)
					go func() { closed <- l.Close() }()
					time.Sleep(time.Hour) // a while, in virtual time
					synctest.Wait()
					if !cancelFirst {
						if name != "running" {
							assert.ErrorIs(t, <-woke, context.Canceled, "Close wakes the suspended coroutine")
						}
						assert.Equal(t, eventloop.ErrLoopClosed, ctxErr.Load(), "context.Cause after Close")
					}
					assert.Empty(t, closed, "Close waits for the coroutine that ignores its ctx")
					assert.False(t, isClosed(l.Done()), "the loop's Done stays open while fn runs")
					assert.False(t, isClosed(f.Done()), "the future's Done stays open while fn runs")
					assert.Equal(t, eventloop.StateClosed, l.State())
					_, err = eventloop.Submit(l, value(0))
					assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "Submit while Close waits")

					ignore.open()
					synctest.Wait()
					require.Len(t, closed, 1, "Close returns once fn has returned")
					assert.NoError(t, <-closed)
					assert.True(t, isClosed(l.Done()))
					assert.False(t, doneWhileRunning.Load(), "Done never closed while fn ran")
					require.True(t, isClosed(f.Done()))
					v, err := f.Result(0)
					assert.Zero(t, v, "whatever fn returned, there is no value")
					if cancelFirst {
						// The godoc of Cancel says ErrCancelled; those of Submit
						// and Close say a task that returns once its loop has
						// closed ends with ErrLoopClosed. Either is the contract.
						assert.True(t, errors.Is(err, eventloop.ErrCancelled) || errors.Is(err, eventloop.ErrLoopClosed),
							"ErrCancelled or ErrLoopClosed, got %v", err)
						assert.True(t, f.Cancelled())
						t.Logf("Cancel, then Close: the future ended with %v", err)
					} else {
						assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
						assert.False(t, f.Cancelled())
					}
					assert.Empty(t, reports.list())
				})
			})
		}
	}
}

// A coroutine suspended in Await on a future of another loop resumes with
// ErrLoopClosed when that loop closes, and its own loop goes on.
func TestFaultAwaitOnAnotherLoopThatCloses(t *testing.T) {
	for _, tc := range []struct {
		name string
		// awaited returns a pending future of other.
		awaited func(t *testing.T, other *eventloop.Loop) *eventloop.Future[int]
	}{
		{"a task queued on a loop that never ran", func(t *testing.T, other *eventloop.Loop) *eventloop.Future[int] {
			f, err := eventloop.Submit(other, value(1))
			require.NoError(t, err)
			return f
		}},
		{"a task running on the other loop", func(t *testing.T, other *eventloop.Loop) *eventloop.Future[int] {
			require.NoError(t, other.Start())
			running := make(chan struct{}, 1)
			f, err := eventloop.Submit(other, blocker(running, newGate(), 1))
			require.NoError(t, err)
			recv(t, running)
			return f
		}},
		{"a coroutine suspended on the other loop", func(t *testing.T, other *eventloop.Loop) *eventloop.Future[int] {
			require.NoError(t, other.Start())
			f, err := eventloop.Submit(other, func(ctx context.Context) (int, error) {
				return 1, eventloop.Sleep(ctx, time.Hour)
			})
			require.NoError(t, err)
			waitSuspended(t, other)
			return f
		}},
		{"a task queued behind a busy task on the other loop", func(t *testing.T, other *eventloop.Loop) *eventloop.Future[int] {
			require.NoError(t, other.Start())
			occupy(t, other)
			f, err := eventloop.Submit(other, value(1))
			require.NoError(t, err)
			return f
		}},
	} {
		t.Run("Await on "+tc.name+" resumes with ErrLoopClosed when that loop closes", func(t *testing.T) {
			l, reports := faultLoop(t)
			otherReports := newFaultReports()
			other := eventloop.New(eventloop.WithErrorHandler(otherReports.handler))
			awaited := tc.awaited(t, other)
			type result struct {
				v      int
				err    error
				inLoop bool
			}
			out := make(chan result, 1)
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				v, err := eventloop.Await(ctx, awaited)
				out <- result{v, err, l.InLoop()}
				return 5, nil
			})
			require.NoError(t, err)
			waitSuspended(t, l)
			require.Empty(t, out, "precondition: the coroutine is suspended")

			// The closing loop's work may block on a gate that Close cancels;
			// Close returns once it has.
			require.NoError(t, other.Close())
			r := receiveWithin(t, out, "the coroutine to resume")
			assert.ErrorIs(t, r.err, eventloop.ErrLoopClosed, "Await returns the awaited future's outcome")
			assert.Zero(t, r.v)
			assert.True(t, r.inLoop, "it resumed on its own loop")
			v, err := outcomeOf(t, f)
			assert.NoError(t, err, "the awaiting task ends normally")
			assert.Equal(t, 5, v)
			_, err = awaited.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
			loopGoesOn(t, l)
			assert.Empty(t, reports.list())
			assert.Empty(t, otherReports.list())
		})
	}
}

// Close while panicking work is queued: every future ends with an outcome
// the contract allows, and each report is one of a panic that ran.
func TestFaultCloseAfterPanicsEndsEveryFuture(t *testing.T) {
	l, reports := faultLoop(t)
	release, busy := occupy(t, l)
	var fs []*eventloop.Future[int]
	for i := range 10 {
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { panic(i) })
		require.NoError(t, err)
		fs = append(fs, f)
	}
	require.NoError(t, l.CallSoon(func() { panic("queued callback") }))
	go release()
	require.NoError(t, l.Close())
	for _, f := range append(fs, busy) {
		require.True(t, isClosed(f.Done()), "every future ended once Close returned")
		_, err := f.Result(0)
		var pe *eventloop.PanicError
		assert.True(t, errors.Is(err, eventloop.ErrLoopClosed) || errors.As(err, &pe) || err == nil,
			"an outcome the contract allows: %v", err)
	}
	for _, err := range reports.list() {
		faultPanicError(t, err, "queued callback") // if it ran before Close reached it
	}
	assert.LessOrEqual(t, len(reports.list()), 1)
}
