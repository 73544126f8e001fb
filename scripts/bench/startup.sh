#!/usr/bin/env bash
# Startup: wall time and peak RSS of
#   ktap -e 'print("hi")'                       (compile + run main, no BPF)
#   the getppid one-liner, start -> "Tracing..." (compile, load, attach),
#     then SIGINT (200 ms later) -> process exit (stop, detach)
#   bpftrace -e 'BEGIN { exit(); }'            (wall, RSS)
#   bpftrace getppid one-liner, start -> BEGIN output (bpftrace runs BEGIN
#     once every probe is attached), then SIGINT (200 ms later) -> exit
# Prints the median (min) of BENCH_REPS runs of each, and ktap/bpftrace ratios.
source "$(dirname "$0")/lib.sh"
need_root
bench_build

RESULTS=$OUT_DIR/startup.raw
: > "$RESULTS"
ONE='trace syscalls:sys_enter_getppid { printf("%d %s\n", pid, execname) }'
BT_ONE='BEGIN { printf("attached\n"); } tracepoint:syscalls:sys_enter_getppid { printf("%d %s\n", pid, comm); }'

REP=$TMP/startup.rep
for r in $(seq 1 "$REPS"); do
    SAMPLE_LABEL=hi sample "$REP" "$BENCHRUN" -k 30000 -- "$KTAP" -e 'print("hi")'
    line=$(cat "$REP")
    record hi_wall "$(kv exit "$line")"; record hi_rss "$(kv rss_kb "$line")"

    SAMPLE_LABEL=one sample "$REP" "$BENCHRUN" -m Tracing -i 200 -k 60000 -E "$TMP/startup.err" -- "$KTAP" -e "$ONE"
    line=$(cat "$REP")
    [ "$(kv attached "$line")" = -1.0 ] && { echo "ktap one-liner failed: $line" >&2; cat "$TMP/startup.err" >&2; }
    record one_attach "$(kv attached "$line")"
    record one_teardown "$(calc "$(kv exit "$line") - $(kv sigint "$line")")"
    record one_rss "$(kv rss_kb "$line")"

    if have_bpftrace; then
        SAMPLE_LABEL=bt_begin sample "$REP" "$BENCHRUN" -k 60000 -- "$BPFTRACE" -e 'BEGIN { exit(); }'
        line=$(cat "$REP")
        record bt_begin_wall "$(kv exit "$line")"; record bt_begin_rss "$(kv rss_kb "$line")"
        SAMPLE_LABEL=bt_one sample "$REP" "$BENCHRUN" -m attached -i 200 -k 60000 -- "$BPFTRACE" -e "$BT_ONE"
        line=$(cat "$REP")
        record bt_one_attach "$(kv attached "$line")"
        record bt_one_teardown "$(calc "$(kv exit "$line") - $(kv sigint "$line")")"
        record bt_one_rss "$(kv rss_kb "$line")"
    fi
done

row() { # label ktap-key bpftrace-key unit
    local k=$2 b=$3
    local km kn bm bn
    km=$(med "$k"); kn=$(mn "$k")
    if [ -n "$b" ] && [ "$(count "$b")" -gt 0 ]; then bm=$(med "$b"); bn=$(mn "$b"); else bm=-; bn=-; fi
    printf "%-44s %12s %12s %8s\n" "$1" "$km ($kn)" "$bm ($bn)" "$(ratio "$km" "$bm")"
}
machine_line
echo "## startup ($REPS runs each; median (min); ms and KiB)"
printf "%-44s %12s %12s %8s\n" "what" "ktap" "bpftrace" "ktap/bt"
row "print(\"hi\") / BEGIN{exit()}: wall ms" hi_wall bt_begin_wall
row "print(\"hi\") / BEGIN{exit()}: peak RSS KiB" hi_rss bt_begin_rss
row "getppid one-liner: start -> attached ms" one_attach bt_one_attach
row "getppid one-liner: SIGINT -> exit ms" one_teardown bt_one_teardown
row "getppid one-liner: peak RSS KiB" one_rss bt_one_rss
for l in hi one bt_begin bt_one; do
    [ "$(count "noisy_$l")" -gt 0 ] && echo "# $l: $(count "noisy_$l") of $REPS samples kept although another process held BPF programs"
done
echo "# raw values: $RESULTS"
