package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// FuzzLoop drives one loop per input through a sequence of operations
// decoded from the input and checks every observable result against a small
// model of the contract (SPEC.md).
//
// The input is a config byte (the queue capacity) and then operations, each
// an op code byte followed by its argument bytes (fuzzOpArgs); missing
// bytes read as zero and at most fuzzMaxOps operations run.
//
// The model stays deterministic by controlling when the loop can make
// progress. Only the test goroutine submits, so its work starts in
// submission order. While the loop is new, or held by a task that blocks it
// until the test releases it (the hold op), whatever is submitted is
// certainly queued and not started: Cancel must succeed at once, Result
// must time out, Timer.Stop must succeed, Close must fail it with
// ErrLoopClosed. Once a submitted task has run (submit-and-await, or the
// hold starting), everything submitted before it has started. Where the
// loop runs freely the model asserts outcome sets that hold whatever the
// timing: Cancel's result decides the outcome, a Result that does not time
// out returns an allowed outcome, a loop observed Stopped has finished all
// accepted work. Every input ends with Close, after which every accepted
// future is done with an allowed outcome, its done callbacks ran once each
// in order, and the loop's Done is closed.
//
// A failure prints the operations that led to it; EVENTLOOP_FUZZ_TRACE=1
// with -v prints them for every input that passes too.
func FuzzLoop(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.prog)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) == 0 {
			prog = []byte{0}
		}
		m := fuzzNewModel(t, prog[0])
		m.run(prog[1:])
	})
}

// fuzzMaxOps bounds the operations run per input, and with them its time.
const fuzzMaxOps = 48

// The operations, by op code.
const (
	fuzzOpSubmit          byte = iota // kind: Submit a task
	fuzzOpSubmitAwait                 // kind: Submit a task and wait for its outcome where it will come
	fuzzOpResult                      // idx, timeout: Result (or Done) on a task's future
	fuzzOpCancel                      // idx: Cancel a task's future
	fuzzOpCallSoon                    // kind: CallSoon (kind%4 == 3 panics)
	fuzzOpCallLater                   // delay: CallLater (see fuzzDelays; delay/6%5 == 4 panics)
	fuzzOpTimerStop                   // idx: Stop a timer
	fuzzOpStop                        // wait: Stop; odd wait waits for the loop to drain where it will
	fuzzOpClose                       // Close
	fuzzOpShutdown                    // deadline: Shutdown with a deadline that has passed, of microseconds, or long
	fuzzOpStart                       // how: Start; odd how runs Run(ctx) on a goroutine instead
	fuzzOpHold                        // Submit a task that blocks the loop until released
	fuzzOpRelease                     // Release the hold
	fuzzOpTick                        // µs: sleep on the test goroutine
	fuzzOpAddDoneCallback             // idx: AddDoneCallback on a task's future
	fuzzOpCancelRun                   // Cancel the context given to Run
	fuzzNumOps
)

// fuzzOpArgs is the number of argument bytes of each operation.
var fuzzOpArgs = [fuzzNumOps]int{
	fuzzOpSubmit:          1,
	fuzzOpSubmitAwait:     1,
	fuzzOpResult:          2,
	fuzzOpCancel:          1,
	fuzzOpCallSoon:        1,
	fuzzOpCallLater:       1,
	fuzzOpTimerStop:       1,
	fuzzOpStop:            1,
	fuzzOpShutdown:        1,
	fuzzOpStart:           1,
	fuzzOpTick:            1,
	fuzzOpAddDoneCallback: 1,
}

var fuzzOpNames = [fuzzNumOps]string{
	"submit", "submit-await", "result", "cancel", "call-soon", "call-later",
	"timer-stop", "stop", "close", "shutdown", "start", "hold", "release",
	"tick", "add-done-callback", "cancel-run",
}

// fuzzKind is what a submitted task does. The kind byte of a submission
// holds the kind in its low 3 bits (mod fuzzNumKinds), the task's sleep in
// the next 3 (× 5µs), and in the top 2, for submit-and-await, how it is
// waited for (mod 3: Result, Wait, Await).
type fuzzKind uint8

const (
	fuzzValue   fuzzKind = iota // returns its id
	fuzzError                   // returns an error of its own
	fuzzPanic                   // panics with its id
	fuzzSleep                   // Sleeps a few microseconds, then returns its id
	fuzzYield                   // Sleep(ctx, 0), then returns its id
	fuzzAwaitGo                 // Awaits a Go future that returns its id after a few microseconds
	fuzzNumKinds
	fuzzHold // blocks the loop until released, cancelled or closed; made by the hold op
)

var fuzzKindNames = [...]string{"value", "error", "panic", "sleep", "yield", "await-go", "", "hold"}

func fuzzKindOf(b byte) fuzzKind { return fuzzKind(b & 7 % byte(fuzzNumKinds)) }

// suspends reports whether a task of kind k may still be pending after
// later work has started.
func (k fuzzKind) suspends() bool { return k == fuzzSleep || k == fuzzYield || k == fuzzAwaitGo }

// fuzzDelays are the delays of CallLater, by delay%6.
var fuzzDelays = [...]time.Duration{-time.Microsecond, 0, time.Microsecond, 10 * time.Microsecond, 50 * time.Microsecond, 200 * time.Microsecond}

// fuzzResultTimeouts are Result's timeouts, by timeout%5; 4 selects on Done.
var fuzzResultTimeouts = [...]time.Duration{0, -time.Microsecond, time.Microsecond, 30 * time.Microsecond}

// fuzzPanicValue is what panicking tasks, callbacks and timers panic with:
// their id.
type fuzzPanicValue int

// fuzzPhase is what the model knows about a task.
type fuzzPhase uint8

const (
	fuzzQueued  fuzzPhase = iota // accepted and certainly not started: the loop is new, or held by an earlier hold
	fuzzHolding                  // the hold task, started and blocking the loop
	fuzzMaybe                    // queued, running, suspended or done: the loop may have run it
	fuzzDone                     // seen done by the test goroutine; v, err hold the outcome
)

// fuzzTask is the model of one accepted Submit. Fields without a comment are
// the test goroutine's.
type fuzzTask struct {
	id    int
	kind  fuzzKind
	sleep time.Duration
	err   error // what a fuzzError task returns
	f     *eventloop.Future[int]

	phase      fuzzPhase
	v          int   // the outcome, once phase is fuzzDone
	e          error // …
	cancelled  bool  // a Cancel returned true
	mustClose  bool  // Close came while it was certainly unfinished and not cancelled
	mayClose   bool  // Close came while it may have been unfinished
	neverStart bool  // it was certainly queued when Cancel or Close ended it

	gate    gate          // fuzzHold: released by the test
	running chan struct{} // fuzzHold: buffered(1); a token once it blocks the loop

	started  atomic.Bool // set by fn first thing
	returned atomic.Bool // set by fn as it returns (or panics)

	cbAdded int
	cbMu    sync.Mutex               // guards cbSeq, cbOut: done callbacks run on other goroutines
	cbSeq   []int                    // the done callbacks that ran, by number, in the order they ran
	cbOut   []fuzzOutcome            // the outcome each saw
	cbFut   []*eventloop.Future[int] // the future each was given
}

