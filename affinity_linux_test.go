//go:build linux

package eventloop_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreadAffinity(t *testing.T) {
	t.Run("all loop work runs on the OS thread of a locked goroutine that calls Run", func(t *testing.T) {
		l := eventloop.New()
		other := started(t)
		tidCh := make(chan int, 1)
		runErr := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tidCh <- syscall.Gettid()
			runErr <- l.Run(context.Background())
		}()
		tid := receiveWithin(t, tidCh, "the Run goroutine")
		t.Cleanup(func() {
			assert.NoError(t, l.Close())
		})

		// Keep every P busy, so that work moved to another goroutine would
		// likely land on another thread.
		stopBusy := make(chan struct{})
		var busy sync.WaitGroup
		for range 2 * runtime.GOMAXPROCS(0) {
			busy.Go(func() {
				for {
					select {
					case <-stopBusy:
						return
					default:
						runtime.Gosched()
					}
				}
			})
		}
		defer busy.Wait()
		defer close(stopBusy)

		var checks, wrong atomic.Int64
		var mu sync.Mutex
		var examples []string // the first few of the wrong ones
		check := func(where string) {
			checks.Add(1)
			if got := syscall.Gettid(); got != tid {
				if wrong.Add(1) <= 10 {
					mu.Lock()
					examples = append(examples, fmt.Sprintf("%s: thread %d, want %d", where, got, tid))
					mu.Unlock()
				}
			}
		}

		const tasks, rounds = 50, 10
		var futures []*eventloop.Future[int]
		for i := range tasks {
			f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
				check("task start")
				for r := range rounds {
					_, err := eventloop.Await(ctx, eventloop.Go(func(context.Context) (int, error) {
						runtime.Gosched()
						return r, nil
					}))
					if err != nil {
						return 0, err
					}
					check("after Await on a Go future")
					if err := eventloop.Sleep(ctx, 0); err != nil {
						return 0, err
					}
					check("after Sleep(ctx, 0)")
					if err := eventloop.Sleep(ctx, time.Duration(r%3)*100*time.Microsecond); err != nil {
						return 0, err
					}
					check("after Sleep")
					o, err := eventloop.Submit(other, func(context.Context) (int, error) { return r, nil })
					if err != nil {
						return 0, err
					}
					if _, err := eventloop.Await(ctx, o); err != nil {
						return 0, err
					}
					check("after Await on another loop's future")
					inner, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
						check("nested task start")
						err := eventloop.Sleep(ctx, 0)
						check("nested task after Sleep(ctx, 0)")
						return r, err
					})
					if err != nil {
						return 0, err
					}
					inner.AddDoneCallback(func(*eventloop.Future[int]) { check("done callback of a nested task") })
					if _, err := eventloop.Await(ctx, inner); err != nil {
						return 0, err
					}
					check("after Await on a nested task")
					if err := l.CallSoon(func() { check("CallSoon from a task") }); err != nil {
						return 0, err
					}
					if _, err := l.CallLater(time.Duration(r%2)*50*time.Microsecond, func() { check("CallLater from a task") }); err != nil {
						return 0, err
					}
				}
				return i, nil
			})
			require.NoError(t, err)
			f.AddDoneCallback(func(*eventloop.Future[int]) { check("done callback") })
			futures = append(futures, f)
			require.NoError(t, l.CallSoon(func() { check("CallSoon") }))
			_, err = l.CallLater(time.Duration(i)*10*time.Microsecond, func() { check("CallLater") })
			require.NoError(t, err)
		}
		for i, f := range futures {
			v, err := outcomeOf(t, f)
			require.NoError(t, err, "task %d", i)
			require.Equal(t, i, v, "task %d", i)
		}
		// Timers made before this one, for no later deadline, fire before it.
		flushed := make(chan struct{})
		_, err := l.CallLater(time.Millisecond, func() { close(flushed) })
		require.NoError(t, err)
		waitClosed(t, flushed, "the timers")
		l.Stop()
		assert.NoError(t, receiveWithin(t, runErr, "Run to return after Stop"))

		// Per task: 1 + rounds*(8 + 2 from the callbacks it queues), plus
		// its done callback, CallSoon and CallLater.
		const want = tasks * (1 + rounds*10 + 3)
		assert.Equal(t, int64(want), checks.Load(), "every piece of work checked its thread")
		mu.Lock()
		defer mu.Unlock()
		assert.Zero(t, wrong.Load(), "pieces of loop work that ran on another thread than Run's, such as %q", examples)
	})
}
