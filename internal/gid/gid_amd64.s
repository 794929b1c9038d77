#include "textflag.h"

// func getg() uintptr
// The runtime keeps the current goroutine's descriptor in thread-local
// storage; (TLS) reads it.
TEXT ·getg(SB), NOSPLIT, $0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
