package eventloop

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corun-go/eventloop/internal/gid"
)

// Future is the eventual outcome of a function run by Submit or Go.
//
// A Future ends exactly once, with one outcome: a value; the error the
// function returned; a *PanicError (the function panicked); ErrCancelled; or
// ErrLoopClosed. Every method is safe for use by multiple goroutines. The
// zero Future is not usable: futures are made by Submit and Go. On a nil or
// zero Future, Result, Exception, Wait and Await return an error wrapping
// ErrInvalidArgument, Cancel and Cancelled report false, Done returns a
// closed channel and AddDoneCallback does nothing.
//
// The return of the function happens before Result, Exception, Wait and
// Await return its outcome, and before done callbacks run.
type Future[T any] struct {
	core
	val T                                // written once before state becomes stDone; read only after
	fn  func(context.Context) (T, error) // immutable; nil only in a zero Future or a Go(nil) future
}

// The states of a future, in the low bits of core.state.
const (
	stPending    uint32 = iota // accepted, not started
	stRunning                  // started (running or suspended), or claimed to be ended unrun
	stCancelling               // started, then cancelled; ends with the cause when fn returns
	stDone                     // ended; the outcome is set. Always stored without flags.

	stMask     uint32 = 3
	stWatched  uint32 = 4 // someone registered for the end (a waiter, a callback, Done, the context): ending takes mu
	stReturned uint32 = 8 // on stRunning: fn has returned and its outcome is being stored; too late for Cancel
)

// The flags of core.flags. They share a word to keep futures small.
const (
	flagCtxDone uint32 = 1 // the task's context is cancelled
	flagBubbled uint32 = 2 // made in a testing/synctest bubble
)

// ctxDone reports whether the task's context has been cancelled.
func (c *core) ctxDone() bool { return c.flags.Load()&flagCtxDone != 0 }

// bubbled reports whether the future was made in a testing/synctest bubble.
func (c *core) bubbled() bool { return c.flags.Load()&flagBubbled != 0 }

// core is the part of a future that does not depend on its type. It is kept
// small, because a submission allocates one: what only cancelled, watched
// or called-back futures need lives in extra.
type core struct {
	state atomic.Uint32 // st… | stWatched; see the methods below for who changes it
	flags atomic.Uint32 // flagCtxDone (set with mu held) | flagBubbled (set before the future is shared)
	loop  *Loop         // the loop that runs the task; nil for Go futures; immutable

	mu      sync.Mutex // guards the fields below; may be held while taking Loop.mu, never the reverse
	err     error      // the outcome's error; written once before state becomes stDone; read only after
	waiters waitList   // goroutines and coroutines waiting for the end
	x       *extra     // made by the first who needs it

	co atomic.Pointer[coro] // the coroutine the task is suspended in, while it is
}

// extra is the part of a future that most futures never need. Guarded by
// core.mu.
type extra struct {
	cause      error                   // why a started task was cancelled: ErrCancelled or ErrLoopClosed
	callbacks  []func()                // done callbacks not yet started
	cbG        uintptr                 // the gid of the goroutine running the callbacks, while inCallback
	cbDone     chan struct{}           // made by an AddDoneCallback that waits; closed once the running callbacks have all returned
	done       chan struct{}           // made by Done
	inner      context.Context         // the real context behind taskCtx, made on demand
	innerStop  context.CancelCauseFunc // cancels inner
	prev, next *core                   // links in the loop's list of tasks with a real context (Loop.ctxs), guarded by Loop.mu
	at         *origin                 // where the task was submitted (WithDebug), set by Submit; or, on failure, its function, set before the end
	unread     *unread                 // set, before the end, on a failed future nobody has read yet; immutable after
	cancelled  bool                    // a Cancel succeeded
	inCallback bool                    // callbacks are being run by the goroutine that ended the future (cbG)
	tracked    bool                    // in Loop.ctxs
}

// extraLocked returns c.x, making it. c.mu must be held.
func (c *core) extraLocked() *extra {
	if c.x == nil {
		c.x = new(extra)
	}
	return c.x
}

// unusable reports whether f is nil or a zero Future, not made by Submit or
// Go (those always have fn, or have ended).
func (f *Future[T]) unusable() bool { return f == nil || f.fn == nil && !f.isDone() }

