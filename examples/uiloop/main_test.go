package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAppliesEveryUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg := config{
		Channels:      []string{"general", "random", "release", "ops"},
		Messages:      50,
		FrameInterval: time.Millisecond,
	}
	var out bytes.Buffer
	rep, err := run(ctx, &out, cfg)
	require.NoError(t, err, "run should end once every update is drawn")

	assert.Equal(t, 200, rep.Applied, "every submitted update should be applied exactly once")
	for _, c := range cfg.Channels {
		assert.Equal(t, 50, rep.Unread[c], "unread count of #%s", c)
	}
	assert.Len(t, rep.Unread, len(cfg.Channels), "no update should land on an unknown channel")
	assert.GreaterOrEqual(t, rep.Frames, 1, "the renderer should draw at least the last frame")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, rep.Frames+1, "one line per frame plus the summary")
	assert.Equal(t, fmt.Sprintf("frame %3d | #general 50 | #random 50 | #release 50 | #ops 50 |", rep.Frames),
		lines[len(lines)-2], "the last frame should show the final state")
	assert.Contains(t, lines[len(lines)-1], "done: 200 updates applied over")
}

func TestLoopWorkStaysOnTheRunThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("telling OS threads apart needs gettid(2), which is Linux only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Latency makes the renderer wake many times and interleave with the
	// updates, so the coroutine resumes on the loop again and again.
	cfg := config{
		Channels:      []string{"a", "b", "c"},
		Messages:      10,
		Latency:       200 * time.Microsecond,
		FrameInterval: 100 * time.Microsecond,
	}
	var out bytes.Buffer
	rep, err := run(ctx, &out, cfg)
	require.NoError(t, err)
	require.NotZero(t, rep.RunThread)
	// The first frame is queued before any update and finds work left, so
	// the renderer sleeps and resumes at least once.
	require.GreaterOrEqual(t, rep.Frames, 2, "the renderer should resume after Sleep")

	assert.Equal(t, map[int]int{rep.RunThread: rep.Applied + rep.Frames}, rep.LoopThreads,
		"every update and every frame should run on the OS thread that called Run")
}

func TestRunReturnsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	// With ctx already done, Run closes the loop at once: the renderer and
	// the workers end with errors instead of hanging.
	cfg := config{Channels: []string{"general"}, Messages: 5, FrameInterval: time.Millisecond}
	var out bytes.Buffer
	_, err := run(ctx, &out, cfg)
	require.ErrorIs(t, err, context.Canceled)
}
