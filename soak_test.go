package eventloop_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Soak: a million submissions through one loop from 16 producers, a tenth
// of them cancelled and a tenth coroutines that sleep, and afterwards the
// heap and the goroutines are back where they were.

const (
	soakSubmissions = 1_000_000
	soakProducers   = 16
	soakWindow      = 256 // futures a producer keeps pending before it waits for the oldest
)

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a million submissions; skipped with -short")
	}

	// Warm up (the runtime's caches, the waiter pool, testify's and goleak's
	// first-use allocations), then measure. Two GCs: sync.Pool keeps what it
	// holds through one.
	soakRun(t, 20_000, 1)
	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	got := soakRun(t, soakSubmissions, 2)
	elapsed := time.Since(start)

	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	// HeapAlloc, not HeapInuse: after a GC, HeapAlloc is the bytes of live
	// objects, which is what a leak (a future, a coroutine, a waiter or a
	// closure kept past its end) grows. HeapInuse counts whole spans: a span
	// that keeps one live object of the many the burst allocated in it
	// counts in full, and the runtime returns emptied spans to the OS on its
	// own schedule, so it stays above its baseline after a burst with
	// nothing leaked.
	//
	// The baseline is tiny: about 350 KiB, with or without -race, so 10% of
	// it is 35 KiB, less than what the runtime and the standard library
	// keep after a burst with nothing leaked. Measured on a 2-core VM: 30
	// to 60 KiB more after 1e5 to 1e6 submissions, about 100 KiB after 1e7,
	// in the heap profile runtime-internal allocations, the waiter and
	// deadline pools and the like, none per submission. The floor of
	// 256 KiB keeps that from failing the test and is still far below any
	// per-task leak: one future (80 bytes) kept per cancelled task would be
	// 8 MiB here, one kept per hundredth task 0.8 MiB.
	const floor = 256 << 10
	limit := before.HeapAlloc + max(before.HeapAlloc/10, floor)
	t.Logf("%d submissions (%d cancelled by Cancel, %d coroutines that slept) from %d producers in %v (%.0f ns each); "+
		"%.1f allocations and %.0f bytes per submission; HeapAlloc %d KiB before, %d KiB after (limit %d KiB)",
		soakSubmissions, got.cancelled.Load(), got.slept.Load(), soakProducers, elapsed.Round(time.Millisecond),
		float64(elapsed.Nanoseconds())/soakSubmissions,
		float64(after.Mallocs-before.Mallocs)/soakSubmissions, float64(after.TotalAlloc-before.TotalAlloc)/soakSubmissions,
		before.HeapAlloc>>10, after.HeapAlloc>>10, limit>>10)
	assert.LessOrEqual(t, after.HeapAlloc, limit,
		"HeapAlloc after a million submissions, the loop closed and a GC: more than 10%% (or %d KiB) above its baseline of %d KiB",
		floor>>10, before.HeapAlloc>>10)

	// No goroutine is left: the loop's are gone once Done is closed, Go
	// futures' once their function has returned.
	var now int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= goroutines || time.Now().After(deadline) {
			break
		}
	}
	assert.LessOrEqual(t, now, goroutines, "goroutines after the soak, compared with before")
}

// soakResult counts what a soak run did.
type soakResult struct {
	ended     atomic.Int64 // futures that ended with an outcome they may have
	cancelled atomic.Int64 // Cancel returned true
	slept     atomic.Int64 // coroutines that slept and returned their value
}

// soakRun sends n submissions through one new loop from soakProducers
// goroutines, checks every outcome, then stops and closes the loop and
// checks that no goroutine of it remains. run tells the loop's label apart.
func soakRun(t *testing.T, n int, run int) *soakResult {
	t.Helper()
	var got soakResult
	l := eventloop.New()
	label := fmt.Sprintf("soak %d", run)
	pprof.Do(context.Background(), pprof.Labels(stressLoopLabel, label), func(context.Context) {
		require.NoError(t, l.Start())
	})

	var wg sync.WaitGroup
	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	per := n / soakProducers
	for p := range soakProducers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), uint64(run)))
			var window [soakWindow]soakPending
			check := func(w *soakPending) {
				if w.f == nil {
					return
				}
				var v int
				var err error
				if w.id%2 == 0 {
					v, err = w.f.Result(long)
				} else {
					v, err = w.f.Wait(context.Background())
				}
				switch {
				case w.cancelled && err == eventloop.ErrCancelled:
					got.ended.Add(1)
					got.cancelled.Add(1)
				case !w.cancelled && err == nil && v == w.id:
					got.ended.Add(1)
					if w.sleeps {
						got.slept.Add(1)
					}
				default:
					fail("soak: submission %d of producer %d (cancelled: %v, sleeps: %v) ended with (%v, %v)", w.id, p, w.cancelled, w.sleeps, v, err)
				}
				*w = soakPending{}
			}
			for i := range per {
				w := &window[i%soakWindow]
				check(w) // the oldest: wait for it before reusing its slot
				w.id = i
				var err error
				switch k := rng.IntN(10); k {
				case 0: // a coroutine that sleeps
					w.sleeps = true
					d := time.Duration(rng.IntN(100)) * time.Microsecond
					w.f, err = eventloop.Submit(l, func(ctx context.Context) (int, error) {
						if err := eventloop.Sleep(ctx, d); err != nil {
							return -1, err
						}
						return i, nil
					})
				default:
					w.f, err = eventloop.Submit(l, func(context.Context) (int, error) { return i, nil })
				}
				if err != nil {
					fail("soak: Submit %d of producer %d: %v", i, p, err)
					w.f = nil
					continue
				}
				if rng.IntN(10) == 0 { // cancelled: at once, or once a few more were submitted
					if rng.IntN(2) == 0 {
						w.cancelled = w.f.Cancel()
					} else {
						prev := &window[(i+soakWindow-rng.IntN(8))%soakWindow]
						if prev.f != nil && !prev.cancelled {
							prev.cancelled = prev.f.Cancel()
						}
					}
				}
			}
			for i := range window {
				check(&window[i])
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(per*soakProducers), got.ended.Load(), "submissions that ended with the outcome they should have")
	l.Stop()
	require.True(t, closedWithin(l.Done()), "the loop drains after Stop")
	require.NoError(t, l.Close())
	stressNoLoopGoroutines(t, label)
	return &got
}

// soakPending is a submission a producer has not checked yet.
type soakPending struct {
	f         *eventloop.Future[int]
	id        int
	sleeps    bool
	cancelled bool // a Cancel returned true
}
