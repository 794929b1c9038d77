// Package bench holds the benchmark suite that compares eventloop with the
// alternatives: a hand-rolled chan func() loop, goja_nodejs's event loop,
// and the physical floors (channel ping-pong, iter.Pull). It is a separate
// module so that users of eventloop never download its dependencies.
//
// See README.md for what is measured and how to reproduce the numbers.
package bench
