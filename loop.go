package eventloop

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corun-go/eventloop/internal/gid"
)

// Loop runs work one piece at a time, never two at once: tasks from Submit,
// callbacks from CallSoon and CallLater, and coroutines resumed after Await
// or Sleep. State that only loop work touches needs no locks.
//
// Loop is safe for use by multiple goroutines. The zero Loop is not usable;
// call New. On a nil or zero Loop, the methods that return an error return
// one wrapping ErrInvalidArgument, Stop does nothing, InLoop reports false,
// State reports StateClosed and Done returns a closed channel.
//
// Every task runs as a coroutine: it may suspend in Await or Sleep and the
// loop runs other work meanwhile. The goroutine that calls Run drives the
// work through coroutines (iter.Pull): goroutines of their own that never
// run at the same time as each other or as it, and that all run on its OS
// thread if it is locked to one. A task that never suspends costs no
// coroutine switch: coroutines are pooled and the loop dispatches from
// inside one, so a switch happens only when work suspends or resumes.
//
// What it costs, measured with bench/ on a 2-core VM where a channel
// ping-pong takes about 550 ns: a Submit allocates one 80-byte future and
// sustains about 115 ns per task from one producer; a Submit and Wait round
// trip takes about 0.8 µs (0.9–1.2× a hand-rolled chan func() loop's); a
// CallSoon about 35 ns, with no allocation; an Await that suspends and
// resumes about 360 ns (3× an iter.Pull switch); a suspended coroutine
// about 2.5 KiB, as much as a parked goroutine.
type Loop struct {
	// The fields are grouped by who writes them, each group on cache lines
	// of its own: the loop reads state between every two pieces of work,
	// and producers write mu and queue on every submission; sharing a line
	// made each of those reads a miss.

	// Set by New; state changes only on lifecycle transitions.
	opts    options
	bounded bool          // opts.capacity > 0
	bubbled bool          // made in a testing/synctest bubble
	state   atomic.Int32  // a State; written with mu held, read anywhere
	wake    chan struct{} // buffered(1); a token means "look at the queue again"
	done    chan struct{} // closed once the loop has exited and all its work has ended
	_       cacheLinePad

	mu      sync.Mutex      // guards the fields below up to waiting
	queue   []item          // accepted work not yet taken by the loop
	idle    bool            // the loop is waiting on wake; a producer must signal
	ran     bool            // Run or Start has begun (a loop runs once)
	heap    timerHeap       // CallLater timers and sleeping coroutines
	seq     uint64          // creation order of timers, to break deadline ties
	base    context.Context // values for task contexts: Run's ctx without its cancellation
	ctxs    *core           // started tasks with a real context, for Close to cancel
	waiting atomic.Int64    // queued and not started, counted only when bounded
	qstats  queueStats      // counted with mu held
	_       cacheLinePad

	work workStats // counted by the loop, and by whoever ends a task
	_    cacheLinePad

	curG atomic.Uintptr // the goroutine running loop work now, 0 when none

	// Owned by loop work (one goroutine at a time, handed over by coroutine
	// switches):
	cur       *coro       // the coroutine running loop work now
	batch     []item      // the work being run, swapped with queue
	pos       int         // next index in batch
	pool      []*coro     // coroutines free to dispatch
	suspended coroList    // coroutines whose task is suspended
	closing   bool        // Close was seen: started work is cancelled, the rest is failed
	sleep     *time.Timer // wakes the idle loop at the next timer's deadline…
	sleepAt   time.Time   // …this one, or zero when it is not armed
	watch     *watchdog   // WithSlowTaskThreshold; nil when off. Set by New
}

// cacheLinePad keeps the fields around it on different cache lines (two
// lines: adjacent-line prefetch pairs them on many CPUs).
type cacheLinePad [128]byte

// item is one piece of queued work: a plain callback (fn) or anything else
// the loop runs (r): a task, a due timer, a coroutine to resume.
type item struct {
	fn func()
	r  runnable
}

