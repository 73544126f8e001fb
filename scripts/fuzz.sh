#!/bin/sh
# A fuzzing campaign over every cargo-fuzz target of fuzz/: builds them,
# seeds each corpus (fuzz/corpus/TARGET, kept between campaigns) from
# fuzz/seeds, the golden scripts and the samples, runs each target for
# SECONDS_PER_TARGET (default 60) at the lowest priority, and prints per
# target its executions, coverage (libFuzzer's cov: and ft:) and corpus
# size. A crash does not end a target's time: its input is kept under
# fuzz/artifacts/TARGET and the target starts again (up to 20 times).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# KTAP_FUZZ_JOBS=N runs N targets at once (default 1); KTAP_FUZZ_NO_BUILD=1
# runs the targets as last built. Logs go to
# fuzz/logs/TARGET.log; each summary is also appended to fuzz/logs/summary.txt.
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-frontend compile elf dwarf btf specs}
jobs=${KTAP_FUZZ_JOBS:-1}
fuzz="$root/fuzz"
lock=/tmp/ktap-cargo.lock

cd "$fuzz"
commit=$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src fuzz/src fuzz/fuzz_targets || echo +changes)
started=$(date -u '+%Y-%m-%d %H:%M')
# ASan keeps the stack of every distinct allocation site for good: the
# compiler's recursion makes new ones with every new input, and the
# compile target's RSS reached the 2 GB limit after ~30,000 runs. Without
# allocation stacks it stays flat (a Rust panic's message says enough).
ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
export ASAN_OPTIONS
# (`cargo fuzz build` takes one target at a time.)
if [ -z "${KTAP_FUZZ_NO_BUILD:-}" ]; then
    for t in $targets; do flock -o "$lock" nice cargo +nightly fuzz build -O -a "$t" >/dev/null; done
fi
mkdir -p logs

bin() { echo "$fuzz/target/x86_64-unknown-linux-gnu/release/$1"; }

# seed TARGET: fills an empty corpus directory.
seed() {
    dir="corpus/$1"
    mkdir -p "$dir" "artifacts/$1"
    [ -n "$(ls -A "$dir")" ] && return 0
    case $1 in
        frontend)
            for f in "$root"/tests/golden/*/*.kp "$root"/scripts/samples/*/*.kp; do
                cp "$f" "$dir/$(echo "$f" | tr / _)"
            done ;;
        compile)
            # Scripts as they are start with `#` (a comment); others drive
            # the generator (any bytes do: seed it with a few).
            for f in "$root"/tests/golden/ir/*.kp "$root"/tests/golden/bpf/*.kp "$root"/scripts/samples/*/*.kp; do
                { printf '# seed\n'; cat "$f"; } >"$dir/$(echo "$f" | tr / _)"
            done
            cp seeds/compile/* "$dir/"
            for i in 1 2 3 4 5 6 7 8; do head -c $((i * 128)) /dev/urandom >"$dir/gen$i"; done ;;
        btf)
            cp seeds/btf/* "$dir/"
            KTAP_FUZZ_SEED_DIR="$dir" "$(bin btf)" -runs=0 "$dir" >/dev/null 2>&1 || true ;;
        *)
            cp seeds/"$1"/* "$dir/" ;;
    esac
}

# run TARGET: the target's whole time, restarted after a crash.
run() {
    t=$1
    log="logs/$t.log"
    : >"$log"
    case $t in
        elf | dwarf | btf) max=65536 ;;
        *) max=8192 ;;
    esac
    end=$(($(date +%s) + secs))
    tries=0
    while :; do
        left=$((end - $(date +%s)))
        [ "$left" -gt 0 ] && [ "$tries" -lt 20 ] || break
        tries=$((tries + 1))
        nice -n 19 "$(bin "$t")" "corpus/$t" -max_total_time="$left" -timeout=10 -rss_limit_mb=2048 \
            -max_len=$max -print_final_stats=1 -artifact_prefix="artifacts/$t/" >>"$log" 2>&1 || true
    done
}

# report TARGET: one line from its log.
report() {
    t=$1
    log="logs/$t.log"
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
    crashes=$(ls "artifacts/$t" | wc -l)
    printf '%-9s %6ss %12s execs  cov %6s  ft %6s  corpus %6s files  %s crash/leak/timeout inputs\n' \
        "$t" "$secs" "$runs" "${cov:-?}" "${ft:-?}" "$(ls "corpus/$t" | wc -l)" "$crashes"
}

for t in $targets; do seed "$t"; done
running=0
for t in $targets; do
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

{
    echo "ktap fuzz campaign, started $started UTC, commit $commit, ${secs}s per target"
    for t in $targets; do report "$t"; done
} | tee -a logs/summary.txt
