// Command workerpool runs CPU-bound jobs off the loop and gathers their
// results on it.
//
// A coordinator coroutine, submitted to the loop with [eventloop.Submit],
// splits a range of numbers into jobs and starts each with [eventloop.Go],
// which runs it on a goroutine of its own. The coordinator then awaits the
// jobs one by one with [eventloop.Await]. While it is suspended the loop is
// free to run other work (the test shows it answering a progress query while
// every job is still running). Results are folded into the pool's tally,
// which only loop work touches, so it needs no lock.
//
// The program ends with [eventloop.Loop.Shutdown] under a deadline: the loop
// stops taking work, finishes what it has, and if the deadline passes first
// it is closed, which cancels the coroutines still running; their futures end
// with [eventloop.ErrLoopClosed].
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/corun-go/eventloop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := config{Limit: 2_000_000, Jobs: 8, ShutdownTimeout: 2 * time.Second}
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

// config sets the size of a run.
type config struct {
	Limit           int           // count the primes below Limit
	Jobs            int           // split the range into this many jobs
	ShutdownTimeout time.Duration // how long Shutdown may drain the loop
}

// job is one slice [Lo, Hi) of the range.
type job struct{ ID, Lo, Hi int }

// result is what one job found.
type result struct {
	Job     job
	Primes  int // primes in [Lo, Hi)
	Largest int // the largest of them, 0 if none
}

// tally is the aggregate of every job's result.
type tally struct {
	Done    int      // jobs folded in
	Primes  int      // primes found in all
	Largest int      // the largest prime found
	PerJob  []result // in job order
}

// pool runs jobs for one loop. Its tally is owned by the loop: only the
// coordinator coroutine and other loop work read or write it.
type pool struct {
	work    func(context.Context, job) (result, error) // runs off the loop, under Go
	running sync.WaitGroup                             // job goroutines not yet returned
	tally   tally                                      // owned by the loop
}

// progress reports how many jobs have been folded in. It runs on the loop.
func (p *pool) progress(context.Context) (int, error) { return p.tally.Done, nil }

// coordinate is a coroutine: it runs on the loop, starts every job on its own
// goroutine and awaits them in order, folding each result into p.tally.
// If ctx ends, it cancels the jobs still running and returns.
func (p *pool) coordinate(ctx context.Context, jobs []job) (tally, error) {
	futures := make([]*eventloop.Future[result], len(jobs))
	for i, j := range jobs {
		p.running.Add(1)
		futures[i] = eventloop.Go(func(ctx context.Context) (result, error) {
			defer p.running.Done()
			return p.work(ctx, j)
		})
	}
	// Jobs still running when we return are of no use: cancel their ctx.
	// Cancel on a future that already ended does nothing.
	defer func() {
		for _, f := range futures {
			f.Cancel()
		}
	}()

	for i, f := range futures {
		// Await suspends this coroutine, not the loop, until job i ends.
		r, err := eventloop.Await(ctx, f)
		if err != nil {
			return tally{}, fmt.Errorf("job %d: %w", jobs[i].ID, err)
		}
		p.tally.Done++
		p.tally.Primes += r.Primes
		p.tally.Largest = max(p.tally.Largest, r.Largest)
		p.tally.PerJob = append(p.tally.PerJob, r)
	}
	return p.tally, nil
}

// split cuts [0, limit) into n jobs of near equal size.
func split(limit, n int) []job {
	jobs := make([]job, n)
	for i := range jobs {
		jobs[i] = job{ID: i, Lo: limit * i / n, Hi: limit * (i + 1) / n}
	}
	return jobs
}

// countPrimes counts the primes in [j.Lo, j.Hi) by trial division: honest
// CPU work. It checks ctx every few thousand numbers so that cancelling it
// takes effect quickly.
func countPrimes(ctx context.Context, j job) (result, error) {
	r := result{Job: j}
	for n := j.Lo; n < j.Hi; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return r, err
			}
		}
		if isPrime(n) {
			r.Primes++
			r.Largest = n
		}
	}
	return r, nil
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := 3; d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// run counts the primes below cfg.Limit with cfg.Jobs jobs, prints the
// results to w, and shuts the loop down. It returns the tally, and an error
// if the work failed or the loop did not drain within cfg.ShutdownTimeout.
func run(ctx context.Context, w io.Writer, cfg config) (tally, error) {
	return runWith(ctx, w, cfg, countPrimes)
}

// runWith is run with the job function injected.
func runWith(ctx context.Context, w io.Writer, cfg config, work func(context.Context, job) (result, error)) (tally, error) {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		return tally{}, err
	}
	p := &pool{work: work}
	jobs := split(cfg.Limit, cfg.Jobs)
	f, err := eventloop.Submit(l, func(ctx context.Context) (tally, error) {
		return p.coordinate(ctx, jobs)
	})
	var t tally
	if err == nil {
		t, err = f.Wait(ctx)
		if err != nil {
			// ctx ended first: cancel the coordinator, which cancels the
			// jobs, rather than let Shutdown wait for them.
			f.Cancel()
		}
	}

	// Shut down with a deadline of its own: if ctx has ended we still give
	// the loop its grace period.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if serr := l.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	// Go goroutines belong to no loop, so Shutdown does not wait for them.
	// countPrimes honours its ctx, so any still running end quickly.
	p.running.Wait()
	if err != nil {
		return tally{}, err
	}

	for _, r := range t.PerJob {
		fmt.Fprintf(w, "job %d [%d, %d): %d primes\n", r.Job.ID, r.Job.Lo, r.Job.Hi, r.Primes)
	}
	fmt.Fprintf(w, "%d primes below %d, the largest %d\n", t.Primes, cfg.Limit, t.Largest)
	return t, nil
}
