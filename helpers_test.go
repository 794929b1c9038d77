package eventloop_test

import (
	"context"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// long bounds waits that should end at once; it only matters when a test
// fails, so it is generous for loaded machines.
const long = 10 * time.Second

// started returns a running loop that is closed when the test ends.
func started(t *testing.T, opts ...eventloop.Option) *eventloop.Loop {
	t.Helper()
	l := eventloop.New(opts...)
	require.NoError(t, l.Start())
	t.Cleanup(func() { assert.NoError(t, l.Close()) })
	return l
}

// gate is a helper that blocks until opened.
type gate chan struct{}

func newGate() gate { return make(gate) }

// open opens g; opening an open gate does nothing. Not for concurrent use.
func (g gate) open() {
	select {
	case <-g:
	default:
		close(g)
	}
}

// wait blocks until g is opened or the context ends.
func (g gate) wait(ctx context.Context) error {
	select {
	case <-g:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recv waits for a value on ch, failing the test after long.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(long):
		t.Fatal("timed out waiting on a channel")
		panic("unreachable")
	}
}

// closedWithin reports whether ch is closed within long.
func closedWithin(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(long):
		return false
	}
}

// value returns a task that returns v.
func value[T any](v T) func(context.Context) (T, error) {
	return func(context.Context) (T, error) { return v, nil }
}

// blocker returns a task that reports it started on started, then waits for
// g (or its context) and returns v.
func blocker[T any](started chan<- struct{}, g gate, v T) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		if started != nil {
			started <- struct{}{}
		}
		if err := g.wait(ctx); err != nil {
			return v, err
		}
		return v, nil
	}
}

// occupy submits a task that holds l until release is called (or the test
// ends) and waits until it runs, so that what is submitted next stays
// queued behind it. busy is that task's future.
func occupy(t *testing.T, l *eventloop.Loop) (release func(), busy *eventloop.Future[int]) {
	t.Helper()
	running := make(chan struct{}, 1)
	g := newGate()
	t.Cleanup(g.open)
	busy, err := eventloop.Submit(l, blocker(running, g, 0))
	require.NoError(t, err)
	recv(t, running)
	return g.open, busy
}
