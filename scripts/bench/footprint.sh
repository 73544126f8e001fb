#!/usr/bin/env bash
# Footprint and interactivity of the self-contained release binary:
#   its size (scripts/release.sh), what it links, its start-up
#   (`ktap -e 'print("hi")'`), and how fast listings answer
#   (`-le '*'`, `-le 'sched:*' -v`, `-lf libc`);
#   next to bpftrace's installed footprint: the bpftrace package plus the
#   packages of the shared libraries it loads (LLVM and clang among them),
#   measured with dpkg -L and du on this machine.
# Usage: scripts/bench/footprint.sh [BINARY]   (default dist/ktap, built
# with scripts/release.sh when missing). Root for the listings (tracefs).
# BENCH_REPS runs per timing (default 11); prints median (min) in ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-dist/ktap}
[ -x "$bin" ] || scripts/release.sh "$bin" >&2
reps=${BENCH_REPS:-11}

# Median (min) wall milliseconds of a command run $reps times, output dropped.
timed() {
    local t=()
    for _ in $(seq "$reps"); do
        local a b
        a=$(date +%s%N)
        "$@" >/dev/null 2>&1 || true
        b=$(date +%s%N)
        t+=("$(( (b - a) / 1000 ))")
    done
    printf '%s\n' "${t[@]}" | sort -n | awk '{v[NR]=$1} END {printf "%.1f ms (%.1f)", v[int((NR+1)/2)]/1000, v[1]/1000}'
}

mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

# Bytes of the regular files a package installed.
pkg_bytes() {
    { dpkg -L "$1" 2>/dev/null || true; } | while read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then printf '%s\0' "$f"; fi
    done | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1
}

size=$(stat -c %s "$bin")
echo "ktap release binary: $bin, $size bytes ($(mib "$size"))"
echo "  links: $(ldd "$bin" | awk '{print $1}' | tr '\n' ' ')"
echo "  start-up, -e 'print(\"hi\")': $(timed "$bin" -e 'print("hi")')"
if [ "$(id -u)" = 0 ]; then
    echo "  -le '*' ($("$bin" -le '*' | wc -l) events): $(timed "$bin" -le '*')"
    echo "  -le 'sched:*' -v: $(timed "$bin" -le 'sched:*' -v)"
    echo "  -lf libc ($("$bin" -lf libc | wc -l) functions): $(timed "$bin" -lf libc)"
else
    echo "  listings: skipped (need root to read tracefs)"
fi

bt=$(command -v bpftrace || true)
if [ -z "$bt" ]; then
    echo "bpftrace: not installed (apt-get install bpftrace to compare)"
    exit 0
fi
echo "bpftrace $("$bt" --version | awk '{print $2}'): $bt, $(stat -c %s "$bt") bytes"
pkgs=$(for l in $(ldd "$bt" | awk '/=>/ {print $3}'); do dpkg -S "$(readlink -f "$l")" 2>/dev/null | cut -d: -f1; done | sort -u)
own=$(pkg_bytes bpftrace)
total=$own
echo "  package bpftrace: $(mib "$own")"
llvm=0
for p in $pkgs; do
    b=$(pkg_bytes "$p")
    total=$((total + b))
    case $p in *llvm*|*clang*) llvm=$((llvm + b)); echo "  linked package $p: $(mib "$b")";; esac
done
echo "  LLVM and clang packages it links: $(mib "$llvm")"
echo "  bpftrace + its LLVM and clang: $(mib $((own + llvm)))"
echo "  other packages it links (shared with most programs): $(echo "$pkgs" | grep -Ev 'llvm|clang' | tr '\n' ' ')"
echo "  bpftrace + every package of a library it links: $(mib "$total") ($(echo "$pkgs" | wc -w) packages)"
