package eventloop_test

// Tests for four guarantees that other tests checked only in part: Stop,
// Close and Shutdown called from many goroutines at once; the edge from the
// return of fn to every reader of its outcome, on data fn wrote besides its
// return value; Cancel on Go futures; and where done callbacks run.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corun-go/eventloop"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guarGoroutineID returns the runtime's number for the calling goroutine,
// from the first line of its stack ("goroutine 42 [running]:"). The runtime
// never gives a number to two goroutines, so equal numbers mean the same
// goroutine. It takes no lock the library could also take, so calling it
// adds no happens-before edge.
func guarGoroutineID() uint64 {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	id, err := strconv.ParseUint(s[:strings.IndexByte(s, ' ')], 10, 64)
	if err != nil {
		panic("eventloop_test: cannot read the goroutine number: " + err.Error())
	}
	return id
}

// guarParkedIn reports whether goroutine id is blocked on a channel receive
// with a frame of fn on its stack.
func guarParkedIn(id uint64, fn string) bool {
	header := fmt.Sprintf("goroutine %d [chan receive", id)
	for _, g := range strings.Split(diagGoroutines(), "\n\n") {
		if strings.HasPrefix(g, header) {
			return strings.Contains(g, fn)
		}
	}
	return false
}

// guarEventually waits until cond holds, failing the test after long.
func guarEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(long); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// ---------------------------------------------------------------------------
// 1. Stop, Close and Shutdown "are idempotent and safe from any goroutine".

// guarCall is what one goroutine of a round called and what it got back.
type guarCall struct {
	op       string // "Stop", "Close", "Shutdown", "Shutdown short", "Shutdown ended", "Submit"
	ctx      context.Context
	cancel   context.CancelFunc
	err      error
	doneThen bool                     // Done was closed when the call returned
	state    eventloop.State          // the state when the call returned
	accepted []*eventloop.Future[int] // Submit: accepted futures, each returning 1000+i
	rejected []error                  // Submit: the errors of rejected ones
}

// Several goroutines released by one gate call Stop, Close and Shutdown
// (with no deadline, a short one, or a ctx that has ended) at the same
// moment, while the loop has a task running (which itself calls Stop,
// Close or Shutdown from the loop at that moment), tasks queued, and
// coroutines suspended in Await and Sleep; a goroutine may also be
// submitting. Every call must return what its godoc says, the loop must end
// in the one state that the calls imply, every accepted future must end
// with an outcome allowed by that state, and no goroutine may remain (the
// started helper checks the last at the end of each round). A round of the
// loop that never ran does the same with queued work only.
func TestGuarStopCloseShutdownFromManyGoroutinesAtOnce(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 40
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for round := range rounds {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			guarLifecycleRound(t, rand.New(rand.NewPCG(seed, uint64(round))))
		})
	}
}

