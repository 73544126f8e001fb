#!/usr/bin/env bash
# BPF iterators: time and CPU of a `ps` made of `iter:task` on a machine
# with BENCH_THREADS (default 5000) extra threads, spawned here (one
# process, threads blocked on a pipe, gone when the script ends), next to
#   ps          ps -eLo pid,comm
#   proc        a C program reading /proc/PID/task/TID/comm for every
#               thread (what ps does, without the rest)
#   iter        ktap -q -e 'trace iter:task { printf("%d %s\n", ...) }'
#               (the kernel walks its tasks once, output through seq_file)
#   iter_filter the same with a filter no task passes, in the kernel
#               (what the walk itself costs, output aside)
# Each command's output goes to /dev/null; wall time and user+sys CPU come
# from bash's `time` (getrusage of the children, in ms). Prints median (min) over
# BENCH_REPS repetitions, and how many lines each listed.
source "$(dirname "$0")/lib.sh"
need_root
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$REPO" && cargo build --release -q) || die "cargo build failed"
fi
THREADS=${BENCH_THREADS:-5000}
cat > "$TMP/iter_threads.c" <<'C'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int fds[2];
static void *park(void *arg) { char c; (void)arg; read(fds[0], &c, 1); return NULL; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    if (pipe(fds)) return 1;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &a, park, NULL)) { perror("pthread_create"); return 1; }
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    read(0, &c, 1); /* until stdin closes */
    return 0;
}
C
cat > "$TMP/iter_proc.c" <<'C'
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    DIR *p = opendir("/proc");
    struct dirent *e;
    char path[512], comm[64];
    while (p && (e = readdir(p))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/task", e->d_name);
        DIR *t = opendir(path);
        struct dirent *f;
        while (t && (f = readdir(t))) {
            if (f->d_name[0] < '0' || f->d_name[0] > '9') continue;
            snprintf(path, sizeof path, "/proc/%s/task/%s/comm", e->d_name, f->d_name);
            FILE *c = fopen(path, "r");
            if (!c) continue;
            if (fgets(comm, sizeof comm, c)) printf("%s %s", f->d_name, comm);
            fclose(c);
        }
        if (t) closedir(t);
    }
    return 0;
}
C
cc -O2 -pthread -o "$BIN_DIR/iter_threads" "$TMP/iter_threads.c" || die "cannot build iter_threads"
cc -O2 -o "$BIN_DIR/iter_proc" "$TMP/iter_proc.c" || die "cannot build iter_proc"

# The threads: held until this script's end (its stdin is our pipe).
exec 7> >("$BIN_DIR/iter_threads" "$THREADS" > "$TMP/iter_threads.out")
for _ in $(seq 1 200); do grep -q ready "$TMP/iter_threads.out" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$TMP/iter_threads.out" || die "threads did not start"
echo "threads on the machine: $(ls -d /proc/[0-9]*/task/[0-9]* | wc -l)"

ITER='trace iter:task { printf("%d %s\n", args.task.pid, args.task.comm) }'
NONE='trace iter:task /args.task.pid < 0/ { printf("%d %s\n", args.task.pid, args.task.comm) }'
run() {
    case $1 in
        ps) ps -eLo pid,comm ;;
        proc) "$BIN_DIR/iter_proc" ;;
        iter) "$KTAP" -q -e "$ITER" ;;
        iter_filter) "$KTAP" -q -e "$NONE" ;;
    esac
}
RAW=$OUT_DIR/iter.raw
: > "$RAW"
for r in $(seq 1 "$REPS"); do
    for c in ps proc iter iter_filter; do
        lines=$(run $c | wc -l)
        TIMEFORMAT='%3R %3U %3S'
        { time run $c > /dev/null; } 2> "$TMP/iter.time"
        read -r wall user sys < "$TMP/iter.time"
        echo "$c $wall $(echo "$user + $sys" | bc) $lines" >> "$RAW"
    done
done
exec 7>&-
printf '%-12s %-22s %-22s %s\n' what "wall ms median (min)" "CPU ms median (min)" lines
for c in ps proc iter iter_filter; do
    awk -v c=$c '$1 == c { print $2 * 1000, $3 * 1000, $4 }' "$RAW" | sort -n | gawk -v c=$c '
        { w[NR] = $1; cpu[NR] = $2; l = $3 }
        END {
            n = asort(cpu, s)
            printf "%-12s %-22s %-22s %s\n", c, sprintf("%.0f (%.0f)", w[int((NR + 1) / 2)], w[1]), sprintf("%.0f (%.0f)", s[int((n + 1) / 2)], s[1]), l
        }'
done
