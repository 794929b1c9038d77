package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/require"
)

// Stress with a ledger.
//
// Each round, 16 producers hand one loop a random mix of work (tasks that
// return a value, fail or panic; coroutines that Sleep and Await futures of
// the same loop, of a second loop and of Go; CallSoon callbacks; CallLater
// timers, some stopped; Cancel of random futures) while a controller ends
// the loop at a random moment with Stop, Close or Shutdown under a short
// random deadline. A ledger records every attempt, whether it was accepted
// or rejected, and everything that ran; once the round is over every entry
// is checked against what the contract allows for the way the loop ended.
//
// A round is decided by its seed (math/rand/v2), up to the scheduling of
// goroutines, which no seed controls: a failure prints the seed, and
//
//	EVENTLOOP_STRESS_SEED=<seed> go test -race -run TestStressLedger .
//
// replays that round (repeat with -count=N: a race may need a few tries).
// EVENTLOOP_STRESS_ROUNDS=<n> runs n rounds instead of the default.

const (
	stressSeedEnv   = "EVENTLOOP_STRESS_SEED"
	stressRoundsEnv = "EVENTLOOP_STRESS_ROUNDS"
	stressProducers = 16
)

func TestStressLedger(t *testing.T) {
	if s := os.Getenv(stressSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "%s must be a seed printed by a failed round", stressSeedEnv)
		var seen stressSeen
		stressRound(t, seed, &seen)
		t.Logf("seed %d: %s", seed, seen.String())
		return
	}
	rounds := 300
	if testing.Short() {
		rounds = 10
	}
	if s := os.Getenv(stressRoundsEnv); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, stressRoundsEnv)
		rounds = n
	}
	base := uint64(time.Now().UnixNano())
	var seen stressSeen
	for i := range rounds {
		if !stressRound(t, base+uint64(i), &seen) {
			return // the first failed round says it all; the rest would repeat it
		}
	}
	t.Logf("%d rounds from seed %d: %s", rounds, base, seen.String())
}

// stressSeen counts what the rounds saw, to show what they exercised
// (go test -v).
type stressSeen struct {
	mu     sync.Mutex
	counts map[string]int
}

func (s *stressSeen) add(what string, n int) {
	if s == nil || n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make(map[string]int)
	}
	s.counts[what] += n
}

func (s *stressSeen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.counts))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n\t%s: %d", k, s.counts[k])
	}
	return b.String()
}

// stressEnd is how the controller ends the loop.
type stressEnd int

const (
	stressByStop     stressEnd = iota // Stop, then wait for Done
	stressByClose                     // Close
	stressByShutdown                  // Shutdown with a short random deadline
)

func (e stressEnd) String() string {
	return [...]string{"Stop", "Close", "Shutdown"}[e]
}

// stressErrInterrupted is what a coroutine returns when an Await or Sleep
// was cut short by its context. Such a task was cancelled or caught by
// Close, so its future must end with ErrCancelled or ErrLoopClosed instead:
// stressErrInterrupted is never an outcome.
var stressErrInterrupted = errors.New("stress: interrupted")

// stressLedger is one round: the loops, what the controller did, and every
// attempt the producers made.
type stressLedger struct {
	seed    uint64
	end     stressEnd
	late    bool // the loop started only after producers began submitting
	bounded bool // WithQueueCapacity: ErrQueueFull is a possible rejection

	l, other *eventloop.Loop // other: a second loop whose futures coroutines of l await

	// What the controller has done, each set before the call it names
	// (…Called) or once it has returned (…Returned).
	stopCalled     atomic.Bool // Stop or Shutdown: ErrLoopStopped is possible from now
	closeCalled    atomic.Bool // Close or Shutdown: ErrLoopClosed is possible from now
	endReturned    atomic.Bool // Stop, Close or Shutdown returned: nothing is accepted from now
	closeReturned  atomic.Bool // Close returned, or Shutdown did after closing: ErrLoopStopped is over
	closedByUs     atomic.Bool // Close ran, or Shutdown closed the loop at its deadline
	loopWorkRuns   atomic.Int64
	attempts       atomic.Int64
	accepted       atomic.Int64
	rejected       atomic.Int64
	shutdownResult error // what Shutdown returned

	mu         sync.Mutex
	tasks      []*stressTask  // accepted tasks, for Await and Cancel to pick from
	timers     []*stressTimer // accepted timers, for Stop to pick from
	all        []stressEntry  // every attempt
	violations []string
	nViolation int
}

