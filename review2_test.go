package eventloop_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests written by the second independent review (commits bd7cb1b, a5f016e,
// 9dc1fd9, aa13f38). Each test fails because of the defect its comment
// describes.

// rev2SlowSink collects *SlowTaskError reports in order, with whether each
// was made on the loop's goroutine.
type rev2SlowSink struct {
	mu   sync.Mutex
	list []*eventloop.SlowTaskError
}

func (s *rev2SlowSink) add(e *eventloop.SlowTaskError) {
	s.mu.Lock()
	s.list = append(s.list, e)
	s.mu.Unlock()
}

func (s *rev2SlowSink) reports() []*eventloop.SlowTaskError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*eventloop.SlowTaskError(nil), s.list...)
}

//go:noinline
func rev2SlowA(context.Context) (int, error) { time.Sleep(30 * time.Millisecond); return 1, nil }

//go:noinline
func rev2SlowB(context.Context) (int, error) { time.Sleep(30 * time.Millisecond); return 2, nil }

//go:noinline
func rev2Quick() {}

// Defect: onWatchdog compares the caller's gid with the watchdog
// goroutine's, stored when the goroutine starts and never cleared. On
// amd64/arm64 a gid is the runtime's g pointer, which the runtime hands to
// the next goroutine started once the watchdog's has exited (internal/gid
// says so: compare it only with a goroutine known to be alive). After the
// loop has exited, a new goroutine that happens to reuse the watchdog's g
// is taken for the watchdog: Shutdown returns ErrDeadlock instead of nil
// ("on a loop that has exited already, Shutdown returns nil"), and Close
// returns without waiting for Done. (watchdog.go:151, onWatchdog;
// watchdog.go:110 sets w.g and nothing clears it.)
func TestRev2ShutdownAfterExitNotTakenForWatchdog(t *testing.T) {
	for round := 0; round < 20; round++ {
		l := eventloop.New(eventloop.WithSlowTaskThreshold(time.Second))
		require.NoError(t, l.Start())
		require.NoError(t, l.Close())
		require.True(t, closedWithin(l.Done()))
		// New goroutines reuse the g of goroutines that exited, the
		// watchdog's among them.
		errs := make(chan error, 64)
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- l.Shutdown(context.Background())
			}()
			runtime.Gosched()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !assert.NoError(t, err, "Shutdown on a loop that has exited, round %d", round) {
				return
			}
		}
	}
}

// Defect: watchdog.end leaves its final report in w.final when the
// goroutine holds w.mu (it is reporting), and w.final holds one report: a
// second piece that passes the threshold and ends before the goroutine has
// flushed the first overwrites it (final.Store), and the first piece's
// final report (Finished true) is lost. A handler that takes a while (a
// log sink, say) while the loop runs two slow pieces is enough.
// (watchdog.go:191-195, end; watchdog.go:138, flush.)
func TestRev2SlowTaskFinalReportNotLost(t *testing.T) {
	const threshold = 5 * time.Millisecond
	var sink rev2SlowSink
	var once sync.Once
	l := started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(func(err error) {
		e, ok := err.(*eventloop.SlowTaskError)
		if !ok {
			return
		}
		sink.add(e)
		if !e.Finished {
			// A slow handler: while it runs, both tasks end.
			once.Do(func() { time.Sleep(150 * time.Millisecond) })
		}
	}))
	fa, err := eventloop.Submit(l, rev2SlowA)
	require.NoError(t, err)
	fb, err := eventloop.Submit(l, rev2SlowB)
	require.NoError(t, err)
	_, err = fa.Result(long)
	require.NoError(t, err)
	_, err = fb.Result(long)
	require.NoError(t, err)
	require.NoError(t, l.Close()) // the watchdog flushes what is left
	finished := map[string]int{}
	for _, r := range sink.reports() {
		if r.Finished {
			finished[r.Func[strings.LastIndex(r.Func, ".")+1:]]++
		}
	}
	assert.Equal(t, 1, finished["rev2SlowA"], "one final report on the first task: %v", sink.reports())
	assert.Equal(t, 1, finished["rev2SlowB"], "one final report on the second task: %v", sink.reports())
}

