// Command diagnostics wires a loop's diagnostics into the standard library:
// its reports into log/slog and its counters into expvar.
//
// The loop is made with three options:
//
//   - [eventloop.WithErrorHandler] sends everything the loop reports to
//     logReports, which tells the reports apart with errors.As and logs each
//     with structured attributes, at a level that fits.
//   - [eventloop.WithSlowTaskThreshold] starts a watchdog: loop work that
//     holds the loop longer than the threshold is reported twice, while it
//     still runs and once it lets go.
//   - [eventloop.WithDebug] records where each piece of work was submitted,
//     and warns when loop work blocks the loop waiting for a future.
//
// The program then runs a handful of tasks, some of them badly behaved: one
// makes a blocking call (time.Sleep standing in for a synchronous lookup),
// one waits for a Go future with Wait where it should Await, one panics, a
// callback panics, and one fails with nobody reading its outcome. At the end
// it prints the loop's [eventloop.Stats] as expvar serves them: published
// with expvar, they appear under /debug/vars of any program that serves
// http.DefaultServeMux.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/corun-go/eventloop"
)

func main() {
	// The reports go to stdout with the rest, so that they show in order
	// among what the program prints. A real program logs where it logs.
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	// NewMap publishes the map: /debug/vars shows it as "eventloop". Publish
	// panics on a name already taken, so publish once per program and let
	// run add its loop to the map.
	vars := expvar.NewMap("eventloop")
	cfg := config{
		Threshold:     20 * time.Millisecond,
		Block:         60 * time.Millisecond,
		Quick:         5,
		UnobservedFor: time.Second,
	}
	if _, _, err := run(os.Stdout, logger, vars, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "diagnostics:", err)
		os.Exit(1)
	}
}

// config sets the size and timing of a run.
type config struct {
	Threshold     time.Duration // WithSlowTaskThreshold
	Block         time.Duration // how long slowLookup blocks the loop; more than Threshold
	Quick         int           // well-behaved tasks to run besides the others
	UnobservedFor time.Duration // how long to wait for the report on the unread failure
}

// logReports returns an error handler for WithErrorHandler that logs what a
// loop reports to log, with structured attributes. It is called on the
// goroutine where the report is made (the loop's, the watchdog's, or the
// runtime's cleanup goroutine), so it must not block: slog handlers don't.
func logReports(log *slog.Logger) func(error) {
	return func(err error) {
		ctx := context.Background()
		var (
			slow       *eventloop.SlowTaskError
			unobserved *eventloop.UnobservedError
			blocking   *eventloop.BlockingWaitError
			panicked   *eventloop.PanicError
		)
		switch {
		case errors.As(err, &slow):
			// The loop's health, not a failure: nothing is wrong with the
			// work's outcome. The first report comes while the work still
			// holds the loop; the second, with the total, once it lets go.
			msg := "eventloop: loop work is holding the loop"
			if slow.Finished {
				msg = "eventloop: slow loop work let go of the loop"
			}
			log.LogAttrs(ctx, slog.LevelWarn, msg,
				slog.String("func", slow.Func),
				slog.String("site", slow.Site),
				slog.Duration("held", slow.Held),
				slog.Bool("finished", slow.Finished))
		case errors.As(err, &unobserved):
			// Checked before PanicError: an unread panic comes wrapped in an
			// UnobservedError, and errors.As would find the panic inside.
			attrs := []slog.Attr{
				slog.String("func", unobserved.Func),
				slog.String("site", unobserved.Site),
			}
			if errors.As(unobserved.Err, &panicked) {
				attrs = append(attrs, slog.Any("panic", panicked.Value))
			} else {
				attrs = append(attrs, slog.String("err", unobserved.Err.Error()))
			}
			log.LogAttrs(ctx, slog.LevelError, "eventloop: a failure nobody read", attrs...)
		case errors.As(err, &blocking):
			// A warning: the wait goes on, but the loop runs nothing
			// meanwhile. In a task, Await suspends only the task.
			log.LogAttrs(ctx, slog.LevelWarn, "eventloop: loop work blocks the loop waiting for a future",
				slog.String("call", blocking.Call),
				slog.String("site", blocking.Site))
		case errors.As(err, &panicked):
			// A callback or done callback panicked (a task's panic is its
			// future's outcome instead). panicked.Stack holds the stack:
			// log it too if your logs can take a multi-line attribute.
			log.LogAttrs(ctx, slog.LevelError, "eventloop: callback panicked",
				slog.Any("panic", panicked.Value),
				slog.String("site", panicked.Site()))
		default:
			log.LogAttrs(ctx, slog.LevelError, "eventloop: error", slog.String("err", err.Error()))
		}
	}
}