func guarLifecycleRound(t *testing.T, rng *rand.Rand) {
	ran := rng.IntN(6) != 0
	var l *eventloop.Loop
	if ran {
		l = started(t)
	} else {
		l = eventloop.New()
		t.Cleanup(func() { assert.NoError(t, l.Close()) })
	}
	callersGate := newGate()
	t.Cleanup(callersGate.open)
	work := make(chan struct{}) // releases the running task and the Go future the coroutine awaits
	releaseWork := sync.OnceFunc(func() { close(work) })
	t.Cleanup(releaseWork)

	// What the callers call. Some rounds are graceful only (no Close, no
	// deadline), some Close only; the rest mix everything.
	ops := []string{"Stop", "Stop", "Close", "Close", "Shutdown", "Shutdown", "Shutdown short", "Shutdown ended", "Submit"}
	insiderOps := []string{"", "Stop", "Close", "Shutdown"}
	switch rng.IntN(5) {
	case 0:
		ops, insiderOps = []string{"Stop", "Shutdown", "Submit"}, []string{"", "Stop", "Shutdown"}
		if !ran && rng.IntN(2) == 0 {
			ops = []string{"Stop", "Submit"} // nothing will run or close it
		}
	case 1:
		ops = []string{"Close"}
	}

	// The work, and what each future returns if it is not cut short.
	want := map[*eventloop.Future[int]]int{}
	var goFuture *eventloop.Future[int]
	var insiderOp string
	insiderErr := make(chan error, 1)
	if ran {
		// A coroutine suspended in Await on a Go future (made by loop work,
		// so the started helper's leak check sees its goroutine too).
		goFutures := make(chan *eventloop.Future[int], 1)
		awaiting, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			g := eventloop.Go(func(ctx context.Context) (int, error) {
				select {
				case <-work:
					return 100, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			})
			goFutures <- g
			return eventloop.Await(ctx, g)
		})
		require.NoError(t, err)
		want[awaiting] = 100
		goFuture = recv(t, goFutures)

		// A coroutine suspended in Sleep for a short while (or, with 0,
		// queued behind the running task).
		nap := time.Duration(rng.IntN(3)) * time.Millisecond
		sleeping, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			return 200, eventloop.Sleep(ctx, nap)
		})
		require.NoError(t, err)
		want[sleeping] = 200

		// The running task: it calls one of Stop, Close, Shutdown from the
		// loop when the callers are released, then holds the loop until the
		// work is released or its ctx is cancelled.
		insiderOp = insiderOps[rng.IntN(len(insiderOps))]
		running := make(chan struct{})
		insider, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(running)
			<-callersGate
			switch insiderOp {
			case "Stop":
				l.Stop()
			case "Close":
				insiderErr <- l.Close()
			case "Shutdown":
				insiderErr <- l.Shutdown(context.Background())
			}
			select {
			case <-work:
				return 300, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		require.NoError(t, err)
		want[insider] = 300
		recv(t, running) // so the coroutine above has suspended, and what follows stays queued
	}
	for i := range 1 + rng.IntN(5) {
		f, err := eventloop.Submit(l, value(400+i))
		require.NoError(t, err)
		want[f] = 400 + i
	}

	calls := make([]*guarCall, 8)
	for i := range calls {
		c := &guarCall{op: ops[rng.IntN(len(ops))]}
		switch c.op {
		case "Shutdown":
			c.ctx = context.Background()
		case "Shutdown short":
			c.ctx, c.cancel = context.WithTimeout(context.Background(), time.Duration(rng.IntN(2000))*time.Microsecond)
			t.Cleanup(c.cancel)
		case "Shutdown ended":
			c.ctx, c.cancel = context.WithCancel(context.Background())
			c.cancel()
		}
		calls[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-callersGate
			switch c.op {
			case "Stop":
				l.Stop()
			case "Close":
				c.err = l.Close()
			case "Submit":
				for i := range 3 {
					f, err := eventloop.Submit(l, value(1000+i))
					if err != nil {
						c.rejected = append(c.rejected, err)
					} else {
						c.accepted = append(c.accepted, f)
					}
				}
			default:
				c.err = l.Shutdown(c.ctx)
			}
			c.doneThen, c.state = isClosed(l.Done()), l.State()
		}()
	}
	spins := rng.IntN(50)
	wg.Add(1)
	go func() { // releases the work at some point during the race
		defer wg.Done()
		<-callersGate
		for range spins {
			runtime.Gosched()
		}
		releaseWork()
	}()
	callersGate.open()
	allReturned := make(chan struct{})
	go func() { wg.Wait(); close(allReturned) }()
	require.True(t, closedWithin(allReturned), "every Stop, Close, Shutdown and Submit returns")

	// The state the calls imply: Closed if anyone called Close or a
	// Shutdown ran out of time (on a loop that never ran, Shutdown closes
	// it at once); otherwise Stopped once drained, or, on a loop that
	// never ran, Stopping for good.
	closes := insiderOp == "Close"
	shutdowns := false
	for _, c := range calls {
		switch {
		case c.op == "Close":
			closes = true
		case strings.HasPrefix(c.op, "Shutdown"):
			shutdowns = true
			closes = closes || c.err != nil
		}
	}
	var final eventloop.State
	switch {
	case closes || !ran && shutdowns:
		final = eventloop.StateClosed
	case ran:
		final = eventloop.StateStopped
	default:
		final = eventloop.StateStopping
	}
	if final == eventloop.StateStopping {
		assert.Equal(t, eventloop.StateStopping, l.State(), "a loop that never ran, only stopped, stays Stopping")
		assert.False(t, isClosed(l.Done()), "nothing ran it, so Done stays open")
	} else {
		require.True(t, closedWithin(l.Done()), "the loop exits")
		assert.Equal(t, final, l.State(), "the one state the calls imply (insider %q, calls %v)", insiderOp, guarOps(calls))
	}

	for i, c := range calls {
		switch c.op {
		case "Stop":
		case "Close":
			assert.NoError(t, c.err, "caller %d: Close", i)
			assert.True(t, c.doneThen, "caller %d: Close returns once Done is closed", i)
			assert.Equal(t, eventloop.StateClosed, c.state, "caller %d: Close", i)
		case "Submit":
			for _, err := range c.rejected {
				assert.True(t, errors.Is(err, eventloop.ErrLoopStopped) || errors.Is(err, eventloop.ErrLoopClosed), "caller %d: a rejection says why: %v", i, err)
				if errors.Is(err, eventloop.ErrLoopClosed) {
					assert.Equal(t, eventloop.StateClosed, final, "caller %d: ErrLoopClosed only once closed", i)
				}
			}
			for j, f := range c.accepted {
				want[f] = 1000 + j
			}
		default:
			assert.True(t, c.doneThen, "caller %d: %s returns once the loop has exited", i, c.op)
			if c.err != nil {
				assert.Equal(t, c.ctx.Err(), c.err, "caller %d: %s returns nil or ctx.Err()", i, c.op)
				assert.Equal(t, eventloop.StateClosed, c.state, "caller %d: a Shutdown that ran out of time closed the loop", i)
			}
			if final == eventloop.StateStopped {
				assert.NoError(t, c.err, "caller %d: %s on a loop that drained", i, c.op)
			}
		}
	}
	switch insiderOp {
	case "Close":
		assert.NoError(t, recv(t, insiderErr), "Close from the loop")
	case "Shutdown":
		assert.ErrorIs(t, recv(t, insiderErr), eventloop.ErrDeadlock, "Shutdown from the loop")
	}

	if final == eventloop.StateStopping {
		require.NoError(t, l.Close())
		final = eventloop.StateClosed
	}
	for f, v := range want {
		require.True(t, closedWithin(f.Done()), "every accepted future ends")
		got, err := f.Result(0)
		if final == eventloop.StateStopped {
			assert.NoError(t, err, "after a drain, each future has its own outcome")
			assert.Equal(t, v, got)
		} else if err == nil {
			assert.Equal(t, v, got)
		} else {
			assert.ErrorIs(t, err, eventloop.ErrLoopClosed, "after Close, its own outcome or ErrLoopClosed")
		}
	}
	if goFuture != nil {
		assert.True(t, closedWithin(goFuture.Done()), "the awaited Go future ends")
	}
	_, err := eventloop.Submit(l, value(0))
	if final == eventloop.StateClosed {
		assert.ErrorIs(t, err, eventloop.ErrLoopClosed)
	} else {
		assert.ErrorIs(t, err, eventloop.ErrLoopStopped)
	}
}