// stressEntry is one attempt in the ledger.
type stressEntry struct {
	task  *stressTask
	call  *stressCall
	timer *stressTimer
}

// stressTask is a Submit attempt.
type stressTask struct {
	id       int64
	kind     string // "value", "error", "panic" or "coroutine"
	err      error  // what it returns, for kind "error"
	panicVal string // what it panics with, for kind "panic"
	steps    []stressStep
	probe    bool                                    // the body looks at its future's Done (which takes the future off its fast path)
	f        atomic.Pointer[eventloop.Future[int64]] // set once Submit accepted it
	rejected error                                   // Submit's error; written before the ledger is read

	entered, exited    atomic.Int32 // the body began / returned (or panicked)
	interrupted        atomic.Bool  // an Await or Sleep returned because ctx ended
	cause              atomic.Value // context.Cause of ctx once interrupted
	cancelTrue         atomic.Int32 // Cancel calls that returned true
	cancelledUnstarted atomic.Bool  // a Cancel returned true, the future was done and the body had not begun
	callbacksAdded     atomic.Int32
	callbacksRun       atomic.Int32
	observed           atomic.Pointer[stressOutcome] // the first outcome an observer got
}

// stressStep is one thing a coroutine does: Sleep for sleep, Await await,
// or Cancel cancel.
type stressStep struct {
	sleep  time.Duration
	await  *eventloop.Future[int64]
	cancel *stressTask
}

// stressCall is a CallSoon attempt.
type stressCall struct {
	rejected error
	ran      atomic.Int32
}

// stressTimer is a CallLater attempt.
type stressTimer struct {
	d        time.Duration
	tm       *eventloop.Timer
	rejected error
	ran      atomic.Int32
	stopTrue atomic.Int32 // Timer.Stop calls that returned true
}

