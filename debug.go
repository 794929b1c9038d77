package eventloop

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"unsafe"
)

// WithDebug records where every task, callback and timer was submitted
// (the file and line of the call to Submit, CallSoon or CallLater) and
// attaches it to what the loop reports: PanicError.Site(),
// UnobservedError.Site and SlowTaskError.Site. It also reports a
// *BlockingWaitError to the error handler each time loop work blocks the
// loop in Result, Exception or Wait on a pending future of another loop or
// of Go: legal, but this loop runs nothing while it waits. (Await never
// blocks a loop: a task suspends, and a plain callback gets ErrDeadlock.)
//
// Recording a site takes one program counter per submission, resolved to a
// file and line only when reported, and, for tasks and callbacks, one more
// allocation. Reading the program counter means unwinding the stack: a
// Submit costs several times what it costs without WithDebug (see
// BenchmarkDiagnostics), which is why the option is for debugging. Without
// it nothing is recorded.
func WithDebug() Option {
	return optionFunc(func(o *options) { o.debug = true })
}

// BlockingWaitError is what a loop made with WithDebug reports when its own
// work blocks it waiting for a future of another loop, or of Go. The loop
// runs nothing else meanwhile; in a task, Await suspends instead. The wait
// goes on as usual: this is a warning, not the outcome of anything.
type BlockingWaitError struct {
	Call string // "Result" (also for Exception) or "Wait"
	Site string // the file and line of the call
}

// Error describes the call.
func (e *BlockingWaitError) Error() string {
	return fmt.Sprintf("eventloop: %s at %s blocks the loop until a future of another loop ends (use Await in a task)", e.Call, e.Site)
}

// siteOf returns the file and line of pc, a program counter from
// runtime.Callers, or "" for 0.
func siteOf(pc uintptr) string {
	if pc == 0 {
		return ""
	}
	frame, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return fmt.Sprintf("%s:%d", frame.File, frame.Line)
}

// callerPC returns the program counter of the caller of the function that
// calls callerPC's caller: skip 0 is the exported API function's caller.
func callerPC(skip int) uintptr {
	var pcs [1]uintptr
	if runtime.Callers(skip+3, pcs[:]) == 0 {
		return 0
	}
	return pcs[0]
}

// entryPC returns the entry PC of the function fn, or 0 for a nil fn. A
// func value points to a closure record whose first word is that PC; this
// reads it without reflect, cheaply enough for every piece of work.
func entryPC[F any](fn F) uintptr {
	p := *(*unsafe.Pointer)(unsafe.Pointer(&fn))
	if p == nil {
		return 0
	}
	return *(*uintptr)(p)
}

// funcAt returns the name of the function at entry PC pc and where it is
// defined.
func funcAt(pc uintptr) (name, file string, line int) {
	f := runtime.FuncForPC(pc)
	if f == nil {
		return "", "", 0
	}
	file, line = f.FileLine(pc)
	return f.Name(), file, line
}

// origin is where a piece of work came from, recorded when the loop records
// sites (WithDebug). Immutable once made.
type origin struct {
	site uintptr // the caller of Submit, CallSoon or CallLater
	fn   uintptr // the entry PC of the function submitted, named in reports (not the func value: a cleanup's argument must not hold the future)
}

// siteCallback is a CallSoon callback queued with its origin, when the loop
// records sites.
type siteCallback struct {
	l  *Loop
	fn func()
	at origin
}

func (s *siteCallback) run(c *coro) bool {
	l := c.l
	l.unqueue()
	if !l.closing {
		l.callback(s.fn, &s.at)
	}
	return true
}

func (s *siteCallback) drop() *core { s.l.unqueue(); return nil }

func (s *siteCallback) describe() (fn, site uintptr) { return s.at.fn, s.at.site }

// debugLoops counts the loops made with WithDebug that are running, so
// that waits look for the calling loop only while there may be one to warn.
var debugLoops atomic.Int32

// warnBlockingWait reports a BlockingWaitError if the caller is loop work of
// a loop made with WithDebug, waiting on a future that loop does not end
// (owner is another loop, or nil for Go).
func warnBlockingWait(owner *Loop, call string) {
	if debugLoops.Load() == 0 {
		return
	}
	l := currentLoop()
	if l == nil || l == owner || !l.opts.debug {
		return
	}
	l.reportFromLoop(&BlockingWaitError{Call: call, Site: userSite()})
}

// userSite returns the file and line of the innermost caller outside this
// package.
func userSite() string {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, pkgPrefix) {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}

// pkgPrefix starts the names of this package's functions (and not those of
// its external test package, eventloop_test).
var pkgPrefix = reflect.TypeFor[Loop]().PkgPath() + "."
