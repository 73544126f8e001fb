# Shared helpers for the ktap benchmarks (sourced, not run).
#
# Environment:
#   BENCH_REPS      repetitions of each measurement (default 5)
#   BENCH_N         getppid calls per storm (default 1000000)
#   BENCH_NO_BUILD  1: do not run `cargo build --release` (use the binary there)
#   BENCH_BPFTRACE  0: skip every bpftrace comparison
#   KTAP            ktap binary (default: target/release/ktap of this checkout)
#   BENCH_STORM_CPU CPU the getppid storm is pinned to (default 1)
#   BENCH_TRACER_CPU CPU tracers are pinned to in the storm (default 0;
#                   empty: not pinned)
#   BENCH_QUIET_WAIT seconds to wait for other BPF users to go (default 20)
#
# Every tracer is started by benchrun, which stops it with SIGINT (or
# SIGTERM/SIGKILL after a hard limit) by the pid it started: nothing is
# left running, and nothing is killed by name.

set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR="$REPO/target/bench"
BIN_DIR="$OUT_DIR/bin"
TMP="$OUT_DIR/tmp"
mkdir -p "$BIN_DIR" "$TMP"
KTAP=${KTAP:-$REPO/target/release/ktap}
BPFTRACE=${BPFTRACE:-/usr/bin/bpftrace}
REPS=${BENCH_REPS:-5}
N=${BENCH_N:-1000000}
BENCHRUN="$BIN_DIR/benchrun"
STORM="$BIN_DIR/getppid_storm"
# The workload runs on CPU 1, so the tracer's consumer has CPU 0 to itself
# (as far as the other load on the machine allows).
STORM_CPU=${BENCH_STORM_CPU:-1}
TRACER_CPU=${BENCH_TRACER_CPU-0}
# Prefix that pins a tracer (taskset execs it: the pid stays the tracer's).
pin_tracer() { if [ -n "$TRACER_CPU" ]; then echo "taskset -c $TRACER_CPU"; fi; }

die() { echo "bench: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (loads BPF)"
}

# Builds ktap (release) and the C helpers, once per shell.
bench_build() {
    if [ -z "${BENCH_BUILT:-}" ]; then
        if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
            echo "# building ktap (cargo build --release)" >&2
            (cd "$REPO" && cargo build --release --quiet) || die "cargo build failed"
        fi
        [ -x "$KTAP" ] || die "no ktap binary at $KTAP"
        cc -O2 -Wall -o "$BENCHRUN" "$BENCH_DIR/benchrun.c" || die "cannot build benchrun"
        cc -O2 -Wall -o "$STORM" "$BENCH_DIR/getppid_storm.c" || die "cannot build getppid_storm"
        export BENCH_BUILT=1
    fi
}

have_bpftrace() {
    [ "${BENCH_BPFTRACE:-1}" != 0 ] && [ -x "$BPFTRACE" ]
}

# Pids of processes holding BPF programs (tracers, kernel tests), but this
# shell's.
bpf_holders() {
    find /proc/[0-9]*/fd -maxdepth 1 -lname 'anon_inode:bpf-prog' 2>/dev/null | cut -d/ -f3 | sort -u | grep -vx "$$"
}

# Waits (up to BENCH_QUIET_WAIT s, default 20) until no other process holds
# BPF programs, so another user's tracer does not add its own probe to our
# measurement. Prints a note to stderr and returns 1 if the machine stayed
# busy.
wait_quiet() {
    local i h
    for i in $(seq 1 "${BENCH_QUIET_WAIT:-20}"); do
        h=$(bpf_holders | tr '\n' ' ')
        [ -z "$h" ] && return 0
        sleep 1
    done
    echo "# note: other BPF users still running (pids $h): sample may be noisy" >&2
    return 1
}

