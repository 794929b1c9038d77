package eventloop

import (
	"context"
	"testing"
	"time"
)

// promise returns a started future that the caller ends with complete, so
// that a benchmark measures Await and nothing else.
func promise() *Future[struct{}] {
	f := &Future[struct{}]{fn: func(context.Context) (struct{}, error) { return struct{}{}, nil }}
	f.state.Store(stRunning)
	return f
}

// BenchmarkAwaitPingPong has two coroutines on one loop awaiting each
// other's futures: ns per Await, which includes queueing the other side's
// resumption and two coroutine switches.
func BenchmarkAwaitPingPong(b *testing.B) {
	l := New()
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	n := b.N
	var turn [2]*Future[struct{}]
	turn[0], turn[1] = promise(), promise()
	done := make(chan struct{}, 2)
	for side := range 2 {
		_, _ = Submit(l, func(ctx context.Context) (struct{}, error) {
			defer func() { done <- struct{}{} }()
			for i := side; i < n; i += 2 {
				if _, err := Await(ctx, turn[side]); err != nil {
					b.Error(err)
					return struct{}{}, err
				}
				turn[side] = promise()
				turn[1-side].complete(struct{}{}, nil)
			}
			return struct{}{}, nil
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	turn[0].complete(struct{}{}, nil)
	<-done
	<-done
}

func TestIdleCoroutinesAreBounded(t *testing.T) {
	l := New()
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 4 * maxPool
	gate := promise()
	var fs []*Future[struct{}]
	for range n {
		f, err := Submit(l, func(ctx context.Context) (struct{}, error) {
			_, err := Await(ctx, gate)
			return struct{}{}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	// Wait until every task is suspended, then let them all finish.
	probe, _ := Submit(l, func(context.Context) (int, error) { return l.suspended.n, nil })
	for {
		if k, _ := probe.Result(time.Second); k == n {
			break
		}
		probe, _ = Submit(l, func(context.Context) (int, error) { return l.suspended.n, nil })
	}
	gate.complete(struct{}{}, nil)
	for _, f := range fs {
		if _, err := f.Result(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	pooled, _ := Submit(l, func(context.Context) (int, error) { return len(l.pool), nil })
	k, err := pooled.Result(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if k > maxPool {
		t.Fatalf("%d idle coroutines kept, want at most %d", k, maxPool)
	}
}
