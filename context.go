package eventloop

import (
	"context"
	"time"
)

// taskCtx is the context passed to a task's function: the future's core seen
// as a context.Context, so that a submission allocates no context.
//
// It is cancelled by Cancel (cause ErrCancelled), by Close (cause
// ErrLoopClosed) and when the function returns (cause context.Canceled), and
// never by a deadline. Its values are those of the context given to Run. A
// real context is made behind it only when someone needs one: the first call
// to Done or Value (which is also what context.WithCancel, AfterFunc and
// Cause call).
type taskCtx core

// ctxOf returns c's task context.
func ctxOf(c *core) context.Context { return (*taskCtx)(c) }

// taskKey is the context key under which a taskCtx answers with itself, so
// that Await can find the task behind a derived context.
type taskKey struct{}

// taskOf returns the task whose context ctx is or derives from, or nil.
func taskOf(ctx context.Context) *core {
	if t, ok := ctx.(*taskCtx); ok {
		return (*core)(t)
	}
	if t, ok := ctx.Value(taskKey{}).(*taskCtx); ok {
		return (*core)(t)
	}
	return nil
}

func (t *taskCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (t *taskCtx) Done() <-chan struct{} { return (*core)(t).innerCtx().Done() }

func (t *taskCtx) Err() error {
	c := (*core)(t)
	if c.state.Load()&stWatched != 0 {
		// There may be a real context: agree with its Done channel.
		c.mu.Lock()
		var inner context.Context
		if c.x != nil && c.x.inner != nil {
			c.catchUpWithCloseLocked()
			inner = c.x.inner
		}
		c.mu.Unlock()
		if inner != nil {
			return inner.Err()
		}
	}
	if c.stopped() || c.state.Load() == stDone {
		return context.Canceled
	}
	return nil
}

func (t *taskCtx) Value(key any) any {
	if key == (taskKey{}) {
		return t
	}
	return (*core)(t).innerCtx().Value(key)
}

func (t *taskCtx) String() string { return "eventloop.taskContext" }

// innerCtx returns the real context behind the task's, making it on first
// use: a child of the values of Run's context, cancelled already if the task
// was.
func (c *core) innerCtx() context.Context {
	var base context.Context = context.Background()
	if c.loop != nil {
		base = c.loop.baseContext()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.extraLocked()
	if x.inner != nil {
		c.catchUpWithCloseLocked()
	} else {
		x.inner, x.innerStop = context.WithCancelCause(base)
		switch {
		case !c.watchLocked() || c.ctxDone():
			// Ended or cancelled already; otherwise ending cancels it.
			cause := x.cause
			if cause == nil {
				cause = context.Canceled
			}
			x.innerStop(cause)
		case c.loop != nil && !c.loop.trackCtx(c):
			c.cancelStartedLocked(ErrLoopClosed, false) // the loop is closed
		}
	}
	return x.inner
}

// catchUpWithCloseLocked cancels the task with ErrLoopClosed if its loop
// has closed and Close has not got to it yet, so that whoever asks the
// task's context after the close sees it cancelled, Err and Done alike.
// c.mu must be held.
func (c *core) catchUpWithCloseLocked() {
	if c.loop != nil && !c.ctxDone() && c.loop.state.Load() == int32(StateClosed) {
		c.cancelStartedLocked(ErrLoopClosed, false)
	}
}

// cancelCtxLocked cancels the task's context with cause (nil: the function
// returned). c.mu must be held. Cancelling the real context, if any, calls
// no user code synchronously: context.AfterFunc runs its functions on
// goroutines of its own.
func (c *core) cancelCtxLocked(cause error) {
	if c.ctxDone() {
		return
	}
	if c.x != nil && c.x.innerStop != nil {
		c.x.innerStop(cause) // before ctxDone: Err must not run ahead of Done
	}
	c.flags.Or(flagCtxDone)
}
