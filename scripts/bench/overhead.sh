#!/usr/bin/env bash
# Per-event overhead on a getppid storm: getppid_storm calls
# syscall(SYS_getppid) BENCH_N times on CPU $STORM_CPU and prints its CPU
# time per call (thread CPU clock: the syscall and the BPF program it runs,
# not the time slices other processes take on a shared machine) and its
# wall time per call,
# while one tracer is attached to syscalls:sys_enter_getppid:
#   none           no tracer
#   empty          ktap: trace syscalls:sys_enter_getppid { }      (the floor)
#   count_comm     ktap: var s = {} ... { s[execname] += 1 }
#   count_global   ktap: var n = 0 ... { n += 1 }
#   printf         ktap: ... { printf("%d\n", pid) }, stdout a pipe read by
#                  benchrun (lines counted); printf_ofile: -o FILE;
#                  printf_devnull: stdout redirected to /dev/null
#   count_int, count_probename, ride4: diagnostics, not run by default:
#                  s[1] += 1; s[probename] += 1; an empty body on getppid and
#                  three other syscalls (which then rides raw_syscalls)
#   field, ride4_field: diagnostics, not run by default: n += arg0 on
#                  getppid alone (a classic tracepoint) and on getppid and
#                  three other syscalls (raw_syscalls, the record rebuilt
#                  from the registers)
#   hist_comm      ktap: var t = {} ... { t[execname] = hist(tid) }
#   avg_comm       ktap: var t = {} ... { t[execname] = avg(tid) }
#   bt_*           bpftrace: { }, @[comm] = count(), @n = count(),
#                  printf("%d\n", pid) (stdout a pipe, lines counted),
#                  @[comm] = hist(tid), @[comm] = avg(tid)
# Each repetition runs every configuration once, interleaved; the cost a
# tracer adds is its CPU ns/call minus the untraced CPU ns/call of the same
# repetition. Lost printf events = BENCH_N minus the output lines carrying
# the storm's pid. BENCH_CONFIGS="none printf ..." runs only some. Tracers are pinned to CPU $TRACER_CPU (BENCH_TRACER_CPU),
# the storm to CPU $STORM_CPU, so the consumer does not preempt the storm.
# Prints median (min) over BENCH_REPS repetitions.
source "$(dirname "$0")/lib.sh"
need_root
bench_build

RESULTS=$OUT_DIR/overhead.raw
: > "$RESULTS"
TP=syscalls:sys_enter_getppid
WORK="taskset -c $STORM_CPU $STORM $N"

KTAP_CONFIGS="empty count_comm count_global hist_comm avg_comm printf printf_ofile printf_devnull"
BT_CONFIGS="bt_empty bt_count_comm bt_count_global bt_hist_comm bt_avg_comm bt_printf"

ktap_script() {
    case $1 in
        empty) echo "trace $TP { }" ;;
        count_comm) echo "var s = {} trace $TP { s[execname] += 1 }" ;;
        count_global) echo "var n = 0 trace $TP { n += 1 }" ;;
        hist_comm) echo "var t = {} trace $TP { t[execname] = hist(tid) }" ;;
        avg_comm) echo "var t = {} trace $TP { t[execname] = avg(tid) }" ;;
        count_int) echo "var s = {} trace $TP { s[1] += 1 }" ;;
        count_probename) echo "var s = {} trace $TP { s[probename] += 1 }" ;;
        ride4) echo "trace $TP, syscalls:sys_enter_getpgrp, syscalls:sys_enter_gettid, syscalls:sys_enter_getuid { }" ;;
        field) echo "var n = 0 trace $TP { n += arg0 }" ;;
        ride4_field) echo "var n = 0 trace $TP, syscalls:sys_enter_getpgrp, syscalls:sys_enter_gettid, syscalls:sys_enter_getuid { n += arg0 }" ;;
        printf*) echo "trace $TP { printf(\"%d\\n\", pid) }" ;;
    esac
}
bt_script() {
    local b
    case $1 in
        bt_empty) b="" ;;
        bt_count_comm) b="@[comm] = count();" ;;
        bt_count_global) b="@n = count();" ;;
        bt_hist_comm) b="@[comm] = hist(tid);" ;;
        bt_avg_comm) b="@[comm] = avg(tid);" ;;
        bt_printf) b="printf(\"%d\\n\", pid);" ;;
    esac
    echo "BEGIN { printf(\"attached\\n\"); } tracepoint:$TP { $b }"
}

