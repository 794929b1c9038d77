package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// Every benchmark closes its loops, terminates its goja loops and ends its
// goroutines: goleak checks that nothing is left once they have all run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
