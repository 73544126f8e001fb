#!/usr/bin/env bash
# User-space types (DWARF): start-up of `probe:BIN:FUNC` reading a
# parameter's member by name, on a generated C program with >= 50 MB of
# DWARF (dwarf_gen.py: BENCH_DWARF_UNITS units, each emitting
# BENCH_DWARF_TYPES structs; gcc -g -O0 -fno-eliminate-unused-debug-types).
#   compile_named  `ktap --emit obj` of `print(args.p.m3)` (DWARF read:
#                  the unit holding the function, found by .debug_aranges)
#   compile_plain  the same with `print(arg1)` (no DWARF read)
#   attach_named   as root: from start to the "Tracing..." line of the
#                  named one-liner (benchrun)
#   attach_plain   the same for the `arg1` one-liner
# Prints median (min) ms over BENCH_REPS repetitions.
source "$(dirname "$0")/lib.sh"
bench_build
UNITS=${BENCH_DWARF_UNITS:-120}
TYPES=${BENCH_DWARF_TYPES:-1500}
SRC=$TMP/dwarf_big
BIG=$BIN_DIR/dwarf_big
if [ ! -x "$BIG" ] || [ "$BENCH_DIR/dwarf_gen.py" -nt "$BIG" ]; then
    echo "# generating and building $UNITS units of $TYPES structs" >&2
    rm -rf "$SRC"
    python3 "$BENCH_DIR/dwarf_gen.py" "$SRC" "$UNITS" "$TYPES" || die "cannot generate"
    (cd "$SRC" && ls unit*.c main.c | xargs -P 2 -I{} cc -g -O0 -fno-eliminate-unused-debug-types -c {} -o {}.o) || die "cannot compile"
    cc -o "$BIG" "$SRC"/*.o || die "cannot link"
fi
DWARF_MB=$(size -A "$BIG" | awk '/^\.debug_/ { s += $2 } END { printf "%.1f", s / 1048576 }')
echo "# $BIG: $DWARF_MB MB of DWARF" >&2
FUNC=fn_$((UNITS / 2))_3
NAMED="trace probe:$BIG:$FUNC { print(args.p.m3) }"
PLAIN="trace probe:$BIG:$FUNC { print(arg1) }"

RESULTS=$OUT_DIR/dwarf.raw
: > "$RESULTS"
ms() { echo $(( ($2 - $1) / 1000000 )); }
for r in $(seq 1 "$REPS"); do
    for which in named plain; do
        if [ $which = named ]; then s=$NAMED; else s=$PLAIN; fi
        t0=$(date +%s%N)
        "$KTAP" --emit obj -o "$TMP/dwarf.o" -e "$s" || die "ktap failed on: $s"
        t1=$(date +%s%N)
        record "compile_$which" "$(ms "$t0" "$t1")"
        if [ "$(id -u)" = 0 ]; then
            REP=$TMP/dwarf.rep
            SAMPLE_LABEL=attach_$which sample "$REP" "$BENCHRUN" -m Tracing -i 200 -k 60000 -E "$TMP/dwarf.err" -- "$KTAP" -e "$s"
            line=$(cat "$REP")
            [ "$(kv attached "$line")" = -1.0 ] && { echo "ktap failed: $line" >&2; cat "$TMP/dwarf.err" >&2; }
            record "attach_$which" "$(kv attached "$line")"
        fi
    done
done
echo "dwarf_mb $DWARF_MB"
for k in compile_named compile_plain attach_named attach_plain; do
    [ "$(count $k)" -gt 0 ] && echo "$k $(med $k) ($(mn $k)) ms"
done
