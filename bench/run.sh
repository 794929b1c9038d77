#!/usr/bin/env bash
# Runs the benchmark suite, summarises it with benchstat and draws the chart.
#
#   ./run.sh                 # the full suite, -count=6, GOMAXPROCS=2
#   COUNT=10 ./run.sh        # more runs
#   BENCH=RoundTrip ./run.sh # one scenario (a -bench regexp)
#   BENCHTIME=2s ./run.sh    # longer runs (any -benchtime value)
#
# Writes, beside this script: results.txt (raw `go test -bench` output, the
# input for benchstat), benchstat.txt (the table, if benchstat ran) and
# chart.svg (ns per task against producers, FireAndForget and CallSoon).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

count="${COUNT:-6}"
bench="${BENCH:-.}"
benchtime="${BENCHTIME:-1s}"
export GOMAXPROCS="${GOMAXPROCS:-2}"

# Configuration lines (key: value) that benchstat shows above its tables.
{
	echo "nproc: $(nproc)"
	echo "gomaxprocs: $GOMAXPROCS"
	echo "goversion: $(go env GOVERSION)"
	echo "eventloop-commit: $(git -C .. rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C .. diff --quiet HEAD 2>/dev/null || echo +dirty)"
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >results.txt

echo "==> go test -bench '$bench' -count=$count -benchtime=$benchtime (GOMAXPROCS=$GOMAXPROCS); about 8 minutes for the full suite"
go test -run '^$' -bench "$bench" -count="$count" -benchtime="$benchtime" -timeout 60m ./... | tee -a results.txt

# One table per benchmark, a row per producer count, a column per impl. The
# fixed column order makes the baseline ("vs base") of each table the
# hand-rolled loop, or the floor where there is none (iter-pull for
# AwaitPingPong, goroutine for SuspendedMemory); it lists every impl, so it
# filters nothing out. The plain `benchstat -col /impl results.txt` works too.
cols='/impl@(handrolled iter-pull goroutine eventloop eventloop-result eventloop-wait goja chan-pingpong harness-only)'
echo "==> benchstat -table .name -row /producers -col '$cols' results.txt"
if go run golang.org/x/perf/cmd/benchstat@latest -table .name -row /producers -col "$cols" results.txt >benchstat.txt; then
	cat benchstat.txt
else
	echo "benchstat could not run (no module proxy?): results.txt holds the raw numbers" >&2
	rm -f benchstat.txt
fi

echo "==> chart.svg"
if grep -qE '^Benchmark(FireAndForget|CallSoon)/' results.txt; then
	go run ./chart -o chart.svg results.txt
	echo "wrote $(pwd)/chart.svg"
else
	echo "no FireAndForget or CallSoon results: no chart"
fi
