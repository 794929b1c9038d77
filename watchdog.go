package eventloop

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corun-go/eventloop/internal/gid"
)

// WithSlowTaskThreshold reports, to the error handler, every piece of loop
// work that holds the loop longer than d: a task until it returns or
// suspends, a resumed coroutine until it suspends again or returns, a
// callback or timer until it returns. Time spent suspended does not count.
//
// A piece is reported as a *SlowTaskError while it still runs, soon after
// it passes d (within d/4, or 1ms if that is longer; Finished false), and
// again once it lets go of the loop, with the total (Finished true). One
// that passes d and ends before the watchdog sees it gets the second report
// only. The reports name the function, and where it was submitted with
// WithDebug, or else where the function is defined: for a function literal
// passed to Submit, that is next to the call.
//
// The first report comes from the watchdog's goroutine. A handler may call
// Stop or Close there (Close then returns without waiting, as from loop
// work), but must not block.
//
// A watchdog goroutine samples the loop every d/4 (not more often than
// every millisecond) for as long as the loop runs, and the loop reads the
// clock once per piece of work; the benchmark BenchmarkDiagnostics in this
// repository measures what that costs. d <= 0 turns the watchdog off, the
// default, which costs nothing.
func WithSlowTaskThreshold(d time.Duration) Option {
	return optionFunc(func(o *options) {
		if d < 0 {
			d = 0
		}
		o.slow = d
	})
}

// SlowTaskError reports a piece of loop work that held the loop longer than
// the threshold set with WithSlowTaskThreshold. Nothing is wrong with the
// work's outcome: this is a report on the loop's health.
type SlowTaskError struct {
	Func     string        // the function: a task's, a callback's or a timer's
	Site     string        // where it was submitted (file:line) with WithDebug; else where Func is defined
	Held     time.Duration // how long it had held the loop when reported
	Finished bool          // false while it still runs; true once it let go, with Held the total
}

// Error describes the work and how long it held the loop.
func (e *SlowTaskError) Error() string {
	verb := "has held"
	if e.Finished {
		verb = "held"
	}
	what := e.Func
	if what == "" {
		what = "loop work"
	}
	if e.Site != "" {
		what += " (" + e.Site + ")"
	}
	return fmt.Sprintf("eventloop: %s %s the loop for %v", what, verb, e.Held)
}

// watchdog watches a loop for work that holds it too long. The loop marks
// the start and end of each piece of work (begin, end); the watchdog's
// goroutine samples what it marked.
type watchdog struct {
	l    *Loop
	d    time.Duration
	stop chan struct{} // closed when the loop exits
	gone chan struct{} // closed when the goroutine has returned

	// state is n<<2 | reported<<1 | running for the nth piece of work. The
	// loop sets running (begin) and clears both bits (end); the goroutine
	// sets reported on a running piece. Compare-and-swap decides, for a
	// piece that ends as it is found slow, whether both reports are made
	// or neither.
	state atomic.Uint64
	start atomic.Int64   // when the running piece started: nanoseconds since epoch; written by the loop
	fn    atomic.Uintptr // its function's entry PC; written by the loop
	site  atomic.Uintptr // where it was submitted (WithDebug), or 0; written by the loop

	last int64 // the clock reading end took, for the next begin; 0 once stale (the loop went idle). Owned by loop work

	mu sync.Mutex     // held while reporting, so that reports arrive in order
	g  atomic.Uintptr // the goroutine's gid while it runs, else 0

	pmu     sync.Mutex       // guards pending
	pending []*SlowTaskError // final reports the loop left, in order, while the goroutine held mu
	kick    chan struct{}    // buffered(1): the loop left a report in pending
}

const (
	wdRunning  = 1
	wdReported = 2
)

// epoch is the origin of watchdog.start: a monotonic reading.
var epoch = time.Now()

