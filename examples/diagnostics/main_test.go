package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"log/slog"
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

// syncBuffer is a bytes.Buffer safe for the goroutines that log reports:
// the loop's, the watchdog's and the runtime's cleanup goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// record is one line logged by slog.NewJSONHandler.
type record map[string]any

// records parses the JSON lines in log.
func records(t *testing.T, log string) []record {
	t.Helper()
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var r record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "every log line should be JSON: %s", sc.Text())
		recs = append(recs, r)
	}
	require.NoError(t, sc.Err())
	return recs
}

// duration reads an attribute logged with slog.Duration: JSONHandler writes
// nanoseconds.
func duration(r record, key string) time.Duration {
	n, _ := r[key].(float64)
	return time.Duration(n)
}

// statsFields are the fields of eventloop.Stats as expvar shows them.
var statsFields = []string{
	"Submitted", "Rejected", "Completed", "Failed", "Panicked", "Cancelled",
	"Closed", "CallbackPanics", "Queued", "Suspended", "Timers", "MaxQueueWait",
}

func TestRunReportsAndCounts(t *testing.T) {
	// Generous margins for a loaded machine: the watchdog samples every 5ms
	// and has some 230ms to catch slowLookup while it still runs.
	cfg := config{
		Threshold:     20 * time.Millisecond,
		Block:         250 * time.Millisecond,
		Quick:         5,
		UnobservedFor: 10 * time.Second,
	}
	var out bytes.Buffer
	logs := &syncBuffer{}
	vars := new(expvar.Map) // not published: the test may run many times
	s, raw, err := run(&out, slog.New(slog.NewJSONHandler(logs, nil)), vars, cfg)
	require.NoError(t, err)
	recs := records(t, logs.String())

	t.Run("the watchdog reports the blocking call while it runs and when it ends", func(t *testing.T) {
		var slow []record
		for _, r := range recs {
			// Other work may be reported too on a loaded machine: keep
			// only the reports on slowLookup.
			if f, _ := r["func"].(string); strings.Contains(f, "slowLookup") {
				slow = append(slow, r)
			}
		}
		require.Len(t, slow, 2, "slowLookup should be reported twice:\n%s", logs)
		running, finished := slow[0], slow[1]

		assert.Equal(t, "WARN", running["level"])
		assert.Equal(t, false, running["finished"], "the first report comes while slowLookup still runs")
		assert.GreaterOrEqual(t, duration(running, "held"), cfg.Threshold, "reported once past the threshold")
		assert.Contains(t, running["site"], "main.go:", "WithDebug and the watchdog record where it was submitted")

		assert.Equal(t, "WARN", finished["level"])
		assert.Equal(t, true, finished["finished"], "the second report comes once slowLookup returned")
		assert.GreaterOrEqual(t, duration(finished, "held"), cfg.Block, "the total covers the whole time.Sleep")
		assert.GreaterOrEqual(t, duration(finished, "held"), duration(running, "held"))
	})

	t.Run("the other reports arrive at their levels", func(t *testing.T) {
		byMsg := map[string]record{}
		for _, r := range recs {
			byMsg[r["msg"].(string)] = r
		}
		if r, ok := byMsg["eventloop: loop work blocks the loop waiting for a future"]; assert.True(t, ok, "fetchUser's Wait should be reported:\n%s", logs) {
			assert.Equal(t, "WARN", r["level"])
			assert.Equal(t, "Wait", r["call"])
			assert.Contains(t, r["site"], "main.go:")
		}
		if r, ok := byMsg["eventloop: callback panicked"]; assert.True(t, ok, "refreshCache's panic should be reported:\n%s", logs) {
			assert.Equal(t, "ERROR", r["level"])
			assert.Equal(t, "cache: backend gone", r["panic"])
			assert.Contains(t, r["site"], "main.go:", "WithDebug names where the callback was submitted")
		}
		if r, ok := byMsg["eventloop: a failure nobody read"]; assert.True(t, ok, "sendEmail's unread failure should be reported once collected:\n%s", logs) {
			assert.Equal(t, "ERROR", r["level"])
			assert.Contains(t, r["func"], "sendEmail")
			assert.Equal(t, "smtp: connection refused", r["err"])
		}
	})

	t.Run("the stats count what was submitted", func(t *testing.T) {
		// slowLookup, the quick tasks, fetchUser, parsePort, countHit,
		// sendEmail, and the refreshCache callback.
		assert.Equal(t, uint64(cfg.Quick+6), s.Submitted, "Go futures are not loop work and are not counted")
		assert.Equal(t, uint64(cfg.Quick+2), s.Completed, "slowLookup, fetchUser and the quick tasks")
		assert.Equal(t, uint64(2), s.Failed, "parsePort and sendEmail")
		assert.Equal(t, uint64(1), s.Panicked, "countHit")
		assert.Equal(t, uint64(1), s.CallbackPanics, "refreshCache")
		assert.Zero(t, s.Cancelled)
		assert.Zero(t, s.Closed)
		assert.Equal(t, eventloop.Rejections{}, s.Rejected)
		assert.Zero(t, s.Queued, "the loop has drained")
		assert.Zero(t, s.Suspended)
		assert.Zero(t, s.Timers)
		assert.Positive(t, s.MaxQueueWait, "the work submitted while slowLookup held the loop waited for it")
	})

	t.Run("expvar shows the stats as JSON", func(t *testing.T) {
		require.True(t, json.Valid(raw), "expvar should serve valid JSON: %s", raw)
		var fields map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &fields))
		for _, f := range statsFields {
			assert.Contains(t, fields, f)
		}
		var all map[string]map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(vars.String()), &all), "the whole map should be JSON too")
		assert.Contains(t, all, "loop")
		assert.Contains(t, out.String(), string(raw), "the program prints what expvar serves")
	})

	t.Run("the program tells what happened", func(t *testing.T) {
		for _, want := range []string{
			"slowLookup: found",
			"fetchUser: gopher",
			"parsePort failed: config: no port set",
			"countHit panicked: assignment to entry in nil map (submitted at ",
			"sendEmail failed and nobody read it",
			"11 submitted: 7 completed, 2 failed, 1 panicked; 1 callback panicked",
		} {
			assert.Contains(t, out.String(), want)
		}
	})
}