func guarOps(calls []*guarCall) []string {
	var ops []string
	for _, c := range calls {
		s := c.op
		if c.err != nil {
			s += "=" + c.err.Error()
		}
		ops = append(ops, s)
	}
	return ops
}

// ---------------------------------------------------------------------------
// 2. "The return of fn happens before Result, Wait, Await return its outcome
// and before done callbacks run (race-detector clean)."

// guarRead is what a reader saw: the outcome, and the data fn wrote besides
// its return value.
type guarRead struct {
	v, side int
	err     error
}

// guarProducer makes a future whose fn writes v to *side, not synchronising
// with anything after that, and returns v. release lets fn go on to the
// write (for "cancelled" producers, Cancel does); the returned func does
// what lets it go.
type guarProducer struct {
	name      string
	onLoop    bool // a task of loop l
	cancelled bool // ends with ErrCancelled: fn writes after it saw its ctx cancelled
	make      func(t *testing.T, l *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func())
}

// guarReader starts reading f on some goroutine or loop and returns where
// the read arrives. Each reads *side with no synchronisation but what the
// library gives it.
type guarReader struct {
	name     string
	sameLoop bool // needs a future of loop l
	start    func(t *testing.T, l, other *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead
}

var guarProducers = []guarProducer{
	{name: "a loop task", onLoop: true, make: func(t *testing.T, l *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func()) {
		// It suspends on a Go future until released, so that readers on
		// the same loop can run while it is pending.
		release := make(chan struct{})
		hold := eventloop.Go(func(context.Context) (struct{}, error) { <-release; return struct{}{}, nil })
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if _, err := eventloop.Await(ctx, hold); err != nil {
				return 0, err
			}
			*side = v
			return v, nil
		})
		require.NoError(t, err)
		return f, func() { close(release) }
	}},
	{name: "a loop task that never suspends", onLoop: true, make: func(t *testing.T, l *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func()) {
		f, err := eventloop.Submit(l, func(context.Context) (int, error) {
			*side = v
			return v, nil
		})
		require.NoError(t, err)
		return f, func() {}
	}},
	{name: "a loop task cancelled while suspended", onLoop: true, cancelled: true, make: func(t *testing.T, l *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func()) {
		suspending := make(chan struct{})
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			close(suspending)
			_ = eventloop.Sleep(ctx, time.Hour)
			*side = v
			return v, nil
		})
		require.NoError(t, err)
		recv(t, suspending) // fn is running: Cancel reaches it, it does not end it unrun
		return f, func() { f.Cancel() }
	}},
	{name: "a Go future", make: func(t *testing.T, _ *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func()) {
		release := make(chan struct{})
		f := eventloop.Go(func(context.Context) (int, error) {
			<-release
			*side = v
			return v, nil
		})
		return f, func() { close(release) }
	}},
	{name: "a Go future cancelled while running", cancelled: true, make: func(t *testing.T, _ *eventloop.Loop, side *int, v int) (*eventloop.Future[int], func()) {
		running := make(chan struct{})
		f := eventloop.Go(func(ctx context.Context) (int, error) {
			close(running)
			<-ctx.Done()
			*side = v
			return v, nil
		})
		recv(t, running)
		return f, func() { f.Cancel() }
	}},
}

