package eventloop

import (
	"container/heap"
	"sync"
	"time"
)

// waitNode is one registration on a future's waiter list: a blocked
// goroutine (ch) or a suspended coroutine (co, for the wait numbered gen).
// Nodes are intrusive so that waiting does not allocate; a node is linked,
// unlinked and woken only with the future's mu held.
type waitNode struct {
	next, prev *waitNode
	linked     bool
	ch         chan struct{} // buffered(1): a goroutine blocked in wait
	co         *coro         // or a coroutine suspended in Await
	gen        uint64        // the coroutine's wait this node belongs to
}

// waitList is a circular doubly linked list of waitNodes, held by its head
// alone (head.prev is the tail), so that it costs a future one word. The
// owner's mu must be held.
type waitList struct {
	head *waitNode
}

func (l *waitList) push(n *waitNode) {
	if l.head == nil {
		n.prev, n.next = n, n
		l.head = n
	} else {
		tail := l.head.prev
		n.prev, n.next = tail, l.head
		tail.next = n
		l.head.prev = n
	}
	n.linked = true
}

// remove unlinks n and reports whether it was still linked (not yet woken).
func (l *waitList) remove(n *waitNode) bool {
	if !n.linked {
		return false
	}
	if n.next == n {
		l.head = nil
	} else {
		n.prev.next = n.next
		n.next.prev = n.prev
		if l.head == n {
			l.head = n.next
		}
	}
	n.next, n.prev, n.linked = nil, nil, false
	return true
}

// wakeAll unlinks and wakes every node, in the order they were added.
func (l *waitList) wakeAll() {
	head := l.head
	l.head = nil
	for n := head; n != nil; {
		next := n.next
		if next == head {
			next = nil // back at the start
		}
		n.next, n.prev, n.linked = nil, nil, false
		if n.ch != nil {
			n.ch <- struct{}{} // never blocks: one token per registration
		} else {
			n.co.wake(n.gen)
		}
		n = next
	}
}

// waiter is what a goroutine blocked in Result or Wait waits on: its channel
// receives one token from the goroutine that ends the future and one from
// the shared deadlines when the timeout passes, so it holds two. Waiters are
// pooled: a pending Result(timeout) allocates nothing in the steady state.
type waiter struct {
	node     waitNode
	deadline timerEntry // its place in deadlines.heap (index -1 when not in it)
	pooled   bool       // made outside any synctest bubble: may go back to the pool
}

var waiterPool sync.Pool

func newWaiter(pooled bool) *waiter {
	w := &waiter{node: waitNode{ch: make(chan struct{}, 2)}, pooled: pooled}
	w.deadline.w, w.deadline.index = w, -1
	return w
}

// getWaiter returns a waiter for a future. For a future made in a
// testing/synctest bubble (whose waiters are in the bubble too) it makes a
// new one and never pools it: a channel made in a bubble is fatal to use
// outside it, and one made outside would not let the bubble's clock advance.
// A pooled waiter is never made in a bubble either. Asking the future rather
// than the caller spares every wait a clock reading.
func getWaiter(bubbled bool) *waiter {
	if bubbled {
		return newWaiter(false)
	}
	if w, ok := waiterPool.Get().(*waiter); ok {
		return w
	}
	return newWaiter(!inBubble())
}

func putWaiter(w *waiter) {
	if w.pooled {
		waiterPool.Put(w)
	}
}

// inBubble reports whether the caller runs in a testing/synctest bubble. The
// bubble's clock has no monotonic reading, and Round(0) strips exactly that,
// so the two compare equal (with ==, on purpose) only in a bubble.
func inBubble() bool {
	now := time.Now()
	return now == now.Round(0)
}

// deadlines wakes goroutines blocked in Result when their timeout passes.
// One time.AfterFunc timer serves every waiter of the process: it is armed
// for the earliest deadline and re-armed only when an earlier one arrives or
// it fires. A Result whose future ends in time thus costs a heap push and a
// remove under one mutex, where arming and stopping a timer of its own cost
// more than the whole round trip (bench/, RoundTrip).
var deadlines struct {
	mu    sync.Mutex
	heap  timerHeap   // entries of waiters only
	timer *time.Timer // runs fireDeadlines; made on first use
	at    time.Time   // what timer is armed for; zero when it is not
}

// addDeadline arranges for w to receive a token at when, unless removed
// first.
func addDeadline(w *waiter, when time.Time) {
	deadlines.mu.Lock()
	defer deadlines.mu.Unlock()
	w.deadline.when = when
	heap.Push(&deadlines.heap, &w.deadline)
	if deadlines.at.IsZero() || when.Before(deadlines.at) {
		d := time.Until(when)
		if deadlines.timer == nil {
			deadlines.timer = time.AfterFunc(d, fireDeadlines)
		} else {
			deadlines.timer.Reset(d)
		}
		deadlines.at = when
	}
}

// removeDeadline takes w out of the deadlines and reports whether it was
// still there; false means its deadline passed and it was sent a token.
// The timer stays armed: if it fires for nothing, it re-arms.
func removeDeadline(w *waiter) bool {
	deadlines.mu.Lock()
	defer deadlines.mu.Unlock()
	if w.deadline.index < 0 {
		return false
	}
	heap.Remove(&deadlines.heap, w.deadline.index)
	return true
}

// fireDeadlines wakes the waiters whose deadline has passed and re-arms the
// timer for the next one. It runs on the timer's goroutine.
func fireDeadlines() {
	deadlines.mu.Lock()
	defer deadlines.mu.Unlock()
	now := time.Now()
	h := &deadlines.heap
	for len(*h) > 0 && !(*h)[0].when.After(now) {
		e := heap.Pop(h).(*timerEntry)
		e.w.node.ch <- struct{}{} // never blocks: room for two tokens
	}
	deadlines.at = time.Time{}
	if len(*h) > 0 {
		deadlines.at = (*h)[0].when
		deadlines.timer.Reset(time.Until(deadlines.at))
	}
}
