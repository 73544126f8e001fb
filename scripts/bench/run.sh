#!/usr/bin/env bash
# Runs every ktap benchmark and prints a summary (also saved in
# target/bench/summary.txt). Builds ktap in release mode first.
#
#   scripts/bench/run.sh                 # all: startup, wildcard, overhead, tick, interp, output
#   scripts/bench/run.sh overhead        # some of them
#   BENCH_REPS=3 BENCH_BPFTRACE=0 scripts/bench/run.sh
#
# Needs root (it loads BPF), cc, taskset; bpftrace for the comparisons.
# Each tracer it starts is stopped by pid (SIGINT; SIGTERM/SIGKILL to its own
# process group after a hard limit), so nothing is left attached. Takes
# about 10-15 minutes with the defaults (bpftrace's teardown of syscalls:*
# alone takes about a minute).
source "$(dirname "$0")/lib.sh"
need_root
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
command -v cc >/dev/null || die "a C compiler (cc) is needed"
bench_build
export BENCH_BUILT BENCH_NO_BUILD=1

which=${*:-startup wildcard overhead tick interp output btf iter dwarf}
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
for b in $which; do
    [ -x "$BENCH_DIR/$b.sh" ] || die "no benchmark named $b (startup, wildcard, overhead, tick, interp, output, btf, iter, dwarf)"
    echo "# running $b.sh" >&2
    if [ "$b" = interp ]; then
        # The interpreter against Lua 5.4 (scripts/bench/interp.sh, best of 5).
        echo "## userspace interpreter vs lua5.4 (CPU s, best of 5)" | tee -a "$SUMMARY"
        command -v "${LUA:-lua5.4}" >/dev/null || { echo "# lua5.4 missing: skipped" | tee -a "$SUMMARY"; continue; }
    fi
    "$BENCH_DIR/$b.sh" | tee -a "$SUMMARY"
    echo | tee -a "$SUMMARY"
done
echo "# summary saved in $SUMMARY" >&2