// runnable is queued work other than a plain callback.
type runnable interface {
	// run runs the work on coroutine c, the loop's dispatcher. It returns
	// false if c was stopped while it waited in the pool: the loop is over.
	run(c *coro) bool
	// drop ends work that the loop will never run because it closed. It
	// returns the ended future whose done callbacks the caller must run
	// (runCallbacks), or nil.
	drop() *core
	// describe returns the entry PC of the work's function and, for loops
	// that record it (WithDebug), the PC of its submission site, or 0.
	// Called by loop work, for the watchdog.
	describe() (fn, site uintptr)
}

// New returns a loop in StateNew. Work submitted before it runs is queued and
// runs, in order, once Run or Start is called.
func New(opts ...Option) *Loop {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	o.sites = o.debug
	l := &Loop{
		opts:    o,
		bounded: o.capacity > 0,
		bubbled: inBubble(),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if o.slow > 0 {
		l.watch = newWatchdog(l, o.slow)
	}
	return l
}

// check returns the error for a nil or zero loop.
func (l *Loop) check() error {
	if l == nil {
		return errNilLoop
	}
	if l.done == nil {
		return errZeroLoop
	}
	return nil
}

// Run runs the loop on the calling goroutine until it has stopped or closed
// and all its work has ended. If the calling goroutine is locked to its OS
// thread (runtime.LockOSThread), every piece of loop work runs on that
// thread.
//
// Run returns nil after Stop (or Shutdown) once accepted work has finished,
// ErrLoopClosed after Close, and ctx.Err() when ctx ended: that closes the
// loop as Close does (a ctx that has ended already closes it before any
// work runs). On a loop that is running it returns ErrLoopRunning;
// on a stopped or closed one ErrLoopStopped or ErrLoopClosed: a loop runs
// once. A loop stopped before it ever ran still runs the work it accepted.
//
// The values of ctx are visible through the context of every task.
func (l *Loop) Run(ctx context.Context) error {
	if err := l.check(); err != nil {
		return err
	}
	if ctx == nil {
		return errNilContext
	}
	if err := l.begin(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Closed before the loop takes any work, as Close would: the
		// callback below runs on another goroutine, too late for that.
		l.closeAsync()
	}
	byCtx := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(byCtx)
		l.closeAsync()
	})
	closedByCtx := false
	l.run(func() {
		if !stop() {
			<-byCtx // it is one of the loop's goroutines: let it finish first
			closedByCtx = true
		}
	})
	if closedByCtx {
		return ctx.Err()
	}
	if l.State() == StateClosed {
		return ErrLoopClosed
	}
	return nil
}

// Start runs the loop on a new goroutine, as Run(context.Background()) would.
// It returns once the loop is in StateRunning (its goroutine may not have
// begun yet; work submitted meanwhile waits in the queue), or with the
// errors of Run for a loop that cannot run.
func (l *Loop) Start() error {
	if err := l.check(); err != nil {
		return err
	}
	if err := l.begin(context.Background()); err != nil {
		return err
	}
	go l.run(nil)
	return nil
}

// begin moves the loop to running, once.
func (l *Loop) begin(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch State(l.state.Load()) {
	case StateClosed:
		return ErrLoopClosed
	case StateStopped:
		return ErrLoopStopped
	}
	if l.ran {
		return ErrLoopRunning
	}
	l.ran = true
	l.base = context.WithoutCancel(ctx)
	if l.state.Load() == int32(StateNew) {
		l.state.Store(int32(StateRunning))
	}
	return nil
}

// baseContext returns the parent of task contexts.
func (l *Loop) baseContext() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.base == nil {
		return context.Background()
	}
	return l.base
}

// Stop stops the loop gracefully: new work is rejected with ErrLoopStopped,
// accepted work still finishes (queued tasks and callbacks, and coroutines
// suspended in Await or Sleep: one in Sleep(ctx, time.Hour) keeps the loop
// stopping for an hour), then Run returns nil. CallLater timers go on firing
// while that work finishes; those that have not fired once it has are
// dropped. Stop waits for nothing; use Done
// or Shutdown to wait. It is idempotent and safe from any goroutine,
// including loop work.
func (l *Loop) Stop() {
	if l.check() != nil {
		return
	}
	l.mu.Lock()
	if s := State(l.state.Load()); s == StateNew || s == StateRunning {
		l.state.Store(int32(StateStopping))
	}
	l.signalLocked()
	l.mu.Unlock()
}