// violation records a broken promise; safe from any goroutine.
func (r *stressLedger) violation(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nViolation++
	if len(r.violations) < 30 {
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
}

// stressRound runs one round and reports whether it passed.
func stressRound(t *testing.T, seed uint64, seen *stressSeen) bool {
	t.Helper()
	failedBefore := t.Failed()
	rng := rand.New(rand.NewPCG(seed, 0))
	r := &stressLedger{
		seed:    seed,
		end:     stressEnd(rng.IntN(3)),
		late:    rng.IntN(5) == 0,
		bounded: rng.IntN(4) == 0,
	}
	var opts []eventloop.Option
	if r.bounded {
		opts = append(opts, eventloop.WithQueueCapacity(8+rng.IntN(57)))
	}
	// A round that hangs is a failure too; panic, which dumps every
	// goroutine, rather than wait for go test's own timeout.
	watchdog := time.AfterFunc(2*time.Minute, func() {
		panic(fmt.Sprintf("stress round with seed %d (%s) hung; replay with %s=%d", seed, r.end, stressSeedEnv, seed))
	})
	defer watchdog.Stop()

	r.l = eventloop.New(opts...)
	r.other = eventloop.New()
	label := fmt.Sprintf("stress seed %d", seed)
	otherLabel := label + " (other loop)"
	start := func(l *eventloop.Loop, label string) {
		pprof.Do(context.Background(), pprof.Labels(stressLoopLabel, label), func(context.Context) {
			if err := l.Start(); err != nil {
				r.violation("Start: %v", err)
			}
		})
	}
	start(r.other, otherLabel)
	if !r.late {
		start(r.l, label)
	}

	ops := make([]int, stressProducers)
	total := 0
	for i := range ops {
		ops[i] = 40 + rng.IntN(120)
		total += ops[i]
	}
	startAt := int64(rng.IntN(total/4 + 1)) // attempts before a late loop starts
	endAt := startAt + int64(rng.IntN(total+1))
	deadline := time.Duration(rng.IntN(6000)) * time.Microsecond // for Shutdown

	var wg sync.WaitGroup
	var producing atomic.Int32
	producing.Store(stressProducers)
	for i := range stressProducers {
		prng := rand.New(rand.NewPCG(seed, uint64(i+1)))
		wg.Go(func() {
			defer producing.Add(-1)
			r.produce(prng, ops[i])
		})
	}

	// The controller.
	waitFor := func(n int64) {
		for r.attempts.Load() < n && producing.Load() > 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
	if r.late {
		waitFor(startAt)
		start(r.l, label)
	}
	waitFor(endAt)
	switch r.end {
	case stressByStop:
		r.stopCalled.Store(true)
		r.l.Stop()
		r.endReturned.Store(true)
		if !closedWithin(r.l.Done()) {
			r.violation("Done was not closed within %v of Stop: accepted work did not drain", long)
		}
	case stressByClose:
		r.closeCalled.Store(true)
		r.closedByUs.Store(true)
		if err := r.l.Close(); err != nil {
			r.violation("Close returned %v", err)
		}
		r.endReturned.Store(true)
		r.closeReturned.Store(true)
	case stressByShutdown:
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		r.stopCalled.Store(true)
		r.closeCalled.Store(true)
		r.shutdownResult = r.l.Shutdown(ctx)
		cancel()
		r.endReturned.Store(true)
		switch {
		case r.shutdownResult == nil:
			if s := r.l.State(); s != eventloop.StateStopped {
				r.violation("Shutdown returned nil and left the loop %v, want stopped", s)
			}
		case errors.Is(r.shutdownResult, context.DeadlineExceeded):
			r.closedByUs.Store(true)
			r.closeReturned.Store(true)
			if s := r.l.State(); s != eventloop.StateClosed {
				r.violation("Shutdown returned %v and left the loop %v, want closed", r.shutdownResult, s)
			}
		default:
			r.violation("Shutdown returned %v, want nil or context.DeadlineExceeded", r.shutdownResult)
		}
	}
	// Whatever ended it, the loop has exited now: under Stop (and a
	// Shutdown that drained in time) every accepted piece of work has
	// ended before Done was closed; under Close, Close waited for it.
	if !isClosed(r.l.Done()) {
		r.violation("Done is not closed once %s has returned (and Done was awaited after Stop)", r.end)
	}
	ranAtDone := r.loopWorkRuns.Load()
	r.checkEnded("when Done was closed")
	wg.Wait()

	// After the round: Close returns, Done is closed, nothing of the loop
	// runs any more and no goroutine of it remains.
	if err := r.l.Close(); err != nil {
		r.violation("the final Close returned %v", err)
	}
	if !isClosed(r.l.Done()) {
		r.violation("Done is not closed once the final Close has returned")
	}
	if s := r.l.State(); s != eventloop.StateClosed {
		r.violation("State is %v after Close, want closed", s)
	}
	if err := r.other.Close(); err != nil {
		r.violation("Close of the other loop returned %v", err)
	}
	r.checkLedger(seen)
	if n := r.loopWorkRuns.Load(); n != ranAtDone {
		r.violation("%d pieces of loop work ran after Done was closed", n-ranAtDone)
	}
	stressNoLoopGoroutines(t, label)
	stressNoLoopGoroutines(t, otherLabel)

	if r.nViolation == 0 && t.Failed() == failedBefore {
		return true
	}
	how := r.end.String()
	if r.end == stressByShutdown {
		how += fmt.Sprintf(" (it returned %v)", r.shutdownResult)
	}
	t.Errorf("stress round with seed %d: ended by %s, loop started late: %v, bounded queue: %v; "+
		"%d attempts, %d accepted, %d rejected; %d broken promises:\n\t%s\nreplay with %s=%d",
		seed, how, r.late, r.bounded,
		r.attempts.Load(), r.accepted.Load(), r.rejected.Load(), r.nViolation,
		strings.Join(r.violations, "\n\t"), stressSeedEnv, seed)
	return false
}

// produce makes n attempts of random kinds.
func (r *stressLedger) produce(rng *rand.Rand, n int) {
	for range n {
		switch p := rng.IntN(100); {
		case p < 27:
			r.submit(rng, false)
		case p < 47:
			r.submit(rng, true)
		case p < 60:
			r.callSoon()
		case p < 73:
			r.callLater(rng)
		case p < 84:
			if tk := r.pickTask(rng); tk != nil {
				r.cancel(tk, rng.IntN(2) == 0)
			}
		case p < 90:
			r.stopOne(rng)
		default:
			r.observe(rng)
		}
		if rng.IntN(8) == 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Microsecond) // spread the attempts over time
		}
	}
}

