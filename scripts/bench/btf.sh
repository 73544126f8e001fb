#!/usr/bin/env bash
# Kernel types (BTF):
#   startup: the getppid one-liner reading one BTF member
#     (`printf("%d\n", curtask.real_parent.tgid)`) from start to its
#     "Tracing..." line, next to the same one-liner printing `pid`;
#   per event: a context-switch storm (switch_storm.c, 2 threads pinned to
#     CPU $STORM_CPU, BENCH_SWITCHES round trips, 2 switches each) under
#       none        no tracer
#       raw         ktap: var n = 0 trace sched:sched_switch { n += 1 }
#                   (a body reading no fields: a raw tracepoint)
#       btf         ktap: var n = 0 trace btf:sched_switch { n += 1 }
#       classic_pid ktap: ... sched:sched_switch { n += args.next_pid }
#                   (a classic tracepoint program reading the record)
#       btf_pid     ktap: ... btf:sched_switch { n += args.next.pid }
#                   (a direct load through the typed argument)
#     the cost per switch being the storm's CPU ns per switch minus the
#     untraced one of the same repetition (the storm's two threads carry
#     the program runs: the tracepoint fires in the task switched out).
# Prints median (min) over BENCH_REPS repetitions.
source "$(dirname "$0")/lib.sh"
need_root
bench_build
SWITCH="$BIN_DIR/switch_storm"
cc -O2 -Wall -pthread -o "$SWITCH" "$BENCH_DIR/switch_storm.c" || die "cannot build switch_storm"

RESULTS=$OUT_DIR/btf.raw
: > "$RESULTS"
SW=${BENCH_SWITCHES:-200000}
WORK="taskset -c $STORM_CPU $SWITCH $SW"
ONE_BTF='trace syscalls:sys_enter_getppid { printf("%d\n", curtask.real_parent.tgid) }'
ONE_PID='trace syscalls:sys_enter_getppid { printf("%d\n", pid) }'

script() {
    case $1 in
        raw) echo 'var n = 0 trace sched:sched_switch { n += 1 }' ;;
        btf) echo 'var n = 0 trace btf:sched_switch { n += 1 }' ;;
        classic_pid) echo 'var n = 0 trace sched:sched_switch { n += args.next_pid }' ;;
        btf_pid) echo 'var n = 0 trace btf:sched_switch { n += args.next.pid }' ;;
    esac
}

REP=$TMP/btf.rep
for r in $(seq 1 "$REPS"); do
    for which in btf pid; do
        if [ $which = btf ]; then one=$ONE_BTF; else one=$ONE_PID; fi
        SAMPLE_LABEL=one_$which sample "$REP" "$BENCHRUN" -m Tracing -i 200 -k 60000 -E "$TMP/btf.err" -- "$KTAP" -e "$one"
        line=$(cat "$REP")
        [ "$(kv attached "$line")" = -1.0 ] && { echo "ktap one-liner failed: $line" >&2; cat "$TMP/btf.err" >&2; }
        record "one_${which}_attach" "$(kv attached "$line")"
    done
    for c in none raw btf classic_pid btf_pid; do
        SAMPLE_LABEL=$c
        if [ $c = none ]; then
            sample "$REP" $WORK
        else
            sample "$REP" "$BENCHRUN" -m Tracing -w "$WORK" -i 0 -k 120000 -E "$TMP/btf.err" -- $(pin_tracer) "$KTAP" -e "$(script $c)"
        fi
        storm=$(grep '^pid ' "$REP" | tail -1)
        [ -z "$storm" ] && { echo "bench: $c: no measurement: $(cat "$REP")" >&2; cat "$TMP/btf.err" >&2; continue; }
        record "${c}_cpu" "$(echo "$storm" | awk '{ print $(NF-1) }')"
    done
    none=$(values none_cpu | tail -1)
    for c in raw btf classic_pid btf_pid; do
        v=$(values "${c}_cpu" | tail -1)
        [ -n "$v" ] && [ -n "$none" ] && record "${c}_added" "$(calc "$v - $none")"
    done
done

machine_line
echo "## kernel types ($REPS runs each; median (min))"
printf "%-58s %16s\n" "what" "ktap"
printf "%-58s %16s\n" "one-liner with curtask.real_parent.tgid: start -> attached ms" "$(med one_btf_attach) ($(mn one_btf_attach))"
printf "%-58s %16s\n" "the same printing pid: start -> attached ms" "$(med one_pid_attach) ($(mn one_pid_attach))"
printf "%-58s %16s\n" "context switch, untraced: CPU ns/switch" "$(med none_cpu) ($(mn none_cpu))"
for c in raw btf classic_pid btf_pid; do
    printf "%-58s %16s\n" "$(script $c | sed 's/^var n = 0 //'): added ns/switch" "$(med "${c}_added") ($(mn "${c}_added"))"
done
for l in one_btf one_pid none raw btf classic_pid btf_pid; do
    [ "$(count "noisy_$l")" -gt 0 ] && echo "# $l: $(count "noisy_$l") of $REPS samples kept although another process held BPF programs"
done
echo "# raw values: $RESULTS"
