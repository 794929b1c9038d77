package eventloop

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// UnobservedError is what the error handler receives when a future that
// failed is garbage-collected without anyone having read its outcome: its
// function returned an error or panicked, and no Result, Exception, Wait,
// Await or done callback ever saw it. Such failures are otherwise silent.
//
// Futures that ended with ErrCancelled or ErrLoopClosed are not reported:
// whoever cancelled or closed chose that outcome (a function that returns
// one of them, passing on an awaited future's, is taken to pass on a
// cancellation). Go futures are reported with log/slog, as their other
// errors are. The report comes from the runtime's cleanup goroutine some
// time after the future became unreachable, and only if the garbage
// collector runs.
//
// Until its outcome is read, a failed future's error is held for the
// report. An error that refers back to the future, for instance one that
// holds the task's context, thus keeps the future reachable: it is neither
// collected nor reported until someone reads it. Reading the outcome lets
// go of the error at once.
type UnobservedError struct {
	Err  error  // the outcome nobody read: the error returned, or a *PanicError
	Func string // the function that failed
	Site string // where it was submitted, for loops made with WithDebug
}

// Error describes the failure.
func (e *UnobservedError) Error() string {
	where := ""
	if e.Site != "" {
		where = " submitted at " + e.Site
	}
	return fmt.Sprintf("eventloop: a future%s failed and nobody read its outcome: %v", where, e.Err)
}

// Unwrap returns Err, so that errors.Is and errors.As see the failure.
func (e *UnobservedError) Unwrap() error { return e.Err }

// unread is what the cleanup of a failed future needs to report it. It
// must not point back to the future, or the future would never be
// collected.
type unread struct {
	read    atomic.Bool // the outcome was read
	cleanup runtime.Cleanup
	err     error
	at      origin
	handler func(error)
}

// failed reports whether err is an outcome that is reported if nobody reads
// it.
func failed(err error) bool {
	return err != nil && err != ErrCancelled && err != ErrLoopClosed
}

// watchUnreadLocked arranges for a failed future to be reported if it is
// collected unread. Done callbacks and waiters will read it, so a future
// that has them is not watched. Every failed future gets its extra made
// here, before it is marked done: readers find it without taking mu
// (observe). c.mu must be held.
func (c *core) watchUnreadLocked(err error) {
	x := c.extraLocked()
	if len(x.callbacks) > 0 || c.waiters.head != nil {
		return
	}
	u := &unread{err: err, handler: c.errorHandler()}
	if x.at != nil {
		u.at = *x.at
	}
	u.cleanup = runtime.AddCleanup(c, reportUnread, u)
	x.unread = u
}

// reportUnread runs on the runtime's cleanup goroutine once a failed
// future has been collected.
func reportUnread(u *unread) {
	if !u.read.Load() {
		name, _, _ := funcAt(u.at.fn)
		report(u.handler, &UnobservedError{Err: u.err, Func: name, Site: siteOf(u.at.site)})
	}
}

// observe records that the outcome of an ended future was read. It must be
// called only after isDone reported true.
func (c *core) observe() {
	if failed(c.err) {
		if u := c.x.unread; u != nil && u.read.CompareAndSwap(false, true) {
			// Let go of the error: the runtime keeps a cleanup's argument
			// until the cleanup runs, and an error that refers to the
			// future (through the task's context, say) would keep it too.
			u.cleanup.Stop()
		}
	}
}
