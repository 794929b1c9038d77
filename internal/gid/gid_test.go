package gid

import (
	"iter"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCurrentIsStableWithinAGoroutine(t *testing.T) {
	a := Current()
	require.NotZero(t, a)
	assert.Equal(t, a, Current(), "two calls on one goroutine must agree")
}

func TestCurrentDiffersBetweenLiveGoroutines(t *testing.T) {
	const n = 16
	ids := make([]uintptr, n)
	var ready, release sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			ids[i] = Current()
			ready.Done()
			release.Wait() // stay alive until every id is taken
		}()
	}
	ready.Wait()
	release.Done()
	done.Wait()
	seen := map[uintptr]bool{Current(): true}
	for _, id := range ids {
		assert.False(t, seen[id], "goroutines alive at once must not share an id")
		seen[id] = true
	}
}

func TestCurrentDiffersInsideACoroutine(t *testing.T) {
	outer := Current()
	var inner uintptr
	next, stop := iter.Pull(func(yield func(struct{}) bool) {
		inner = Current()
		yield(struct{}{})
	})
	next()
	assert.NotEqual(t, outer, inner, "an iter.Pull coroutine runs on its own goroutine")
	stop()
}

func BenchmarkCurrent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Current()
	}
}
