package bench

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/corun-go/eventloop"
	"github.com/dop251/goja"
	gojaloop "github.com/dop251/goja_nodejs/eventloop"
)

// handrolled is the loop most Go developers write: one goroutine draining a
// buffered chan func().
type handrolled struct {
	ch   chan func()
	done chan struct{}
}

func newHandrolled() *handrolled {
	h := &handrolled{ch: make(chan func(), 1024), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for fn := range h.ch {
			fn()
		}
	}()
	return h
}

// close stops the loop once it has run everything sent before.
func (h *handrolled) close() {
	close(h.ch)
	<-h.done
}

// newEventloop starts an eventloop.Loop that the benchmark closes when it
// ends.
func newEventloop(b *testing.B) *eventloop.Loop {
	b.Helper()
	l := eventloop.New()
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Close(); err != nil {
			b.Error(err)
		}
	})
	return l
}

// newGoja starts a goja_nodejs event loop that the benchmark terminates when
// it ends (Terminate: no timers, no goroutines left).
func newGoja(b *testing.B) *gojaloop.EventLoop {
	b.Helper()
	loop := gojaloop.NewEventLoop()
	loop.Start()
	b.Cleanup(loop.Terminate)
	return loop
}

func newHandrolledB(b *testing.B) *handrolled {
	h := newHandrolled()
	b.Cleanup(h.close)
	return h
}

// gojaSync runs fn on the goja loop and waits until it has run.
func gojaSync(b *testing.B, loop *gojaloop.EventLoop, fn func()) {
	done := make(chan struct{})
	if !loop.RunOnLoop(func(*goja.Runtime) { fn(); close(done) }) {
		b.Fatal("goja: RunOnLoop refused")
	}
	<-done
}

// share is producer i's share of n operations split over p producers.
func share(n, p, i int) int {
	q := n / p
	if i < n%p {
		q++
	}
	return q
}

// runProducers starts p goroutines, producer i running body(share(b.N, p, i)),
// and waits for them all. The timer is reset first, so the caller's setup is
// not measured; the caller stops it once the loop has run everything.
func runProducers(b *testing.B, p int, body func(n int)) {
	b.ReportAllocs()
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range p {
		n := share(b.N, p, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(n)
		}()
	}
	wg.Wait()
}

func implName(impl string) string { return "impl=" + impl }

func producersName(impl string, p int) string {
	return "impl=" + impl + "/producers=" + strconv.Itoa(p)
}

// answerTask is the trivial function submitted where a result is awaited.
func answerTask(context.Context) (int, error) { return 42, nil }
