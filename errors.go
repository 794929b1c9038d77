package eventloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrLoopStopped is returned by Submit, CallSoon and CallLater once Stop (or
// Shutdown) has been called, and by Run on a loop that has stopped. A stopped
// loop does not restart: make a new one.
var ErrLoopStopped = errors.New("eventloop: loop stopped")

// ErrLoopClosed is returned by Submit, CallSoon and CallLater once the loop is
// closed, and by Run on a closed loop. It is also the outcome of every future
// whose task Close kept from finishing: tasks that had not started, and
// started ones, whatever they returned.
var ErrLoopClosed = errors.New("eventloop: loop closed")

// ErrLoopRunning is returned by Run and Start on a loop that is already
// running.
var ErrLoopRunning = errors.New("eventloop: loop already running")

// ErrQueueFull is returned by Submit, CallSoon and CallLater when the loop was
// made with WithQueueCapacity(n) and n pieces of work are queued and not yet
// started. Nothing already accepted is dropped to make room.
var ErrQueueFull = errors.New("eventloop: queue full")

// ErrCancelled is the outcome of a cancelled future and the cause
// ([context.Cause]) of a cancelled task's context.
// errors.Is(ErrCancelled, context.Canceled) holds.
var ErrCancelled error = &aliasError{msg: "eventloop: cancelled", is: context.Canceled}

// ErrTimeout is returned by Result and Exception when the future is still
// pending after the timeout. The future is not cancelled and stays usable.
// errors.Is(ErrTimeout, context.DeadlineExceeded) holds.
var ErrTimeout error = &aliasError{msg: "eventloop: timeout", is: context.DeadlineExceeded}

// ErrDeadlock is returned, at once, instead of blocking forever: by Result,
// Exception, Wait and Await called by loop work on a pending future of the
// same loop (only the loop could end it, and it is busy waiting); by Await in
// a plain callback (CallSoon, CallLater, a done callback), which is not a
// coroutine and cannot suspend; and by Shutdown called from the loop itself.
var ErrDeadlock = errors.New("eventloop: would deadlock: the loop would wait for itself")

// ErrInvalidArgument is wrapped by the errors returned for bad input: a nil
// *Loop, a nil function, a nil *Future, a nil context. Nothing in this package
// panics on bad input; test with errors.Is(err, ErrInvalidArgument).
var ErrInvalidArgument = errors.New("eventloop: invalid argument")

// The bad-input errors, made once so that returning them does not allocate.
var (
	errNilLoop    = fmt.Errorf("%w: nil *Loop", ErrInvalidArgument)
	errNilFunc    = fmt.Errorf("%w: nil function", ErrInvalidArgument)
	errNilFuture  = fmt.Errorf("%w: nil *Future", ErrInvalidArgument)
	errNilContext = fmt.Errorf("%w: nil context.Context", ErrInvalidArgument)
	errZeroLoop   = fmt.Errorf("%w: Loop not made by New", ErrInvalidArgument)
)

// aliasError is a sentinel that also matches a standard error with errors.Is.
type aliasError struct {
	msg string
	is  error
}

func (e *aliasError) Error() string        { return e.msg }
func (e *aliasError) Is(target error) bool { return target == e.is }

// PanicError is the outcome of a future whose function panicked, and what the
// error handler receives when a callback or timer panics. The loop recovers
// the panic and goes on: a loop that died with the panic would strand every
// pending future and every goroutine waiting on one, which is worse than a
// panic that surfaces as an error where the work's outcome is read. The cost
// is the stack captured at the panic.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, as printed by
	// runtime/debug.Stack at the moment of the recover.
	Stack []byte
}

// siteMark introduces the submission site at the end of a PanicError's
// Stack. The site lives in Stack rather than in a field of its own so that
// PanicError keeps the two fields the contract gives it.
const siteMark = "\neventloop: submitted at "

// Site returns the file and line where the work that panicked was submitted
// ("file.go:42"), for loops made with WithDebug, or "" otherwise. The loop
// records it on the last line of Stack.
func (e *PanicError) Site() string {
	if e == nil {
		return ""
	}
	i := bytes.LastIndex(e.Stack, []byte(siteMark))
	if i < 0 {
		return ""
	}
	site := strings.TrimSuffix(string(e.Stack[i+len(siteMark):]), "\n")
	if strings.Contains(site, "\n") {
		return "" // the marker is not on the last line: not a site the loop recorded
	}
	return site
}

// withSite records site at the end of e.Stack; "" records nothing.
func (e *PanicError) withSite(site string) *PanicError {
	if site != "" {
		e.Stack = append(e.Stack, siteMark+site+"\n"...)
	}
	return e
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	if e == nil {
		return "eventloop: panic: <nil>"
	}
	return fmt.Sprintf("eventloop: panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns Value when it is an error, so that errors.Is and errors.As
// see through the panic; otherwise nil.
func (e *PanicError) Unwrap() error {
	if e == nil {
		return nil
	}
	err, _ := e.Value.(error)
	return err
}
