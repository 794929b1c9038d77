package eventloop_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
)

// These benchmarks measure the library alone; bench/ compares it with the
// alternatives.

func benchLoop(b *testing.B, opts ...eventloop.Option) *eventloop.Loop {
	l := eventloop.New(opts...)
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func nop(context.Context) (struct{}, error) { return struct{}{}, nil }

func BenchmarkSubmitResult(b *testing.B) {
	l := benchLoop(b)
	b.ReportAllocs()
	for b.Loop() {
		f, _ := eventloop.Submit(l, nop)
		if _, err := f.Result(time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubmitWait(b *testing.B) { benchRoundTrip(b, benchLoop(b)) }

// benchRoundTrip measures a Submit and Wait round trip on l.
func benchRoundTrip(b *testing.B, l *eventloop.Loop) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f, _ := eventloop.Submit(l, nop)
		if _, err := f.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmit is fire-and-forget throughput: ns per task, its execution
// included (the last future is awaited).
func BenchmarkSubmit(b *testing.B) { benchFireAndForget(b, benchLoop(b)) }

// benchFireAndForget submits b.N tasks to l without waiting, then waits for
// the last.
func benchFireAndForget(b *testing.B, l *eventloop.Loop) {
	b.ReportAllocs()
	var last *eventloop.Future[struct{}]
	for b.Loop() {
		last, _ = eventloop.Submit(l, nop)
	}
	<-last.Done()
}

func BenchmarkCallSoon(b *testing.B) {
	for _, producers := range []int{1, 4, 16} {
		b.Run("producers="+itoa(producers), func(b *testing.B) {
			l := benchLoop(b)
			fn := func() {}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / producers
			for range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						_ = l.CallSoon(fn)
					}
				}()
			}
			wg.Wait()
			done := make(chan struct{})
			_ = l.CallSoon(func() { close(done) })
			<-done
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkDiagnostics measures what the diagnostics options cost on the
// two hot paths, fire-and-forget Submit and a Submit+Wait round trip:
// options=off is the default, against which the others compare in one run.
func BenchmarkDiagnostics(b *testing.B) {
	configs := []struct {
		name string
		opts []eventloop.Option
	}{
		{"off", nil},
		{"slow-task-threshold", []eventloop.Option{eventloop.WithSlowTaskThreshold(time.Second)}},
		{"debug", []eventloop.Option{eventloop.WithDebug()}},
	}
	for _, c := range configs {
		b.Run("path=submit/options="+c.name, func(b *testing.B) { benchFireAndForget(b, benchLoop(b, c.opts...)) })
		b.Run("path=roundtrip/options="+c.name, func(b *testing.B) { benchRoundTrip(b, benchLoop(b, c.opts...)) })
	}
}