// isDone reports whether the future has ended. The outcome may be read once
// it returns true.
func (c *core) isDone() bool { return c.state.Load() == stDone }

// claim moves a pending task to running, keeping the flags: the loop (or
// Go's goroutine) claims it to start it, Cancel and Close to end it unrun.
// It returns false if someone else claimed it first.
func (c *core) claim() bool {
	for {
		s := c.state.Load()
		if s&stMask != stPending {
			return false
		}
		if c.state.CompareAndSwap(s, s&^stMask|stRunning) {
			return true
		}
	}
}

// watchLocked marks the future as watched, so that whoever ends it takes
// c.mu and sees what was registered. It returns false if the future has
// ended already. c.mu must be held.
func (c *core) watchLocked() bool {
	for {
		s := c.state.Load()
		if s == stDone {
			return false
		}
		if s&stWatched != 0 || c.state.CompareAndSwap(s, s|stWatched) {
			return true
		}
	}
}

// endUnstarted ends a task that never started with err, unless it had
// started or ended already. It reports whether done callbacks are left for
// the caller to run with runCallbacks.
func (c *core) endUnstarted(err error) (callbacks bool) {
	c.mu.Lock()
	if !c.claim() {
		c.mu.Unlock()
		return false
	}
	c.loop.unqueue()
	c.loop.countEnd(err, false)
	return c.finishLocked(err)
}

// cancel asks the task to end with cause: at once if it has not started,
// else by cancelling its context and waking the coroutine it is suspended
// in. It reports whether the future is, or will be, cancelled by a Cancel.
func (c *core) cancel(cause error, byCancel bool) bool {
	if byCancel && c.loop != nil && c.loop.state.Load() == int32(StateClosed) {
		// Close came first and decides the outcome, even where it has not
		// reached the task yet.
		cause, byCancel = ErrLoopClosed, false
	}
	c.mu.Lock()
	for {
		s := c.state.Load()
		switch s & stMask {
		case stPending:
			if !c.claim() {
				continue // the loop started it meanwhile
			}
			c.loop.unqueue()
			c.extraLocked().cancelled = byCancel
			c.loop.countEnd(cause, false)
			c.endLocked(cause)
			return byCancel
		case stRunning:
			if s&stReturned != 0 {
				// fn has returned: the future is ending with its outcome.
				// Wait the moment it takes (it needs mu), so that a false
				// Cancel always means an ended future.
				c.mu.Unlock()
				for !c.isDone() {
					runtime.Gosched()
				}
				return false
			}
			if !c.cancelStartedLocked(cause, byCancel) {
				continue // it ended or was watched meanwhile
			}
			c.mu.Unlock()
			return byCancel
		default: // stCancelling, stDone
			r := c.x != nil && c.x.cancelled
			c.mu.Unlock()
			return r
		}
	}
}

// cancelStartedLocked cancels a started task: it cancels its context and
// wakes the coroutine it is suspended in; the future ends with cause when
// the function returns. It returns false if the state changed under it
// (the task ended, or someone watched it): look again. c.mu must be held.
func (c *core) cancelStartedLocked(cause error, byCancel bool) bool {
	s := c.state.Load()
	if s&stMask != stRunning || s&stReturned != 0 || !c.state.CompareAndSwap(s, s&^stMask|stCancelling) {
		return false
	}
	x := c.extraLocked()
	x.cause, x.cancelled = cause, byCancel
	c.cancelCtxLocked(cause)
	if co := c.co.Load(); co != nil {
		co.wakeArmed()
	}
	return true
}

// stopped reports whether a started task should stop: it was cancelled, or
// its loop is closed. Close does not reach into the running task: its
// context reads the loop's state when asked (Err, Await, Sleep), and Close
// cancels the real contexts made behind task contexts (see Loop.ctxs).
func (c *core) stopped() bool {
	return c.ctxDone() || c.loop != nil && c.loop.state.Load() == int32(StateClosed)
}

// endLocked ends the future with finishLocked, then runs the done
// callbacks on the calling goroutine.
func (c *core) endLocked(err error) {
	if c.finishLocked(err) {
		c.runCallbacks()
	}
}

