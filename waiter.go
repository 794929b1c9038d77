package eventloop

import (
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

// waitList is a doubly linked list of waitNodes. The owner's mu must be held.
type waitList struct {
	head, tail *waitNode
}

func (l *waitList) push(n *waitNode) {
	n.prev, n.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
	n.linked = true
}

// remove unlinks n and reports whether it was still linked (not yet woken).
func (l *waitList) remove(n *waitNode) bool {
	if !n.linked {
		return false
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.next, n.prev, n.linked = nil, nil, false
	return true
}

// wakeAll unlinks and wakes every node, in the order they were added.
func (l *waitList) wakeAll() {
	for n := l.head; n != nil; {
		next := n.next
		n.next, n.prev, n.linked = nil, nil, false
		if n.ch != nil {
			n.ch <- struct{}{} // never blocks: one token per registration
		} else {
			n.co.wake(n.gen)
		}
		n = next
	}
	l.head, l.tail = nil, nil
}

// waiter is what a goroutine blocked in Result or Wait waits on. Waiters and
// their timers are pooled: a pending Result(timeout) allocates nothing in
// the steady state.
type waiter struct {
	node   waitNode
	timer  *time.Timer // made on first use, stopped when idle
	pooled bool        // made outside any synctest bubble: may go back to the pool
}

var waiterPool sync.Pool

// getWaiter returns a waiter for the calling goroutine. In a testing/synctest
// bubble it makes a new one and never pools it: a channel or timer made in a
// bubble is fatal to use outside it, and one made outside would not let the
// bubble's clock advance.
func getWaiter() *waiter {
	if inBubble() {
		return &waiter{node: waitNode{ch: make(chan struct{}, 1)}}
	}
	if w, ok := waiterPool.Get().(*waiter); ok {
		return w
	}
	return &waiter{node: waitNode{ch: make(chan struct{}, 1)}, pooled: true}
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

// startTimer arms the waiter's timer for d and returns its channel. wait
// stops the timer and drains a value it may have left (pre-Go 1.23 timers,
// GODEBUG=asynctimerchan=1), so a pooled timer is safe to reuse.
func (w *waiter) startTimer(d time.Duration) <-chan time.Time {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	return w.timer.C
}