// checkRejection records a rejection, or a violation if err is not one the
// contract allows: endReturned and closeReturned are what the controller had
// done before the attempt began.
func (r *stressLedger) checkRejection(what string, err error, endReturned, closeReturned bool) {
	r.rejected.Add(1)
	switch {
	case errors.Is(err, eventloop.ErrLoopStopped):
		if !r.stopCalled.Load() {
			r.violation("%s rejected with %v before Stop or Shutdown was called", what, err)
		}
		if closeReturned {
			r.violation("%s rejected with %v after the loop was closed, want ErrLoopClosed", what, err)
		}
	case errors.Is(err, eventloop.ErrLoopClosed):
		if !r.closeCalled.Load() {
			r.violation("%s rejected with %v before Close or Shutdown was called", what, err)
		}
	case errors.Is(err, eventloop.ErrQueueFull):
		if !r.bounded {
			r.violation("%s rejected with %v by an unbounded queue", what, err)
		}
		if endReturned {
			r.violation("%s rejected with %v after the loop ended, want ErrLoopStopped or ErrLoopClosed", what, err)
		}
	default:
		r.violation("%s rejected with %v", what, err)
	}
}

// accept records an acceptance, or a violation if the loop had ended
// before the attempt began.
func (r *stressLedger) accept(what string, endReturned bool) {
	r.accepted.Add(1)
	if endReturned {
		r.violation("%s accepted after %s returned", what, r.end)
	}
}

// submit attempts a Submit: a plain task, or a coroutine.
func (r *stressLedger) submit(rng *rand.Rand, coroutine bool) {
	id := r.attempts.Add(1)
	tk := &stressTask{id: id, probe: rng.IntN(2) == 0}
	callback := rng.IntN(10) < 7 // the rest end on the fast path, unwatched
	switch p := rng.IntN(100); {
	case coroutine:
		tk.kind = "coroutine"
		for range 1 + rng.IntN(3) {
			tk.steps = append(tk.steps, r.step(rng))
		}
	case p < 60:
		tk.kind = "value"
	case p < 85:
		tk.kind = "error"
		tk.err = fmt.Errorf("stress: task %d failed", id)
	default:
		tk.kind = "panic"
		tk.panicVal = fmt.Sprintf("stress: task %d panicked", id)
	}
	endReturned, closeReturned := r.endReturned.Load(), r.closeReturned.Load()
	f, err := eventloop.Submit(r.l, r.body(tk))
	if (f == nil) == (err == nil) {
		r.violation("Submit of task %d returned future %p and error %v: want exactly one", id, f, err)
	}
	if err != nil {
		tk.rejected = err
		r.checkRejection(fmt.Sprintf("Submit of task %d", id), err, endReturned, closeReturned)
		r.record(stressEntry{task: tk})
		return
	}
	tk.f.Store(f)
	r.accept(fmt.Sprintf("Submit of task %d", id), endReturned)
	if callback {
		r.addCallback(tk)
	}
	r.mu.Lock()
	r.tasks = append(r.tasks, tk)
	r.all = append(r.all, stressEntry{task: tk})
	r.mu.Unlock()
}

// step picks a coroutine step: a short Sleep (0 yields), or an Await on an
// accepted future of this loop (made before this task, so awaits never form
// a cycle), on a task of the other loop, or on a Go future.
func (r *stressLedger) step(rng *rand.Rand) stressStep {
	short := func() time.Duration { return time.Duration(rng.IntN(1500)) * time.Microsecond }
	switch rng.IntN(5) {
	case 0:
		return stressStep{sleep: short()}
	case 4:
		if tk := r.pickTask(rng); tk != nil {
			return stressStep{cancel: tk}
		}
		return stressStep{sleep: 0}
	case 1:
		d := short()
		f, err := eventloop.Submit(r.other, func(ctx context.Context) (int64, error) {
			return -1, eventloop.Sleep(ctx, d)
		})
		if err != nil {
			r.violation("Submit to the other loop, which runs until the round is over: %v", err)
			return stressStep{sleep: d}
		}
		return stressStep{await: f}
	case 2:
		d := short()
		return stressStep{await: eventloop.Go(func(ctx context.Context) (int64, error) {
			return -2, eventloop.Sleep(ctx, d) // blocks Go's goroutine
		})}
	default:
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.tasks) == 0 {
			return stressStep{sleep: 0}
		}
		return stressStep{await: r.tasks[rng.IntN(len(r.tasks))].f.Load()}
	}
}