// guarPlain starts read on a new goroutine.
func guarPlain(read func() guarRead) <-chan guarRead {
	out := make(chan guarRead, 1)
	go func() { out <- read() }()
	return out
}

// guarCoroutine runs read in a task on l, which may Await in it.
func guarCoroutine(t *testing.T, l *eventloop.Loop, read func(ctx context.Context) guarRead) <-chan guarRead {
	out := make(chan guarRead, 1)
	_, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		out <- read(ctx)
		return 0, nil
	})
	require.NoError(t, err)
	return out
}

var guarReaders = []guarReader{
	{name: "Result in a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarPlain(func() guarRead { v, err := f.Result(long); return guarRead{v, *side, err} })
	}},
	{name: "Exception in a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarPlain(func() guarRead {
			err := f.Exception(long)
			r := guarRead{side: *side, err: err}
			r.v, _ = f.Result(0) // for the check on the value; the read of side is done
			return r
		})
	}},
	{name: "Wait in a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarPlain(func() guarRead { v, err := f.Wait(context.Background()); return guarRead{v, *side, err} })
	}},
	{name: "Await in a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarPlain(func() guarRead { v, err := eventloop.Await(context.Background(), f); return guarRead{v, *side, err} })
	}},
	{name: "Await in a coroutine on the same loop", sameLoop: true, start: func(t *testing.T, l, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarCoroutine(t, l, func(ctx context.Context) guarRead { v, err := eventloop.Await(ctx, f); return guarRead{v, *side, err} })
	}},
	{name: "Await in a coroutine on another loop", start: func(t *testing.T, _, other *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		return guarCoroutine(t, other, func(ctx context.Context) guarRead { v, err := eventloop.Await(ctx, f); return guarRead{v, *side, err} })
	}},
	{name: "a done callback", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		// Added by the test goroutine: before the end it runs on the
		// goroutine that ends the future, after it on this one, at once.
		out := make(chan guarRead, 1)
		f.AddDoneCallback(func(f *eventloop.Future[int]) { v, err := f.Result(0); out <- guarRead{v, *side, err} })
		return out
	}},
	{name: "a done callback added by a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		out := make(chan guarRead, 1)
		go f.AddDoneCallback(func(f *eventloop.Future[int]) { v, err := f.Result(0); out <- guarRead{v, *side, err} })
		return out
	}},
	{name: "a receive from Done in a plain goroutine", start: func(_ *testing.T, _, _ *eventloop.Loop, f *eventloop.Future[int], side *int) <-chan guarRead {
		// Not in the contract's list, but what a Go user expects of a
		// channel closed "when the future ends", as of context.Done.
		return guarPlain(func() guarRead {
			<-f.Done()
			r := guarRead{side: *side}
			r.v, r.err = f.Result(0)
			return r
		})
	}},
}

