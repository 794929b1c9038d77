package bench

import (
	"context"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/dop251/goja"
)

var producerCounts = []int{1, 4, 16}

// BenchmarkFireAndForget: producers hand the loop trivial work and do not
// wait for it; ns per task, its execution included: b.N tasks in all, split
// over the producers, and the timer stops only once the loop has run every
// one of them (a final marker, queued after all of them, has run). Each task
// bumps a counter that only the loop touches; the marker checks it.
func BenchmarkFireAndForget(b *testing.B) {
	for _, p := range producerCounts {
		b.Run(producersName("eventloop", p), func(b *testing.B) {
			l := newEventloop(b)
			count := 0
			task := func(context.Context) (struct{}, error) { count++; return struct{}{}, nil }
			runProducers(b, p, func(n int) {
				for range n {
					if _, err := eventloop.Submit(l, task); err != nil {
						b.Error(err)
						return
					}
				}
			})
			eventloopDrain(b, l, &count)
		})
		benchHandrolledFireAndForget(b, p)
		benchGojaFireAndForget(b, p)
	}
}

// BenchmarkCallSoon is BenchmarkFireAndForget with eventloop's CallSoon (a
// plain callback, no future) against the same alternatives.
func BenchmarkCallSoon(b *testing.B) {
	for _, p := range producerCounts {
		b.Run(producersName("eventloop", p), func(b *testing.B) {
			l := newEventloop(b)
			count := 0
			fn := func() { count++ }
			runProducers(b, p, func(n int) {
				for range n {
					if err := l.CallSoon(fn); err != nil {
						b.Error(err)
						return
					}
				}
			})
			eventloopDrain(b, l, &count)
		})
		benchHandrolledFireAndForget(b, p)
		benchGojaFireAndForget(b, p)
	}
}

// eventloopDrain waits until l has run everything queued before it, stops
// the timer and checks that the loop ran b.N tasks.
func eventloopDrain(b *testing.B, l *eventloop.Loop, count *int) {
	f, err := eventloop.Submit(l, func(context.Context) (int, error) { return *count, nil })
	if err != nil {
		b.Fatal(err)
	}
	n, err := f.Wait(context.Background())
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n != b.N && !b.Failed() {
		b.Fatalf("the loop ran %d tasks, want %d", n, b.N)
	}
}

func benchHandrolledFireAndForget(b *testing.B, p int) {
	b.Run(producersName("handrolled", p), func(b *testing.B) {
		h := newHandrolledB(b)
		count := 0
		fn := func() { count++ }
		runProducers(b, p, func(n int) {
			for range n {
				h.ch <- fn
			}
		})
		reply := make(chan int, 1)
		h.ch <- func() { reply <- count }
		n := <-reply
		b.StopTimer()
		if n != b.N {
			b.Fatalf("the loop ran %d tasks, want %d", n, b.N)
		}
	})
}

func benchGojaFireAndForget(b *testing.B, p int) {
	b.Run(producersName("goja", p), func(b *testing.B) {
		loop := newGoja(b)
		count := 0
		fn := func(*goja.Runtime) { count++ }
		runProducers(b, p, func(n int) {
			for range n {
				if !loop.RunOnLoop(fn) {
					b.Error("goja: RunOnLoop refused")
					return
				}
			}
		})
		n := 0
		gojaSync(b, loop, func() { n = count })
		b.StopTimer()
		if n != b.N && !b.Failed() {
			b.Fatalf("the loop ran %d tasks, want %d", n, b.N)
		}
	})
}

// BenchmarkClosedLoop: producers each hand the loop a trivial function and
// wait for its result, in a loop; ns per round trip over all producers.
func BenchmarkClosedLoop(b *testing.B) {
	for _, p := range []int{4, 16} {
		b.Run(producersName("eventloop", p), func(b *testing.B) {
			l := newEventloop(b)
			runProducers(b, p, func(n int) {
				for range n {
					f, err := eventloop.Submit(l, answerTask)
					if err != nil {
						b.Error(err)
						return
					}
					if v, err := f.Result(time.Second); err != nil || v != 42 {
						b.Error(v, err)
						return
					}
				}
			})
			b.StopTimer()
		})
		b.Run(producersName("handrolled", p), func(b *testing.B) {
			h := newHandrolledB(b)
			runProducers(b, p, func(n int) {
				for range n {
					reply := make(chan int, 1)
					h.ch <- func() { reply <- 42 }
					if v := <-reply; v != 42 {
						b.Error(v)
						return
					}
				}
			})
			b.StopTimer()
		})
		b.Run(producersName("goja", p), func(b *testing.B) {
			loop := newGoja(b)
			runProducers(b, p, func(n int) {
				for range n {
					reply := make(chan int, 1)
					if !loop.RunOnLoop(func(*goja.Runtime) { reply <- 42 }) {
						b.Error("goja: RunOnLoop refused")
						return
					}
					if v := <-reply; v != 42 {
						b.Error(v)
						return
					}
				}
			})
			b.StopTimer()
		})
	}
}
