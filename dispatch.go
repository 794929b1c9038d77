package eventloop

import (
	"iter"
	"sync/atomic"
	"time"

	"github.com/corun-go/eventloop/internal/gid"
)

// How the loop runs its work.
//
// The goroutine that calls Run (or the one Start makes) only switches
// between coroutines made with iter.Pull; it never runs work itself. One
// coroutine at a time is the dispatcher: it takes a batch from the queue
// and runs each piece inline. A task that returns without suspending costs
// no switch. When a task suspends (Await, Sleep), the coroutine running it
// yields to whoever switched to it and stays parked holding the task's
// stack:
//
//   - a dispatcher yields to the Run goroutine, which makes another pooled
//     coroutine the dispatcher;
//   - a resumed task yields to the dispatcher that resumed it, which goes on
//     dispatching.
//
// Resuming a task is queued work like any other: the dispatcher switches to
// the task's coroutine (one switch), which runs until the task suspends again
// (one switch back) or ends, after which the coroutine yields back and joins
// the pool. So an Await that suspends costs two coroutine switches, the Run
// goroutine is involved only when a dispatcher's own task suspends, and the
// chain of coroutines waiting in a switch is never deeper than Run →
// dispatcher → resumed task. The runtime keeps a goroutine locked to its OS
// thread on that thread across these switches, which is what makes the
// thread-affinity guarantee hold.

// coro is a pooled coroutine of a loop.
type coro struct {
	l     *Loop
	g     uintptr                 // gid of the coroutine's goroutine; set when it first runs
	next  func() (struct{}, bool) // switch to it; whoever calls is its caller until it yields
	stop  func()                  // ends it while it is parked in the pool
	yield func(struct{}) bool     // switch back to the caller

	// Owned by loop work:
	task       *core   // the task running on it, nil while dispatching or in a plain callback
	inCallback int     // done callbacks it is running inside its task (a task that cancels a future)
	resumed    bool    // its task has suspended: when it ends, yield back to the resumer
	fnPC       uintptr // its task's function, for the watchdog; set when the task starts
	clean      bool    // it yielded with no task: put it back in the pool
	prevS      *coro   // links in Loop.suspended
	nextS      *coro

	gen   atomic.Uint64 // wait generation: odd while armed for one wake-up
	node  waitNode      // registration on the future it awaits
	timer timerEntry    // its Sleep deadline
}

func (l *Loop) newCoro() *coro {
	c := &coro{l: l}
	c.node.co = c
	c.timer.co = c
	c.timer.index = -1
	c.next, c.stop = iter.Pull(c.body)
	return c
}

// body is the coroutine's function: it dispatches until the loop is over.
func (c *coro) body(yield func(struct{}) bool) {
	c.yield = yield
	c.g = gid.Current()
	c.l.switched(c)
	c.l.dispatch(c)
}

// switched records that c now runs loop work.
func (l *Loop) switched(c *coro) {
	l.cur = c
	l.curG.Store(c.g)
}

// run is the body of Run and Start on the loop's goroutine.
func (l *Loop) run(beforeDone func()) {
	register(l)
	if l.opts.debug {
		debugLoops.Add(1)
		defer debugLoops.Add(-1)
	}
	if l.watch != nil {
		go l.watch.run()
	}
	for {
		var c *coro
		if n := len(l.pool); n > 0 {
			c, l.pool = l.pool[n-1], l.pool[:n-1]
		} else {
			c = l.newCoro()
		}
		_, ok := c.next()
		l.cur = nil
		l.curG.Store(0)
		if !ok {
			break // the dispatcher returned: the loop is over
		}
		// c's task suspended; make another coroutine the dispatcher.
	}
	for _, c := range l.pool {
		c.stop()
	}
	l.pool = nil
	if l.sleep != nil {
		l.sleep.Stop()
	}
	unregister(l)
	if l.watch != nil {
		close(l.watch.stop)
		<-l.watch.gone
	}
	l.mu.Lock()
	if l.state.Load() == int32(StateStopping) {
		l.state.Store(int32(StateStopped))
	}
	l.mu.Unlock()
	if beforeDone != nil {
		beforeDone()
	}
	close(l.done)
}

