package eventloop

import "strconv"

// State is a loop's place in its lifecycle. A loop moves only forward:
// New → Running → Stopping → Stopped (Stop before Run goes New → Stopping),
// and from any state to Closed.
type State int

// The states of a loop, and what Submit, CallSoon and CallLater do in each.
const (
	// StateNew: made by New, not yet run. Submissions are accepted and
	// queued; they run once the loop runs.
	StateNew State = iota
	// StateRunning: Run or Start is running the loop. Submissions are
	// accepted.
	StateRunning
	// StateStopping: Stop or Shutdown was called. Submissions are rejected
	// with ErrLoopStopped; accepted work still finishes.
	StateStopping
	// StateStopped: after Stop, every accepted piece of work has ended and
	// the loop has exited (Run returns nil). Submissions are rejected with
	// ErrLoopStopped.
	StateStopped
	// StateClosed: Close was called, Shutdown ran past its deadline, or Run's
	// context ended. Submissions are rejected with ErrLoopClosed.
	StateClosed
)

var stateNames = [...]string{"new", "running", "stopping", "stopped", "closed"}

// String returns "new", "running", "stopping", "stopped" or "closed".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}