type fuzzOutcome struct {
	v   int
	err error
}

// fuzzCall is the model of one accepted CallSoon.
type fuzzCall struct {
	id         int
	panics     bool
	sure       bool // certainly queued: the loop is new or held
	mustNotRun bool // Close came while it was certainly queued
	ran        atomic.Int32
}

// fuzzTimer is the model of one accepted CallLater.
type fuzzTimer struct {
	id          int
	d           time.Duration
	panics      bool
	t           *eventloop.Timer
	sure        bool // certainly not fired: made while the loop is new or held, and it still is
	mayBeDue    bool // sure, but its deadline may have moved it to the queue (see start)
	stopped     bool // a Stop returned true
	mustFire    bool // a first Stop on a live, unstopped loop returned false: fn has started
	mustNotFire bool // Close came while sure
	fired       atomic.Int32
}

// fuzzModel runs one input against one loop.
type fuzzModel struct {
	t        *testing.T
	l        *eventloop.Loop
	capacity int
	trace    []string

	nextID int
	tasks  []*fuzzTask
	calls  []*fuzzCall
	timers []*fuzzTimer
	gates  []gate // every hold's gate, opened by cleanup

	ran        bool // Start or Run began it
	stopCalled bool // Stop or Shutdown was called
	drained    bool // seen Stopped: every accepted piece of work has ended
	closed     bool // Close, Shutdown past its deadline, or Run's ctx closed it
	hold       *fuzzTask

	runMode      bool // the loop runs in Run(runCtx) on a goroutine
	runCancel    context.CancelFunc
	runCancelled bool
	runErr       chan error
	runSeen      bool // runErr was received

	mu     sync.Mutex // guards starts, panics
	starts []int      // ids of tasks and callbacks, in the order they started
	panics []error    // what the error handler received
}

func fuzzNewModel(t *testing.T, config byte) *fuzzModel {
	m := &fuzzModel{t: t}
	if config%4 == 3 {
		m.capacity = int(config/4%4) + 1
	}
	m.l = eventloop.New(eventloop.WithQueueCapacity(m.capacity), eventloop.WithErrorHandler(m.handle))
	m.logf("new capacity=%d", m.capacity)
	t.Cleanup(m.cleanup)
	return m
}

// cleanup leaves nothing running, also when the test failed half way.
func (m *fuzzModel) cleanup() {
	for _, g := range m.gates {
		g.open()
	}
	if err := m.l.Close(); err != nil {
		m.t.Errorf("cleanup: Close: %v", err)
	}
	if m.runCancel != nil {
		m.runCancel()
	}
	if m.runMode && !m.runSeen {
		select {
		case <-m.runErr:
		case <-time.After(long):
			m.t.Errorf("cleanup: Run did not return")
		}
	}
}

func (m *fuzzModel) handle(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.panics = append(m.panics, err)
}

func (m *fuzzModel) logStart(id int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.starts = append(m.starts, id)
}

func (m *fuzzModel) logf(format string, args ...any) {
	m.trace = append(m.trace, fmt.Sprintf(format, args...))
}

// failf ends the input with the operations that led to the failure.
func (m *fuzzModel) failf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s\nstate: ran=%v stop=%v drained=%v closed=%v held=%v capacity=%d\noperations:\n  %s",
		fmt.Sprintf(format, args...), m.ran, m.stopCalled, m.drained, m.closed, m.held(), m.capacity,
		strings.Join(m.trace, "\n  "))
}

func (m *fuzzModel) held() bool { return m.hold != nil && m.hold.phase == fuzzHolding }

// sure reports whether work accepted now certainly stays queued until the
// test lets the loop go on.
func (m *fuzzModel) sure() bool { return !m.ran || m.held() }

func (m *fuzzModel) newID() int {
	m.nextID++
	return m.nextID
}

// run decodes and runs the operations, then closes the loop and checks
// the end state.
func (m *fuzzModel) run(prog []byte) {
	for n := 0; len(prog) > 0 && n < fuzzMaxOps; n++ {
		op := prog[0] % fuzzNumOps
		prog = prog[1:]
		args := make([]byte, fuzzOpArgs[op])
		k := copy(args, prog)
		prog = prog[k:]
		m.step(op, args)
		m.checkState()
	}
	m.finish()
	if os.Getenv("EVENTLOOP_FUZZ_TRACE") == "1" {
		m.t.Log(strings.Join(m.trace, "\n"))
	}
}

func (m *fuzzModel) step(op byte, args []byte) {
	name := fuzzOpNames[op]
	switch op {
	case fuzzOpSubmit:
		kind := fuzzKindOf(args[0])
		if k := m.submit(kind, args[0]); k != nil {
			m.logf("%s %s -> #%d %s", name, fuzzKindNames[kind], k.id, fuzzPhaseName(k.phase))
		} else {
			m.logf("%s %s -> rejected", name, fuzzKindNames[kind])
		}
	case fuzzOpSubmitAwait:
		m.submitAwait(args[0])
	case fuzzOpResult:
		m.result(args[0], args[1])
	case fuzzOpCancel:
		m.cancel(args[0])
	case fuzzOpCallSoon:
		m.callSoon(args[0])
	case fuzzOpCallLater:
		m.callLater(args[0])
	case fuzzOpTimerStop:
		m.timerStop(args[0])
	case fuzzOpStop:
		m.stop(args[0]%2 == 1)
	case fuzzOpClose:
		m.close()
	case fuzzOpShutdown:
		m.shutdown(args[0] % 3)
	case fuzzOpStart:
		m.start(args[0]%2 == 1)
	case fuzzOpHold:
		m.holdLoop()
	case fuzzOpRelease:
		m.release()
	case fuzzOpTick:
		d := time.Duration(args[0]%64) * time.Microsecond
		m.logf("%s %v", name, d)
		time.Sleep(d)
	case fuzzOpAddDoneCallback:
		m.addDoneCallback(args[0])
	case fuzzOpCancelRun:
		m.cancelRun()
	}
}

func fuzzPhaseName(p fuzzPhase) string {
	return [...]string{"queued", "holding", "maybe", "done"}[p]
}

// done reports whether f has ended, without waiting and without making its
// Done channel (which would change how the future ends).
func fuzzIsDone(f *eventloop.Future[int]) (v int, err error, done bool) {
	v, err = f.Result(0)
	return v, err, !errors.Is(err, eventloop.ErrTimeout)
}

// body is the function of task k.
func (m *fuzzModel) body(k *fuzzTask) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		k.started.Store(true)
		m.logStart(k.id)
		defer k.returned.Store(true)
		switch k.kind {
		case fuzzError:
			return 0, k.err
		case fuzzPanic:
			panic(fuzzPanicValue(k.id))
		case fuzzSleep, fuzzYield:
			if err := eventloop.Sleep(ctx, k.sleep); err != nil {
				return 0, err
			}
		case fuzzAwaitGo:
			return eventloop.Await(ctx, eventloop.Go(func(context.Context) (int, error) {
				time.Sleep(k.sleep)
				return k.id, nil
			}))
		case fuzzHold:
			k.running <- struct{}{}
			if err := k.gate.wait(ctx); err != nil {
				return 0, err
			}
		}
		return k.id, nil
	}
}

