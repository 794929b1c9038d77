package eventloop

import (
	"context"
	"time"
)

// Await returns the outcome of f once it has ended.
//
// Called by a task running on a loop (a coroutine) with the task's context,
// or one derived from it, Await suspends the task while f is pending: the
// loop runs other work meanwhile, and the task resumes on the loop (on the
// Run goroutine's OS thread if it is locked) once f ends or ctx ends. f may belong to any loop or come
// from Go. A task that Awaits with an unrelated context (such as
// context.Background()) is suspended the same way. While suspended, the task
// also wakes when it is cancelled or its loop closes: Await then returns
// ctx.Err() or context.Canceled. Await on an ended future returns at once
// without suspending.
//
// Called from any other goroutine (even one holding a task's context) Await
// never suspends anything: it blocks like Wait. In a plain callback on a
// loop (CallSoon, CallLater, a done callback), which cannot suspend, Await
// on a pending future returns ErrDeadlock, as it does for a task awaiting its
// own future.
func Await[T any](ctx context.Context, f *Future[T]) (T, error) {
	var zero T
	if f.unusable() {
		return zero, errNilFuture
	}
	if ctx == nil {
		return zero, errNilContext
	}
	if f.isDone() {
		f.observe()
		return f.val, f.err
	}
	c, inCallback := callerCoro(ctx, f.loop)
	if inCallback {
		return zero, ErrDeadlock
	}
	if c == nil {
		return f.Wait(ctx)
	}
	if err := c.await(ctx, &f.core); err != nil {
		return zero, err
	}
	f.observe()
	return f.val, f.err
}

// Sleep pauses for d or until ctx ends, whichever is first, and returns nil
// or ctx.Err().
//
// Called by a task running on a loop, it suspends the task on the loop's
// timers and the loop runs other work meanwhile; the task also wakes when it
// is cancelled or its loop closes (then it returns context.Canceled if ctx
// has not ended). Sleep with d <= 0 in a task yields: the task goes to the
// back of the queue and resumes after the work queued before it.
//
// Anywhere else Sleep blocks the calling goroutine, like a timer. In a plain
// callback on a loop that stalls the loop for d: schedule with CallLater
// instead.
func Sleep(ctx context.Context, d time.Duration) error {
	if ctx == nil {
		return errNilContext
	}
	if c, _ := callerCoro(ctx, nil); c != nil {
		return c.sleep(ctx, d)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// callerCoro finds the loop work the caller is: a coroutine running a task
// (c), or a plain callback on a loop (inCallback); neither when the caller
// is not loop work. ctx and hint say which loop to look at first.
func callerCoro(ctx context.Context, hint *Loop) (c *coro, inCallback bool) {
	var l *Loop
	if t := taskOf(ctx); t != nil && t.loop.InLoop() {
		l = t.loop
	} else if hint.InLoop() {
		l = hint
	} else if l = currentLoop(); l == nil {
		return nil, false
	}
	// The caller is l's work, so l.cur is ours to read.
	if l.cur.task == nil || l.cur.inCallback > 0 {
		return nil, true
	}
	return l.cur, false
}

// loopWork returns the coroutine running loop work on the calling
// goroutine, or nil. hint says which loop to look at first.
func loopWork(hint *Loop) *coro {
	if hint.InLoop() {
		return hint.cur
	}
	if l := currentLoop(); l != nil {
		return l.cur
	}
	return nil
}

// await suspends c's task until f ends, ctx ends, or the task is cancelled.
// It returns nil once f has ended.
func (c *coro) await(ctx context.Context, f *core) error {
	t := c.task
	if f == t {
		return ErrDeadlock // a task cannot outlive itself
	}
	own := ctx == ctxOf(t)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.stopped() {
			return context.Canceled
		}
		gen := c.arm()
		f.mu.Lock()
		if !f.watchLocked() {
			f.mu.Unlock()
			c.disarmOrPark(gen)
			return nil
		}
		c.node.gen = gen
		f.waiters.push(&c.node)
		f.mu.Unlock()
		var stop func() bool
		if !own && ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() { c.wake(gen) })
		}
		c.park(gen)
		if stop != nil {
			stop()
		}
		f.mu.Lock()
		f.waiters.remove(&c.node)
		f.mu.Unlock()
		if f.isDone() {
			return nil
		}
	}
}

// sleep suspends c's task for d on the loop's timers, or until ctx ends or
// the task is cancelled.
func (c *coro) sleep(ctx context.Context, d time.Duration) error {
	t := c.task
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.stopped() {
		return context.Canceled
	}
	l := c.l
	gen := c.arm()
	if d <= 0 {
		c.wake(gen) // to the back of the queue
	} else {
		when := time.Now().Add(d)
		l.mu.Lock()
		c.timer.when, c.timer.gen = when, gen
		l.pushTimerLocked(&c.timer)
		l.signalLocked()
		l.mu.Unlock()
	}
	var stop func() bool
	if ctx != ctxOf(t) && ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { c.wake(gen) })
	}
	c.park(gen)
	if stop != nil {
		stop()
	}
	if d > 0 {
		l.mu.Lock()
		l.removeTimerLocked(&c.timer)
		l.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.stopped() {
		return context.Canceled
	}
	return nil
}

// arm starts a wait: from now until the wake-up for the returned generation,
// exactly one wake-up (the first) queues the task's resumption.
func (c *coro) arm() uint64 {
	gen := c.gen.Add(1) // odd: armed
	c.task.co.Store(c)
	return gen
}

// wake queues c's resumption if c is still armed for gen. Safe from any
// goroutine; later or stale wake-ups do nothing.
func (c *coro) wake(gen uint64) {
	if c.gen.CompareAndSwap(gen, gen+1) {
		c.l.post(item{r: c})
	}
}

// wakeLocked is wake for a caller that holds l.mu (the timers).
func (c *coro) wakeLocked(gen uint64) {
	if c.gen.CompareAndSwap(gen, gen+1) {
		c.l.appendLocked(item{r: c})
		c.l.signalLocked()
	}
}

// wakeArmed wakes c from whatever wait it is armed for: Cancel and Close use
// it, having cancelled the task's context first.
func (c *coro) wakeArmed() {
	if gen := c.gen.Load(); gen&1 == 1 {
		c.wake(gen)
	}
}

// disarmOrPark ends a wait that turned out not to be needed: if nobody has
// woken c yet, it disarms; otherwise a resumption is queued already and c
// must park to consume it.
func (c *coro) disarmOrPark(gen uint64) {
	if c.gen.CompareAndSwap(gen, gen+1) {
		c.task.co.Store(nil)
		return
	}
	c.park(gen)
}

// park suspends c's task until its resumption runs. A cancellation that
// came before the task was armed is caught here: Cancel sets ctxDone before
// it looks for the coroutine, and arm published the coroutine before this
// load, so one of the two sees the other. A Close that comes later is the
// loop's to handle (beginClose wakes every suspended task).
func (c *coro) park(gen uint64) {
	t, l := c.task, c.l
	if t.stopped() {
		c.wake(gen)
	}
	l.suspended.add(c)
	l.work.suspended.Add(1)
	if w := l.watch; w != nil {
		w.end() // the task lets go of the loop
	}
	c.resumed = true
	c.yield(struct{}{}) // to the Run goroutine or the dispatcher that resumed us
	l.switched(c)
	l.suspended.remove(c)
	l.work.suspended.Add(-1)
	t.co.Store(nil)
}