// statsVar returns an expvar.Var that reads l.Stats each time it is read,
// as JSON. Reading it resets Stats.MaxQueueWait, so the value scraped is the
// longest wait since the previous scrape. The loop measures queue waits only
// once Stats has been called, so statsVar calls it once to start.
func statsVar(l *eventloop.Loop) expvar.Var {
	l.Stats()
	return expvar.Func(func() any { return l.Stats() })
}

// app holds the demo's tasks. Their names show in the reports: the watchdog
// names the function it caught, as "main.(*app).slowLookup-fm".
type app struct {
	block   time.Duration // how long slowLookup blocks the loop
	started chan struct{} // closed once slowLookup runs
}

// slowLookup makes a blocking call on the loop: the whole loop stalls for
// a.block, and the watchdog reports it. Run the call under eventloop.Go and
// Await it instead.
func (a *app) slowLookup(context.Context) (string, error) {
	close(a.started)
	time.Sleep(a.block) // stands in for a synchronous network call
	return "found", nil
}

// fetchUser waits for a Go future with Wait: it gets the right answer, but
// blocks the loop until the lookup ends. WithDebug warns about it.
// eventloop.Await(ctx, f) would suspend only this task.
func (a *app) fetchUser(ctx context.Context) (string, error) {
	f := eventloop.Go(func(context.Context) (string, error) {
		time.Sleep(10 * time.Millisecond)
		return "gopher", nil
	})
	return f.Wait(ctx)
}

// parsePort fails: its caller reads the error.
func (a *app) parsePort(context.Context) (int, error) {
	return 0, errors.New("config: no port set")
}

// countHit panics: its future ends with a *eventloop.PanicError, which
// names, with WithDebug, the line that submitted it.
func (a *app) countHit(context.Context) (int, error) {
	var hits map[string]int
	hits["/"]++ // assignment to entry in nil map
	return hits["/"], nil
}

// sendEmail fails, and its caller drops the future without reading it: the
// loop reports an UnobservedError once the future is garbage-collected.
func (a *app) sendEmail(context.Context) (struct{}, error) {
	return struct{}{}, errors.New("smtp: connection refused")
}

// refreshCache is a CallSoon callback that panics: there is no future to
// hold the panic, so the error handler gets it.
func (a *app) refreshCache() {
	panic("cache: backend gone")
}