// body returns tk's function. It checks, as it runs, that it runs at most
// once and never once its future has ended, that Done is not closed while
// it runs, and that Await returns the outcome of the future it awaited.
func (r *stressLedger) body(tk *stressTask) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		r.loopWorkRuns.Add(1)
		if tk.entered.Add(1) != 1 {
			r.violation("task %d ran twice", tk.id)
		}
		if tk.cancelledUnstarted.Load() {
			r.violation("task %d began after Cancel returned true and ended it unstarted", tk.id)
		}
		if f := tk.f.Load(); tk.probe && f != nil && isClosed(f.Done()) {
			r.violation("task %d began after its future ended", tk.id)
		}
		defer func() {
			if f := tk.f.Load(); tk.probe && f != nil && isClosed(f.Done()) {
				r.violation("task %d: Done was closed while its function still ran", tk.id)
			}
			tk.exited.Add(1)
		}()
		switch tk.kind {
		case "value":
			return tk.id, nil
		case "error":
			return 0, tk.err
		case "panic":
			panic(tk.panicVal)
		}
		for _, st := range tk.steps {
			var err error
			if st.cancel != nil {
				r.cancel(st.cancel, true)
				continue
			}
			if st.await == nil {
				err = eventloop.Sleep(ctx, st.sleep)
			} else {
				var v int64
				v, err = eventloop.Await(ctx, st.await)
				if ctx.Err() == nil {
					// Await returned the outcome of the future it awaited.
					if !isClosed(st.await.Done()) {
						r.violation("task %d: Await returned (%v, %v) on a pending future", tk.id, v, err)
					} else if v2, err2 := st.await.Result(0); v2 != v || err2 != err {
						r.violation("task %d: Await returned (%v, %v), the future ended with (%v, %v)", tk.id, v, err, v2, err2)
					}
					err = nil
				}
			}
			r.loopWorkRuns.Add(1) // resumed
			if err != nil || ctx.Err() != nil {
				if ctx.Err() == nil {
					r.violation("task %d: Sleep returned %v with its context alive", tk.id, err)
				}
				tk.cause.Store(stressCause{context.Cause(ctx)})
				tk.interrupted.Store(true)
				return 0, stressErrInterrupted
			}
		}
		return tk.id, nil
	}
}

// stressCause wraps an error for atomic.Value, which wants one concrete
// type.
type stressCause struct{ err error }

// addCallback adds a done callback to tk's future that checks the future has
// ended when it runs and counts its runs.
func (r *stressLedger) addCallback(tk *stressTask) {
	tk.callbacksAdded.Add(1)
	tk.f.Load().AddDoneCallback(func(f *eventloop.Future[int64]) {
		tk.callbacksRun.Add(1)
		if !isClosed(f.Done()) {
			r.violation("a done callback of task %d ran before Done was closed", tk.id)
		}
		if _, err := f.Result(0); errors.Is(err, eventloop.ErrTimeout) {
			r.violation("a done callback of task %d ran before the outcome was set", tk.id)
		}
	})
}

// callSoon attempts a CallSoon.
func (r *stressLedger) callSoon() {
	id := r.attempts.Add(1)
	c := &stressCall{}
	endReturned, closeReturned := r.endReturned.Load(), r.closeReturned.Load()
	err := r.l.CallSoon(func() {
		r.loopWorkRuns.Add(1)
		c.ran.Add(1)
	})
	if err != nil {
		c.rejected = err
		r.checkRejection(fmt.Sprintf("CallSoon %d", id), err, endReturned, closeReturned)
	} else {
		r.accept(fmt.Sprintf("CallSoon %d", id), endReturned)
	}
	r.record(stressEntry{call: c})
}

