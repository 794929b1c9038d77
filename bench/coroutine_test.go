package bench

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
)

// rotateEvery is how many Awaits AwaitPingPong lets run before it replaces
// its idle loop (see there).
const rotateEvery = 4096

// BenchmarkAwaitPingPong: two coroutines on one loop take turns, each
// waking the other and awaiting its own future; ns per Await (an Await that
// really suspends and is resumed), against the iter.Pull switch floor.
//
// The library has no settable future, so a coroutine's wake-up future is a
// task queued on a second loop that never runs ("idle"): the other
// coroutine ends it with Cancel, and Await returns ErrCancelled, the normal
// outcome here. Each round thus also pays one Submit to the idle loop and
// one Cancel; impl=harness-only measures those alone. Cancelled tasks stay
// queued on the idle loop until it closes, so every rotateEvery Awaits a
// fresh idle loop replaces it; closing the old one happens with the timer
// stopped.
func BenchmarkAwaitPingPong(b *testing.B) {
	b.Run(implName("eventloop"), func(b *testing.B) {
		l := newEventloop(b)
		idle := eventloop.New() // never started
		b.Cleanup(func() { _ = idle.Close() })
		nop := func(context.Context) (struct{}, error) { return struct{}{}, nil }

		// Loop-owned state: only the two coroutines touch it, one at a time.
		n := b.N
		awaits := 0
		var wake [2]*eventloop.Future[struct{}]
		player := func(self int) func(context.Context) (struct{}, error) {
			other := 1 - self
			return func(ctx context.Context) (struct{}, error) {
				for {
					if awaits >= n {
						if wake[other] != nil {
							wake[other].Cancel() // let the other one see the end too
						}
						return struct{}{}, nil
					}
					old := idle
					if awaits > 0 && awaits%rotateEvery == 0 {
						b.StopTimer()
						idle = eventloop.New()
					}
					w, err := eventloop.Submit(idle, nop)
					if err != nil {
						return struct{}{}, err
					}
					wake[self] = w
					if wake[other] != nil {
						wake[other].Cancel()
					}
					if old != idle {
						// Both wake-up futures in old have ended: closing it
						// wakes nobody.
						if err := old.Close(); err != nil {
							return struct{}{}, err
						}
						b.StartTimer()
					}
					if _, err := eventloop.Await(ctx, w); !errors.Is(err, eventloop.ErrCancelled) {
						return struct{}{}, errors.Join(errors.New("await: want ErrCancelled"), err)
					}
					awaits++
				}
			}
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		fa, errA := eventloop.Submit(l, player(0))
		fb, errB := eventloop.Submit(l, player(1))
		if err := errors.Join(errA, errB); err != nil {
			b.Fatal(err)
		}
		_, errA = fa.Wait(ctx)
		_, errB = fb.Wait(ctx)
		b.StopTimer()
		if err := errors.Join(errA, errB); err != nil {
			b.Fatal(err)
		}
		if awaits < n {
			b.Fatalf("%d awaits, want %d", awaits, n)
		}
	})
	// The harness alone: one Submit to an idle loop and one Cancel per op,
	// rotated the same way, no Await. Subtract it from impl=eventloop for
	// the cost of the Await itself.
	b.Run(implName("harness-only"), func(b *testing.B) {
		idle := eventloop.New()
		b.Cleanup(func() { _ = idle.Close() })
		nop := func(context.Context) (struct{}, error) { return struct{}{}, nil }
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i++; i%rotateEvery == 0 {
				b.StopTimer()
				_ = idle.Close()
				idle = eventloop.New()
				b.StartTimer()
			}
			w, err := eventloop.Submit(idle, nop)
			if err != nil {
				b.Fatal(err)
			}
			if !w.Cancel() {
				b.Fatal("Cancel on a queued task returned false")
			}
		}
	})
	b.Run(implName("iter-pull"), func(b *testing.B) {
		next, stop := iter.Pull(func(yield func(int) bool) {
			for yield(0) {
			}
		})
		b.Cleanup(stop)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := next(); !ok {
				b.Fatal("iter.Pull: sequence ended")
			}
		}
	})
}

// suspended is how many coroutines BenchmarkSuspendedMemory suspends.
const suspended = 100_000