# run_config NAME: one measurement, recorded into $RESULTS: NAME_ns
# (ns/call) and, for printf configurations, NAME_lost, NAME_drain (ms from
# the storm's end to the last output line) and NAME_cpu (tracer CPU time per
# delivered event, ns). Returns 1 when another BPF user showed up meanwhile.
run_config() {
    local c=$1 line storm report out="$TMP/ovh.out" err="$TMP/ovh.err" pid delivered
    rm -f "$out" "$err" "$TMP/ovh.file"
    case $c in
        none) monitored "$TMP/ovh.report" $WORK ;;
        printf_ofile) monitored "$TMP/ovh.report" "$BENCHRUN" -a 300 -w "$WORK" -i 0 -k 120000 -E "$err" -- $(pin_tracer) "$KTAP" -o "$TMP/ovh.file" -e "$(ktap_script "$c")" ;;
        printf_devnull) monitored "$TMP/ovh.report" "$BENCHRUN" -a 300 -w "$WORK" -i 0 -k 120000 -E "$err" -- $(pin_tracer) sh -c 'exec "$0" -e "$1" > /dev/null' "$KTAP" "$(ktap_script "$c")" ;;
        bt_*) monitored "$TMP/ovh.report" "$BENCHRUN" -m attached -w "$WORK" -i 0 -k 120000 -O "$out" -E "$err" -- $(pin_tracer) "$BPFTRACE" -e "$(bt_script "$c")" ;;
        *) monitored "$TMP/ovh.report" "$BENCHRUN" -m Tracing -w "$WORK" -i 0 -k 120000 -O "$out" -E "$err" -- $(pin_tracer) "$KTAP" -e "$(ktap_script "$c")" ;;
    esac
    report=$(cat "$TMP/ovh.report")
    storm=$(echo "$report" | grep '^pid ' | tail -1)
    line=$(echo "$report" | grep '^attached=' | tail -1)
    if [ -z "$storm" ]; then
        echo "bench: $c: no measurement: $report" >&2
        [ -f "$err" ] && cat "$err" >&2
        return 0
    fi
    # The storm thread's CPU time per call (what the probe adds to it, not
    # the time slices other processes take), and its wall time per call.
    record "${c}_ns" "$(echo "$storm" | awk '{ print $(NF-1) }')"
    record "${c}_wall" "$(echo "$storm" | awk '{ print $(NF-3) }')"
    pid=$(echo "$storm" | awk '{ print $2 }')
    delivered=""
    case $c in
        printf|bt_printf)
            delivered=$(grep -cx "$pid" "$out")
            record "${c}_drain" "$(calc "$(kv last_out "$line") - $(kv wl_end "$line")")"
            ;;
        printf_ofile)
            delivered=$(grep -cx "$pid" "$TMP/ovh.file")
            ;;
        printf_devnull)
            # Only ktap's own count is available.
            delivered=$((N - $(sed -n 's/.*warning: \([0-9]*\) events lost.*/\1/p' "$err" | head -1 | grep . || echo 0)))
            ;;
    esac
    if [ -n "$delivered" ]; then
        record "${c}_lost" "$((N - delivered))"
        [ "$delivered" -gt 0 ] && record "${c}_cpu" "$(calc "$(kv cpu_ms "$line") * 1000000 / $delivered" 0)"
    fi
    case $c in
        printf|printf_ofile) record "${c}_lost_reported" "$(sed -n 's/.*warning: \([0-9]*\) events lost.*/\1/p' "$err" | head -1 | grep . || echo 0)" ;;
    esac
    if [ "$c" != none ] && [ "$(kv status "$line")" != 0 ]; then
        echo "bench: $c: tracer exited with status $(kv status "$line")" >&2; cat "$err" >&2
    fi
    [ -z "$FOREIGN" ]
}

configs="none $KTAP_CONFIGS"
have_bpftrace && configs="$configs $BT_CONFIGS"
# BENCH_CONFIGS: run only these (e.g. "none printf"); "none" is needed for
# the added cost.
configs=${BENCH_CONFIGS:-$configs}
MAIN_RESULTS=$RESULTS
for r in $(seq 1 "$REPS"); do
    for c in $configs; do
        # Up to 3 attempts: a sample taken while another process held BPF
        # programs is retried, and kept (flagged) only on the last attempt.
        for attempt in 1 2 3; do
            RESULTS=$TMP/ovh.stage
            : > "$RESULTS"
            quiet=1
            wait_quiet || quiet=0
            run_config "$c" || quiet=0
            RESULTS=$MAIN_RESULTS
            if [ "$quiet" = 1 ] || [ "$attempt" = 3 ]; then
                cat "$TMP/ovh.stage" >> "$RESULTS"
                [ "$quiet" = 1 ] || record "${c}_noisy" 1
                break
            fi
            echo "# $c: another BPF user ($FOREIGN) appeared during the sample: retrying" >&2
        done
    done