// Each reader is started before fn is let go to the write (it finds the
// future pending and is woken) or right after (it races the end), and reads
// the data fn wrote besides its return value without synchronising with
// fn in any other way. The race detector reports a read that the library
// does not order after the write. Checked by replacing a reader's Result
// with a time.Sleep long enough for fn to end: the race detector then
// reports the read of side, and the test fails.
func TestGuarFnReturnHappensBeforeTheOutcomeIsRead(t *testing.T) {
	l, other := started(t), started(t)
	const iterations = 20
	for _, p := range guarProducers {
		for _, r := range guarReaders {
			if r.sameLoop && !p.onLoop {
				continue
			}
			t.Run(r.name+" after the return of "+p.name, func(t *testing.T) {
				for i := range iterations {
					side := new(int)
					v := i + 1
					f, letGo := p.make(t, l, side, v)
					var out <-chan guarRead
					if i%2 == 0 {
						out = r.start(t, l, other, f, side)
					}
					letGo()
					if out == nil {
						for range i % 5 {
							runtime.Gosched()
						}
						out = r.start(t, l, other, f, side)
					}
					got := recv(t, out)
					assert.Equal(t, v, got.side, "iteration %d: the reader sees what fn wrote", i)
					if p.cancelled {
						assert.ErrorIs(t, got.err, eventloop.ErrCancelled, "iteration %d", i)
						assert.Zero(t, got.v, "iteration %d", i)
					} else {
						assert.NoError(t, got.err, "iteration %d", i)
						assert.Equal(t, v, got.v, "iteration %d", i)
					}
				}
			})
		}
	}
}

// ---------------------------------------------------------------------------
// 3. Cancel on Go futures: "same rules" as for tasks of a loop.

var errGuarOther = errors.New("guar: another error")