// fuzzAdmission is what a submission must get.
type fuzzAdmission struct {
	want     error // ErrLoopStopped or ErrLoopClosed; else accepted unless full
	mustFull bool  // the queue is certainly full
	mayFull  bool  // the queue may be full
}

func (m *fuzzModel) admission() fuzzAdmission {
	switch {
	case m.closed:
		return fuzzAdmission{want: eventloop.ErrLoopClosed}
	case m.stopCalled:
		return fuzzAdmission{want: eventloop.ErrLoopStopped}
	case m.capacity == 0:
		return fuzzAdmission{}
	}
	lo, hi := m.queuedBounds()
	return fuzzAdmission{mustFull: lo >= m.capacity, mayFull: hi >= m.capacity}
}

// queuedBounds returns how many pieces of work are certainly, and may be,
// queued and not started, as WithQueueCapacity counts them.
func (m *fuzzModel) queuedBounds() (lo, hi int) {
	for _, k := range m.tasks {
		switch {
		case k.phase == fuzzQueued:
			lo++
			hi++
		case k.phase == fuzzMaybe && !k.cancelled && !k.started.Load():
			hi++
		}
	}
	for _, c := range m.calls {
		switch {
		case c.sure:
			lo++
			hi++
		case c.ran.Load() == 0:
			hi++
		}
	}
	for _, tm := range m.timers {
		switch {
		case tm.stopped:
		case tm.sure:
			switch {
			case tm.d <= 0: // due at once: in the queue
				lo++
				hi++
			case tm.mayBeDue:
				hi++
			}
		case tm.fired.Load() == 0:
			hi++
		}
	}
	return lo, hi
}

func (m *fuzzModel) checkAdmission(what string, err error, a fuzzAdmission) {
	m.t.Helper()
	switch {
	case a.want != nil:
		if !errors.Is(err, a.want) {
			m.failf("%s: got %v, want %v", what, err, a.want)
		}
	case a.mustFull:
		if !errors.Is(err, eventloop.ErrQueueFull) {
			m.failf("%s on a full queue: got %v, want ErrQueueFull", what, err)
		}
	case a.mayFull:
		if err != nil && !errors.Is(err, eventloop.ErrQueueFull) {
			m.failf("%s: got %v, want nil or ErrQueueFull", what, err)
		}
	default:
		if err != nil {
			m.failf("%s: got %v, want it accepted", what, err)
		}
	}
}

// submit submits a task of the given kind and returns its model, or nil if
// it was rejected.
func (m *fuzzModel) submit(kind fuzzKind, arg byte) *fuzzTask {
	m.t.Helper()
	k := &fuzzTask{id: m.newID(), kind: kind, sleep: time.Duration(arg>>3&7) * 5 * time.Microsecond}
	switch kind {
	case fuzzError:
		k.err = fmt.Errorf("fuzz: task %d failed", k.id)
	case fuzzHold:
		k.gate = newGate()
		k.running = make(chan struct{}, 1)
	}
	a := m.admission()
	f, err := eventloop.Submit(m.l, m.body(k))
	m.checkAdmission("Submit", err, a)
	if err != nil {
		if f != nil {
			m.failf("Submit returned a future and an error")
		}
		return nil
	}
	if f == nil {
		m.failf("Submit returned neither a future nor an error")
	}
	if kind == fuzzHold {
		m.gates = append(m.gates, k.gate)
	}
	k.f = f
	k.phase = fuzzMaybe
	if m.sure() {
		k.phase = fuzzQueued
	}
	m.tasks = append(m.tasks, k)
	return k
}

