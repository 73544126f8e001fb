#!/usr/bin/env bash
# Output and metrics costs (docs/PERFORMANCE.md, "Output formats and
# metrics"):
#   text/json   BENCH_N (default 1,000,000) printf records from a getppid
#               storm through `ktap -f text` and `ktap -f json` (-b 64M, so
#               none is lost), stdout a pipe read by benchrun: records
#               delivered, the tracer's CPU ns per record, and records/s from
#               attach to the last line.
#   scrape      a 10,000-key per-CPU table (`s[ktime_ns() % 10000] += 1`)
#               served with --metrics: ms per scrape (curl, sequential), and
#               the storm's CPU ns per traced call with nobody scraping vs
#               with a client scraping back to back all along.
# Prints median (min) over BENCH_REPS repetitions. Needs root, cc, taskset,
# curl.
source "$(dirname "$0")/lib.sh"
need_root
command -v curl >/dev/null || die "curl is needed for the scrape benchmark"
bench_build

RESULTS=$OUT_DIR/output.raw
: > "$RESULTS"
TP=syscalls:sys_enter_getppid
WORK="taskset -c $STORM_CPU $STORM $N"

# printf_run FORMAT: one run of N printf records in FORMAT.
printf_run() {
    local f=$1 marker=Tracing report line storm out="$TMP/out.$1" lines
    [ "$f" = json ] && marker='"attached"'
    monitored "$TMP/out.report" "$BENCHRUN" -m "$marker" -w "$WORK" -i 0 -k 300000 -O "$out" -E "$TMP/out.err" -- \
        $(pin_tracer) "$KTAP" -f "$f" -b 64M -e "trace $TP { printf(\"%d %s\\n\", pid, execname) }"
    report=$(cat "$TMP/out.report")
    storm=$(echo "$report" | grep '^pid ' | tail -1)
    line=$(echo "$report" | grep '^attached=' | tail -1)
    pid=$(echo "$storm" | awk '{ print $2 }')
    [ -n "$pid" ] || { echo "bench: $f: no measurement: $report" >&2; cat "$TMP/out.err" >&2; return; }
    lines=$(grep -c "$pid" "$out")
    record "${f}_records" "$lines"
    record "${f}_cpu_ns" "$(calc "$(kv cpu_ms "$line") * 1000000 / $lines" 0)"
    record "${f}_per_s" "$(calc "$lines / (($(kv last_out "$line") - $(kv attached "$line")) / 1000)" 0)"
    record "${f}_bytes" "$(stat -c %s "$out")"
}

# scrape_run: the 10,000-key table, the storm with and without a scraper.
scrape_run() {
    local port addr pid i t report storm scraper
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    addr=127.0.0.1:$port
    $(pin_tracer) "$KTAP" -q --metrics "$addr" -e "var s = table.new(0, 20000) trace $TP { s[ktime_ns() % 10000] += 1 }" > /dev/null 2> "$TMP/scrape.err" &
    pid=$!
    for i in $(seq 1 100); do curl -s -o /dev/null "http://$addr/metrics" && break; sleep 0.1; done
    # Fill the table: 10,000 keys.
    $WORK > /dev/null
    record scrape_keys "$(curl -s "http://$addr/metrics" | grep -c '^ktap_s_total{')"
    for i in $(seq 1 20); do
        t=$(curl -s -o /dev/null -w '%{time_total}' "http://$addr/metrics")
        record scrape_ms "$(calc "$t * 1000" 1)"
    done
    record scrape_bytes "$(curl -s "http://$addr/metrics" | wc -c)"
    storm=$($WORK | grep '^pid ')
    record quiet_cpu_ns "$(echo "$storm" | awk '{ print $(NF-1) }')"
    taskset -c "${TRACER_CPU:-0}" bash -c "while :; do curl -s -o /dev/null http://$addr/metrics || exit; done" &
    scraper=$!
    sleep 0.5
    storm=$($WORK | grep '^pid ')
    record scraped_cpu_ns "$(echo "$storm" | awk '{ print $(NF-1) }')"
    kill "$scraper"
    wait "$scraper" 2>/dev/null
    kill -INT "$pid"
    wait "$pid"
    storm=$($WORK | grep '^pid ')
    record untraced_cpu_ns "$(echo "$storm" | awk '{ print $(NF-1) }')"
}

machine_line
for r in $(seq 1 "$REPS"); do
    echo "# repetition $r/$REPS" >&2
    wait_quiet
    printf_run text
    printf_run json
    scrape_run
done
m() { echo "$(med "$1") ($(mn "$1"))"; }
echo "## printf output: $N records, median (min) of $REPS"
echo "| format | records delivered | tracer CPU ns/record | records/s | bytes |"
echo "| --- | --- | --- | --- | --- |"
for f in text json; do
    echo "| $f | $(m ${f}_records) | $(m ${f}_cpu_ns) | $(m ${f}_per_s) | $(med ${f}_bytes) |"
done
echo "## metrics: a $(med scrape_keys)-key table, median (min) of $REPS"
echo "scrape: $(m scrape_ms) ms, $(med scrape_bytes) bytes"
echo "storm CPU ns/call: untraced $(m untraced_cpu_ns); traced, no scrapes $(m quiet_cpu_ns); traced, scraped back to back $(m scraped_cpu_ns)"
