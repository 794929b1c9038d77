package eventloop

import (
	"container/heap"
	"time"
)

// timerEntry is a deadline in a timer heap: in a loop's, a CallLater timer
// (t) or a sleeping coroutine (co, armed for gen), guarded by Loop.mu; in
// the shared deadlines of Result, a waiter (w), guarded by deadlines.mu.
type timerEntry struct {
	when  time.Time
	seq   uint64 // creation order: ties fire in the order created
	index int    // position in the heap, -1 when not in it
	t     *Timer
	co    *coro
	gen   uint64
	w     *waiter
}

// timerHeap orders entries by deadline, then creation. It implements
// heap.Interface; use it with the lock that guards it held.
type timerHeap []*timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	e.index = -1
	*h = old[:n]
	return e
}

func (l *Loop) pushTimerLocked(e *timerEntry) {
	e.seq = l.seq
	l.seq++
	heap.Push(&l.heap, e)
}

func (l *Loop) removeTimerLocked(e *timerEntry) {
	if e.index >= 0 {
		heap.Remove(&l.heap, e.index)
	}
}

// fireDueLocked moves the timers due at now to the queue and wakes the
// coroutines whose Sleep is over.
func (l *Loop) fireDueLocked(now time.Time) {
	for len(l.heap) > 0 && !l.heap[0].when.After(now) {
		e := heap.Pop(&l.heap).(*timerEntry)
		if e.co != nil {
			e.co.wakeLocked(e.gen)
			continue
		}
		if e.t.state.CompareAndSwap(timerPending, timerDue) {
			l.appendLocked(item{r: e.t})
			if l.bounded {
				l.waiting.Add(1)
			}
		}
	}
}

// dropTimersLocked drops every CallLater timer that has not fired; the
// deadlines of sleeping coroutines stay.
func (l *Loop) dropTimersLocked() {
	kept := l.heap[:0]
	for _, e := range l.heap {
		if e.t != nil {
			e.t.state.CompareAndSwap(timerPending, timerDropped)
			e.index = -1
			continue
		}
		e.index = len(kept)
		kept = append(kept, e)
	}
	for i := len(kept); i < len(l.heap); i++ {
		l.heap[i] = nil
	}
	l.heap = kept
	heap.Init(&l.heap)
}
