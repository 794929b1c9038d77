// Command httpstate serves an in-memory counter store whose state is owned
// by an eventloop.Loop.
//
// net/http runs every request on its own goroutine. Instead of guarding the
// store with a mutex, each handler hands its operation to the loop with
// [eventloop.Submit] and waits for the outcome with [eventloop.Future.Wait]
// on the request's context. The loop runs one operation at a time, so the
// store's map is touched by one piece of work at a time and needs no lock,
// and every increment is applied exactly once, in a single order.
//
// Routes:
//
//	POST /counters/{name}?by=N   add N (default 1); replies with the new value
//	GET  /counters/{name}        the value (0 if never set)
//	GET  /counters               every counter, as a JSON object
//
// On interrupt the program stops accepting connections, lets in-flight
// requests finish (http.Server.Shutdown), then drains and closes the loop
// ([eventloop.Loop.Shutdown]), in that order.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/corun-go/eventloop"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(ctx, ln, os.Stderr); err != nil {
		log.Fatal(err)
	}
}

// shutdownTimeout bounds how long run waits for in-flight requests and
// queued store operations once asked to stop.
const shutdownTimeout = 5 * time.Second

// run serves the store on ln until ctx ends, then shuts down the HTTP
// server and the loop. It returns nil after a clean shutdown.
func run(ctx context.Context, ln net.Listener, logw io.Writer) error {
	l := eventloop.New()
	if err := l.Start(); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(l),
		ReadHeaderTimeout: 5 * time.Second,
	}
	fmt.Fprintf(logw, "httpstate: serving on http://%s\n", ln.Addr())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-serveErr: // the server failed on its own
	case <-ctx.Done():
	}

	// A fresh context: ctx is already done, but shutting down still gets
	// its grace period.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// First the server, so no handler submits to a loop that is stopping;
	// then the loop, which finishes whatever the last handlers submitted.
	srvErr := srv.Shutdown(sctx)
	loopErr := l.Shutdown(sctx)
	err = errors.Join(err, srvErr, loopErr)
	if e := <-serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if err == nil {
		fmt.Fprintln(logw, "httpstate: shut down cleanly")
	}
	return err
}

// store holds named counters. It is owned by the loop: its methods run only
// as loop work, one at a time, so it has no mutex.
type store struct {
	counts map[string]int64 // owned by the loop
}

func (s *store) add(name string, by int64) int64 {
	s.counts[name] += by
	return s.counts[name]
}

// newHandler returns the HTTP API of a new, empty store owned by l.
func newHandler(l *eventloop.Loop) http.Handler {
	s := &store{counts: make(map[string]int64)}
	mux := http.NewServeMux()

	mux.HandleFunc("POST /counters/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		by := int64(1)
		if q := r.URL.Query().Get("by"); q != "" {
			n, err := strconv.ParseInt(q, 10, 64)
			if err != nil {
				http.Error(w, "by: not an integer", http.StatusBadRequest)
				return
			}
			by = n
		}
		v, ok := onLoop(w, r, l, func(context.Context) (int64, error) {
			return s.add(name, by), nil
		})
		if ok {
			fmt.Fprintln(w, v)
		}
	})

	mux.HandleFunc("GET /counters/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		v, ok := onLoop(w, r, l, func(context.Context) (int64, error) {
			return s.counts[name], nil
		})
		if ok {
			fmt.Fprintln(w, v)
		}
	})

	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, r *http.Request) {
		// The copy is made on the loop; encoding it happens here, on the
		// request's goroutine, without holding up the loop.
		snapshot, ok := onLoop(w, r, l, func(context.Context) (map[string]int64, error) {
			return maps.Clone(s.counts), nil
		})
		if ok {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(snapshot)
		}
	})
	return mux
}

// onLoop runs fn on l and waits for its outcome for as long as the request
// lasts. If it cannot, it writes an error reply and reports false.
//
// A client that goes away stops the wait, not the operation: once Submit has
// accepted fn, fn runs.
func onLoop[T any](w http.ResponseWriter, r *http.Request, l *eventloop.Loop, fn func(context.Context) (T, error)) (T, bool) {
	var zero T
	f, err := eventloop.Submit(l, fn)
	if err != nil {
		// ErrLoopStopped or ErrLoopClosed: the store is shutting down.
		http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return zero, false
	}
	v, err := f.Wait(r.Context())
	switch {
	case err == nil:
		return v, true
	case r.Context().Err() != nil:
		// The client is gone; nobody reads a reply.
		return zero, false
	case errors.Is(err, eventloop.ErrLoopClosed):
		http.Error(w, "store unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return zero, false
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return zero, false
	}
}
