package eventloop

import (
	"sync/atomic"
	"time"
)

// CallSoon queues fn to run on the loop, after the work queued before it:
// the counterpart of asyncio's call_soon_threadsafe. It is safe from any
// goroutine, loop work included, and does not allocate in the steady state
// (with WithDebug, it allocates a record of where it was called).
//
// fn is a plain callback, not a coroutine: Await on a pending future in it
// returns ErrDeadlock. A panic in fn goes to the error handler as a
// *PanicError and the loop goes on. CallSoon returns ErrLoopStopped or
// ErrLoopClosed once the loop stops or closes, ErrQueueFull when a bounded
// queue is full. A callback still queued when the loop closes is dropped; one
// queued before Stop runs.
func (l *Loop) CallSoon(fn func()) error {
	if fn == nil {
		if err := l.check(); err != nil {
			return err
		}
		return errNilFunc
	}
	if l != nil && l.opts.sites {
		return l.enqueue(item{r: &siteCallback{l: l, fn: fn, at: origin{site: callerPC(0), fn: entryPC(fn)}}})
	}
	return l.enqueue(item{fn: fn})
}

// CallLater arranges for fn to run on the loop once d has passed (d <= 0:
// due at once), and returns a Timer that can stop it. Timers fire in
// deadline order, ties in the order created; once due, fn joins the queue
// behind the work already there. A timer that has not fired when the loop
// has drained after Stop, or when it closes, is dropped.
//
// CallLater is safe from any goroutine. It returns the errors of CallSoon;
// with a bounded queue it is refused while the queue is full, and a timer
// counts against the capacity only once it is due.
func (l *Loop) CallLater(d time.Duration, fn func()) (*Timer, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, errNilFunc
	}
	t := &Timer{l: l, fn: fn}
	if l.opts.sites {
		t.at = origin{site: callerPC(0), fn: entryPC(fn)}
	}
	t.entry.t = t
	t.entry.index = -1
	when := time.Now()
	if d > 0 {
		when = when.Add(d)
	}
	l.mu.Lock()
	if s := State(l.state.Load()); s > StateRunning {
		l.mu.Unlock()
		if s == StateClosed {
			return nil, l.countRejected(ErrLoopClosed)
		}
		return nil, l.countRejected(ErrLoopStopped)
	}
	if l.bounded && l.waiting.Load() >= int64(l.opts.capacity) {
		l.mu.Unlock()
		return nil, l.countRejected(ErrQueueFull)
	}
	l.qstats.submitted++
	if d <= 0 {
		// Due at once: it joins the queue now, behind the work already there.
		t.state.Store(timerDue)
		l.appendLocked(item{r: t})
		if l.bounded {
			l.waiting.Add(1)
		}
	} else {
		t.entry.when = when
		l.pushTimerLocked(&t.entry)
	}
	l.signalLocked()
	l.mu.Unlock()
	return t, nil
}

// The states of a Timer.
const (
	timerPending uint32 = iota // in the heap
	timerDue                   // in the queue
	timerFired                 // fn has started
	timerStopped               // Stop kept fn from running
	timerDropped               // the loop stopped or closed first
)

// Timer is a callback scheduled by CallLater. It is safe for use by multiple
// goroutines. The zero Timer is not usable: its Stop reports false.
type Timer struct {
	l     *Loop
	fn    func()
	entry timerEntry    // guarded by l.mu
	state atomic.Uint32 // timerPending → timerDue → timerFired, or → timerStopped / timerDropped
	at    origin        // where CallLater was called, if the loop records it
}

// Stop keeps the timer's function from running and reports whether this
// call did so: false if it has started or finished, was stopped already, or
// was dropped because the loop stopped or closed. It is safe from any
// goroutine; a nil Timer reports false.
func (t *Timer) Stop() bool {
	if t == nil || t.l == nil {
		return false
	}
	if t.state.CompareAndSwap(timerPending, timerStopped) {
		t.l.mu.Lock()
		t.l.removeTimerLocked(&t.entry)
		t.l.mu.Unlock()
		return true
	}
	// Due: it waits in the queue, and the loop skips it.
	if t.state.CompareAndSwap(timerDue, timerStopped) {
		t.l.unqueue()
		return true
	}
	return false
}

// run runs the timer's function on the loop, unless it was stopped.
func (t *Timer) run(c *coro) bool {
	if c.l.closing {
		t.drop()
		return true
	}
	if t.state.CompareAndSwap(timerDue, timerFired) {
		c.l.unqueue()
		c.l.callback(t.fn, &t.at)
	}
	return true
}

func (t *Timer) describe() (fn, site uintptr) { return entryPC(t.fn), t.at.site }

func (t *Timer) drop() *core {
	if t.state.CompareAndSwap(timerDue, timerDropped) {
		t.l.unqueue()
	}
	return nil
}