// finishLocked sets the outcome's error, marks the future done, closes its
// done channel and wakes its waiters, then unlocks c.mu. It reports whether
// done callbacks are left for the calling goroutine to run (runCallbacks):
// until it has, AddDoneCallback from other goroutines waits for it. The
// caller holds c.mu and has written the value, if any.
func (c *core) finishLocked(err error) (callbacks bool) {
	c.err = err
	if failed(err) {
		c.watchUnreadLocked(err)
	}
	// Cancel the context first: once state says done, its Err says so
	// without asking the real context, whose Done must be closed by then.
	c.cancelCtxLocked(nil) // also releases what was derived from it
	c.state.Store(stDone)
	c.waiters.wakeAll()
	if x := c.x; x != nil {
		if x.tracked {
			c.loop.untrackCtx(c)
		}
		if x.done != nil {
			close(x.done)
		}
		if callbacks = len(x.callbacks) > 0; callbacks {
			x.inCallback, x.cbG = true, gid.Current()
		}
	}
	c.mu.Unlock()
	return callbacks
}

// runCallbacks runs the done callbacks one at a time in the order added,
// including those its callbacks add, and tells AddDoneCallbacks waiting on
// other goroutines once every callback has started.
func (c *core) runCallbacks() {
	for {
		c.mu.Lock()
		x := c.x
		if len(x.callbacks) == 0 {
			x.callbacks = nil
			x.inCallback = false
			if x.cbDone != nil {
				close(x.cbDone) // AddDoneCallbacks waiting on other goroutines go on
				x.cbDone = nil
			}
			c.mu.Unlock()
			return
		}
		cb := x.callbacks[0]
		x.callbacks[0] = nil
		x.callbacks = x.callbacks[1:]
		c.mu.Unlock()
		c.callSafely(cb)
	}
}

// callSafely runs a done callback, sending a panic to the error handler.
// Run by loop work (a task that cancels a future, say), the callback is a
// plain callback for Await and Sleep, not part of the task's coroutine.
func (c *core) callSafely(cb func()) {
	co := loopWork(c.loop)
	if co != nil {
		co.inCallback++
	}
	defer func() {
		if co != nil {
			co.inCallback--
		}
		if v := recover(); v != nil {
			if c.loop != nil {
				c.loop.work.callbackPanics.Add(1)
			}
			report(c.errorHandler(), newPanicError(v))
		}
	}()
	cb()
}

func (c *core) errorHandler() func(error) {
	if c.loop != nil {
		return c.loop.opts.errorHandler
	}
	return logError
}

func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// closedChan is the Done channel of futures that ended before anyone asked.
var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// wait blocks the calling goroutine until the future ends, the timeout
// passes (timeout > 0) or ctx ends (ctx != nil). It returns nil once the
// future has ended, ErrTimeout or ctx.Err() otherwise, and ErrDeadlock at
// once when the caller is the loop that must end the future.
func (c *core) wait(timeout time.Duration, ctx context.Context) error {
	if ctx == nil && timeout <= 0 {
		return ErrTimeout
	}
	if c.loop != nil && c.loop.InLoop() {
		return ErrDeadlock
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		ctxDone = ctx.Done()
	}
	if ctx == nil {
		warnBlockingWait(c.loop, "Result")
	} else {
		warnBlockingWait(c.loop, "Wait")
	}
	if c.spinUntilDone() {
		return nil
	}
	w := getWaiter(c.bubbled())
	defer putWaiter(w)
	c.mu.Lock()
	if !c.watchLocked() {
		c.mu.Unlock()
		return nil
	}
	c.waiters.push(&w.node)
	c.mu.Unlock()

	// The timeout: a pooled waiter uses the shared deadlines, which wake it
	// through the same channel as the future; one made in a synctest bubble
	// uses a timer of its own (it is never reused).
	var timerC <-chan time.Time
	shared := false
	if ctx == nil {
		// The shared deadlines run on the real clock: a caller in a
		// synctest bubble (whose clock has no monotonic reading) gets a
		// timer of its own, on the bubble's clock.
		if now := time.Now(); w.pooled && now != now.Round(0) {
			addDeadline(w, now.Add(timeout))
			shared = true
		} else {
			t := time.NewTimer(timeout)
			defer t.Stop()
			timerC = t.C
		}
	}
	received := 0
	if timerC == nil && ctxDone == nil {
		<-w.node.ch // a plain receive costs much less than a select
		received = 1
	} else {
		select {
		case <-w.node.ch:
			received = 1
		case <-timerC:
		case <-ctxDone:
		}
	}
	// Take every token sent for this wait, so that the channel is empty
	// when the waiter is next used. Both senders send while holding the
	// lock we take here, so their tokens are in the channel already.
	sent := 0
	c.mu.Lock()
	if !c.waiters.remove(&w.node) {
		sent++ // the future ended and woke us
	}
	c.mu.Unlock()
	if shared && !removeDeadline(w) {
		sent++ // the deadline passed
	}
	for ; received < sent; received++ {
		<-w.node.ch
	}
	if c.isDone() {
		return nil
	}
	if ctx != nil {
		return ctx.Err()
	}
	return ErrTimeout
}