// callLater attempts a CallLater, due at once or within 3ms, and stops some
// timers at once.
func (r *stressLedger) callLater(rng *rand.Rand) {
	id := r.attempts.Add(1)
	tt := &stressTimer{}
	if rng.IntN(3) > 0 {
		tt.d = time.Duration(rng.IntN(3000)) * time.Microsecond
	}
	endReturned, closeReturned := r.endReturned.Load(), r.closeReturned.Load()
	tm, err := r.l.CallLater(tt.d, func() {
		r.loopWorkRuns.Add(1)
		tt.ran.Add(1)
		if tt.stopTrue.Load() != 0 {
			r.violation("timer %d ran after Stop returned true", id)
		}
	})
	if (tm == nil) == (err == nil) {
		r.violation("CallLater %d returned timer %p and error %v: want exactly one", id, tm, err)
	}
	if err != nil {
		tt.rejected = err
		r.checkRejection(fmt.Sprintf("CallLater %d", id), err, endReturned, closeReturned)
		r.record(stressEntry{timer: tt})
		return
	}
	r.accept(fmt.Sprintf("CallLater %d", id), endReturned)
	tt.tm = tm
	if rng.IntN(4) == 0 && tm.Stop() {
		tt.stopTrue.Add(1)
	}
	r.mu.Lock()
	r.timers = append(r.timers, tt)
	r.all = append(r.all, stressEntry{timer: tt})
	r.mu.Unlock()
}

// record adds a rejected attempt (or a callback) to the ledger.
func (r *stressLedger) record(e stressEntry) {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
}

// pickTask returns a random accepted task, or nil if there is none yet.
func (r *stressLedger) pickTask(rng *rand.Rand) *stressTask {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tasks) == 0 {
		return nil
	}
	return r.tasks[rng.IntN(len(r.tasks))]
}

// cancel cancels tk, first adding a done callback if asked, racing whatever
// the loop is doing with it. Producers call it, and so do coroutines (whose
// done callbacks then run inside loop work).
func (r *stressLedger) cancel(tk *stressTask, addCallback bool) {
	if addCallback {
		r.addCallback(tk)
	}
	f := tk.f.Load()
	if !f.Cancel() {
		return
	}
	tk.cancelTrue.Add(1)
	// Done already closed with the body not begun: Cancel ended the task
	// before it started, so it must never run. (A task the loop had
	// claimed ends only when its function returns, after entered is set.)
	if isClosed(f.Done()) && tk.entered.Load() == 0 {
		tk.cancelledUnstarted.Store(true)
	}
}

// observe waits a little for a random task's outcome, as a producer
// would, with Result, Wait or Await (which blocks like Wait off the loop).
// An outcome it gets must be the one the future ends with; Done must be
// closed by then.
func (r *stressLedger) observe(rng *rand.Rand) {
	tk := r.pickTask(rng)
	if tk == nil {
		return
	}
	f := tk.f.Load()
	d := time.Duration(rng.IntN(300)) * time.Microsecond
	var v int64
	var err error
	switch rng.IntN(3) {
	case 0:
		v, err = f.Result(d)
	case 1:
		ctx, cancel := context.WithTimeout(context.Background(), d)
		v, err = f.Wait(ctx)
		cancel()
	default:
		ctx, cancel := context.WithTimeout(context.Background(), d)
		v, err = eventloop.Await(ctx, f)
		cancel()
	}
	if err == eventloop.ErrTimeout || err == context.DeadlineExceeded {
		return // still pending then; it may have ended since
	}
	if !isClosed(f.Done()) {
		r.violation("task %d: an observer got (%v, %v) while Done was open", tk.id, v, err)
	}
	tk.observed.CompareAndSwap(nil, &stressOutcome{v, err})
}

// stressOutcome is an outcome an observer saw.
type stressOutcome struct {
	v   int64
	err error
}

// stopOne stops a random accepted timer.
func (r *stressLedger) stopOne(rng *rand.Rand) {
	r.mu.Lock()
	if len(r.timers) == 0 {
		r.mu.Unlock()
		return
	}
	tt := r.timers[rng.IntN(len(r.timers))]
	r.mu.Unlock()
	if tt.tm.Stop() {
		tt.stopTrue.Add(1)
	}
}

