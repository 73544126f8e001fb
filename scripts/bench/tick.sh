#!/usr/bin/env bash
# Tick cost: the tracer's CPU time over 3 s with a 10,000-key kernel table
# (filled by a short getppid storm), without a tick and with an empty
# `tick-100ms { }` body; and SIGINT -> results of trace_end's
# print_hist over those 10,000 keys.
source "$(dirname "$0")/lib.sh"
need_root
bench_build

RESULTS=$OUT_DIR/tick.raw
: > "$RESULTS"
REP=$TMP/tick.rep
FILL="var n = 0 var s = {} trace syscalls:sys_enter_getppid { n += 1 s[n % 10000] += 1 }"
for r in $(seq 1 "$REPS"); do
    for v in none tick; do
        t=""
        [ "$v" = tick ] && t="tick-100ms { }"
        SAMPLE_LABEL=$v sample "$REP" "$BENCHRUN" -m Tracing -w "taskset -c $STORM_CPU $STORM 100000" -i 3000 -k 60000 -O "$TMP/tick.out" -- "$KTAP" -e "$FILL $t"
        line=$(grep '^attached=' "$REP")
        record "${v}_cpu" "$(kv cpu_ms "$line")"
    done
    SAMPLE_LABEL=hist sample "$REP" "$BENCHRUN" -m Tracing -w "taskset -c $STORM_CPU $STORM 100000" -i 200 -k 60000 -O "$TMP/tick.out" -- "$KTAP" -e "$FILL trace_end { print_hist(s, 5) }"
    line=$(grep '^attached=' "$REP")
    grep -q Distribution "$TMP/tick.out" || echo "bench: print_hist produced nothing" >&2
    record hist_ms "$(calc "$(kv first_after "$line") - $(kv sigint "$line")")"
done
cell() { echo "$(med "$1") ($(mn "$1"))"; }
machine_line
echo "## ticks and trace_end with a 10,000-key table ($REPS runs, median (min))"
printf "%-58s %16s\n" "what" "value"
printf "%-58s %16s\n" "tracer CPU ms over 3 s, no tick" "$(cell none_cpu)"
printf "%-58s %16s\n" "tracer CPU ms over 3 s, empty tick-100ms { } (30 ticks)" "$(cell tick_cpu)"
printf "%-58s %16s\n" "=> CPU ms per empty tick" "$(calc "($(med tick_cpu) - $(med none_cpu)) / 30")"
printf "%-58s %16s\n" "SIGINT -> print_hist(s, 5) output, ms" "$(cell hist_ms)"
echo "# raw values: $RESULTS"