done

# Added cost per repetition: config ns/call - untraced ns/call (same repetition).
nones=($(values none_ns))
for c in $KTAP_CONFIGS count_int count_probename ride4 $BT_CONFIGS; do
    i=0
    for v in $(values "${c}_ns"); do
        [ -n "${nones[$i]:-}" ] && record "${c}_added" "$(calc "$v - ${nones[$i]}")"
        i=$((i + 1))
    done
done

floor=$(med empty_added)
cell() { if [ "$(count "$1")" -gt 0 ]; then echo "$(med "$1") ($(mn "$1"))"; else echo "-"; fi; }
machine_line
echo "## per-event overhead: getppid storm, $N calls, $REPS repetitions, median (min)"
floor_min=$(calc "$(mn empty_ns) - $(mn none_ns)")
echo "# cpu ns/call: the storm thread's CPU time per getppid (median (min)); wall ns: its wall time per call (median)"
echo "# added = cpu ns/call - untraced cpu ns/call of the same repetition, median (min); x floor = added / added by ktap's empty program"
echo "# min-based: added(min) = min ns/call - min untraced ns/call (least disturbed by other load); floor: median $floor ns, min-based $floor_min ns"
printf "%-16s %-52s %16s %16s %8s %9s %8s %14s %10s\n" "config" "script" "cpu ns/call" "added ns" "x floor" "added(min)" "x floor" "lost/$N" "wall ns"
label() {
    case $1 in
        none) echo "(no tracing)" ;;
        printf_ofile) echo "ktap -o FILE: $(ktap_script "$1" | sed "s/$TP/getppid/")" ;;
        printf_devnull) echo "ktap >/dev/null: $(ktap_script "$1" | sed "s/$TP/getppid/")" ;;
        bt_*) echo "bpftrace: $(bt_script "$1" | sed 's/BEGIN { printf("attached\\n"); } //; s/tracepoint:syscalls:sys_enter_getppid/getppid/')" ;;
        ride4) echo "ktap: trace getppid + 3 more syscalls { } (raw_syscalls)" ;;
        ride4_field) echo "ktap: trace getppid + 3 more syscalls { n += arg0 } (raw_syscalls, record rebuilt)" ;;
        *) echo "ktap: $(ktap_script "$1" | sed "s/$TP/getppid/")" ;;
    esac
}
DIAG_CONFIGS="count_int count_probename ride4 field ride4_field"
for c in none $KTAP_CONFIGS $DIAG_CONFIGS $BT_CONFIGS; do
    [ "$(count "${c}_ns")" -gt 0 ] || continue
    lost=-
    [ "$(count "${c}_lost")" -gt 0 ] && lost="$(med "${c}_lost") ($(mn "${c}_lost"))"
    amin=-
    [ "$c" != none ] && amin=$(calc "$(mn "${c}_ns") - $(mn none_ns)")
    printf "%-16s %-52s %16s %16s %8s %9s %8s %14s %10s\n" "$c" "$(label "$c")" "$(cell "${c}_ns")" "$(cell "${c}_added")" "$(ratio "$(med "${c}_added")" "$floor")" "$amin" "$(ratio "$amin" "$floor_min")" "$lost" "$(med "${c}_wall")"
done
for c in printf printf_ofile; do
    [ "$(count "${c}_lost_reported")" -gt 0 ] && echo "# $c: ktap's own 'events lost' warning: median $(med "${c}_lost_reported") (min $(mn "${c}_lost_reported"), max $(mx "${c}_lost_reported"))"
done
for c in printf bt_printf; do
    [ "$(count "${c}_drain")" -gt 0 ] && echo "# $c: output kept coming $(med "${c}_drain") ms (median) after the storm ended"
done
for c in printf printf_ofile printf_devnull bt_printf; do
    [ "$(count "${c}_cpu")" -gt 0 ] && echo "# $c: tracer CPU time per delivered event: $(med "${c}_cpu") ns (median; min $(mn "${c}_cpu"))"
done
for c in none $KTAP_CONFIGS count_int count_probename ride4 $BT_CONFIGS; do
    [ "$(count "${c}_noisy")" -gt 0 ] && echo "# $c: $(count "${c}_noisy") of $REPS samples taken while another process held BPF programs"
done
echo "# tracer pinned to CPU ${TRACER_CPU:-(none)}, storm to CPU $STORM_CPU"
echo "# goals: counting added <= 1.3 x floor; printf added <= 1000 ns per event with 0 lost"
echo "# raw values: $RESULTS"