// checkEnded checks that every task accepted so far has ended: run when
// Done has been closed.
func (r *stressLedger) checkEnded(when string) {
	r.mu.Lock()
	tasks := append([]*stressTask(nil), r.tasks...)
	r.mu.Unlock()
	for _, tk := range tasks {
		if !isClosed(tk.f.Load().Done()) {
			r.violation("task %d (%s) has not ended %s", tk.id, tk.kind, when)
		}
	}
}

// checkLedger checks every attempt against the contract, once the round is
// over.
func (r *stressLedger) checkLedger(seen *stressSeen) {
	r.mu.Lock()
	all := r.all
	r.mu.Unlock()
	if n := int64(len(all)); n != r.attempts.Load() {
		r.violation("the ledger has %d entries for %d attempts", n, r.attempts.Load())
	}
	if a, rj, n := r.accepted.Load(), r.rejected.Load(), r.attempts.Load(); a+rj != n {
		r.violation("%d accepted + %d rejected != %d attempts", a, rj, n)
	}
	// Under Stop, and a Shutdown that drained in time, accepted work all
	// runs; Close (directly or at Shutdown's deadline) may cut it short.
	drained := !r.closedByUs.Load()
	how := r.end.String()
	if r.end == stressByShutdown {
		how += fmt.Sprintf(" (%v)", r.shutdownResult)
	}
	seen.add("rounds ended by "+how, 1)
	seen.add("attempts", int(r.attempts.Load()))
	seen.add("accepted", int(r.accepted.Load()))
	seen.add("rejected", int(r.rejected.Load()))
	for _, e := range all {
		switch {
		case e.task != nil:
			r.checkTask(e.task, drained, seen)
		case e.call != nil:
			c := e.call
			if c.rejected == nil {
				seen.add(fmt.Sprintf("accepted CallSoon callbacks that ran %d times", c.ran.Load()), 1)
			}
			switch n := c.ran.Load(); {
			case c.rejected != nil && n != 0:
				r.violation("a CallSoon rejected with %v ran %d times", c.rejected, n)
			case n > 1:
				r.violation("a CallSoon callback ran %d times", n)
			case c.rejected == nil && drained && n != 1:
				r.violation("a CallSoon callback accepted before %s never ran", r.end)
			}
		case e.timer != nil:
			tt := e.timer
			n, stops := tt.ran.Load(), tt.stopTrue.Load()
			if tt.rejected == nil {
				seen.add(fmt.Sprintf("accepted timers (due at once: %v, stopped: %v) that ran %d times", tt.d == 0, stops > 0, n), 1)
			}
			switch {
			case tt.rejected != nil && n != 0:
				r.violation("a CallLater rejected with %v ran %d times", tt.rejected, n)
			case n > 1:
				r.violation("a timer ran %d times", n)
			case stops > 1:
				r.violation("Stop of one timer returned true %d times", stops)
			case stops == 1 && n != 0:
				r.violation("a timer ran and Stop returned true for it")
			case tt.rejected == nil && drained && tt.d == 0 && stops == 0 && n != 1:
				r.violation("a timer due at once, accepted before %s and not stopped, never ran", r.end)
			}
		}
	}
}

