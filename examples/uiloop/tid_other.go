//go:build !linux

package main

// threadID returns 0: telling OS threads apart needs a Linux system call.
func threadID() int { return 0 }
