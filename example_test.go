package eventloop_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/corun-go/eventloop"
)

// Submit hands work to the loop from any goroutine and returns a typed
// future. State that only loop work touches needs no lock.
func ExampleSubmit() {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		panic(err)
	}
	defer l.Close()

	counter := 0 // owned by the loop
	for range 3 {
		f, err := eventloop.Submit(l, func(ctx context.Context) (int, error) {
			counter++
			return counter, nil
		})
		if err != nil {
			panic(err)
		}
		n, err := f.Result(time.Second)
		fmt.Println(n, err)
	}
	// Output:
	// 1 <nil>
	// 2 <nil>
	// 3 <nil>
}

// Await suspends a task until a future ends; the loop runs other work
// meanwhile. Here the blocking work runs on its own goroutine with Go.
func ExampleAwait() {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		panic(err)
	}
	defer l.Close()

	f, _ := eventloop.Submit(l, func(ctx context.Context) (string, error) {
		slow := eventloop.Go(func(ctx context.Context) (string, error) {
			return "fetched", nil // stands for blocking I/O
		})
		page, err := eventloop.Await(ctx, slow) // the loop is free meanwhile
		if err != nil {
			return "", err
		}
		return "rendered " + page, nil
	})
	fmt.Println(f.Result(time.Second))
	// Output: rendered fetched <nil>
}

// AddDoneCallback runs a function once the future ends: on the loop for a
// task that ran, at once for a future that has ended.
func ExampleFuture_AddDoneCallback() {
	l := eventloop.New()
	f, _ := eventloop.Submit(l, func(ctx context.Context) (int, error) { return 42, nil })
	done := make(chan struct{})
	f.AddDoneCallback(func(f *eventloop.Future[int]) {
		v, err := f.Result(0) // ended: does not wait
		fmt.Println("callback:", v, err, "on the loop:", l.InLoop())
		close(done)
	})
	if err := l.Start(); err != nil {
		panic(err)
	}
	<-done
	f.AddDoneCallback(func(*eventloop.Future[int]) { fmt.Println("added late: runs at once") })
	l.Close()
	// Output:
	// callback: 42 <nil> on the loop: true
	// added late: runs at once
}

// Cancel keeps a queued task from running, or cancels the context of one
// that runs; either way the future ends with ErrCancelled.
func ExampleFuture_Cancel() {
	l := eventloop.New() // not started yet: submissions wait in the queue
	f, _ := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		fmt.Println("never printed")
		return 1, nil
	})
	fmt.Println("cancelled:", f.Cancel())
	_, err := f.Result(0)
	fmt.Println(errors.Is(err, eventloop.ErrCancelled), errors.Is(err, context.Canceled))

	if err := l.Start(); err != nil {
		panic(err)
	}
	started := make(chan struct{})
	g, _ := eventloop.Submit(l, func(ctx context.Context) (int, error) {
		close(started)
		return 0, eventloop.Sleep(ctx, time.Hour) // wakes at once on Cancel
	})
	<-started
	g.Cancel()
	_, err = g.Result(time.Second)
	fmt.Println(err)
	l.Close()
	// Output:
	// cancelled: true
	// true true
	// eventloop: cancelled
}

// Shutdown stops the loop, lets accepted work finish until its deadline,
// then closes what is left.
func ExampleLoop_Shutdown() {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		panic(err)
	}
	quick, _ := eventloop.Submit(l, func(ctx context.Context) (string, error) {
		return "finished", eventloop.Sleep(ctx, time.Millisecond)
	})
	stuck, _ := eventloop.Submit(l, func(ctx context.Context) (string, error) {
		return "", eventloop.Sleep(ctx, time.Hour)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fmt.Println("shutdown:", l.Shutdown(ctx))
	fmt.Println(quick.Result(0))
	_, err := stuck.Result(0)
	fmt.Println(err)
	// Output:
	// shutdown: context deadline exceeded
	// finished <nil>
	// eventloop: loop closed
}

// CallLater schedules a plain callback on the loop's timers.
func ExampleLoop_CallLater() {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	_, _ = l.CallLater(100*time.Millisecond, func() { fmt.Println("second"); close(done) })
	_, _ = l.CallLater(time.Millisecond, func() { fmt.Println("first") })
	<-done
	l.Close()
	// Output:
	// first
	// second
}
