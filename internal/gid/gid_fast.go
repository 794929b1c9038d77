//go:build amd64 || arm64

package gid

// getg returns the address of the runtime's descriptor of the calling
// goroutine. Implemented in assembly.
func getg() uintptr

// Current returns the identity of the calling goroutine; see the package doc.
func Current() uintptr { return getg() }
