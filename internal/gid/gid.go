// Package gid tells goroutines apart cheaply.
//
// [Current] returns a value that identifies the calling goroutine for as long
// as that goroutine runs. Two goroutines alive at the same time never share a
// value; a value may be reused after its goroutine has exited, so compare it
// only with the value of a goroutine known to be alive (the loop compares it
// with the goroutine currently running its work).
//
// On amd64 and arm64 it reads the runtime's goroutine pointer in a few
// instructions (about 2 ns); elsewhere it parses the header of
// [runtime.Stack], which costs microseconds. The value is never dereferenced.
package gid