func (m *fuzzModel) submitAwait(arg byte) {
	kind := fuzzKindOf(arg)
	k := m.submit(kind, arg)
	if k == nil {
		m.logf("submit-await %s -> rejected", fuzzKindNames[kind])
		return
	}
	if k.phase == fuzzQueued {
		// Nothing can run it yet: waiting would hang. It must time out.
		_, err := k.f.Result(time.Microsecond)
		m.logf("submit-await %s -> #%d queued, Result: %v", fuzzKindNames[kind], k.id, err)
		if !errors.Is(err, eventloop.ErrTimeout) {
			m.failf("Result on a task that cannot have run: got %v, want ErrTimeout", err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	var v int
	var err error
	how := arg >> 6 % 3
	switch how {
	case 0:
		v, err = k.f.Result(long)
	case 1:
		v, err = k.f.Wait(ctx)
	default:
		v, err = eventloop.Await(ctx, k.f) // not loop work: blocks like Wait
	}
	m.logf("submit-await %s via %s -> #%d (%d, %v)", fuzzKindNames[kind], [...]string{"Result", "Wait", "Await"}[how], k.id, v, fuzzShort(err))
	m.observe(k, v, err, "submit-await")
	m.barrier(k)
}

// observe checks an outcome seen for k and records it.
func (m *fuzzModel) observe(k *fuzzTask, v int, err error, where string) {
	m.t.Helper()
	if msg := m.wrongOutcome(k, v, err); msg != "" {
		m.failf("%s: task #%d (%s): %s", where, k.id, fuzzKindNames[k.kind], msg)
	}
	if k.started.Load() && !k.returned.Load() {
		m.failf("%s: task #%d is done while its function still runs", where, k.id)
	}
	if k.neverStart && k.started.Load() {
		m.failf("%s: task #%d ran after it was ended unstarted", where, k.id)
	}
	if k.phase != fuzzDone {
		k.phase, k.v, k.e = fuzzDone, v, err
	}
}

// wrongOutcome returns what is wrong with outcome (v, err) for k, or "".
func (m *fuzzModel) wrongOutcome(k *fuzzTask, v int, err error) string {
	got := fmt.Sprintf("got (%d, %v)", v, fuzzShort(err))
	if k.phase == fuzzDone && (v != k.v || err != k.e) {
		return fmt.Sprintf("%s, but earlier (%d, %v)", got, k.v, fuzzShort(k.e))
	}
	switch {
	case k.cancelled:
		if v != 0 || !errors.Is(err, eventloop.ErrCancelled) {
			return got + ", want ErrCancelled: Cancel returned true"
		}
		return ""
	case k.mustClose:
		if v != 0 || !errors.Is(err, eventloop.ErrLoopClosed) {
			return got + ", want ErrLoopClosed: Close came while it was certainly unfinished"
		}
		return ""
	case k.mayClose && v == 0 && errors.Is(err, eventloop.ErrLoopClosed):
		return ""
	}
	switch k.kind {
	case fuzzError:
		if v != 0 || err != k.err {
			return got + ", want its own error"
		}
	case fuzzPanic:
		var pe *eventloop.PanicError
		if v != 0 || !errors.As(err, &pe) || pe.Value != fuzzPanicValue(k.id) || len(pe.Stack) == 0 {
			return got + ", want a *PanicError with its id and a stack"
		}
	default:
		if v != k.id || err != nil {
			return fmt.Sprintf("%s, want (%d, nil)", got, k.id)
		}
	}
	return ""
}

// fuzzShort is err without a panic's stack.
func fuzzShort(err error) string {
	var pe *eventloop.PanicError
	if errors.As(err, &pe) {
		return fmt.Sprintf("panic(%v)", pe.Value)
	}
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// barrier checks what task b having started says: everything submitted
// before it has started (one FIFO queue, one submitter), and what does not
// suspend has ended.
func (m *fuzzModel) barrier(b *fuzzTask) {
	m.t.Helper()
	for _, k := range m.tasks {
		if k.id >= b.id || k.cancelled {
			continue
		}
		if !k.started.Load() {
			m.failf("task #%d started before task #%d, submitted earlier", b.id, k.id)
		}
		if !k.kind.suspends() && k.phase != fuzzDone {
			v, err, done := fuzzIsDone(k.f)
			if !done {
				m.failf("task #%d started while task #%d, submitted earlier and not suspending, is pending", b.id, k.id)
			}
			m.observe(k, v, err, "barrier")
		}
	}
	for _, c := range m.calls {
		if c.id < b.id && c.ran.Load() != 1 {
			m.failf("task #%d started before callback #%d, queued earlier, ran (it ran %d times)", b.id, c.id, c.ran.Load())
		}
	}
	for _, tm := range m.timers {
		if tm.id < b.id && tm.d <= 0 && !tm.stopped && tm.fired.Load() != 1 {
			m.failf("task #%d started before timer #%d (due at once, created earlier) fired (it fired %d times)", b.id, tm.id, tm.fired.Load())
		}
	}
}

func (m *fuzzModel) pickTask(b byte) *fuzzTask {
	if len(m.tasks) == 0 {
		return nil
	}
	return m.tasks[int(b)%len(m.tasks)]
}

func (m *fuzzModel) result(idx, sel byte) {
	k := m.pickTask(idx)
	if k == nil {
		m.logf("result -> no task")
		return
	}
	sel %= 5
	var v int
	var err error
	done := true
	if sel == 4 {
		ch := k.f.Done()
		if ch != k.f.Done() {
			m.failf("Done returned a different channel")
		}
		select {
		case <-ch:
			v, err, done = fuzzIsDone(k.f)
			if !done {
				m.failf("Result(0) timed out on task #%d whose Done is closed", k.id)
			}
		default:
			done = false
		}
		m.logf("result #%d via Done -> done=%v (%d, %v)", k.id, done, v, fuzzShort(err))
	} else {
		timeout := fuzzResultTimeouts[sel]
		v, err = k.f.Result(timeout)
		done = !errors.Is(err, eventloop.ErrTimeout)
		m.logf("result #%d timeout=%v -> (%d, %v)", k.id, timeout, v, fuzzShort(err))
		if !done && v != 0 {
			m.failf("Result timed out with a value %d", v)
		}
	}
	if !done {
		if m.closed || m.drained || k.phase == fuzzDone {
			m.failf("task #%d is pending, but it must have ended", k.id)
		}
		return
	}
	if k.phase == fuzzQueued || k.phase == fuzzHolding {
		m.failf("task #%d ended with (%d, %v), but it cannot have", k.id, v, fuzzShort(err))
	}
	m.observe(k, v, err, "result")
	if got := k.f.Exception(0); got != err {
		m.failf("Exception: got %v, want Result's %v", fuzzShort(got), fuzzShort(err))
	}
}

func (m *fuzzModel) cancel(idx byte) {
	k := m.pickTask(idx)
	if k == nil {
		m.logf("cancel -> no task")
		return
	}
	phase := k.phase
	got := k.f.Cancel()
	m.logf("cancel #%d (%s) -> %v", k.id, fuzzPhaseName(phase), got)
	switch {
	case k.cancelled:
		if !got {
			m.failf("Cancel on a cancelled future returned false")
		}
	case m.closed || m.drained || phase == fuzzDone:
		if got {
			m.failf("Cancel on a future that ended otherwise returned true")
		}
	case phase == fuzzQueued:
		if !got {
			m.failf("Cancel on a task that has not started returned false")
		}
		k.cancelled, k.neverStart = true, true
		v, err, done := fuzzIsDone(k.f)
		if !done {
			m.failf("Cancel on a task that has not started did not end it at once")
		}
		m.observe(k, v, err, "cancel")
		m.checkCallbacksRan(k, "Cancel that ended the future")
		if k == m.hold {
			m.hold = nil
		}
	case phase == fuzzHolding:
		if !got {
			m.failf("Cancel on the running hold task returned false")
		}
		k.cancelled, k.phase = true, fuzzMaybe
		m.hold = nil
		m.unsure(math.MaxInt) // the hold returns; the loop goes on
	default:
		if got {
			k.cancelled = true
			break
		}
		v, err, done := fuzzIsDone(k.f)
		if !done {
			m.failf("Cancel returned false on a pending future of a live loop")
		}
		m.observe(k, v, err, "cancel")
	}
	if c := k.f.Cancelled(); c != k.cancelled {
		m.failf("Cancelled: got %v, want %v", c, k.cancelled)
	}
}

func (m *fuzzModel) callSoon(arg byte) {
	c := &fuzzCall{id: m.newID(), panics: arg%4 == 3}
	a := m.admission()
	err := m.l.CallSoon(func() {
		c.ran.Add(1)
		m.logStart(c.id)
		if c.panics {
			panic(fuzzPanicValue(c.id))
		}
	})
	m.logf("call-soon #%d panics=%v -> %v", c.id, c.panics, err)
	m.checkAdmission("CallSoon", err, a)
	if err == nil {
		c.sure = m.sure()
		m.calls = append(m.calls, c)
	}
}

func (m *fuzzModel) callLater(arg byte) {
	tm := &fuzzTimer{id: m.newID(), d: fuzzDelays[arg%6], panics: arg/6%5 == 4}
	a := m.admission()
	t, err := m.l.CallLater(tm.d, func() {
		tm.fired.Add(1)
		if tm.panics {
			panic(fuzzPanicValue(tm.id))
		}
	})
	m.logf("call-later #%d d=%v panics=%v -> %v", tm.id, tm.d, tm.panics, err)
	m.checkAdmission("CallLater", err, a)
	if (err == nil) != (t != nil) {
		m.failf("CallLater returned timer %v and error %v", t, err)
	}
	if err == nil {
		tm.t = t
		tm.sure = m.sure()
		m.timers = append(m.timers, tm)
	}
}

func (m *fuzzModel) timerStop(idx byte) {
	if len(m.timers) == 0 {
		m.logf("timer-stop -> no timer")
		return
	}
	tm := m.timers[int(idx)%len(m.timers)]
	fired := tm.fired.Load()
	got := tm.t.Stop()
	m.logf("timer-stop #%d -> %v", tm.id, got)
	switch {
	case tm.stopped:
		if got {
			m.failf("Timer.Stop on a stopped timer returned true")
		}
	case m.closed || m.drained:
		if got {
			m.failf("Timer.Stop returned true after the loop ended: the timer fired or was dropped")
		}
	case tm.sure:
		if !got {
			m.failf("Timer.Stop returned false on a timer that cannot have fired")
		}
	case fired > 0:
		if got {
			m.failf("Timer.Stop returned true on a timer that fired")
		}
	case !got && !m.stopCalled:
		tm.mustFire = true // it has started; a stopping loop might have dropped it instead
	}
	if got {
		tm.stopped = true
	}
}

func (m *fuzzModel) stop(wait bool) {
	m.l.Stop()
	m.logf("stop wait=%v", wait)
	m.stopCalled = true
	if wait && m.ran && !m.held() && !m.closed && !m.drained {
		if !closedWithin(m.l.Done()) {
			m.failf("a stopped loop with nothing blocking it did not drain")
		}
		if s := m.l.State(); s != eventloop.StateStopped {
			m.failf("after Stop drained: state %v, want stopped", s)
		}
		m.onDrained()
	}
}

func (m *fuzzModel) close() {
	mayDrain := m.stopCalled && m.ran && !m.held()
	err := m.l.Close()
	m.logf("close -> %v", err)
	if err != nil {
		m.failf("Close: %v", err)
	}
	if !isClosed(m.l.Done()) {
		m.failf("Done is not closed when Close returns")
	}
	if s := m.l.State(); s != eventloop.StateClosed {
		m.failf("after Close: state %v", s)
	}
	m.onClosed(eventloop.ErrLoopClosed, mayDrain)
}

func (m *fuzzModel) shutdown(sel byte) {
	if m.held() && sel == 2 {
		sel = 1 // a held loop does not drain: do not wait long for it
	}
	timeout := [...]time.Duration{0, 20 * time.Microsecond, long}[sel]
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	held := m.held()
	err := m.l.Shutdown(ctx)
	m.logf("shutdown deadline=%v -> %v", timeout, err)
	if !isClosed(m.l.Done()) {
		m.failf("Done is not closed when Shutdown returns")
	}
	s := m.l.State()
	switch {
	case m.closed:
		if err != nil {
			m.failf("Shutdown of a closed loop: %v", err)
		}
	case m.drained:
		// Also with a ctx that has ended: the drained loop wins.
		if err != nil || s != eventloop.StateStopped {
			m.failf("Shutdown of a drained loop: (%v, state %v), want (nil, stopped)", err, s)
		}
	case !m.ran:
		if err != nil || s != eventloop.StateClosed {
			m.failf("Shutdown of a loop that never ran: (%v, state %v), want (nil, closed)", err, s)
		}
		m.stopCalled = true
		m.onClosed(eventloop.ErrLoopClosed, false)
	case err == nil:
		if held || s != eventloop.StateStopped {
			m.failf("Shutdown returned nil with the loop held=%v, state %v", held, s)
		}
		m.stopCalled = true
		if !m.drained {
			m.onDrained()
		}
	case errors.Is(err, context.DeadlineExceeded):
		if sel == 2 && !held && !m.drained {
			m.failf("Shutdown with a long deadline of a loop with nothing blocking it: %v", err)
		}
		if s != eventloop.StateClosed {
			m.failf("Shutdown past its deadline: state %v, want closed", s)
		}
		m.stopCalled = true
		m.onClosed(eventloop.ErrLoopClosed, !held)
	default:
		m.failf("Shutdown: %v", err)
	}
}

func (m *fuzzModel) start(useRun bool) {
	if m.ran || m.closed {
		var err error
		if useRun {
			err = m.l.Run(context.Background()) // a loop runs once: returns at once
		} else {
			err = m.l.Start()
		}
		m.logf("start run=%v -> %v", useRun, err)
		var want []error
		switch {
		case m.closed:
			want = []error{eventloop.ErrLoopClosed}
		case m.drained:
			want = []error{eventloop.ErrLoopStopped}
		case m.stopCalled && !m.held():
			want = []error{eventloop.ErrLoopRunning, eventloop.ErrLoopStopped}
		default:
			want = []error{eventloop.ErrLoopRunning}
		}
		if !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
			m.failf("starting a loop again: got %v, want one of %v", err, want)
		}
		return
	}
	if useRun && !m.stopCalled {
		ctx, cancel := context.WithCancel(context.Background())
		m.runMode, m.runCancel, m.runErr = true, cancel, make(chan error, 1)
		go func() { m.runErr <- m.l.Run(ctx) }()
		deadline := time.Now().Add(long)
		for m.l.State() == eventloop.StateNew {
			if time.Now().After(deadline) {
				m.failf("Run did not start the loop")
			}
			runtime.Gosched()
		}
		m.logf("start via Run")
	} else {
		err := m.l.Start()
		m.logf("start -> %v", err)
		if err != nil {
			m.failf("Start on a new loop: %v", err)
		}
	}
	m.ran = true
	h := m.hold
	if h == nil {
		m.unsure(math.MaxInt)
		return
	}
	m.unsure(h.id) // what came before the hold runs; what came after waits
	for _, tm := range m.timers {
		// The loop moved the timers whose deadline had passed to the queue
		// before it ran the hold: behind it, so they cannot fire yet, but
		// they count against the capacity.
		tm.mayBeDue = tm.sure && tm.d > 0
	}
	recv(m.t, h.running)
	h.phase = fuzzHolding
	m.barrier(h)
}

// unsure records that the loop may now run what was queued before id.
func (m *fuzzModel) unsure(id int) {
	for _, k := range m.tasks {
		if k.id < id && k.phase == fuzzQueued {
			k.phase = fuzzMaybe
		}
	}
	for _, c := range m.calls {
		if c.id < id {
			c.sure = false
		}
	}
	for _, tm := range m.timers {
		if tm.id < id {
			tm.sure = false
		}
	}
}

func (m *fuzzModel) holdLoop() {
	if m.hold != nil {
		m.logf("hold -> held already")
		return
	}
	k := m.submit(fuzzHold, 0)
	if k == nil {
		m.logf("hold -> rejected")
		return
	}
	m.hold = k
	if m.ran {
		recv(m.t, k.running)
		k.phase = fuzzHolding
		m.barrier(k)
	}
	m.logf("hold -> #%d %s", k.id, fuzzPhaseName(k.phase))
}

func (m *fuzzModel) release() {
	h := m.hold
	if h == nil {
		m.logf("release -> no hold")
		return
	}
	m.logf("release #%d", h.id)
	h.gate.open()
	m.hold = nil
	if h.phase == fuzzHolding {
		h.phase = fuzzMaybe
		m.unsure(math.MaxInt)
	}
}

func (m *fuzzModel) addDoneCallback(idx byte) {
	k := m.pickTask(idx)
	if k == nil {
		m.logf("add-done-callback -> no task")
		return
	}
	n := k.cbAdded
	k.cbAdded++
	k.f.AddDoneCallback(func(f *eventloop.Future[int]) {
		v, err := f.Result(0) // done: returns at once, also on the loop
		k.cbMu.Lock()
		defer k.cbMu.Unlock()
		k.cbSeq = append(k.cbSeq, n)
		k.cbOut = append(k.cbOut, fuzzOutcome{v, err})
		k.cbFut = append(k.cbFut, f)
	})
	m.logf("add-done-callback #%d (%s) cb %d", k.id, fuzzPhaseName(k.phase), n)
	if k.phase == fuzzDone || m.closed || m.drained {
		m.checkCallbacksRan(k, "AddDoneCallback on a done future")
	}
}

// checkCallbacksRan checks that every done callback of k has run.
func (m *fuzzModel) checkCallbacksRan(k *fuzzTask, after string) {
	m.t.Helper()
	k.cbMu.Lock()
	ran := len(k.cbSeq)
	k.cbMu.Unlock()
	if ran != k.cbAdded {
		m.failf("after %s: %d of task #%d's %d done callbacks ran", after, ran, k.id, k.cbAdded)
	}
}

func (m *fuzzModel) cancelRun() {
	if !m.runMode || m.runCancelled {
		m.logf("cancel-run -> not running in Run")
		return
	}
	mayDrain := m.stopCalled && !m.held() && !m.drained
	before := m.l.State()
	m.runCancel()
	m.runCancelled = true
	m.logf("cancel-run")
	if m.closed || m.drained {
		if s := m.l.State(); s != before {
			m.failf("cancelling Run's ctx after the loop ended moved it from %v to %v", before, s)
		}
		return
	}
	if !closedWithin(m.l.Done()) {
		m.failf("the loop did not end after Run's ctx was cancelled")
	}
	switch s := m.l.State(); s {
	case eventloop.StateStopped:
		if !mayDrain {
			m.failf("the loop stopped when Run's ctx was cancelled, but nothing stopped it")
		}
		m.onDrained()
	case eventloop.StateClosed:
		m.onClosed(context.Canceled, false)
	default:
		m.failf("after Run's ctx was cancelled: state %v", s)
	}
}

// collectRun checks what Run returned, once the loop is over.
func (m *fuzzModel) collectRun(want ...error) {
	m.t.Helper()
	if !m.runMode || m.runSeen {
		return
	}
	m.runSeen = true
	var err error
	select {
	case err = <-m.runErr:
	case <-time.After(long):
		m.failf("Run did not return after the loop ended")
	}
	for _, w := range want {
		if w == nil && err == nil || w != nil && errors.Is(err, w) {
			return
		}
	}
	m.failf("Run returned %v, want one of %v", err, want)
}

// onDrained records a loop seen Stopped: all accepted work has ended.
func (m *fuzzModel) onDrained() {
	m.t.Helper()
	if !closedWithin(m.l.Done()) {
		m.failf("the loop is stopped but Done is not closed")
	}
	if m.held() {
		m.failf("the loop drained while held")
	}
	m.drained, m.stopCalled = true, true
	for _, k := range m.tasks {
		if k.phase != fuzzDone {
			v, err, done := fuzzIsDone(k.f)
			if !done {
				m.failf("task #%d is pending after the loop drained", k.id)
			}
			m.observe(k, v, err, "drained")
		}
		m.checkCallbacksRan(k, "the loop drained")
	}
	for _, c := range m.calls {
		if c.ran.Load() != 1 {
			m.failf("callback #%d accepted before Stop ran %d times, want once", c.id, c.ran.Load())
		}
	}
	for _, tm := range m.timers {
		if tm.d <= 0 && !tm.stopped && tm.fired.Load() != 1 {
			m.failf("timer #%d due at once before Stop fired %d times, want once", tm.id, tm.fired.Load())
		}
	}
	m.collectRun(nil)
}

// onClosed records a closed loop: every accepted future has ended, with
// ErrLoopClosed where it had not already. closer is what Run returns unless
// the loop drained first, which it may have if mayDrain.
func (m *fuzzModel) onClosed(closer error, mayDrain bool) {
	m.t.Helper()
	if m.closed {
		return
	}
	m.closed = true
	for _, k := range m.tasks {
		if k.phase != fuzzDone && !k.cancelled && !m.drained {
			switch k.phase {
			case fuzzQueued:
				k.mustClose, k.neverStart = true, true
			case fuzzHolding:
				k.mustClose = true
			default:
				k.mayClose = true
			}
		}
		v, err, done := fuzzIsDone(k.f)
		if !done {
			m.failf("task #%d is pending after the loop closed", k.id)
		}
		m.observe(k, v, err, "closed")
		m.checkCallbacksRan(k, "the loop closed")
	}
	for _, c := range m.calls {
		if c.sure {
			c.sure, c.mustNotRun = false, true
		}
	}
	for _, tm := range m.timers {
		if tm.sure {
			tm.sure = false
			tm.mustNotFire = !tm.stopped
		}
	}
	m.hold = nil
	if !m.drained {
		want := []error{closer}
		if mayDrain {
			want = append(want, nil)
		}
		m.collectRun(want...)
	}
}

// checkState checks the loop's state against the model after every
// operation, and notices a loop that has drained on its own.
func (m *fuzzModel) checkState() {
	m.t.Helper()
	var want []eventloop.State
	switch {
	case m.closed:
		want = []eventloop.State{eventloop.StateClosed}
	case m.drained:
		want = []eventloop.State{eventloop.StateStopped}
	case m.stopCalled && m.ran && !m.held():
		want = []eventloop.State{eventloop.StateStopping, eventloop.StateStopped}
	case m.stopCalled:
		want = []eventloop.State{eventloop.StateStopping}
	case m.ran:
		want = []eventloop.State{eventloop.StateRunning}
	default:
		want = []eventloop.State{eventloop.StateNew}
	}
	s := m.l.State()
	if !slices.Contains(want, s) {
		m.failf("state %v, want one of %v", s, want)
	}
	if len(want) == 1 && s != eventloop.StateStopped && s != eventloop.StateClosed && isClosed(m.l.Done()) {
		m.failf("Done is closed in state %v", s)
	}
	if s == eventloop.StateStopped && !m.drained {
		m.logf("(seen stopped)")
		m.onDrained()
	}
}

// finish closes the loop and checks the end state.
func (m *fuzzModel) finish() {
	m.t.Helper()
	if !m.closed {
		m.close()
	}
	l := m.l
	if !isClosed(l.Done()) || l.State() != eventloop.StateClosed || l.Done() != l.Done() {
		m.failf("after Close: state %v, Done closed %v", l.State(), isClosed(l.Done()))
	}
	m.collectRun(eventloop.ErrLoopClosed, context.Canceled, nil) // checked where the loop ended
	if _, err := eventloop.Submit(l, value(0)); !errors.Is(err, eventloop.ErrLoopClosed) {
		m.failf("Submit after Close: %v", err)
	}
	if err := l.CallSoon(func() {}); !errors.Is(err, eventloop.ErrLoopClosed) {
		m.failf("CallSoon after Close: %v", err)
	}
	if _, err := l.CallLater(0, func() {}); !errors.Is(err, eventloop.ErrLoopClosed) {
		m.failf("CallLater after Close: %v", err)
	}

	for _, k := range m.tasks {
		v, err, done := fuzzIsDone(k.f)
		if !done {
			m.failf("task #%d is pending after Close", k.id)
		}
		m.observe(k, v, err, "end")
		if k.f.Done() != k.f.Done() || !isClosed(k.f.Done()) {
			m.failf("task #%d: Done is not one closed channel", k.id)
		}
		if c := k.f.Cancelled(); c != k.cancelled {
			m.failf("task #%d: Cancelled %v, want %v", k.id, c, k.cancelled)
		}
		if c := k.f.Cancel(); c != k.cancelled {
			m.failf("task #%d: Cancel after the end returned %v, want %v", k.id, c, k.cancelled)
		}
		k.cbMu.Lock()
		seq, outs, futs := k.cbSeq, k.cbOut, k.cbFut
		k.cbMu.Unlock()
		for i, n := range seq {
			if n != i {
				m.failf("task #%d: done callbacks ran in the order %v", k.id, seq)
			}
			if outs[i] != (fuzzOutcome{k.v, k.e}) || futs[i] != k.f {
				m.failf("task #%d: done callback %d saw (%d, %v), want (%d, %v)", k.id, i, outs[i].v, fuzzShort(outs[i].err), k.v, fuzzShort(k.e))
			}
		}
		if len(seq) != k.cbAdded {
			m.failf("task #%d: %d of %d done callbacks ran", k.id, len(seq), k.cbAdded)
		}
	}

	wantPanics := map[fuzzPanicValue]bool{}
	for _, c := range m.calls {
		ran := c.ran.Load()
		if ran > 1 || c.mustNotRun && ran != 0 {
			m.failf("callback #%d ran %d times (dropped by Close: %v)", c.id, ran, c.mustNotRun)
		}
		if c.panics && ran == 1 {
			wantPanics[fuzzPanicValue(c.id)] = true
		}
	}
	for _, tm := range m.timers {
		fired := tm.fired.Load()
		switch {
		case fired > 1:
			m.failf("timer #%d fired %d times", tm.id, fired)
		case tm.stopped && fired != 0:
			m.failf("timer #%d fired after Stop returned true", tm.id)
		case tm.mustNotFire && fired != 0:
			m.failf("timer #%d fired, but the loop closed before it could", tm.id)
		case tm.mustFire && fired != 1:
			m.failf("timer #%d did not fire, but Stop said it had started", tm.id)
		}
		if tm.t.Stop() {
			m.failf("timer #%d: Stop after Close returned true", tm.id)
		}
		if tm.panics && fired == 1 {
			wantPanics[fuzzPanicValue(tm.id)] = true
		}
	}

	m.mu.Lock()
	starts, panics := m.starts, m.panics
	m.mu.Unlock()
	if !slices.IsSorted(starts) || len(slices.Compact(slices.Clone(starts))) != len(starts) {
		m.failf("work started out of submission order: %v", starts)
	}
	gotPanics := map[fuzzPanicValue]bool{}
	for _, err := range panics {
		var pe *eventloop.PanicError
		if !errors.As(err, &pe) {
			m.failf("the error handler got %v, want a *PanicError", err)
		}
		v, ok := pe.Value.(fuzzPanicValue)
		if !ok || gotPanics[v] {
			m.failf("the error handler got %v: not a callback's panic, or twice", pe.Value)
		}
		gotPanics[v] = true
	}
	if len(gotPanics) != len(wantPanics) {
		m.failf("the error handler got panics %v, want those of the callbacks and timers that ran: %v", gotPanics, wantPanics)
	}
	for v := range wantPanics {
		if !gotPanics[v] {
			m.failf("the error handler did not get panic %d", v)
		}
	}
}

// fuzzSeed is a named input of the seed corpus.
type fuzzSeed struct {
	name string
	prog []byte
}

// fuzzProg builds an input from a config byte and operations with their
// arguments.
func fuzzProg(config byte, ops ...byte) []byte { return append([]byte{config}, ops...) }

// Argument bytes for the seeds.
const (
	fuzzCapUnbounded byte = 0
	fuzzCap1         byte = 3 // WithQueueCapacity(1)
	fuzzCap2         byte = 7 // WithQueueCapacity(2)
	fuzzSleepArg     byte = 3<<3 | byte(fuzzSleep)
	fuzzViaWait      byte = 1 << 6
	fuzzViaAwait     byte = 2 << 6
	fuzzDelayNow     byte = 1
	fuzzDelayLater   byte = 5
	fuzzDelayPanic   byte = 6*4 + 2
	fuzzCallPanic    byte = 3
)

// fuzzSeeds reach every operation and every state of the lifecycle. They
// are also committed under testdata/fuzz/FuzzLoop (see TestFuzzLoopCorpus).
var fuzzSeeds = []fuzzSeed{
	{"empty", fuzzProg(fuzzCapUnbounded)},
	{"new loop queues then closes", fuzzProg(fuzzCapUnbounded,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpSubmit, byte(fuzzError), fuzzOpCallSoon, 0,
		fuzzOpCallLater, fuzzDelayNow, fuzzOpCallLater, fuzzDelayLater, fuzzOpSubmitAwait, byte(fuzzSleep),
		fuzzOpResult, 0, 0, fuzzOpResult, 1, 4, fuzzOpCancel, 1, fuzzOpTimerStop, 1, fuzzOpTimerStop, 0,
		fuzzOpAddDoneCallback, 0, fuzzOpAddDoneCallback, 1, fuzzOpClose)},
	{"running loop runs every kind", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0,
		fuzzOpSubmitAwait, byte(fuzzValue), fuzzOpSubmitAwait, byte(fuzzError)+fuzzViaWait,
		fuzzOpSubmitAwait, byte(fuzzPanic)+fuzzViaAwait, fuzzOpSubmitAwait, fuzzSleepArg,
		fuzzOpSubmitAwait, byte(fuzzYield), fuzzOpSubmitAwait, 2<<3|byte(fuzzAwaitGo),
		fuzzOpCallSoon, 0, fuzzOpCallSoon, fuzzCallPanic, fuzzOpCallLater, fuzzDelayNow,
		fuzzOpCallLater, fuzzDelayPanic, fuzzOpSubmitAwait, byte(fuzzValue),
		fuzzOpResult, 2, 3, fuzzOpAddDoneCallback, 3, fuzzOpShutdown, 2)},
	{"queued work starts in order once started", fuzzProg(fuzzCapUnbounded,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpCallSoon, 0, fuzzOpSubmit, fuzzSleepArg, fuzzOpCallLater, 0,
		fuzzOpSubmit, byte(fuzzPanic), fuzzOpAddDoneCallback, 0, fuzzOpStart, 0,
		fuzzOpSubmitAwait, byte(fuzzValue), fuzzOpStop, 1, fuzzOpSubmit, 0, fuzzOpStart, 0, fuzzOpClose)},
	{"held loop: cancel, result and timers are certain", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, fuzzSleepArg, fuzzOpHold,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpCallLater, fuzzDelayLater, fuzzOpCallLater, fuzzDelayNow,
		fuzzOpResult, 2, 2, fuzzOpCancel, 2, fuzzOpAddDoneCallback, 2, fuzzOpTimerStop, 0,
		fuzzOpSubmit, byte(fuzzError), fuzzOpCallSoon, 0, fuzzOpRelease,
		fuzzOpSubmitAwait, byte(fuzzValue), fuzzOpTimerStop, 1, fuzzOpClose)},
	{"close while held fails queued work", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 1, fuzzOpHold, fuzzOpSubmit, byte(fuzzValue), fuzzOpCallSoon, 0,
		fuzzOpCallLater, fuzzDelayNow, fuzzOpAddDoneCallback, 0, fuzzOpClose,
		fuzzOpResult, 1, 0, fuzzOpCancel, 1, fuzzOpTimerStop, 0, fuzzOpStart, 0)},
	{"stop while held stays stopping until released", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpHold, fuzzOpSubmit, byte(fuzzValue), fuzzOpStop, 1,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpStart, 0, fuzzOpTick, 20, fuzzOpRelease,
		fuzzOpStop, 1, fuzzOpStart, 1, fuzzOpShutdown, 2, fuzzOpClose)},
	{"shutdown past its deadline while held", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, fuzzSleepArg, fuzzOpHold, fuzzOpSubmit, byte(fuzzAwaitGo),
		fuzzOpCallSoon, 0, fuzzOpShutdown, 1, fuzzOpResult, 0, 4)},
	{"shutdown drains a running loop", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, fuzzSleepArg, fuzzOpSubmit, 1<<3|byte(fuzzAwaitGo),
		fuzzOpCallLater, fuzzDelayNow, fuzzOpShutdown, 2, fuzzOpSubmit, 0, fuzzOpTimerStop, 0, fuzzOpClose)},
	{"shutdown with a passed deadline", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, fuzzSleepArg, fuzzOpSubmit, byte(fuzzYield), fuzzOpShutdown, 0)},
	{"shutdown of a loop that never ran", fuzzProg(fuzzCapUnbounded,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpHold, fuzzOpAddDoneCallback, 1, fuzzOpShutdown, 2, fuzzOpStart, 1)},
	{"stop before run still runs accepted work", fuzzProg(fuzzCapUnbounded,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpCallSoon, 0, fuzzOpCallLater, fuzzDelayNow, fuzzOpStop, 0,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpStart, 1, fuzzOpStop, 1, fuzzOpResult, 0, 0)},
	{"hold from new, stop, start", fuzzProg(fuzzCapUnbounded,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpHold, fuzzOpSubmit, byte(fuzzError), fuzzOpStop, 0,
		fuzzOpStart, 0, fuzzOpCancel, 2, fuzzOpCancel, 1, fuzzOpStop, 1)},
	{"cancelling the context of Run closes the loop", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 1, fuzzOpSubmit, fuzzSleepArg, fuzzOpHold, fuzzOpSubmit, byte(fuzzValue),
		fuzzOpCancelRun, fuzzOpResult, 2, 0, fuzzOpCancelRun)},
	{"cancelling the context of Run after a drain", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 1, fuzzOpSubmitAwait, byte(fuzzValue), fuzzOpStop, 1, fuzzOpCancelRun, fuzzOpStart, 0)},
	{"cancel running work", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, 7<<3|byte(fuzzSleep), fuzzOpCancel, 0,
		fuzzOpSubmit, 7<<3|byte(fuzzAwaitGo), fuzzOpTick, 5, fuzzOpCancel, 1, fuzzOpHold, fuzzOpCancel, 2,
		fuzzOpSubmitAwait, 0, fuzzOpCancel, 3, fuzzOpAddDoneCallback, 0, fuzzOpClose)},
	{"bounded queue fills while new", fuzzProg(fuzzCap2,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpCallSoon, 0, fuzzOpCallLater, fuzzDelayNow,
		fuzzOpCallLater, fuzzDelayLater, fuzzOpCancel, 0, fuzzOpCallSoon, 0, fuzzOpTimerStop, 0,
		fuzzOpSubmit, 0, fuzzOpStart, 0, fuzzOpTick, 50, fuzzOpSubmitAwait, 0, fuzzOpSubmitAwait, 0, fuzzOpClose)},
	{"bounded queue fills while held", fuzzProg(fuzzCap1,
		fuzzOpStart, 0, fuzzOpHold, fuzzOpSubmit, byte(fuzzValue), fuzzOpSubmit, byte(fuzzValue),
		fuzzOpCallSoon, 0, fuzzOpRelease, fuzzOpTick, 50, fuzzOpSubmitAwait, 0,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpSubmit, byte(fuzzValue), fuzzOpClose)},
	{"timers due at start queue up behind a pending hold", fuzzProg(fuzzCap2,
		fuzzOpHold, fuzzOpCallLater, 2, fuzzOpSubmit, byte(fuzzValue), fuzzOpTick, 5, fuzzOpStart, 0,
		fuzzOpSubmit, byte(fuzzValue), fuzzOpTimerStop, 0, fuzzOpSubmit, byte(fuzzValue), fuzzOpRelease)},
	{"cancelling the context of Run races a drain", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 1, fuzzOpSubmit, fuzzSleepArg, fuzzOpCallLater, fuzzDelayLater, fuzzOpStop, 0,
		fuzzOpCancelRun, fuzzOpTimerStop, 0, fuzzOpResult, 0, 3)},
	{"a running loop seen stopping then stopped", fuzzProg(fuzzCapUnbounded,
		fuzzOpStart, 0, fuzzOpSubmit, 1<<3|byte(fuzzSleep), fuzzOpSubmit, byte(fuzzAwaitGo),
		fuzzOpCallSoon, 0, fuzzOpAddDoneCallback, 0, fuzzOpStop, 0, fuzzOpResult, 0, 3, fuzzOpCancel, 1,
		fuzzOpTick, 63, fuzzOpTick, 63, fuzzOpSubmit, 0, fuzzOpResult, 1, 4, fuzzOpClose)},
}

// fuzzSeedFile is the corpus file name of a seed: its name in lower case,
// letters and digits only, words joined by dashes.
func fuzzSeedFile(name string) string {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	return "seed-" + strings.Join(words, "-")
}

// TestFuzzLoopCorpus checks that every seed is committed under
// testdata/fuzz/FuzzLoop, where `go test` replays it as well. Run it with
// EVENTLOOP_WRITE_FUZZ_CORPUS=1 to (re)write those files.
func TestFuzzLoopCorpus(t *testing.T) {
	write := os.Getenv("EVENTLOOP_WRITE_FUZZ_CORPUS") == "1"
	for _, s := range fuzzSeeds {
		path := filepath.Join("testdata", "fuzz", "FuzzLoop", fuzzSeedFile(s.name))
		want := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s.prog)) + ")\n"
		if write {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		if assert.NoError(t, err, "seed %q is not committed", s.name) {
			assert.Equal(t, want, string(got), "seed %q differs from its file", s.name)
		}
	}
}
