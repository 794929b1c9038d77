// Command uiloop shows a main-thread UI loop built on eventloop.
//
// GUI toolkits and OpenGL want every call on one OS thread, usually the
// process's main thread. uiloop locks the main goroutine to its thread and
// runs the loop there with [eventloop.Loop.Run]. Background goroutines stand
// in for network connections: each delivers chat messages by handing an
// update to the loop with [eventloop.Submit]. A renderer coroutine draws a
// frame, then suspends in [eventloop.Sleep] until the next one, so the loop
// applies updates between frames.
//
// The UI state (unread counts per channel) is touched only by loop work, so
// it needs no locks, and all of that work runs on the main thread. Once every
// update is applied, the renderer draws a last frame and calls
// [eventloop.Loop.Stop]; the loop finishes what it accepted and Run returns
// nil.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/corun-go/eventloop"
)

func init() {
	// Keep the main goroutine on the main OS thread, where UI toolkits
	// expect to be called. run locks it again; the locks nest.
	runtime.LockOSThread()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg := config{
		Channels:      []string{"general", "random", "release"},
		Messages:      20,
		Latency:       3 * time.Millisecond,
		FrameInterval: 16 * time.Millisecond,
	}
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "uiloop:", err)
		os.Exit(1)
	}
}

// config sets the size and pace of a run.
type config struct {
	Channels      []string      // one simulated network connection each
	Messages      int           // messages delivered per channel
	Latency       time.Duration // simulated network delay before each message; 0 for none
	FrameInterval time.Duration // time between rendered frames
}

// report is what a run ends with.
type report struct {
	Unread    map[string]int // unread messages per channel, as the UI shows them
	Applied   int            // updates applied by the loop
	Frames    int            // frames rendered
	RunThread int            // OS thread id of the goroutine that called Run (0 off Linux)
	// LoopThreads counts pieces of loop work by the OS thread id they ran on
	// (Linux only; off Linux every piece counts under id 0).
	LoopThreads map[int]int
}

// ui is the state the screen shows. It is owned by the loop: only loop work
// (update tasks and the renderer coroutine) reads or writes it, one piece at
// a time, so it has no mutex.
type ui struct {
	unread      map[string]int
	applied     int
	frames      int
	loopThreads map[int]int
}

// note records that a piece of loop work ran on the current OS thread.
func (u *ui) note() { u.loopThreads[threadID()]++ }

// deliver applies one incoming message. It runs on the loop.
func (u *ui) deliver(channel string) {
	u.note()
	u.unread[channel]++
	u.applied++
}

// render draws one frame. It runs on the loop.
func (u *ui) render(w io.Writer, channels []string) {
	u.note()
	u.frames++
	var b strings.Builder
	fmt.Fprintf(&b, "frame %3d |", u.frames)
	for _, c := range channels {
		fmt.Fprintf(&b, " #%s %d |", c, u.unread[c])
	}
	fmt.Fprintln(w, b.String())
}

// run runs the UI loop on the calling goroutine, locked to its OS thread,
// until every message has been delivered and drawn. It returns the final
// state of the UI.
func run(ctx context.Context, w io.Writer, cfg config) (report, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	l := eventloop.New()
	state := &ui{unread: make(map[string]int), loopThreads: make(map[int]int)}
	total := len(cfg.Channels) * cfg.Messages

	// The renderer is a coroutine: it draws a frame, then suspends in Sleep
	// and lets the loop apply updates until the next frame is due.
	// Submitting before Run is fine: the task waits in the queue.
	renderer, err := eventloop.Submit(l, func(ctx context.Context) (report, error) {
		for {
			state.render(w, cfg.Channels)
			if state.applied == total {
				// Every update has been applied: no more work will be
				// submitted. Stop lets the loop finish and Run return.
				l.Stop()
				return report{
					Unread:      maps.Clone(state.unread),
					Applied:     state.applied,
					Frames:      state.frames,
					LoopThreads: maps.Clone(state.loopThreads),
				}, nil
			}
			if err := eventloop.Sleep(ctx, cfg.FrameInterval); err != nil {
				return report{}, err
			}
		}
	})
	if err != nil {
		return report{}, err
	}

	// The "network": one goroutine per channel, each handing messages to the
	// loop and waiting for the UI to take them, as a connection would wait
	// before acknowledging.
	var wg sync.WaitGroup
	errs := make([]error, len(cfg.Channels))
	for i, channel := range cfg.Channels {
		wg.Go(func() {
			errs[i] = receive(ctx, l, state, channel, cfg)
		})
	}

	runErr := l.Run(ctx)
	wg.Wait()
	if runErr != nil {
		return report{}, runErr
	}
	if err := errors.Join(errs...); err != nil {
		return report{}, err
	}

	rep, err := renderer.Result(0)
	if err != nil {
		return report{}, err
	}
	rep.RunThread = threadID()
	fmt.Fprintf(w, "done: %d updates applied over %d frames, loop work on %d OS thread(s)\n",
		rep.Applied, rep.Frames, len(rep.LoopThreads))
	return rep, nil
}

// receive simulates one network connection. It runs on its own goroutine
// and never touches state: only the task it submits does, on the loop.
func receive(ctx context.Context, l *eventloop.Loop, state *ui, channel string, cfg config) error {
	for range cfg.Messages {
		if cfg.Latency > 0 {
			select {
			case <-time.After(cfg.Latency):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		f, err := eventloop.Submit(l, func(context.Context) (struct{}, error) {
			state.deliver(channel)
			return struct{}{}, nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", channel, err)
		}
		if _, err := f.Wait(ctx); err != nil {
			return fmt.Errorf("%s: %w", channel, err)
		}
	}
	return nil
}
