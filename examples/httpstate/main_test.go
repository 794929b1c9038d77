package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/corun-go/eventloop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	requests    = 400 // POSTs in all
	concurrency = 16  // at most this many in flight at once
)

var keys = []string{"apples", "pears", "plums", "cherries", "figs"}

// newClient returns a client with its own transport, so the test can close
// its idle connections and leave no goroutine behind.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// do sends one request and returns the status code and the trimmed body.
func do(t *testing.T, c *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestConcurrentIncrementsAreExact(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	srv := httptest.NewServer(newHandler(l))
	c := newClient(t)

	// Request i adds (i%7)+1 to keys[i%len(keys)].
	want := make(map[string]int64)
	for i := range requests {
		want[keys[i%len(keys)]] += int64(i%7 + 1)
	}

	type reply struct {
		key   string
		value int64
	}
	replies := make([]reply, requests)
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for i := range requests {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := keys[i%len(keys)]
			url := fmt.Sprintf("%s/counters/%s?by=%d", srv.URL, key, i%7+1)
			resp, err := c.Post(url, "text/plain", nil)
			if !assert.NoError(t, err, "POST %d", i) {
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "POST %d: %s", i, body)
			v, err := strconv.ParseInt(strings.TrimSpace(string(body)), 10, 64)
			assert.NoError(t, err, "POST %d replied %q", i, body)
			replies[i] = reply{key, v}
		})
	}
	wg.Wait()

	t.Run("the totals are exact", func(t *testing.T) {
		code, body := do(t, c, http.MethodGet, srv.URL+"/counters")
		require.Equal(t, http.StatusOK, code, body)
		var got map[string]int64
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		assert.Equal(t, want, got, "no increment may be lost or applied twice")
	})

	t.Run("each increment saw its own running total", func(t *testing.T) {
		// Increments of one key are applied one at a time, so every reply
		// for that key is a different running total, and the largest is
		// the final total.
		seen := make(map[string]map[int64]bool)
		for _, r := range replies {
			if seen[r.key] == nil {
				seen[r.key] = make(map[int64]bool)
			}
			assert.False(t, seen[r.key][r.value], "two increments of %s both replied %d", r.key, r.value)
			seen[r.key][r.value] = true
		}
		for _, k := range keys {
			assert.Len(t, seen[k], requests/len(keys), "replies for %s", k)
			assert.True(t, seen[k][want[k]], "some reply for %s should be its final total %d", k, want[k])
		}
	})

	t.Run("a single counter reads back", func(t *testing.T) {
		code, body := do(t, c, http.MethodGet, srv.URL+"/counters/plums")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, strconv.FormatInt(want["plums"], 10), body)

		code, body = do(t, c, http.MethodGet, srv.URL+"/counters/unknown")
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "0", body, "a counter never set reads 0")
	})

	t.Run("a bad increment is refused before it reaches the loop", func(t *testing.T) {
		code, _ := do(t, c, http.MethodPost, srv.URL+"/counters/plums?by=lots")
		assert.Equal(t, http.StatusBadRequest, code)
	})

	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, l.Shutdown(ctx), "the loop should drain and stop before the deadline")
}

func TestStoppedStoreAnswers503(t *testing.T) {
	l := eventloop.New()
	require.NoError(t, l.Start())
	srv := httptest.NewServer(newHandler(l))
	defer srv.Close()
	c := newClient(t)

	code, _ := do(t, c, http.MethodPost, srv.URL+"/counters/x")
	require.Equal(t, http.StatusOK, code)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, l.Shutdown(ctx))

	// Submit now fails (ErrLoopStopped or ErrLoopClosed: Shutdown closes
	// the loop once it has drained), and the handler says so.
	code, body := do(t, c, http.MethodPost, srv.URL+"/counters/x")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "store unavailable: ")
}

func TestRunServesUntilCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log strings.Builder // written by run only before Serve and after it returns
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, &log) }()

	c := newClient(t)
	for range 3 {
		code, _ := do(t, c, http.MethodPost, base+"/counters/hits")
		require.Equal(t, http.StatusOK, code)
	}
	code, body := do(t, c, http.MethodGet, base+"/counters/hits")
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "3", body)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run should shut down the server and the loop cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	assert.Contains(t, log.String(), "shut down cleanly")
}
