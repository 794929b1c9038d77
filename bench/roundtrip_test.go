package bench

import (
	"context"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/dop251/goja"
)

// BenchmarkRoundTrip: one goroutine hands the loop a trivial function and
// waits for its result; ns per round trip.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run(implName("eventloop-result"), func(b *testing.B) {
		l := newEventloop(b)
		b.ReportAllocs()
		for b.Loop() {
			f, err := eventloop.Submit(l, answerTask)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := f.Result(time.Second); err != nil || v != 42 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run(implName("eventloop-wait"), func(b *testing.B) {
		l := newEventloop(b)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			f, err := eventloop.Submit(l, answerTask)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := f.Wait(ctx); err != nil || v != 42 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run(implName("handrolled"), func(b *testing.B) {
		h := newHandrolledB(b)
		b.ReportAllocs()
		for b.Loop() {
			reply := make(chan int, 1)
			h.ch <- func() { reply <- 42 }
			if v := <-reply; v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run(implName("goja"), func(b *testing.B) {
		loop := newGoja(b)
		b.ReportAllocs()
		for b.Loop() {
			reply := make(chan int, 1)
			if !loop.RunOnLoop(func(*goja.Runtime) { reply <- 42 }) {
				b.Fatal("goja: RunOnLoop refused")
			}
			if v := <-reply; v != 42 {
				b.Fatal(v)
			}
		}
	})
	b.Run(implName("chan-pingpong"), func(b *testing.B) {
		ping, pong, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for range ping {
				pong <- struct{}{}
			}
		}()
		b.Cleanup(func() { close(ping); <-done })
		b.ReportAllocs()
		for b.Loop() {
			ping <- struct{}{}
			<-pong
		}
	})
}