// dispatch runs queued work on c until the loop is over.
func (l *Loop) dispatch(c *coro) {
	for {
		if l.pos == len(l.batch) {
			l.batch, l.pos = l.batch[:0], 0
			if !l.refill() {
				return
			}
			continue
		}
		it := l.batch[l.pos]
		l.batch[l.pos] = item{}
		l.pos++
		if !l.closing && l.state.Load() == int32(StateClosed) {
			l.beginClose()
		}
		if it.fn != nil {
			l.unqueue()
			if !l.closing {
				if w := l.watch; w != nil {
					w.begin(entryPC(it.fn), 0)
				}
				l.callback(it.fn, nil)
				if w := l.watch; w != nil {
					w.end()
				}
			}
			continue
		}
		if w := l.watch; w != nil {
			w.begin(it.r.describe())
		}
		if !it.r.run(c) {
			return
		}
		if w := l.watch; w != nil {
			w.end() // unless it ended when the task suspended
		}
	}
}

// unqueue counts one piece of work out of the queue, for WithQueueCapacity
// and Stats.Queued: it started, or ended or was dropped before it could.
// Every queued task, callback and due timer is counted out exactly once, by
// whoever moves it out of the queued state; resumptions are counted out by
// coro.run, and never count against the capacity.
func (l *Loop) unqueue() {
	if l == nil {
		return
	}
	l.work.dequeued.Add(1)
	if l.bounded {
		l.waiting.Add(-1)
	}
}

// refill moves the queue into the batch, first moving due timers into the
// queue. With nothing to do it waits for work or the next deadline; it
// returns false once the loop is over: stopping or closed with no work left
// and no task suspended.
func (l *Loop) refill() bool {
	l.mu.Lock()
	for {
		if len(l.heap) > 0 {
			l.fireDueLocked(time.Now())
		}
		if len(l.queue) > 0 {
			l.batch, l.queue = l.queue, l.batch
			l.tookBatchLocked()
			l.mu.Unlock()
			return true
		}
		s := State(l.state.Load())
		if s == StateClosed && !l.closing {
			l.mu.Unlock()
			l.beginClose()
			l.mu.Lock()
			continue
		}
		if (s == StateStopping || s == StateClosed) && l.suspended.empty() {
			l.dropTimersLocked()
			l.mu.Unlock()
			return false
		}
		l.idle = true
		if l.watch != nil {
			l.watch.last = 0 // the next piece starts after the wait
		}
		var timerC <-chan time.Time
		if len(l.heap) > 0 {
			// Re-arm only when the earliest deadline changed: arming a
			// timer on every idle wait made each wake-up dearer while any
			// timer or Sleep was pending. A timer armed for a deadline that
			// went away just wakes the loop once for nothing.
			if when := l.heap[0].when; !when.Equal(l.sleepAt) {
				d := time.Until(when)
				if l.sleep == nil {
					l.sleep = time.NewTimer(d)
				} else {
					l.sleep.Reset(d)
				}
				l.sleepAt = when
			}
			timerC = l.sleep.C
		}
		l.mu.Unlock()
		if timerC == nil {
			<-l.wake // a plain receive costs much less than a select
		} else {
			select {
			case <-l.wake:
			case <-timerC:
				l.sleepAt = time.Time{} // it fired: armed for nothing now
			}
		}
		l.mu.Lock()
		l.idle = false
	}
}

// beginClose is the loop's part of Close: it cancels every suspended task
// (which wakes it), and drops the timers. From now on dispatch fails
// queued tasks, drops callbacks and runs only resumptions, until no task is
// left.
func (l *Loop) beginClose() {
	l.closing = true
	for c := l.suspended.head; c != nil; c = c.nextS {
		c.task.cancel(ErrLoopClosed, false)
	}
	l.mu.Lock()
	l.dropTimersLocked()
	l.mu.Unlock()
}