// BenchmarkSuspendedMemory suspends 100,000 coroutines in
// eventloop.Sleep(ctx, time.Hour) and reports what each costs:
//
//   - B/coroutine: HeapInuse+StackInuse (after runtime.GC) once they are all
//     suspended, minus the same before the first was submitted, divided by
//     100,000;
//   - ns/suspend: wall time to submit them all and have each suspended,
//     divided by 100,000.
//
// The 100,000 are set up once per benchmark run, not per iteration: ns/op is
// a Submit+Result round trip on the loop while they sleep on it (a loop
// carrying suspended coroutines should dispatch as fast as an empty one).
// impl=goroutine is the floor: 100,000 plain goroutines parked on a timer,
// ns/op a channel ping-pong while they are parked.
func BenchmarkSuspendedMemory(b *testing.B) {
	warmGoroutines.Do(warmUpGoroutines)
	b.Run(implName("eventloop"), func(b *testing.B) {
		l := eventloop.New()
		if err := l.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := l.Close(); err != nil {
				b.Error(err)
			}
		}()
		started := 0 // loop-owned
		sleeper := func(ctx context.Context) (struct{}, error) {
			started++
			_ = eventloop.Sleep(ctx, time.Hour) // ends with Close
			return struct{}{}, nil
		}
		before := inuse()
		t0 := time.Now()
		for range suspended {
			if _, err := eventloop.Submit(l, sleeper); err != nil {
				b.Fatal(err)
			}
		}
		// Queued after all of them: runs once each has started and suspended.
		f, err := eventloop.Submit(l, func(context.Context) (int, error) { return started, nil })
		if err != nil {
			b.Fatal(err)
		}
		n, err := f.Wait(context.Background())
		setup := time.Since(t0)
		if err != nil || n != suspended {
			b.Fatalf("%d coroutines started (%v), want %d", n, err, suspended)
		}
		after := inuse()

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
		reportSuspended(b, before, after, setup)
	})
	b.Run(implName("goroutine"), func(b *testing.B) {
		quit := make(chan struct{})
		var parked, exited sync.WaitGroup
		before := inuse()
		t0 := time.Now()
		for range suspended {
			parked.Add(1)
			exited.Add(1)
			go func() {
				defer exited.Done()
				t := time.NewTimer(time.Hour)
				defer t.Stop()
				parked.Done()
				select {
				case <-t.C:
				case <-quit:
				}
			}()
		}
		parked.Wait()
		setup := time.Since(t0)
		defer func() { close(quit); exited.Wait() }()
		after := inuse()

		ping, pong, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for range ping {
				pong <- struct{}{}
			}
		}()
		defer func() { close(ping); <-done }()
		b.ReportAllocs()
		for b.Loop() {
			ping <- struct{}{}
			<-pong
		}
		reportSuspended(b, before, after, setup)
	})
}

// warmGoroutines makes the runtime hold enough goroutine descriptors for
// BenchmarkSuspendedMemory before it measures anything. The runtime never
// frees a descriptor (g, about 530 B with its bookkeeping): it keeps a dead
// goroutine's for the next one. Without this warm-up the first run in a
// process would count 100,000 new descriptors and every later run none, so
// B/coroutine would depend on the run's position; with it, no run counts
// them (a process that has never had 100,000 goroutines pays them once).
var warmGoroutines sync.Once

func warmUpGoroutines() {
	release := make(chan struct{})
	var started, exited sync.WaitGroup
	for range suspended + 1000 {
		started.Add(1)
		exited.Add(1)
		go func() {
			defer exited.Done()
			started.Done()
			<-release
		}()
	}
	started.Wait()
	close(release)
	exited.Wait()
}

// reportSuspended reports the per-coroutine figures. It must come after
// b.Loop: the timer reset at the loop's start clears metrics reported
// before it.
func reportSuspended(b *testing.B, before, after uint64, setup time.Duration) {
	b.ReportMetric((float64(after)-float64(before))/suspended, "B/coroutine")
	b.ReportMetric(float64(setup.Nanoseconds())/suspended, "ns/suspend")
}

// inuse returns the heap and stack memory in use after a full collection.
func inuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