func TestGuarCancelGoFuture(t *testing.T) {
	// fn sees its ctx cancelled, stays running until let go, then returns
	// one of these: the future ends with ErrCancelled all the same.
	returns := []struct {
		name string
		ret  func(ctx context.Context) (int, error)
	}{
		{"a value", func(context.Context) (int, error) { return 7, nil }},
		{"another error", func(context.Context) (int, error) { return 7, errGuarOther }},
		{"ctx.Err()", func(ctx context.Context) (int, error) { return 7, ctx.Err() }},
		{"context.Cause(ctx)", func(ctx context.Context) (int, error) { return 7, context.Cause(ctx) }},
	}
	for _, ret := range returns {
		t.Run("fn that returns "+ret.name+" after the cancel ends with ErrCancelled", func(t *testing.T) {
			running := make(chan struct{})
			type seen struct{ err, cause error }
			sawCancel := make(chan seen, 1)
			finish := newGate()
			t.Cleanup(finish.open)
			f := eventloop.Go(func(ctx context.Context) (int, error) {
				close(running)
				<-ctx.Done()
				sawCancel <- seen{ctx.Err(), context.Cause(ctx)}
				<-finish
				return ret.ret(ctx)
			})
			recv(t, running)
			assert.False(t, f.Cancelled(), "no Cancel yet")
			done := f.Done() // made before the Cancel; Done is the same channel on every call

			assert.True(t, f.Cancel(), "Cancel on a running Go future")
			assert.True(t, f.Cancelled())
			s := recv(t, sawCancel)
			assert.ErrorIs(t, s.cause, eventloop.ErrCancelled, "context.Cause(ctx) is ErrCancelled")
			assert.Equal(t, context.Canceled, s.err, "ctx.Err() is context.Canceled")

			// fn still runs: nothing says the future has ended.
			assert.False(t, isClosed(done), "Done stays open while fn still runs")
			assert.False(t, isClosed(f.Done()), "Done stays open while fn still runs")
			_, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrTimeout, "still pending")
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			_, err = f.Wait(ctx)
			cancel()
			assert.ErrorIs(t, err, context.DeadlineExceeded, "Wait still waits")
			calledBack := make(chan error, 1)
			f.AddDoneCallback(func(f *eventloop.Future[int]) { calledBack <- f.Exception(0) })
			assert.Empty(t, calledBack, "no done callback while fn still runs")
			assert.True(t, f.Cancel(), "true again for a cancelled future, while fn runs")
			assert.True(t, f.Cancelled())
			assert.False(t, isClosed(done), "a second Cancel does not end it either")

			finish.open()
			require.True(t, closedWithin(done), "the future ends when fn returns")
			v, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrCancelled, "whatever fn returned")
			assert.NotErrorIs(t, err, errGuarOther)
			assert.Zero(t, v, "not fn's value")
			assert.ErrorIs(t, f.Exception(0), eventloop.ErrCancelled)
			assert.ErrorIs(t, recv(t, calledBack), eventloop.ErrCancelled, "the callback runs and sees the outcome")
			assert.True(t, f.Cancel(), "true again once ended")
			assert.True(t, f.Cancelled())
		})
	}

	t.Run("Cancel on a Go future that ended otherwise returns false and changes nothing", func(t *testing.T) {
		ends := map[string]func(context.Context) (int, error){
			"with a value":  value(3),
			"with an error": func(context.Context) (int, error) { return 3, errGuarOther },
			"with a panic":  func(context.Context) (int, error) { panic("guar") },
		}
		for name, fn := range ends {
			f := eventloop.Go(fn)
			require.True(t, closedWithin(f.Done()), name)
			v1, err1 := f.Result(0)
			assert.False(t, f.Cancel(), name)
			assert.False(t, f.Cancelled(), name)
			assert.False(t, f.Cancel(), "%s: still false", name)
			v2, err2 := f.Result(0)
			assert.Equal(t, v1, v2, name)
			assert.Equal(t, err1, err2, name)
			assert.NotErrorIs(t, err2, eventloop.ErrCancelled, name)
		}
	})

	t.Run("Cancel from many goroutines at once: each returns true, the future ends once", func(t *testing.T) {
		for range 50 {
			var calls atomic.Int32
			last := make(chan struct{})
			f := eventloop.Go(func(ctx context.Context) (int, error) { <-ctx.Done(); return 1, nil })
			f.AddDoneCallback(func(*eventloop.Future[int]) { calls.Add(1) })
			f.AddDoneCallback(func(*eventloop.Future[int]) { close(last) }) // runs after the first, each time
			g := newGate()
			results := make(chan bool, 8)
			for range 8 {
				go func() { <-g; results <- f.Cancel() }()
			}
			g.open()
			for range 8 {
				assert.True(t, recv(t, results), "every Cancel reports the future cancelled")
			}
			require.True(t, closedWithin(f.Done()))
			_, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrCancelled)
			assert.True(t, f.Cancelled())
			require.True(t, closedWithin(last))
			assert.Equal(t, int32(1), calls.Load(), "the callback ran once")
		}
	})

	t.Run("Cancel racing the start of fn: true, ErrCancelled, and fn, if it ran, saw the cause", func(t *testing.T) {
		for range 200 {
			var ran atomic.Bool
			var cause atomic.Value
			f := eventloop.Go(func(ctx context.Context) (int, error) {
				ran.Store(true)
				<-ctx.Done()
				cause.Store(context.Cause(ctx))
				return 1, nil
			})
			assert.True(t, f.Cancel(), "fn cannot end before it sees the cancel")
			require.True(t, closedWithin(f.Done()))
			_, err := f.Result(0)
			assert.ErrorIs(t, err, eventloop.ErrCancelled)
			if ran.Load() {
				assert.ErrorIs(t, cause.Load().(error), eventloop.ErrCancelled)
			}
		}
	})

	t.Run("Cancel racing the return of fn: ErrCancelled exactly when Cancel returned true", func(t *testing.T) {
		for range 200 {
			f := eventloop.Go(value(5))
			cancelled := f.Cancel()
			require.True(t, closedWithin(f.Done()))
			v, err := f.Result(0)
			assert.Equal(t, cancelled, f.Cancelled())
			if cancelled {
				assert.ErrorIs(t, err, eventloop.ErrCancelled)
				assert.True(t, f.Cancel(), "true again")
			} else {
				assert.NoError(t, err)
				assert.Equal(t, 5, v)
				assert.False(t, f.Cancel(), "false again")
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 4. Where done callbacks run.

// Done callbacks of a Go future added before it ends run on fn's goroutine
// (the godoc: "fn's goroutine for Go"), after the outcome is visible, in
// the order added; also when Cancel ended it (not on Cancel's caller). Of a
// loop task, on the goroutine that ran fn, as loop work. Of a Go future
// that Cancel ended before fn started, on Cancel's caller, before Cancel
// returns.
func TestGuarDoneCallbacksRunWhereTheFutureEnds(t *testing.T) {
	type seen struct {
		g      uint64
		done   bool // Done was closed
		v      int
		err    error
		inLoop bool
	}
	callbacks := func(f *eventloop.Future[int], l *eventloop.Loop, n int) <-chan seen {
		out := make(chan seen, n)
		for range n {
			f.AddDoneCallback(func(f *eventloop.Future[int]) {
				s := seen{g: guarGoroutineID(), done: isClosed(f.Done()), inLoop: l.InLoop()}
				s.v, s.err = f.Result(0)
				out <- s
			})
		}
		return out
	}

	for _, cancel := range []bool{false, true} {
		name := "a Go future's callbacks run on fn's goroutine"
		if cancel {
			name = "a Go future's callbacks run on fn's goroutine, not on Cancel's caller, when Cancel ended it"
		}
		t.Run(name, func(t *testing.T) {
			fnG := make(chan uint64, 1)
			running := make(chan struct{})
			finish := newGate()
			t.Cleanup(finish.open)
			f := eventloop.Go(func(ctx context.Context) (int, error) {
				fnG <- guarGoroutineID()
				close(running)
				<-finish
				return 9, nil
			})
			out := callbacks(f, nil, 3)
			recv(t, running)
			if cancel {
				require.True(t, f.Cancel())
				assert.Empty(t, out, "Cancel does not run the callbacks of a running fn")
			}
			finish.open()
			g, me := recv(t, fnG), guarGoroutineID()
			for i := range 3 {
				s := recv(t, out)
				assert.Equal(t, g, s.g, "callback %d runs on fn's goroutine", i)
				assert.NotEqual(t, me, s.g)
				assert.True(t, s.done, "callback %d: Done is closed", i)
				if cancel {
					assert.ErrorIs(t, s.err, eventloop.ErrCancelled, "callback %d sees the outcome", i)
				} else {
					assert.NoError(t, s.err, "callback %d sees the outcome", i)
					assert.Equal(t, 9, s.v)
				}
			}
		})
	}

	t.Run("a loop task's callbacks run on the goroutine that ran fn, as loop work, also after it suspended", func(t *testing.T) {
		l := started(t)
		fnG := make(chan uint64, 1)
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			if err := eventloop.Sleep(ctx, 0); err != nil {
				return 0, err
			}
			fnG <- guarGoroutineID()
			return 9, nil
		})
		require.NoError(t, err)
		out := callbacks(f, l, 2)
		g := recv(t, fnG)
		for i := range 2 {
			s := recv(t, out)
			assert.Equal(t, g, s.g, "callback %d runs on the goroutine that ran fn", i)
			assert.True(t, s.inLoop, "callback %d is loop work", i)
			assert.True(t, s.done)
			assert.NoError(t, s.err)
		}
	})

	t.Run("a Go future Cancel ended before fn started runs its callbacks on Cancel's caller, before Cancel returns", func(t *testing.T) {
		// With one P the new goroutine waits while this one runs, so Cancel
		// nearly always comes first; each try checks whichever happened.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		unstarted := 0
		for try := 0; try < 100 && unstarted < 3; try++ {
			var ran atomic.Bool
			fnG := make(chan uint64, 1)
			f := eventloop.Go(func(ctx context.Context) (int, error) {
				ran.Store(true)
				fnG <- guarGoroutineID()
				<-ctx.Done()
				return 0, nil
			})
			out := callbacks(f, nil, 2)
			require.True(t, f.Cancel())
			before := len(out) // callbacks that ran before Cancel returned
			require.True(t, closedWithin(f.Done()))
			if ran.Load() { // final once Done is closed: fn's store happens before its end
				// fn started first: it ends the future, on its goroutine.
				g := recv(t, fnG)
				for range 2 {
					assert.Equal(t, g, recv(t, out).g)
				}
				continue
			}
			unstarted++
			assert.Equal(t, 2, before, "the callbacks ran before Cancel returned")
			me := guarGoroutineID()
			for i := range 2 {
				s := recv(t, out)
				assert.Equal(t, me, s.g, "callback %d ran on Cancel's caller", i)
				assert.ErrorIs(t, s.err, eventloop.ErrCancelled)
			}
		}
		assert.Positive(t, unstarted, "Cancel never came before fn started: this test checked nothing")
	})
}

// The godoc of AddDoneCallback: "The callbacks of one future never run at
// the same time as each other: one added to an ended future while another
// goroutine is still running its callbacks waits until they have returned,
// then runs on the calling goroutine before AddDoneCallback returns."
// Callbacks cb1 and cb2 are added before the end; the goroutine that ends
// the future (E) runs cb1, which holds. Goroutine A then adds cb3: it must
// wait, parked in AddDoneCallback, while cb1 and then cb2 run; once cb2
// returns, cb3 must run on A, before A's AddDoneCallback returns.
func TestGuarAddDoneCallbackWaitsForEarlierCallbacksToReturn(t *testing.T) {
	kinds := []struct {
		name string
		make func(t *testing.T, end gate) *eventloop.Future[int]
	}{
		{"a Go future", func(t *testing.T, end gate) *eventloop.Future[int] {
			return eventloop.Go(blocker[int](nil, end, 1))
		}},
		{"a loop task", func(t *testing.T, end gate) *eventloop.Future[int] {
			f, err := eventloop.Submit(started(t), blocker[int](nil, end, 1))
			require.NoError(t, err)
			return f
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			end, g1, g2 := newGate(), newGate(), newGate()
			j := &journal{}
			f := k.make(t, end)
			// After the loop's cleanup (cleanups run last first): Close
			// waits for the callbacks these gates hold.
			t.Cleanup(end.open)
			t.Cleanup(g1.open)
			t.Cleanup(g2.open)
			in1, in2 := make(chan uint64, 1), make(chan uint64, 1)
			f.AddDoneCallback(func(*eventloop.Future[int]) {
				j.add("cb1")
				in1 <- guarGoroutineID()
				<-g1
			})
			f.AddDoneCallback(func(*eventloop.Future[int]) {
				j.add("cb2")
				in2 <- guarGoroutineID()
				<-g2
			})
			end.open()
			e := recv(t, in1) // E is in cb1; cb2 is still to start

			aG := make(chan uint64, 1)
			ran3 := make(chan uint64, 1)
			var ran, ranBeforeReturn atomic.Bool
			returned := make(chan struct{})
			go func() {
				defer close(returned)
				aG <- guarGoroutineID()
				f.AddDoneCallback(func(*eventloop.Future[int]) {
					j.add("cb3")
					ran.Store(true)
					ran3 <- guarGoroutineID()
				})
				ranBeforeReturn.Store(ran.Load())
			}()
			a := recv(t, aG)
			guarEventually(t, "A waits in AddDoneCallback, or has run cb3", func() bool {
				return guarParkedIn(a, ").AddDoneCallback(") || ran.Load() || isClosed(returned)
			})
			assert.False(t, ran.Load(), "cb3 does not run while cb1 runs and cb2 is still to start")
			assert.False(t, isClosed(returned), "AddDoneCallback waits while cb2 is still to start")

			g1.open() // E finishes cb1 and starts cb2, which holds
			assert.Equal(t, e, recv(t, in2), "cb2 runs on the goroutine that ended the future")
			guarEventually(t, "A still waits in AddDoneCallback while cb2 runs", func() bool {
				return guarParkedIn(a, ").AddDoneCallback(") || ran.Load() || isClosed(returned)
			})
			assert.False(t, ran.Load(), "cb3 does not run while cb2 still runs")
			g2.open() // cb2 returns
			assert.Equal(t, a, recv(t, ran3), "cb3 runs on A, once cb2 has returned")
			require.True(t, closedWithin(returned))
			assert.True(t, ranBeforeReturn.Load(), "cb3 ran before A's AddDoneCallback returned")
			assert.Equal(t, []string{"cb1", "cb2", "cb3"}, j.list(), "one after another, in the order added")
		})
	}
}
