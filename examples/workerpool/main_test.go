package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/corun-go/eventloop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sieve returns the number of primes below n and the largest of them,
// computed independently of the program's trial division.
func sieve(n int) (count, largest int) {
	composite := make([]bool, n)
	for i := 2; i < n; i++ {
		if composite[i] {
			continue
		}
		count, largest = count+1, i
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	return count, largest
}

func TestRunCountsPrimes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const limit = 200_000
	var out bytes.Buffer
	got, err := run(ctx, &out, config{Limit: limit, Jobs: 8, ShutdownTimeout: 5 * time.Second})
	require.NoError(t, err, "the work should succeed and Shutdown should drain the loop in time")

	wantCount, wantLargest := sieve(limit)
	require.Equal(t, 17984, wantCount, "the reference sieve should know pi(200000)")
	assert.Equal(t, wantCount, got.Primes, "the tally should add up every job's count")
	assert.Equal(t, wantLargest, got.Largest)
	assert.Equal(t, 8, got.Done)
	require.Len(t, got.PerJob, 8)
	next := 0
	for i, r := range got.PerJob {
		assert.Equal(t, i, r.Job.ID, "results should be folded in job order")
		assert.Equal(t, next, r.Job.Lo, "job %d should start where job %d ended", i, i-1)
		next = r.Job.Hi
	}
	assert.Equal(t, limit, next, "the jobs should cover the whole range")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 9)
	assert.Equal(t, fmt.Sprintf("%d primes below %d, the largest %d", wantCount, limit, wantLargest), lines[8])
}

func TestLoopAnswersWhileJobsRun(t *testing.T) {
	const jobs = 4
	started := make(chan int, jobs)
	release := make(chan struct{})
	p := &pool{work: func(ctx context.Context, j job) (result, error) {
		started <- j.ID
		select {
		case <-release:
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
		return countPrimes(ctx, j)
	}}

	l := eventloop.New()
	require.NoError(t, l.Start())
	coord, err := eventloop.Submit(l, func(ctx context.Context) (tally, error) {
		return p.coordinate(ctx, split(1000, jobs))
	})
	require.NoError(t, err)

	// Every job is running at once, each on its own goroutine.
	for range jobs {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("not every job started")
		}
	}

	// The coordinator is suspended in Await, so the loop takes other work:
	// a progress query submitted now is answered while no job has ended.
	prog, err := eventloop.Submit(l, p.progress)
	require.NoError(t, err)
	done, err := prog.Result(5 * time.Second)
	require.NoError(t, err, "the loop should answer while the coordinator awaits its jobs")
	assert.Equal(t, 0, done, "no job has been folded in yet")

	close(release)
	got, err := coord.Result(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, 168, got.Primes, "there are 168 primes below 1000")
	assert.Equal(t, 997, got.Largest)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, l.Shutdown(ctx), "Shutdown should drain an idle loop before its deadline")
	p.running.Wait()
}

func TestShutdownDeadlineClosesTheLoop(t *testing.T) {
	// shutdown runs Shutdown with a short deadline and checks that it gave
	// up, closed the loop, and ended f with ErrLoopClosed.
	shutdown := func(t *testing.T, l *eventloop.Loop, f interface{ Exception(time.Duration) error }) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := l.Shutdown(ctx)
		require.Error(t, err, "Shutdown should report that the loop did not drain in time")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, eventloop.StateClosed, l.State(), "past its deadline Shutdown closes the loop")
		select {
		case <-l.Done():
		default:
			t.Error("Done should be closed once Shutdown returns")
		}
		assert.ErrorIs(t, f.Exception(0), eventloop.ErrLoopClosed,
			"the pending coroutine should end with ErrLoopClosed")
	}

	t.Run("a coroutine awaiting a job that ignores its ctx", func(t *testing.T) {
		started := make(chan struct{})
		release := make(chan struct{})
		p := &pool{work: func(_ context.Context, j job) (result, error) {
			close(started)
			<-release // ignores ctx: only release ends it
			return result{Job: j}, nil
		}}
		l := eventloop.New()
		require.NoError(t, l.Start())
		coord, err := eventloop.Submit(l, func(ctx context.Context) (tally, error) {
			return p.coordinate(ctx, split(10, 1))
		})
		require.NoError(t, err)
		<-started

		shutdown(t, l, coord)

		// Close cancelled the coordinator's ctx, its Await returned at once,
		// and it cancelled the job; but a job that ignores its ctx runs on
		// until it returns by itself. Let it, so no goroutine is left.
		close(release)
		p.running.Wait()
	})

	t.Run("a coroutine sleeping for an hour", func(t *testing.T) {
		l := eventloop.New()
		require.NoError(t, l.Start())
		nap, err := eventloop.Submit(l, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, eventloop.Sleep(ctx, time.Hour)
		})
		require.NoError(t, err)

		shutdown(t, l, nap)
	})
}