// run makes a loop with every diagnostic on, reports to log, adds the loop's
// stats to vars as "loop", runs the demo tasks, shuts the loop down, and
// prints to w what happened and the stats as expvar shows them. It returns
// the stats it printed, decoded, and the JSON.
func run(w io.Writer, log *slog.Logger, vars *expvar.Map, cfg config) (eventloop.Stats, []byte, error) {
	// Pass every report on to logReports, and tell run when the report on
	// the unread failure arrives (that one depends on the garbage collector).
	unobserved := make(chan struct{}, 1)
	logReport := logReports(log)
	l := eventloop.New(
		eventloop.WithSlowTaskThreshold(cfg.Threshold),
		eventloop.WithDebug(),
		eventloop.WithErrorHandler(func(err error) {
			logReport(err)
			if errors.As(err, new(*eventloop.UnobservedError)) {
				select {
				case unobserved <- struct{}{}:
				default:
				}
			}
		}),
	)
	vars.Set("loop", statsVar(l))
	if err := l.Start(); err != nil {
		return eventloop.Stats{}, nil, err
	}
	a := &app{block: cfg.Block, started: make(chan struct{})}

	fmt.Fprintf(w, "slowLookup blocks the loop for %v; the watchdog's threshold is %v\n", cfg.Block, cfg.Threshold)
	lookup, err := eventloop.Submit(l, a.slowLookup)
	if err != nil {
		return eventloop.Stats{}, nil, err
	}
	// Submit the rest while slowLookup holds the loop: it all waits in the
	// queue, and Stats.MaxQueueWait shows for how long.
	<-a.started
	quick := make([]*eventloop.Future[int], cfg.Quick)
	for i := range quick {
		if quick[i], err = eventloop.Submit(l, func(context.Context) (int, error) { return i * i, nil }); err != nil {
			return eventloop.Stats{}, nil, err
		}
	}
	user, err := eventloop.Submit(l, a.fetchUser)
	if err != nil {
		return eventloop.Stats{}, nil, err
	}
	port, err := eventloop.Submit(l, a.parsePort)
	if err != nil {
		return eventloop.Stats{}, nil, err
	}
	hit, err := eventloop.Submit(l, a.countHit)
	if err != nil {
		return eventloop.Stats{}, nil, err
	}
	if err := l.CallSoon(a.refreshCache); err != nil {
		return eventloop.Stats{}, nil, err
	}
	if _, err := eventloop.Submit(l, a.sendEmail); err != nil { // future dropped unread
		return eventloop.Stats{}, nil, err
	}

	// Read the outcomes we care about. Shutdown below lets the rest finish.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := lookup.Wait(ctx); err == nil {
		fmt.Fprintf(w, "slowLookup: %s, but nothing else ran meanwhile\n", v)
	}
	for _, f := range quick {
		_, _ = f.Wait(ctx)
	}
	if v, err := user.Wait(ctx); err == nil {
		fmt.Fprintf(w, "fetchUser: %s, and a warning that it blocked the loop\n", v)
	}
	if _, err := port.Wait(ctx); err != nil {
		fmt.Fprintf(w, "parsePort failed: %v\n", err)
	}
	var p *eventloop.PanicError
	if _, err := hit.Wait(ctx); errors.As(err, &p) {
		fmt.Fprintf(w, "countHit panicked: %v (submitted at %s)\n", p.Value, p.Site())
	}
	if err := l.Shutdown(ctx); err != nil {
		return eventloop.Stats{}, nil, fmt.Errorf("shutdown: %w", err)
	}

	// sendEmail's future is unreachable now; the report on it comes once
	// the garbage collector has found that out and the runtime has run the
	// future's cleanup. Nudge the collector while we wait.
	deadline := time.After(cfg.UnobservedFor)
	for waiting := true; waiting; {
		runtime.GC()
		select {
		case <-unobserved:
			fmt.Fprintln(w, "sendEmail failed and nobody read it: reported once its future was collected")
			waiting = false
		case <-deadline:
			fmt.Fprintln(w, "sendEmail's failure was not reported yet: that waits for the garbage collector")
			waiting = false
		case <-time.After(10 * time.Millisecond):
		}
	}

	// What a scrape of /debug/vars shows for this loop.
	raw := []byte(vars.Get("loop").String())
	var s eventloop.Stats
	if err := json.Unmarshal(raw, &s); err != nil {
		return eventloop.Stats{}, nil, fmt.Errorf("decoding stats: %w", err)
	}
	fmt.Fprintf(w, "expvar eventloop.loop = %s\n", raw)
	fmt.Fprintf(w, "%d submitted: %d completed, %d failed, %d panicked; %d callback panicked; the longest wait in the queue was %v\n",
		s.Submitted, s.Completed, s.Failed, s.Panicked, s.CallbackPanics, s.MaxQueueWait.Round(time.Millisecond))
	return s, raw, nil
}