// waitSpins is how many times wait yields its processor, checking for the
// end in between, before it sleeps. A loop usually ends a short task within
// a yield or two, and a yield costs a fraction of sleeping on a channel and
// being woken (bench/, RoundTrip).
const waitSpins = 4

// spinUntilDone yields the processor up to waitSpins times and reports
// whether the future ended meanwhile. Yielding rather than busy-waiting
// lets the loop run on this processor when it was woken onto it, as a
// goroutine readied by a channel send usually is.
func (c *core) spinUntilDone() bool {
	for range waitSpins {
		runtime.Gosched()
		if c.isDone() {
			return true
		}
	}
	return false
}

// Result returns the outcome: the value and the error. If the future is
// pending it waits up to timeout (timeout <= 0 does not wait) and returns
// ErrTimeout if it is still pending then. A timeout never cancels the task;
// the future stays usable.
//
// Called by loop work on a pending future of the same loop, Result returns
// ErrDeadlock at once instead of blocking (only the loop could end it):
// coroutines use Await. On a future of another loop it blocks the calling
// loop while it waits. Result on an ended future does not allocate, and a
// pending one does not allocate in the steady state.
func (f *Future[T]) Result(timeout time.Duration) (T, error) {
	if f.unusable() {
		var zero T
		return zero, errNilFuture
	}
	if !f.isDone() {
		if err := f.wait(timeout, nil); err != nil {
			var zero T
			return zero, err
		}
	}
	f.observe()
	return f.val, f.err
}

// Exception waits like Result and returns the outcome's error: nil if the
// function succeeded, ErrTimeout if the future is still pending after the
// timeout, ErrDeadlock as for Result.
func (f *Future[T]) Exception(timeout time.Duration) error {
	_, err := f.Result(timeout)
	return err
}

