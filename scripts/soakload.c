/* The soak run's workload (scripts/soak.sh): for SECONDS, every
 * millisecond, GETPPID getppid() calls and one getpgid(0) (each of which
 * ktap turns into a printed record); then writes how many of each it made
 * to COUNTS. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SECONDS GETPPID_PER_MS COUNTS\n", argv[0]);
        return 2;
    }
    long seconds = atol(argv[1]), per_ms = atol(argv[2]);
    unsigned long long getppids = 0, getpgids = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long ms = 0; ms < seconds * 1000; ms++) {
        for (long i = 0; i < per_ms; i++) {
            syscall(SYS_getppid);
            getppids++;
        }
        syscall(SYS_getpgid, 0);
        getpgids++;
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    FILE *f = fopen(argv[3], "w");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    fprintf(f, "getppid %llu\ngetpgid %llu\n", getppids, getpgids);
    return fclose(f) == 0 ? 0 : 1;
}
