#!/bin/sh
# Times the userspace interpreter against Lua 5.4 on the same programs:
# fib(27) and a 10-million-iteration loop with table updates. Prints the
# best of N runs (CPU seconds, from the interpreter's own clock for ktap
# and from `time` for lua) and the ratio. Not a test: numbers only.
#
#   scripts/bench/interp.sh [RUNS]      (default 5; builds --release first)
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-5}
lua=${LUA:-lua5.4}
cargo build --quiet --release --example interp_bench
bin=target/release/examples/interp_bench

best() { sort -n | head -n 1; }

timed() { # command... -> seconds (best of $runs)
	i=0
	while [ "$i" -lt "$runs" ]; do
		"$@" 2>&1 >/dev/null | sed -n 's/^time: //p'
		i=$((i + 1))
	done | best
}

printf '%-8s %10s %10s %8s\n' bench ktap lua ratio
for b in fib loop; do
	k=$(timed "$bin" "scripts/bench/$b.kp")
	l=$(timed "$lua" "scripts/bench/$b.lua")
	printf '%-8s %10s %10s %8s\n' "$b" "$k" "$l" "$(echo "$k $l" | awk '{ if ($2 > 0) printf "%.2f", $1 / $2; else print "n/a" }')"
done
