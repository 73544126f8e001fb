#!/usr/bin/env bash
# Wildcards: for syscalls:*, syscalls:sys_enter_* and sched:*, counting by
# probename,
#   ktap -e 'var s = {} trace SPEC { s[probename] += 1 } tick-1s { exit() }
#            trace_end { print_hist(s, 5) }'
# measures start -> attached ("Tracing..." read), exit -> results printed
# (the tick fires 1 s after the banner), and results -> process exit
# (teardown). When ktap hands the slow detaches to a background child
# ("N tracepoints are being detached in the background (pid P)"), the time
# until that child is gone is measured too: the kernel is busy (and holds
# its tracepoint lock) until then. The same script without the tick, stopped by SIGINT 1 s after
# attach, gives SIGINT -> results. bpftrace's equivalent
#   BEGIN { printf("attached\n") } tracepoint:SPEC { @[probe] = count(); }
#   interval:s:1 { exit(); }
# runs BENCH_BT_WILDCARD_REPS times (default 1: its teardown of hundreds of
# tracepoints takes tens of seconds), capped at 150 s.
source "$(dirname "$0")/lib.sh"
need_root
bench_build

RESULTS=$OUT_DIR/wildcard.raw
: > "$RESULTS"
BT_REPS=${BENCH_BT_WILDCARD_REPS:-1}
SPECS="syscalls:* syscalls:sys_enter_* sched:*"

key() { echo "$1" | tr ':*' '_S'; }

for spec in $SPECS; do
    k=$(key "$spec")
    ir=$("$KTAP" --emit ir -e "var s = {} trace $spec { s[probename] += 1 }" 2>&1) || { echo "ktap --emit ir failed for $spec: $ir" >&2; }
    record "${k}_classic" "$(echo "$ir" | grep '^probe' | grep -o '[[ ]tracepoint [a-z_0-9]*:' | wc -l)"
    record "${k}_events" "$(echo "$ir" | grep '^probe' | grep -o '\(tracepoint\|raw_tp\|syscall\) [a-z_0-9]*' | wc -l)"
done

# ktap detaching in the background: a ktap session leader reparented to
# init (the forked child), which ktap names on stderr only past some number
# of links. Lists such pids (looking them up, never signalling them). The
# child has the name of the binary under test ($KTAP may be a copy named
# otherwise; process names are cut at 15 characters).
bg_children() {
    local p
    for p in $(pgrep -x "$(basename "$KTAP" | cut -c1-15)"); do
        [ "$(awk '{ print $4, ($6 == $1) }' "/proc/$p/stat" 2>/dev/null)" = "1 1" ] && echo "$p"
    done
}

# bg_detach KEY: if ktap detached in the background, waits for that child
# and records KEY (ms from ktap's exit until the child was gone).
bg_detach() {
    local bg p
    bg=$(sed -n 's/.*detached in the background (pid \([0-9]*\)).*/\1/p' "$TMP/wc.err" | head -1)
    if [ -z "$bg" ]; then
        for p in $(bg_children); do
            case " $BG_BEFORE " in *" $p "*) ;; *) bg=$p ;; esac
        done
    fi
    [ -n "$bg" ] && record "$1" "$(wait_gone "$bg")"
}

REP=$TMP/wildcard.rep
for r in $(seq 1 "$REPS"); do
    for spec in $SPECS; do
        k=$(key "$spec")
        BG_BEFORE=$(bg_children | tr '\n' ' ')
        SAMPLE_LABEL=$k sample "$REP" "$BENCHRUN" -m Tracing -k 150000 -O "$TMP/wc.out" -E "$TMP/wc.err" -- "$KTAP" -e "var s = {} trace $spec { s[probename] += 1 } tick-1s { exit() } trace_end { print_hist(s, 5) }"
        line=$(cat "$REP")
        bg_detach "${k}_bg"
        if [ "$(kv status "$line")" != 0 ] || ! grep -q Distribution "$TMP/wc.out"; then
            echo "ktap failed on $spec: $line" >&2; cat "$TMP/wc.err" >&2
        fi
        record "${k}_attach" "$(kv attached "$line")"
        record "${k}_results" "$(calc "$(kv first_after "$line") - $(kv attached "$line") - 1000")"
        record "${k}_teardown" "$(calc "$(kv exit "$line") - $(kv last_out "$line")")"
        record "${k}_total" "$(kv exit "$line")"
        record "${k}_rss" "$(kv rss_kb "$line")"

        BG_BEFORE=$(bg_children | tr '\n' ' ')
        SAMPLE_LABEL=$k sample "$REP" "$BENCHRUN" -m Tracing -i 1000 -k 150000 -O "$TMP/wc.out" -E "$TMP/wc.err" -- "$KTAP" -e "var s = {} trace $spec { s[probename] += 1 } trace_end { print_hist(s, 5) }"
        line=$(cat "$REP")
        bg_detach "${k}_int_bg"
        grep -q Distribution "$TMP/wc.out" || { echo "ktap (SIGINT) failed on $spec: $line" >&2; cat "$TMP/wc.err" >&2; }
        record "${k}_int_results" "$(calc "$(kv first_after "$line") - $(kv sigint "$line")")"
        record "${k}_int_teardown" "$(calc "$(kv exit "$line") - $(kv last_out "$line")")"
    done
