package eventloop

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures a Loop made by New. Options are made by the With…
// functions of this package; the set is sealed.
type Option interface {
	apply(*options)
}

// options holds every setting with its default in one place.
type options struct {
	capacity     int           // 0: unbounded
	errorHandler func(error)   // never nil after New
	debug        bool          // WithDebug
	slow         time.Duration // WithSlowTaskThreshold; 0: off
	sites        bool          // record where work was submitted: debug
}

func defaultOptions() options {
	return options{errorHandler: logError}
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithQueueCapacity bounds the queue: with n pieces of work queued and not yet
// started (tasks, callbacks, due timers), Submit, CallSoon and CallLater
// return ErrQueueFull. Nothing accepted is ever dropped. n <= 0 means
// unbounded, the default. Resumed coroutines never count and are never
// refused: they are work the loop already accepted.
func WithQueueCapacity(n int) Option {
	return optionFunc(func(o *options) {
		if n < 0 {
			n = 0
		}
		o.capacity = n
	})
}

// WithErrorHandler sets the function that receives what nobody else can:
//
//   - *PanicError: a CallSoon or CallLater callback or a done callback
//     panicked; on the goroutine where it happened (the loop's, for
//     callbacks the loop runs);
//   - *UnobservedError: a failed future was collected unread; on the
//     runtime's cleanup goroutine;
//   - *SlowTaskError (WithSlowTaskThreshold): work held the loop too long;
//     on the watchdog's goroutine while it runs, on the loop's once it ends;
//   - *BlockingWaitError (WithDebug): loop work blocked the loop waiting for
//     another loop's future; on the loop's goroutine.
//
// Use errors.As to tell them apart. The handler may thus be called from
// several goroutines at once, and must not block. A panic in the handler
// itself is logged with log/slog and not passed back to it. The default
// logs every report with slog.Default at level Error. A nil h keeps the
// default.
func WithErrorHandler(h func(error)) Option {
	return optionFunc(func(o *options) {
		if h != nil {
			o.errorHandler = h
		}
	})
}

// logError is the default error handler.
func logError(err error) {
	slog.Error("eventloop: unhandled error", "err", err)
}

// reportFromLoop passes err to the error handler from loop work, as a plain
// callback: a handler called inside a task (a watchdog report as the task
// suspends, a blocking-wait warning) must not suspend the task, so Await
// there returns ErrDeadlock, as in any plain callback.
func (l *Loop) reportFromLoop(err error) {
	if c := l.cur; c != nil {
		c.inCallback++
		defer func() { c.inCallback-- }()
	}
	report(l.opts.errorHandler, err)
}

// report passes err to h, and logs a panic in h instead of letting it
// through: a handler that panics must not take the loop down.
func report(h func(error), err error) {
	defer func() {
		if v := recover(); v != nil {
			slog.Error("eventloop: error handler panicked", "panic", fmt.Sprint(v), "err", err)
		}
	}()
	h(err)
}