// callback runs a plain callback, sending a panic to the error handler.
// at is where it was submitted, or nil.
func (l *Loop) callback(fn func(), at *origin) {
	defer func() {
		if v := recover(); v != nil {
			l.work.callbackPanics.Add(1)
			p := newPanicError(v)
			if at != nil {
				p.withSite(siteOf(at.site))
			}
			report(l.opts.errorHandler, p)
		}
	}()
	fn()
}

// run resumes x's suspended task; it is called on the dispatcher d.
func (x *coro) run(d *coro) bool {
	l := d.l
	l.work.dequeued.Add(1) // resumptions are not counted by unqueue
	x.next()               // x runs until its task suspends again or ends
	l.switched(d)
	if x.clean {
		x.clean = false
		if len(l.pool) < maxPool {
			l.pool = append(l.pool, x)
		} else {
			x.stop() // its goroutine exits; a burst of suspensions leaves no crowd behind
		}
	}
	return true
}

// maxPool is how many idle coroutines a loop keeps. Each is a parked
// goroutine (a few KiB of stack); more are made when more tasks are
// suspended at once, and those beyond maxPool end once their task has.
const maxPool = 128

// drop is never needed: a resumption always runs, also while closing.
func (x *coro) drop() *core { return nil }

// describe describes the resumed task: fnPC was set when it started.
func (x *coro) describe() (fn, site uintptr) { return x.fnPC, x.task.site() }

func (f *Future[T]) describe() (fn, site uintptr) { return entryPC(f.fn), f.site() }

// site is where the task was submitted, if its loop records it, or 0.
func (c *core) site() uintptr {
	if c.loop == nil || !c.loop.opts.sites {
		return 0
	}
	return c.x.at.site // x and at were made by Submit and are never replaced
}

// run runs the task inline on the dispatcher c.
func (f *Future[T]) run(c *coro) bool {
	if !f.claim() {
		return true // ended before it started (Cancel); nothing to do
	}
	l := c.l
	l.unqueue()
	if l.closing || l.state.Load() == int32(StateClosed) {
		f.endClosed()
		return true
	}
	c.task = &f.core
	if l.watch != nil {
		c.fnPC = entryPC(f.fn)
	}
	v, err := f.call(ctxOf(&f.core))
	c.task = nil
	if l.state.Load() == int32(StateClosed) {
		f.endClosed() // a started task that Close caught ends with ErrLoopClosed
	} else {
		f.complete(v, err)
	}
	if c.resumed {
		// c was resumed by a dispatcher, which is waiting for c to
		// yield; c's dispatch loop resumes when the pool hands it out.
		c.resumed = false
		c.clean = true
		if !c.yield(struct{}{}) {
			return false
		}
		l.switched(c)
	}
	return true
}

// endClosed ends a claimed task with ErrLoopClosed, or ErrCancelled if a
// Cancel came first.
func (f *Future[T]) endClosed() {
	f.mu.Lock()
	err := ErrLoopClosed
	if f.state.Load()&stMask == stCancelling {
		err = f.x.cause
	}
	f.loop.countEnd(err, false)
	f.endLocked(err)
}

// drop fails a task the loop will never start, leaving its done callbacks
// to the caller.
func (f *Future[T]) drop() *core {
	if f.endUnstarted(ErrLoopClosed) {
		return &f.core
	}
	return nil
}

// coroList is an intrusive list of coroutines, owned by loop work.
type coroList struct {
	head *coro
	n    int
}

func (s *coroList) empty() bool { return s.n == 0 }

func (s *coroList) add(c *coro) {
	c.prevS, c.nextS = nil, s.head
	if s.head != nil {
		s.head.prevS = c
	}
	s.head = c
	s.n++
}

func (s *coroList) remove(c *coro) {
	if c.prevS != nil {
		c.prevS.nextS = c.nextS
	} else {
		s.head = c.nextS
	}
	if c.nextS != nil {
		c.nextS.prevS = c.prevS
	}
	c.prevS, c.nextS = nil, nil
	s.n--
}