// Wait waits until the future ends or ctx ends and returns the outcome, or
// ctx.Err() if ctx ended first (the task goes on). If both have happened
// the outcome wins. ErrDeadlock as for Result.
func (f *Future[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	if f.unusable() {
		return zero, errNilFuture
	}
	if ctx == nil {
		return zero, errNilContext
	}
	if !f.isDone() {
		if err := f.wait(0, ctx); err != nil {
			return zero, err
		}
	}
	f.observe()
	return f.val, f.err
}

// Done returns a channel that is closed when the future ends: the same
// channel on every call. It is made on the first call, so futures nobody
// selects on do not pay for one.
func (f *Future[T]) Done() <-chan struct{} {
	if f.unusable() {
		return closedChan // a zero future has nothing to wait for
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.extraLocked()
	if x.done == nil {
		if f.watchLocked() {
			x.done = make(chan struct{})
		} else {
			x.done = closedChan
		}
	}
	return x.done
}

// AddDoneCallback arranges for fn to be called with the future once it has
// ended, after its outcome is visible.
//
// On a future that has ended, fn runs at once on the calling goroutine,
// before AddDoneCallback returns. Otherwise fn runs on the goroutine that
// ends the future: the loop's for a task that ran, or that Close failed on a
// running loop; the caller of Cancel for a task it ended before it started;
// the caller of Close for a loop that never ran; fn's goroutine for Go.
// Wherever it runs, fn is a plain callback, not a coroutine: Await on a
// pending future in it returns ErrDeadlock.
//
// Callbacks run once each, one after another, in the order added. One
// added by a callback of the same future runs after the rest. The callbacks
// of one future never run at the same time as each other: one added to an
// ended future while another goroutine is still running its callbacks
// waits until they have returned, then runs on the calling goroutine before
// AddDoneCallback returns. (So a callback must not wait for a goroutine
// that is adding a callback to the same future.) A callback that panics is
// reported to the loop's error handler as a *PanicError (slog for Go
// futures) and the rest still run. A nil fn is ignored.
func (f *Future[T]) AddDoneCallback(fn func(*Future[T])) {
	if f == nil || fn == nil || f.fn == nil && !f.isDone() {
		return
	}
	f.mu.Lock()
	x := f.x
	if f.watchLocked() || x != nil && x.inCallback && x.cbG == gid.Current() {
		// Pending, or added by one of its own callbacks: runs after the rest.
		x = f.extraLocked()
		x.callbacks = append(x.callbacks, func() { fn(f) })
		f.mu.Unlock()
		return
	}
	for x != nil && x.inCallback {
		// Another goroutine is running the callbacks: wait until they have
		// all returned, so that this one runs after them, never alongside.
		if x.cbDone == nil {
			x.cbDone = make(chan struct{})
		}
		done := x.cbDone
		f.mu.Unlock()
		<-done
		f.mu.Lock()
	}
	// Run fn here, as the goroutine running the future's callbacks for
	// now: callbacks that fn adds run after it, and other goroutines
	// adding callbacks meanwhile wait for them.
	x = f.extraLocked()
	x.inCallback, x.cbG = true, gid.Current()
	f.mu.Unlock()
	f.observe()
	f.callSafely(func() { fn(f) })
	f.runCallbacks()
}

// Cancel cancels the task and reports whether the future is cancelled.
//
// A task that has not started never runs: its future ends with ErrCancelled
// now (done callbacks run on the calling goroutine). A task that has started
// has its context cancelled, with context.Cause ErrCancelled; an Await or
// Sleep it is suspended in returns at once; and the future ends with
// ErrCancelled when the function returns, whatever it returned: Done is
// never closed while it still runs. Cancel returns true again for a future
// already cancelled, and false for one that ended otherwise (also one whose
// function returned just before: Cancel then waits the moment it takes the
// future to end with that outcome), or whose loop has closed: Close came
// first, and the future ends with ErrLoopClosed. For Go futures the same
// rules hold.
func (f *Future[T]) Cancel() bool {
	if f.unusable() {
		return false
	}
	return f.cancel(ErrCancelled, true)
}

// Cancelled reports whether a Cancel succeeded. It may report true before
// the future has ended, while the cancelled function is returning.
func (f *Future[T]) Cancelled() bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.x != nil && f.x.cancelled
}

// complete ends a started future with what fn returned, or with the cause
// if it was cancelled meanwhile. It runs the done callbacks. The end is
// counted in Stats before it is visible, and counted once: marking the
// future returned first makes a Cancel that comes later lose.
func (f *Future[T]) complete(v T, err error) {
	f.val, f.err = v, err
	for {
		s := f.state.Load()
		if s&stMask != stRunning {
			break // cancelled (or closed) while it ran: it ends with the cause
		}
		if !f.state.CompareAndSwap(s, s|stReturned) {
			continue // watched or cancelled meanwhile
		}
		f.loop.countEnd(err, true)
		if s == stRunning && !failed(err) && f.state.CompareAndSwap(stRunning|stReturned, stDone) {
			return // nobody watching: no lock to take
		}
		f.mu.Lock()
		if failed(err) {
			if x := f.extraLocked(); x.at == nil {
				x.at = &origin{fn: entryPC(f.fn)} // for an UnobservedError, read after the end
			}
		}
		f.endLocked(err)
		return
	}
	f.mu.Lock()
	var zero T
	f.val, err = zero, f.x.cause
	f.loop.countEnd(err, false)
	f.endLocked(err)
}

// call runs fn, turning a panic into a *PanicError.
func (f *Future[T]) call(ctx context.Context) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			p := newPanicError(r)
			if f.loop != nil && f.loop.opts.sites {
				p.withSite(siteOf(f.x.at.site)) // x and at were made by Submit
			}
			err = p
		}
	}()
	return f.fn(ctx)
}