func TestStatsVarReadsTheLoopOnEveryRead(t *testing.T) {
	l := eventloop.New()
	vars := new(expvar.Map)
	vars.Set("loop", statsVar(l))
	read := func() eventloop.Stats {
		t.Helper()
		var s eventloop.Stats
		require.NoError(t, json.Unmarshal([]byte(vars.Get("loop").String()), &s))
		return s
	}

	assert.Equal(t, eventloop.Stats{}, read(), "a new loop has counted nothing")

	// A loop that has not run yet queues what it accepts.
	for range 3 {
		_, err := eventloop.Submit(l, func(context.Context) (int, error) { return 1, nil })
		require.NoError(t, err)
	}
	s := read()
	assert.Equal(t, uint64(3), s.Submitted)
	assert.Equal(t, 3, s.Queued)

	require.NoError(t, l.Close())
	_, err := eventloop.Submit(l, func(context.Context) (int, error) { return 1, nil })
	require.ErrorIs(t, err, eventloop.ErrLoopClosed)
	s = read()
	assert.Equal(t, uint64(3), s.Closed, "Close ends the queued tasks with ErrLoopClosed")
	assert.Equal(t, uint64(1), s.Rejected.Closed, "and refuses what comes after")
	assert.Zero(t, s.Queued)
}

func TestLogReportsPicksLevelAndAttributes(t *testing.T) {
	panicErr := &eventloop.PanicError{Value: "boom", Stack: []byte("goroutine 1 [running]:\neventloop: submitted at x.go:1\n")}
	cases := []struct {
		name  string
		err   error
		level string
		attrs record
	}{
		{
			name:  "a task still holding the loop is a warning",
			err:   &eventloop.SlowTaskError{Func: "main.f", Site: "x.go:2", Held: 30 * time.Millisecond},
			level: "WARN",
			attrs: record{"func": "main.f", "site": "x.go:2", "held": float64(30 * time.Millisecond), "finished": false},
		},
		{
			name:  "a slow task that let go is a warning with the total",
			err:   &eventloop.SlowTaskError{Func: "main.f", Held: time.Second, Finished: true},
			level: "WARN",
			attrs: record{"func": "main.f", "held": float64(time.Second), "finished": true},
		},
		{
			name:  "a blocking wait is a warning",
			err:   &eventloop.BlockingWaitError{Call: "Result", Site: "x.go:3"},
			level: "WARN",
			attrs: record{"call": "Result", "site": "x.go:3"},
		},
		{
			name:  "a callback panic is an error",
			err:   panicErr,
			level: "ERROR",
			attrs: record{"panic": "boom", "site": "x.go:1"},
		},
		{
			name:  "an unread failure is an error",
			err:   &eventloop.UnobservedError{Err: errors.New("nope"), Func: "main.g", Site: "x.go:4"},
			level: "ERROR",
			attrs: record{"err": "nope", "func": "main.g", "site": "x.go:4"},
		},
		{
			name:  "an unread panic is logged as unread, with the panic value",
			err:   &eventloop.UnobservedError{Err: panicErr, Func: "main.h"},
			level: "ERROR",
			attrs: record{"panic": "boom", "func": "main.h", "msg": "eventloop: a failure nobody read"},
		},
		{
			name:  "anything else is an error",
			err:   errors.New("other"),
			level: "ERROR",
			attrs: record{"err": "other"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			logReports(slog.New(slog.NewJSONHandler(&buf, nil)))(c.err)
			recs := records(t, buf.String())
			require.Len(t, recs, 1, "one report, one line")
			assert.Equal(t, c.level, recs[0]["level"])
			for k, v := range c.attrs {
				assert.Equal(t, v, recs[0][k], "attribute %q", k)
			}
		})
	}
}
