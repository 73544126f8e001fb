#!/usr/bin/env bash
# A long run of ktap: every syscall entry counted into a table that a
# per-second tick prints (its top 3) and clears, plus one printed record per
# millisecond from a probe, while a workload (scripts/soakload.c) makes a
# known number of calls: GETPPID_PER_MS getppid() and one getpgid(0) every
# millisecond for the whole run. ktap starts the workload (`-- CMD`, so
# only its syscalls are counted, though every syscall on the machine runs
# the probe) and ends with it.
#
#   scripts/soak.sh [SECONDS] [OUT_DIR]      (default 3600, target/soak)
#
# Every SOAK_SAMPLE seconds (default 60) it samples ktap's RSS, open fds and
# CPU time, and the events the ticks counted so far; at the end it prints
# one row per sample (CPU per event over each interval, ktap's own and the
# workload's system time, which includes the probes' run time) and checks:
#   * ktap's total of getppid calls and its printed records equal the
#     workload's own counts, and no event was reported lost;
#   * RSS and fds after the first sample do not grow (fds exactly flat,
#     RSS within SOAK_RSS_SLACK_KB, default 1024 kB).
# Exit status 0 when every check holds. Environment: KTAP (binary; default
# target/release/ktap, built first), SOAK_PER_MS (default 20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-3600}
out=${2:-$root/target/soak}
sample=${SOAK_SAMPLE:-60}
per_ms=${SOAK_PER_MS:-20}
slack_kb=${SOAK_RSS_SLACK_KB:-1024}
[ "$(id -u)" = 0 ] || { echo "soak: needs root (it loads BPF programs)" >&2; exit 1; }
mkdir -p "$out"
if [ -z "${KTAP:-}" ]; then
    (cd "$root" && flock -o /tmp/ktap-cargo.lock cargo build --release -q)
    KTAP=$root/target/release/ktap
fi
load=$out/ktap-soakload
gcc -O2 -Wall -o "$load" "$root/scripts/soakload.c"

cat > "$out/soak.kp" <<'EOF'
var calls = {}
var sec = 0
var getppids = 0
var records = 0
trace syscalls:sys_enter_* { calls[probename] += 1 }
trace syscalls:sys_enter_getppid { getppids += 1 }
trace syscalls:sys_enter_getpgid { records += 1 printf("rec %d\n", records) }
tick-1s {
    var events = 0
    for (k, v in pairs(calls)) { events += v }
    sec += 1
    printf("sec %d events %d\n", sec, events)
    print_hist(calls, 3)
    delete(calls)
}
trace_end { printf("total getppid %d records %d\n", getppids, records) }
EOF

trace=$out/trace.txt samples=$out/samples.txt
rm -f "$out/counts.txt" "$trace"
"$KTAP" -q -o "$trace" "$out/soak.kp" -- "$load" "$secs" "$per_ms" "$out/counts.txt" 2> "$out/stderr.txt" &
ktap=$!
# Whatever happens to this script, the tracer it started stops.
trap 'kill -INT $ktap 2>/dev/null || true' EXIT
hz=$(getconf CLK_TCK)
started=$(date -u '+%Y-%m-%d %H:%M:%S')
echo "soak: ktap pid $ktap, $secs s from $started UTC, samples every $sample s in $samples"
# minute rss_kB fds ktap_cpu_ticks workload_sys_ticks events_so_far
: > "$samples"
sample_now() {
    local t=$1 rss fds cpu wl child events
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ktap/status" 2>/dev/null) || return 1
    fds=$(ls "/proc/$ktap/fd" 2>/dev/null | wc -l)
    cpu=$(awk '{ print $14 + $15 }' "/proc/$ktap/stat" 2>/dev/null) || return 1
    child=$(cat "/proc/$ktap/task/$ktap/children" 2>/dev/null | awk '{ print $1 }')
    wl=$( [ -n "$child" ] && awk '{ print $15 }' "/proc/$child/stat" 2>/dev/null || echo 0)
    events=$(awk '/^sec / { e += $4 } END { print e + 0 }' "$trace" 2>/dev/null || echo 0)
    echo "$t $rss $fds $cpu $wl $events" >> "$samples"
}
t=0
while kill -0 "$ktap" 2>/dev/null; do
    sleep 1
    t=$((t + 1))
    if [ $((t % sample)) = 0 ]; then sample_now "$t" || true; fi
done
trap - EXIT
wait "$ktap" && status=0 || status=$?

echo
echo "| t (s) | RSS (kB) | fds | events in interval | ktap CPU (ms) | ktap ns/event | workload sys (ms) | workload sys ns/event |"
echo "|---|---|---|---|---|---|---|---|"
awk -v hz="$hz" '{
    if (NR > 1) {
        de = $6 - e; dc = ($4 - c) * 1000 / hz; dw = ($5 - w) * 1000 / hz
        printf "| %d | %d | %d | %d | %d | %s | %d | %s |\n", $1, $2, $3, de, dc, de ? sprintf("%.0f", dc * 1e6 / de) : "-", dw, de ? sprintf("%.0f", dw * 1e6 / de) : "-"
    } else {
        printf "| %d | %d | %d | %d | | | | |\n", $1, $2, $3, $6
    }
    e = $6; c = $4; w = $5
}' "$samples"

fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
echo
[ -s "$out/counts.txt" ] || { echo "FAILED: the workload wrote no counts (ktap exit $status)"; exit 1; }
want_getppid=$(awk '$1 == "getppid" { print $2 }' "$out/counts.txt")
want_records=$(awk '$1 == "getpgid" { print $2 }' "$out/counts.txt")
read -r got_getppid got_records < <(awk '/^total getppid/ { print $3, $5 }' "$trace")
printed=$(grep -c '^rec ' "$trace" || true)
check "ktap exited 0 (it did: $status)" '[ "$status" = 0 ]'
check "getppid calls: the workload made $want_getppid, ktap counted ${got_getppid:-none}" '[ "$want_getppid" = "${got_getppid:-}" ]'
check "records: the workload asked for $want_records, probes made ${got_records:-none}, $printed printed" '[ "$want_records" = "${got_records:-}" ] && [ "$want_records" = "$printed" ]'
check "no events reported lost" '! grep -q "lost" "$out/stderr.txt"'
first=$(head -1 "$samples") last=$(tail -1 "$samples")
if [ -n "$first" ]; then
    read -r _ rss0 fds0 _ <<< "$first"
    rss_max=$(awk 'NR > 1 && $2 > m { m = $2 } END { print m + 0 }' "$samples")
    fds_set=$(awk '{ print $3 }' "$samples" | sort -u | tr '\n' ' ')
    check "RSS flat after the first sample: $rss0 kB then at most $rss_max kB (slack $slack_kb kB)" '[ "$rss_max" -le $((rss0 + slack_kb)) ]'
    check "fds flat: $fds_set" '[ "$(echo $fds_set | wc -w)" = 1 ]'
fi
echo "soak: $started to $(date -u '+%H:%M:%S') UTC; ktap $("$KTAP" -V 2>&1 | head -1); last sample: $last"
exit $fail