# monitored FILE CMD...: runs CMD (a benchrun) with its stdout in FILE,
# watching (every 0.5 s, at lowest priority) for processes other than CMD's
# own tracer that hold BPF programs meanwhile: another user's probe on the
# same event, or a uprobe on malloc, distorts the sample. Sets FOREIGN to
# their pids ("" when none).
monitored() {
    local file=$1 bp p pp ppp
    shift
    "$@" > "$file" &
    bp=$!
    FOREIGN=""
    while kill -0 "$bp" 2>/dev/null; do
        for p in $(nice -n 19 bash -c "$(declare -f bpf_holders); bpf_holders"); do
            pp=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)
            ppp=$(awk '{ print $4 }' "/proc/$pp/stat" 2>/dev/null)
            { [ "$pp" = "$bp" ] || [ "$ppp" = "$bp" ] || [ "$p" = "$bp" ]; } && continue
            # ktap's own background detacher (a session leader reparented
            # to init as ktap exits) is part of the measured run.
            [ "$(awk '{ print $2, $4, ($6 == $1) }' "/proc/$p/stat" 2>/dev/null)" = "(ktap) 1 1" ] && [ "$p" -gt "$bp" ] && continue
            case " $FOREIGN " in *" $p "*) ;; *) FOREIGN="$FOREIGN $p" ;; esac
        done
        sleep 0.5
    done
    wait "$bp"
    FOREIGN=${FOREIGN# }
}

# sample FILE CMD...: wait_quiet, then CMD under `monitored`; retried (3
# attempts in all) while other BPF users interfere. Sets NOISY=1 when the
# sample kept was disturbed anyway, and counts it under noisy_LABEL when
# SAMPLE_LABEL is set.
sample() {
    local file=$1 attempt
    shift
    for attempt in 1 2 3; do
        NOISY=0
        wait_quiet || NOISY=1
        monitored "$file" "$@"
        [ -n "$FOREIGN" ] && NOISY=1
        [ "$NOISY" = 0 ] && return 0
        [ "$attempt" = 3 ] || echo "# another BPF user (${FOREIGN:-busy before start}) was active: retrying" >&2
    done
    [ -n "${SAMPLE_LABEL:-}" ] && record "noisy_$SAMPLE_LABEL" 1
    return 0
}

# wait_gone PID: waits (up to 300 s) until PID has exited; prints the ms waited.
wait_gone() {
    local t0 i
    t0=$(date +%s%N)
    for i in $(seq 1 30000); do
        [ -d "/proc/$1" ] || break
        sleep 0.01
    done
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

# kv KEY "LINE": the value of KEY=... in a benchrun report line.
kv() {
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

# Arithmetic on decimals.
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# median and min of the numbers on stdin ("-" when there are none)
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minimum() { sort -g | head -1 | awk 'END { if (NR == 0) print "-"; else print $1 }'; }
maximum() { sort -g | tail -1 | awk 'END { if (NR == 0) print "-"; else print $1 }'; }

# Results are appended as "name value" lines to $RESULTS (kept in
# target/bench/ as the raw data of the last run).
RESULTS=${RESULTS:-$OUT_DIR/results.raw}
record() { echo "$1 $2" >> "$RESULTS"; }
values() { awk -v k="$1" '$1 == k { print $2 }' "$RESULTS"; }
med() { values "$1" | median; }
mn() { values "$1" | minimum; }
mx() { values "$1" | maximum; }
count() { values "$1" | wc -l; }

# ratio A B: A / B with two decimals, "-" when either is missing or B is 0.
ratio() {
    if [ "$1" = - ] || [ "$2" = - ] || [ -z "$1" ] || [ -z "$2" ]; then echo "-"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f\n", a / b }'
}

machine_line() {
    local commit
    commit=$(cd "$REPO" && echo "$(git rev-parse --short HEAD 2>/dev/null) (main $(git rev-parse --short main 2>/dev/null))")
    echo "# $(date -u +%Y-%m-%dT%H:%MZ); nproc $(nproc); kernel $(uname -r); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); ktap ${commit:-?}; bpftrace $($BPFTRACE --version 2>/dev/null | awk '{print $2}'); load $(cut -d' ' -f1-3 /proc/loadavg)"
}
