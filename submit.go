package eventloop

import "context"

// Submit queues fn to run on l as a coroutine and returns its future: the
// counterpart of asyncio's run_coroutine_threadsafe. It is safe from any
// goroutine, loop work included.
//
// Work from one goroutine starts in the order submitted, in one queue with
// CallSoon. fn runs on the loop with a context that is cancelled by Cancel
// (cause ErrCancelled), by Close (cause ErrLoopClosed: a task that returns
// once its loop has closed ends with ErrLoopClosed, whatever it returned)
// and when fn returns;
// it carries the values of the context given to Run. In fn, Await and Sleep
// suspend the task without blocking the loop. A panic in fn ends the future
// with a *PanicError and the loop goes on.
//
// Submit either accepts the work, and then its future will end whatever
// happens, or rejects it with an error and a nil future: ErrLoopStopped
// after Stop, ErrLoopClosed after Close, ErrQueueFull when a bounded queue is
// full, and ErrInvalidArgument for a nil loop or fn. A submission costs one
// allocation (the future) besides fn's closure.
func Submit[T any](l *Loop, fn func(ctx context.Context) (T, error)) (*Future[T], error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, errNilFunc
	}
	f := &Future[T]{fn: fn}
	f.loop = l
	if l.bubbled {
		f.flags.Store(flagBubbled)
	}
	if l.opts.sites {
		f.x = &extra{at: &origin{site: callerPC(0), fn: entryPC(fn)}}
	}
	if err := l.enqueue(item{r: f}); err != nil {
		return nil, err
	}
	return f, nil
}

// Go runs fn on a new goroutine and returns its future: the counterpart of
// asyncio.to_thread, for blocking work that must not hold a loop. A
// coroutine can Await the future without blocking its loop.
//
// fn's context is cancelled by Cancel (cause ErrCancelled) and when fn
// returns; Cancel follows the rules of Submit's futures. A panic in fn ends
// the future with a *PanicError. Done callbacks run on fn's goroutine; their
// panics are logged with log/slog. A nil fn gives a future that has already
// ended with an ErrInvalidArgument error.
func Go[T any](fn func(ctx context.Context) (T, error)) *Future[T] {
	f := &Future[T]{fn: fn}
	if inBubble() {
		f.flags.Store(flagBubbled)
	}
	if fn == nil {
		f.fn = func(context.Context) (T, error) { var zero T; return zero, errNilFunc }
		f.endUnstarted(errNilFunc) // no callbacks yet
		return f
	}
	go func() {
		if !f.claim() {
			return // cancelled before it started
		}
		v, err := f.call(ctxOf(&f.core))
		f.complete(v, err)
	}()
	return f
}
