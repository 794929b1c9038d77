package main

import "syscall"

// threadID returns the id of the calling OS thread.
func threadID() int { return syscall.Gettid() }
