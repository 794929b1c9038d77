package eventloop_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// long bounds waits that should end at once; it only matters when a test
// fails, so it is generous for loaded machines.
const long = 10 * time.Second

// started returns a running loop that is closed when the test ends. Then
// Close must return with Done closed, and no goroutine of the loop may
// remain (stressNoLoopGoroutines).
func started(t *testing.T, opts ...eventloop.Option) *eventloop.Loop {
	t.Helper()
	l := eventloop.New(opts...)
	label := fmt.Sprintf("%s #%d", t.Name(), stressLoops.Add(1))
	var err error
	pprof.Do(context.Background(), pprof.Labels(stressLoopLabel, label), func(context.Context) {
		err = l.Start() // the loop's goroutine, and every goroutine it makes, inherit the label
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, l.Close())
		assert.True(t, isClosed(l.Done()), "Done is closed once Close has returned")
		stressNoLoopGoroutines(t, label)
	})
	return l
}

// stressLoopLabel is the pprof label that started puts on the goroutines of
// each loop it starts; stressLoops numbers those loops.
const stressLoopLabel = "eventloop-test-loop"

var stressLoops atomic.Int64

// stressNoLoopGoroutines checks that no goroutine labelled label (by
// started) remains: the loop's own goroutine, its coroutines, and anything
// they started. It polls for a short while, as goleak does: the loop's
// goroutine closes Done as its last act and may still be on its way out.
//
// This is the per-test form of goleak: goleak.VerifyNone at the end of each
// test would also see goroutines of loops the test closes in cleanups that
// run after started's (a loop made with New before the test's first
// started), and of its parent's loops; a label names one loop's goroutines
// whoever closes the loop and whatever runs meanwhile. VerifyTestMain
// still checks the whole package at the end.
func stressNoLoopGoroutines(t *testing.T, label string) {
	t.Helper()
	want := fmt.Sprintf("%q:%q", stressLoopLabel, label)
	var left []string
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		var b bytes.Buffer
		require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 1))
		left = left[:0]
		for _, g := range strings.Split(b.String(), "\n\n") {
			if strings.Contains(g, want) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	assert.Empty(t, left, "goroutines of the loop remain after Close returned")
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

// runChild runs the test named name again in a child process with env
// added, and fails unless the child ran that test and it passed: a child
// told to run a test that does not exist passes with "no tests to run".
func runChild(t *testing.T, name string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	ran := strings.Contains(string(out), "--- PASS: "+name+" ")
	if len(out) > 1500 {
		out = append(out[:1500], "\n…"...)
	}
	assert.NoError(t, err, "the child process says\n%s", out)
	assert.True(t, ran, "the child process did not run %s and pass:\n%s", name, out)
}

// loopGoesOn checks that l still runs tasks, callbacks and timers. Since
// loop work runs in order, it also means the reports of the loop work queued
// before it have been made.
func loopGoesOn(t *testing.T, l *eventloop.Loop) {
	t.Helper()
	assert.Equal(t, eventloop.StateRunning, l.State(), "the loop is still running")
	f, err := eventloop.Submit(l, func(context.Context) (int, error) { return 42, nil })
	require.NoError(t, err, "Submit after the fault")
	v, err := outcomeOf(t, f)
	assert.NoError(t, err, "a task after the fault")
	assert.Equal(t, 42, v, "a task after the fault returns its value")
	ran := make(chan struct{})
	require.NoError(t, l.CallSoon(func() { close(ran) }), "CallSoon after the fault")
	waitClosed(t, ran, "a callback after the fault")
	fired := make(chan struct{})
	_, err = l.CallLater(time.Millisecond, func() { close(fired) })
	require.NoError(t, err, "CallLater after the fault")
	waitClosed(t, fired, "a timer after the fault")
}