// Close closes the loop at once: new work is rejected with ErrLoopClosed,
// every task that has not started ends with ErrLoopClosed without running,
// queued callbacks and pending timers are dropped, and every started task
// has its context cancelled (cause ErrLoopClosed) and its future ends with
// ErrLoopClosed once its function has returned. Close waits for that and
// returns once Done is closed; a coroutine that ignores its context keeps it
// waiting. A loop that never ran closes the same way, its queued futures
// ending on the calling goroutine.
//
// Close is idempotent and safe from any goroutine. Called from loop work, or
// from the error handler on the watchdog's goroutine (WithSlowTaskThreshold),
// it starts the transition and returns without waiting: the loop cannot end
// while its caller waits for it. It returns nil, or an ErrInvalidArgument
// error for a nil or zero Loop.
func (l *Loop) Close() error {
	if err := l.check(); err != nil {
		return err
	}
	l.closeAsync()
	if l.InLoop() || l.onWatchdog() {
		return nil // the loop cannot end while its caller waits for it
	}
	<-l.done
	return nil
}

// closeAsync moves the loop to closed and starts tearing it down.
func (l *Loop) closeAsync() {
	l.mu.Lock()
	prev := State(l.state.Load())
	if prev == StateClosed {
		l.mu.Unlock()
		return
	}
	l.state.Store(int32(StateClosed))
	ran := l.ran
	l.signalLocked()
	var queue []item
	if !ran {
		// No loop goroutine will ever see this work: end it here.
		queue, l.queue = l.queue, nil
		l.dropTimersLocked()
	}
	var ctxs []*core
	for t := l.ctxs; t != nil; t = t.x.next {
		ctxs = append(ctxs, t)
	}
	l.mu.Unlock()

	// Started tasks see the closed state when their context is asked;
	// those with a real context behind it need it cancelled.
	for _, t := range ctxs {
		t.cancel(ErrLoopClosed, false)
	}
	if !ran {
		// End every future first and close Done, then run the callbacks:
		// one of them may call Close, which must find the loop closed.
		var callbacks []*core
		for _, it := range queue {
			if it.r == nil {
				l.unqueue() // a plain callback, dropped
			} else if c := it.r.drop(); c != nil {
				callbacks = append(callbacks, c)
			}
		}
		close(l.done)
		for _, c := range callbacks {
			c.runCallbacks()
		}
	}
}

// Shutdown stops the loop as Stop does and waits until it has drained or
// ctx ends. If the loop drains in time, Shutdown returns nil and leaves it
// in StateStopped, as Stop would (submissions then get ErrLoopStopped). If
// ctx ends first, Shutdown closes the loop as Close does, waits for that,
// and returns ctx.Err(). The contract's summary ("Stop, wait, then Close")
// and its lifecycle table differ on the first case; this follows the table,
// which keeps Closed for work that was cut short. Called from loop work (or
// the watchdog's report, as for Close) Shutdown returns ErrDeadlock: the
// loop cannot drain while it waits. A loop
// that never ran has nothing to drain it and is closed at once. On a loop
// that has exited already (stopped or closed), Shutdown returns nil, even
// with a ctx that has ended: a drained loop wins over an ended ctx.
func (l *Loop) Shutdown(ctx context.Context) error {
	if err := l.check(); err != nil {
		return err
	}
	if ctx == nil {
		return errNilContext
	}
	if l.InLoop() || l.onWatchdog() {
		return ErrDeadlock
	}
	l.Stop()
	l.mu.Lock()
	ran := l.ran
	l.mu.Unlock()
	if !ran {
		return l.Close()
	}
	// A loop that has drained wins over a ctx that has ended too: a select
	// on both would pick one at random.
	select {
	case <-l.done:
		return nil
	default:
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		select {
		case <-l.done:
			return nil
		default:
		}
		l.Close()
		return ctx.Err()
	}
}

// Done returns a channel that is closed once the loop has exited and all
// its work has ended: the same channel on every call. After it is closed no
// goroutine of the loop remains. For a nil or zero Loop it returns a closed
// channel.
func (l *Loop) Done() <-chan struct{} {
	if l.check() != nil {
		return closedChan
	}
	return l.done
}