func newWatchdog(l *Loop, d time.Duration) *watchdog {
	return &watchdog{l: l, d: d, stop: make(chan struct{}), gone: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// run samples the loop until stop is closed.
func (w *watchdog) run() {
	w.g.Store(gid.Current())
	defer func() {
		w.g.Store(0) // a later goroutine may get the same gid
		close(w.gone)
	}()
	t := time.NewTicker(max(w.d/4, time.Millisecond))
	defer t.Stop()
	for {
		w.flush()
		select {
		case <-w.stop:
			w.flush()
			return
		case <-w.kick:
			continue // flush it now
		case <-t.C:
		}
		s := w.state.Load()
		if s&(wdRunning|wdReported) != wdRunning {
			continue
		}
		fn, site, start := w.fn.Load(), w.site.Load(), w.start.Load()
		held := time.Since(epoch) - time.Duration(start)
		if held < w.d {
			continue
		}
		w.mu.Lock()
		w.flushLocked()                              // earlier pieces' final reports first
		if w.state.CompareAndSwap(s, s|wdReported) { // else it ended meanwhile
			report(w.l.opts.errorHandler, slowTask(fn, site, held, false))
		}
		w.flushLocked()
		w.mu.Unlock()
	}
}

// flush makes the final reports the loop left, if any.
func (w *watchdog) flush() {
	w.mu.Lock()
	w.flushLocked()
	w.mu.Unlock()
}

// flushLocked makes the final reports the loop left, in order. w.mu must
// be held.
func (w *watchdog) flushLocked() {
	w.pmu.Lock()
	pending := w.pending
	w.pending = nil
	w.pmu.Unlock()
	for _, e := range pending {
		report(w.l.opts.errorHandler, e)
	}
}

// onWatchdog reports whether the caller is l's watchdog goroutine: a
// handler that Closes the loop from there must not wait for it, since the
// loop waits for the watchdog goroutine before it ends.
func (l *Loop) onWatchdog() bool {
	return l.watch != nil && l.watch.g.Load() == gid.Current()
}

// begin marks the start of a piece of work. Called by loop work. The end of
// one piece and the start of the next are moments apart: they share one
// clock reading.
func (w *watchdog) begin(fn, site uintptr) {
	now := w.last
	if now == 0 {
		now = int64(time.Since(epoch))
	}
	w.last = 0
	w.fn.Store(fn)
	w.site.Store(site)
	w.start.Store(now)
	w.state.Store((w.state.Load()>>2+1)<<2 | wdRunning)
}

// end marks the end of the piece of work begun last, unless it has been
// marked already, and reports the total if the piece was slow: reported
// while it ran, or over the threshold by the time it ended between two
// samples. Called by loop work; it never blocks: if the goroutine is busy
// reporting, it leaves the report for the goroutine to make next.
func (w *watchdog) end() {
	for {
		s := w.state.Load()
		if s&wdRunning == 0 {
			return
		}
		if !w.state.CompareAndSwap(s, s&^(wdRunning|wdReported)) {
			continue // the goroutine reported it just now
		}
		now := int64(time.Since(epoch))
		w.last = now
		held := time.Duration(now - w.start.Load())
		if s&wdReported == 0 && held < w.d {
			return
		}
		e := slowTask(w.fn.Load(), w.site.Load(), held, true)
		if !w.mu.TryLock() {
			// The goroutine is reporting, maybe on this piece: it makes
			// this report after its own.
			w.pmu.Lock()
			w.pending = append(w.pending, e)
			w.pmu.Unlock()
			select {
			case w.kick <- struct{}{}:
			default: // a kick is waiting already
			}
			return
		}
		w.flushLocked()
		w.l.reportFromLoop(e)
		w.mu.Unlock()
		w.last = 0 // the handler's time is not the next piece's
		return
	}
}

// slowTask makes the report on a piece of work: fn is its function's entry
// PC, site where it was submitted or 0.
func slowTask(fn, site uintptr, held time.Duration, finished bool) *SlowTaskError {
	e := &SlowTaskError{Held: held, Finished: finished}
	name, file, line := funcAt(fn)
	e.Func = name
	if site != 0 {
		e.Site = siteOf(site)
	} else if file != "" {
		e.Site = fmt.Sprintf("%s:%d", file, line)
	}
	return e
}
