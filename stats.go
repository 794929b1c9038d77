package eventloop

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a loop's counters, for graphs and health checks.
// Counts are totals since New; the "now" fields are gauges. Each field is
// read atomically, but not all of them at the same instant, so sums across
// fields may be off by the work that moved while Stats ran.
type Stats struct {
	Submitted uint64     // work accepted: Submit tasks, CallSoon callbacks and CallLater timers
	Rejected  Rejections // submissions refused, by reason

	// How tasks ended. Every accepted task ends in exactly one of these,
	// counted before its future reports the end, so a caller that has seen
	// a future end also sees it counted. Counts never go down.
	Completed uint64 // its function returned a nil error
	Failed    uint64 // its function returned an error (even ErrCancelled, passed on from an awaited future)
	Panicked  uint64 // its function panicked (the future holds a *PanicError)
	Cancelled uint64 // ended by Cancel, with ErrCancelled
	Closed    uint64 // ended by Close, with ErrLoopClosed

	// CallbackPanics counts the panics of plain callbacks the loop recovered
	// and reported: CallSoon and CallLater callbacks, and done callbacks of
	// this loop's futures.
	CallbackPanics uint64

	Queued    int // work queued and not started now: tasks, callbacks, due timers, resumed coroutines
	Suspended int // coroutines suspended in Await or Sleep now
	Timers    int // CallLater timers and Sleep deadlines pending now

	// MaxQueueWait is the longest time a batch of work waited in the queue
	// before the loop took it, since the previous call to Stats (measured
	// from the first call on: the first reports 0). It is
	// measured on the first piece of each batch queued while the loop was
	// busy (one clock reading per batch, none per task): how far behind
	// the loop runs. Work queued while the loop was idle starts at once and
	// is not measured; work held up inside a batch by a long piece of work
	// is what WithSlowTaskThreshold reports.
	MaxQueueWait time.Duration
}

// Rejections counts submissions a loop refused, by the error returned.
type Rejections struct {
	Stopped   uint64 // ErrLoopStopped
	Closed    uint64 // ErrLoopClosed
	QueueFull uint64 // ErrQueueFull
}

// queueStats are the counters producers update. Guarded by Loop.mu: plain
// increments inside the lock a submission takes anyway cost next to
// nothing, where atomic ones would cost every submission a locked
// instruction.
type queueStats struct {
	submitted uint64    // accepted Submit, CallSoon and CallLater
	enqueued  uint64    // every item appended to the queue, resumptions and due timers included
	queuedAt  time.Time // when the oldest item in the queue was queued while the loop was busy; zero if not measured
	measure   bool      // Stats has been called: measure MaxQueueWait from now on
}

// workStats are the counters of work that ran or ended: updated by the loop,
// and by whoever ends a task (Cancel, Close).
type workStats struct {
	dequeued       atomic.Uint64 // items taken off the queue: started, or dropped by Close
	completed      atomic.Uint64
	failed         atomic.Uint64
	panicked       atomic.Uint64
	cancelled      atomic.Uint64
	closed         atomic.Uint64
	callbackPanics atomic.Uint64
	suspended      atomic.Int64
	maxWait        atomic.Int64 // nanoseconds; swapped to 0 by Stats
	rejStopped     atomic.Uint64
	rejClosed      atomic.Uint64
	rejFull        atomic.Uint64
}

// Stats returns the loop's counters and resets MaxQueueWait. It is safe
// from any goroutine. It holds the loop's queue lock for a moment, as a
// submission does, and never waits for the loop itself. On a nil or zero
// Loop it returns zero Stats.
//
// Keeping the counts costs the loop next to nothing: the producers' counts
// are plain increments under the lock they take anyway; the others are
// atomic adds on a cache line of their own, which the loop writes for each
// piece of work and Cancel, Timer.Stop and Close for what they end. MaxQueueWait costs a clock reading
// per batch, so it is measured only once Stats has been called: the first
// call reports 0.
func (l *Loop) Stats() Stats {
	if l.check() != nil {
		return Stats{}
	}
	w := &l.work
	dequeued := w.dequeued.Load() // before enqueued: Queued never goes negative
	l.mu.Lock()
	l.qstats.measure = true
	submitted, enqueued, timers := l.qstats.submitted, l.qstats.enqueued, len(l.heap)
	l.mu.Unlock()
	s := Stats{
		Submitted: submitted,
		Rejected: Rejections{
			Stopped:   w.rejStopped.Load(),
			Closed:    w.rejClosed.Load(),
			QueueFull: w.rejFull.Load(),
		},
		Completed:      w.completed.Load(),
		Failed:         w.failed.Load(),
		Panicked:       w.panicked.Load(),
		Cancelled:      w.cancelled.Load(),
		Closed:         w.closed.Load(),
		CallbackPanics: w.callbackPanics.Load(),
		Queued:         int(enqueued - dequeued),
		Suspended:      int(w.suspended.Load()),
		Timers:         timers,
		MaxQueueWait:   time.Duration(w.maxWait.Swap(0)),
	}
	return s
}

// countEnd counts how a task of l ended, before the end is visible: with
// what its function returned (byFn), or, when it was cancelled or closed,
// with err, ErrCancelled or ErrLoopClosed. A function that returns
// ErrCancelled itself, say passing on an awaited future's, failed. l may be
// nil (a Go future).
func (l *Loop) countEnd(err error, byFn bool) {
	if c := l.endCounter(err, byFn); c != nil {
		c.Add(1)
	}
}

func (l *Loop) endCounter(err error, byFn bool) *atomic.Uint64 {
	if l == nil {
		return nil
	}
	w := &l.work
	switch {
	case !byFn && err == ErrCancelled:
		return &w.cancelled
	case !byFn:
		return &w.closed
	case err == nil:
		return &w.completed
	}
	if _, ok := err.(*PanicError); ok {
		return &w.panicked
	}
	return &w.failed
}

// countRejected counts a refused submission and returns err.
func (l *Loop) countRejected(err error) error {
	switch err {
	case ErrLoopStopped:
		l.work.rejStopped.Add(1)
	case ErrLoopClosed:
		l.work.rejClosed.Add(1)
	case ErrQueueFull:
		l.work.rejFull.Add(1)
	}
	return err
}

// appendLocked queues it. If the queue was empty and the loop is running and
// busy, it notes the time, so that the loop can measure how long the batch
// waited (work queued before Run waits for Run, not for the loop).
// l.mu must be held.
func (l *Loop) appendLocked(it item) {
	if len(l.queue) == 0 && !l.idle && l.ran && l.qstats.measure {
		l.qstats.queuedAt = time.Now()
	}
	l.queue = append(l.queue, it)
	l.qstats.enqueued++
}

// tookBatchLocked is called by the loop when it takes the queue: it records
// how long the batch waited, if that was measured. l.mu must be held.
func (l *Loop) tookBatchLocked() {
	if l.qstats.queuedAt.IsZero() {
		return
	}
	wait := int64(time.Since(l.qstats.queuedAt))
	l.qstats.queuedAt = time.Time{}
	for {
		m := l.work.maxWait.Load()
		if wait <= m || l.work.maxWait.CompareAndSwap(m, wait) {
			return
		}
	}
}