// Defect: since 9dc1fd9 the next piece of work starts at the clock reading
// end took for the previous one (w.last), but end may then run the error
// handler on the loop (the final report, when w.mu is free) before that
// next piece begins. The handler's time is thus counted in the next piece:
// a quick callback queued behind a slow task is reported as slow, and with
// a handler that takes longer than the threshold every piece behind it is
// (each false report's handler backdates the next). (watchdog.go:159-163,
// begin, with watchdog.go:184-193, end.)
func TestRev2SlowTaskHandlerTimeNotBlamedOnNextPiece(t *testing.T) {
	const threshold = 5 * time.Millisecond
	var sink rev2SlowSink
	var l *eventloop.Loop
	var onLoop sync.Map // reports the handler got on the loop's goroutine
	l = started(t, eventloop.WithSlowTaskThreshold(threshold), eventloop.WithErrorHandler(func(err error) {
		e, ok := err.(*eventloop.SlowTaskError)
		if !ok {
			return
		}
		sink.add(e)
		if e.Finished && l.InLoop() {
			onLoop.Store(e, true)
			time.Sleep(4 * threshold) // a handler that takes its time (logging)
		}
	}))
	for attempt := 0; attempt < 5; attempt++ {
		release, busy := occupy(t, l)
		f, err := eventloop.Submit(l, rev2SlowA)
		require.NoError(t, err)
		for range 3 {
			require.NoError(t, l.CallSoon(rev2Quick))
		}
		done := make(chan struct{})
		require.NoError(t, l.CallSoon(func() { close(done) }))
		release()
		_, err = busy.Result(long)
		require.NoError(t, err)
		_, err = f.Result(long)
		require.NoError(t, err)
		recv(t, done)
		time.Sleep(50 * time.Millisecond) // let any late report arrive
		reportedOnLoop := false
		for _, r := range sink.reports() {
			if _, ok := onLoop.Load(r); ok && strings.HasSuffix(r.Func, "rev2SlowA") {
				reportedOnLoop = true
			}
		}
		if !reportedOnLoop {
			// The final report went to the watchdog's goroutine: the
			// loop's timing is not affected this time. Try again.
			sink.mu.Lock()
			sink.list = nil
			sink.mu.Unlock()
			continue
		}
		for _, r := range sink.reports() {
			assert.False(t, strings.HasSuffix(r.Func, "rev2Quick"),
				"a callback that returns at once is reported as slow: %v (held %v)", r, r.Held)
		}
		return
	}
	t.Skip("the final report never ran on the loop")
}

// Defect: a task that suspends (Await, Sleep) marks the end of its piece
// in park, and since bd7cb1b watchdog.end makes the final report there, on
// the loop, whenever the piece was slow (not only when the watchdog had
// reported it while it ran). The error handler thus runs inside the
// suspending task's park, with the task still current: Await or Sleep in
// the handler, which in a plain callback returns ErrDeadlock (Await) or
// blocks (Sleep), finds a coroutine and suspends it a second time from
// inside its own suspension. The coroutine's one waitNode, still linked on
// the awaited future's list, is pushed onto the other future's list: both
// circular lists are corrupted (data races, a nil dereference in wakeAll
// or remove with the future's mu left locked), the task never resumes and
// Close hangs. (watchdog.go:190-193, end, reached from coroutine.go:259,
// park; the handler is not run as a plain callback there.)
// Run in a child process, since the loop hangs.
func TestRev2HandlerAwaitDuringSuspendIsPlainCallback(t *testing.T) {
	if os.Getenv("EVENTLOOP_REV2_CHILD") == "1" {
		rev2HandlerAwaitDuringSuspend(t)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	runChild(t, "TestRev2HandlerAwaitDuringSuspendIsPlainCallback", "EVENTLOOP_REV2_CHILD=1")
}

func rev2HandlerAwaitDuringSuspend(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	pending := eventloop.Go(func(context.Context) (int, error) { <-release; return 0, nil })
	var l *eventloop.Loop
	handlerErr := make(chan error, 1)
	l = eventloop.New(eventloop.WithSlowTaskThreshold(5*time.Millisecond), eventloop.WithErrorHandler(func(err error) {
		var e *eventloop.SlowTaskError
		if !errors.As(err, &e) || !e.Finished || !l.InLoop() {
			return
		}
		_, aerr := eventloop.Await(context.Background(), pending) // a plain callback: ErrDeadlock
		select {
		case handlerErr <- aerr:
		default:
		}
	}))
	require.NoError(t, l.Start())
	awaited := eventloop.Go(func(context.Context) (int, error) { time.Sleep(50 * time.Millisecond); return 7, nil })
	f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		time.Sleep(20 * time.Millisecond) // slow, then suspends: the final report comes from park
		return eventloop.Await(ctx, awaited)
	})
	require.NoError(t, err)
	v, err := f.Result(5 * time.Second)
	if !assert.NoError(t, err, "the task resumes and ends") || !assert.Equal(t, 7, v) {
		return // the loop is wedged: Close would hang
	}
	select {
	case aerr := <-handlerErr:
		assert.ErrorIs(t, aerr, eventloop.ErrDeadlock, "Await in the error handler on the loop")
	default:
		t.Log("the final report did not run on the loop this time")
	}
	require.NoError(t, l.Close())
}

// Defect (low): Site takes everything after the last "eventloop: submitted
// at " in Stack, though its doc says the site is the last line. A Stack in
// which that text is followed by more lines (one a caller put together
// from two, say, or with lines appended to it) gives a multi-line "site"
// made of stack frames, where "" (or the last line) is right.
// (errors.go:93-102, Site.)
func TestRev2PanicSiteIsLastLineOnly(t *testing.T) {
	p := &eventloop.PanicError{Value: "boom", Stack: []byte(
		"goroutine 7 [running]:\nmain.f()\n\t/src/a.go:3 +0x1\n" +
			"eventloop: submitted at /src/a.go:10\n" +
			"goroutine 9 [running]:\nmain.g()\n\t/src/b.go:4 +0x1\n")}
	site := p.Site()
	assert.NotContains(t, site, "\n", "Site is one line")
	assert.NotContains(t, site, "goroutine", "Site is not a stack frame")
}
