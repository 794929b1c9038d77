//go:build !amd64 && !arm64

package gid

import "runtime"

// Current returns the identity of the calling goroutine; see the package doc.
// On this architecture it is the goroutine's number, parsed from the first
// line of its stack trace ("goroutine 42 [running]:").
func Current() uintptr {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	var id uintptr
	for _, c := range buf[len("goroutine "):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uintptr(c-'0')
	}
	return id
}