done

if have_bpftrace; then
    for r in $(seq 1 "$BT_REPS"); do
        for spec in $SPECS; do
            k=$(key "$spec")
            # syscalls:* needs 720 programs and probes, over bpftrace's default limits (512).
            BPFTRACE_MAX_BPF_PROGS=2000 BPFTRACE_MAX_PROBES=2000 SAMPLE_LABEL=bt_$k sample "$REP" "$BENCHRUN" -m attached -k 150000 -O "$TMP/bt.out" -E "$TMP/bt.err" -- "$BPFTRACE" -e "BEGIN { printf(\"attached\\n\"); } tracepoint:$spec { @[probe] = count(); } interval:s:1 { exit(); }"
            line=$(cat "$REP")
            if [ "$(kv killed "$line")" != 0 ]; then
                record "bt_${k}_killed" 1
            elif [ "$(kv attached "$line")" = -1.0 ]; then
                echo "bpftrace failed on $spec: $line" >&2; grep -v RLIMIT_MEMLOCK "$TMP/bt.err" >&2
            else
                record "bt_${k}_attach" "$(kv attached "$line")"
                record "bt_${k}_results" "$(calc "$(kv first_after "$line") - $(kv attached "$line") - 1000")"
                record "bt_${k}_teardown" "$(calc "$(kv exit "$line") - $(kv last_out "$line")")"
                record "bt_${k}_total" "$(kv exit "$line")"
            fi
            record "bt_${k}_probes" "$(sed -n 's/^Attaching \([0-9]*\) probe.*/\1/p' "$TMP/bt.out")"
        done
    done
fi

cell() { if [ "$(count "$1")" -gt 0 ]; then echo "$(med "$1") ($(mn "$1"))"; else echo "-"; fi; }
machine_line
echo "## wildcards (ktap: $REPS runs, median (min); bpftrace: $BT_REPS run(s), capped at 150 s; ms)"
printf "%-22s %-26s %16s %16s %9s\n" "spec" "what" "ktap" "bpftrace" "ktap/bt"
for spec in $SPECS; do
    k=$(key "$spec")
    bt_note=""
    [ "$(count "bt_${k}_killed")" -gt 0 ] && bt_note=" (bpftrace killed at 150 s)"
    for what in attach results teardown total; do
        case $what in
            attach) label="start -> attached" ;;
            results) label="exit() -> results" ;;
            teardown) label="results -> exit (teardown)" ;;
            total) label="total wall" ;;
        esac
        printf "%-22s %-26s %16s %16s %9s\n" "$spec" "$label" "$(cell "${k}_$what")" "$(cell "bt_${k}_$what")" "$(ratio "$(med "${k}_$what")" "$(med "bt_${k}_$what")")"
    done
    [ "$(count "${k}_bg")" -gt 0 ] && printf "%-22s %-26s %16s\n" "$spec" "+ background detach" "$(cell "${k}_bg")"
    printf "%-22s %-26s %16s\n" "$spec" "SIGINT -> results" "$(cell "${k}_int_results")"
    printf "%-22s %-26s %16s\n" "$spec" "SIGINT: results -> exit" "$(cell "${k}_int_teardown")"
    [ "$(count "${k}_int_bg")" -gt 0 ] && printf "%-22s %-26s %16s\n" "$spec" "SIGINT: + background detach" "$(cell "${k}_int_bg")"
    printf "%-22s %-26s %16s\n" "$spec" "peak RSS KiB" "$(cell "${k}_rss")"
    [ "$(count "noisy_$k")" -gt 0 ] && echo "#   $spec: $(count "noisy_$k") ktap samples kept although another process held BPF programs"
    [ "$(count "noisy_bt_$k")" -gt 0 ] && echo "#   $spec: $(count "noisy_bt_$k") bpftrace samples kept although another process held BPF programs"
    echo "#   $spec: ktap attaches $(med "${k}_events") events, $(med "${k}_classic") of them as classic tracepoints (perf-event links); bpftrace: $(med "bt_${k}_probes") probes$bt_note"
done
echo "# raw values: $RESULTS"