// State returns the loop's current state. A nil or zero Loop reports
// StateClosed: it accepts nothing.
func (l *Loop) State() State {
	if l.check() != nil {
		return StateClosed
	}
	return State(l.state.Load())
}

// InLoop reports whether the caller is the loop's running work: a task (its
// coroutine, before or after any Await or Sleep), a callback, a timer, or a
// done callback the loop runs. It is false everywhere else, including the
// goroutine that called Run, which runs no work itself and only switches
// between the loop's coroutines.
func (l *Loop) InLoop() bool {
	if l == nil {
		return false
	}
	g := l.curG.Load()
	return g != 0 && g == gid.Current()
}

// enqueue accepts work from any goroutine, or rejects it: the state check and
// the append happen under one lock, so work is either accepted (and will be
// run or failed) or rejected, also when racing Stop or Close.
func (l *Loop) enqueue(it item) error {
	if err := l.check(); err != nil {
		return err
	}
	l.lockQueue()
	if s := State(l.state.Load()); s > StateRunning {
		l.mu.Unlock()
		if s == StateClosed {
			return l.countRejected(ErrLoopClosed)
		}
		return l.countRejected(ErrLoopStopped)
	}
	if l.bounded {
		if l.waiting.Load() >= int64(l.opts.capacity) {
			l.mu.Unlock()
			return l.countRejected(ErrQueueFull)
		}
		l.waiting.Add(1)
	}
	l.appendLocked(it)
	l.qstats.submitted++
	l.signalLocked()
	l.mu.Unlock()
	return nil
}

// trackCtx adds a started task whose context now has a real context behind
// it to the list Close cancels, and reports true; on a closed loop it adds
// nothing and reports false. t.mu must be held (t.mu before l.mu).
func (l *Loop) trackCtx(t *core) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state.Load() == int32(StateClosed) {
		return false
	}
	x := t.x
	x.tracked, x.prev, x.next = true, nil, l.ctxs
	if l.ctxs != nil {
		l.ctxs.x.prev = t
	}
	l.ctxs = t
	return true
}

// untrackCtx removes an ended task from the list. t.mu must be held.
func (l *Loop) untrackCtx(t *core) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := t.x
	if x.prev != nil {
		x.prev.x.next = x.next
	} else {
		l.ctxs = x.next
	}
	if x.next != nil {
		x.next.x.prev = x.prev
	}
	x.tracked, x.prev, x.next = false, nil, nil
}

// post queues a resumption of accepted work. It is never refused: the loop
// does not exit while a coroutine is suspended.
func (l *Loop) post(it item) {
	l.mu.Lock()
	l.appendLocked(it)
	l.signalLocked()
	l.mu.Unlock()
}

// lockQueue takes l.mu for a submission. Submissions hold it for a few
// nanoseconds, so a producer that finds it taken yields and tries again a
// few times before it blocks: parking on a contended sync.Mutex costs
// microseconds, many times the critical section.
func (l *Loop) lockQueue() {
	for range queueLockSpins {
		if l.mu.TryLock() {
			return
		}
		runtime.Gosched()
	}
	l.mu.Lock()
}

const queueLockSpins = 4

// signalLocked wakes the loop if it is waiting. l.mu must be held.
func (l *Loop) signalLocked() {
	if l.idle {
		l.idle = false
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// registry lists the loops that are running, so that Await and Sleep can
// tell which loop, if any, they are called on when their arguments do not
// say. It changes only when a loop starts or exits.
var registry struct {
	mu    sync.Mutex
	loops atomic.Pointer[[]*Loop]
}

func register(l *Loop) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var next []*Loop
	if p := registry.loops.Load(); p != nil {
		next = append(next, *p...)
	}
	next = append(next, l)
	registry.loops.Store(&next)
}

func unregister(l *Loop) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var next []*Loop
	for _, x := range *registry.loops.Load() {
		if x != l {
			next = append(next, x)
		}
	}
	registry.loops.Store(&next)
}

// currentLoop returns the loop whose work is running on the calling
// goroutine, or nil.
func currentLoop() *Loop {
	p := registry.loops.Load()
	if p == nil {
		return nil
	}
	g := gid.Current()
	for _, l := range *p {
		if l.curG.Load() == g {
			return l
		}
	}
	return nil
}