// checkTask checks one Submit attempt. drained says every accepted task
// should have run (or been cancelled before it started).
func (r *stressLedger) checkTask(tk *stressTask, drained bool, seen *stressSeen) {
	entered, exited := tk.entered.Load(), tk.exited.Load()
	if tk.rejected != nil {
		seen.add(fmt.Sprintf("tasks rejected with %v", tk.rejected), 1)
		if entered != 0 {
			r.violation("task %d was rejected with %v and ran", tk.id, tk.rejected)
		}
		return
	}
	f := tk.f.Load()
	if !isClosed(f.Done()) {
		r.violation("task %d (%s) never ended", tk.id, tk.kind)
		return
	}
	v, err := f.Result(0)
	outcome := "a value"
	var pe *eventloop.PanicError
	switch {
	case errors.As(err, &pe):
		outcome = "a panic"
	case err != nil && strings.HasPrefix(err.Error(), "stress:"):
		outcome = "an error"
	case err != nil:
		outcome = err.Error()
	}
	seen.add(fmt.Sprintf("%s tasks that ran %d times ended with %s", tk.kind, entered, outcome), 1)
	if tk.interrupted.Load() {
		seen.add("coroutines interrupted in Await or Sleep", 1)
	}
	if tk.cancelledUnstarted.Load() {
		seen.add("tasks Cancel ended before they started", 1)
	}
	// The outcome is stable, however it is read.
	if v2, err2 := f.Result(0); v2 != v || err2 != err {
		r.violation("task %d: Result returned (%v, %v), then (%v, %v)", tk.id, v, err, v2, err2)
	}
	if v2, err2 := f.Wait(context.Background()); v2 != v || err2 != err {
		r.violation("task %d: Result returned (%v, %v), Wait (%v, %v)", tk.id, v, err, v2, err2)
	}
	if err2 := f.Exception(0); err2 != err {
		r.violation("task %d: Result returned error %v, Exception %v", tk.id, err, err2)
	}
	if o := tk.observed.Load(); o != nil {
		seen.add("tasks whose outcome an observer got while the round ran", 1)
	}
	if o := tk.observed.Load(); o != nil && (o.v != v || o.err != err) {
		r.violation("task %d: an observer got (%v, %v), the future ended with (%v, %v)", tk.id, o.v, o.err, v, err)
	}
	if f.Done() != f.Done() {
		r.violation("task %d: Done returned two channels", tk.id)
	}
	if added, ran := tk.callbacksAdded.Load(), tk.callbacksRun.Load(); added != ran {
		r.violation("task %d: %d done callbacks added, %d ran", tk.id, added, ran)
	}
	if entered > 1 || exited != entered {
		r.violation("task %d: its function began %d times and returned %d times", tk.id, entered, exited)
	}
	if tk.cancelledUnstarted.Load() && entered != 0 {
		r.violation("task %d ran though Cancel returned true and ended it before it started", tk.id)
	}
	cancelled := tk.cancelTrue.Load() > 0
	if f.Cancelled() != cancelled {
		r.violation("task %d: Cancelled() is %v, Cancel returned true %d times", tk.id, f.Cancelled(), tk.cancelTrue.Load())
	}
	if cancelled && err != eventloop.ErrCancelled {
		r.violation("task %d: Cancel returned true, the future ended with (%v, %v)", tk.id, v, err)
	}
	if drained && entered == 0 && err != eventloop.ErrCancelled {
		r.violation("task %d (%s) never ran, though %s drained the loop, and ended with (%v, %v)", tk.id, tk.kind, r.end, v, err)
	}
	if tk.interrupted.Load() {
		cause := tk.cause.Load().(stressCause).err
		if cause != err {
			r.violation("task %d: interrupted with context.Cause %v, ended with %v", tk.id, cause, err)
		}
	}
	switch {
	case err == nil:
		if v != tk.id || exited != 1 || (tk.kind != "value" && tk.kind != "coroutine") || tk.interrupted.Load() {
			r.violation("task %d (%s): ended with (%v, nil), entered %d, returned %d, interrupted %v",
				tk.id, tk.kind, v, entered, exited, tk.interrupted.Load())
		}
	case err == eventloop.ErrCancelled:
		if !cancelled {
			r.violation("task %d ended with ErrCancelled and no Cancel returned true", tk.id)
		}
	case err == eventloop.ErrLoopClosed:
		if !r.closedByUs.Load() {
			r.violation("task %d ended with ErrLoopClosed, but the loop was ended by %s (Shutdown returned %v) and drained",
				tk.id, r.end, r.shutdownResult)
		}
	case errors.As(err, &pe):
		if tk.kind != "panic" || pe.Value != tk.panicVal || v != 0 {
			r.violation("task %d (%s) ended with (%v, %v)", tk.id, tk.kind, v, err)
		}
	case tk.kind == "error" && err == tk.err:
		if v != 0 || exited != 1 {
			r.violation("task %d: ended with (%v, %v), returned %d times", tk.id, v, err, exited)
		}
	default:
		r.violation("task %d (%s) ended with (%v, %v), which is no outcome it may have", tk.id, tk.kind, v, err)
	}
	if err != nil && v != 0 {
		r.violation("task %d ended with error %v and value %v", tk.id, err, v)
	}
}
