// Package eventloop hands work from any goroutine to a loop that runs it one
// piece at a time, and hands the outcome back as a typed future: the Go
// counterpart of Python's asyncio.run_coroutine_threadsafe,
// call_soon_threadsafe and concurrent.futures.Future, without their traps.
//
// A [Loop] owns one queue and runs its work one piece at a time, driven by
// the goroutine that calls [Loop.Run] (or one that [Loop.Start] makes).
// State that only loop work touches needs no lock. If that goroutine is
// locked to its OS thread (runtime.LockOSThread), all loop work runs on that
// thread, which is what GUI and OpenGL code needs.
//
// Any goroutine may hand the loop work: [Submit] queues a function and
// returns a [Future]; [Loop.CallSoon] and [Loop.CallLater] queue plain
// callbacks. Work from one goroutine starts in the order submitted. A
// submission is either accepted, and then its future ends whatever happens,
// or rejected with an error (ErrLoopStopped, ErrLoopClosed, ErrQueueFull);
// never both, never neither.
//
// Work submitted with Submit runs as a coroutine: it may call [Await] on a
// future (of this loop, another loop, or [Go]) or [Sleep], and while it is
// suspended the loop runs other work, with no extra OS thread. Plain
// callbacks are not coroutines.
//
// A future ends exactly once, with a value, the function's error, a
// *[PanicError] (the loop recovers panics and goes on), [ErrCancelled] or
// [ErrLoopClosed]. Waiting for a future from the loop that must end it would
// hang forever; [Future.Result], [Future.Wait] and Await return
// [ErrDeadlock] instead.
//
// A loop is made with [New], runs once, and ends in one of two ways.
// [Loop.Stop] is graceful: new work is rejected, accepted work (suspended
// coroutines included) finishes, then Run returns. [Loop.Close] is
// immediate: queued tasks fail with ErrLoopClosed, started ones have their
// context cancelled and Close waits until they return. [Loop.Shutdown] stops
// and closes what is left at a deadline. Once [Loop.Done] is closed no
// goroutine of the loop remains.
//
// Loop work must leave the calling goroutine's OS-thread lock as it found
// it: a task or callback that calls runtime.LockOSThread without the
// matching UnlockOSThread before it suspends or returns makes the runtime
// abort the program (its coroutines require it). Lock the goroutine that
// calls Run instead. runtime.Goexit in loop work is not supported either.
package eventloop
