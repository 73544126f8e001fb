/* getppid storm: calls syscall(SYS_getppid) N times and prints ns/call.
 * Usage: getppid_storm [N [NR]]   (default 1000000 calls of getppid; NR:
 * another syscall number without arguments, e.g. 39 for getpid, to measure
 * what tracing getppid costs the other syscalls)
 * Output (one line): "pid <PID> <N> calls <total_ns> ns <ns_per_call> ns/call" */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long nr = argc > 2 ? atol(argv[2]) : SYS_getppid;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(nr);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
	printf("pid %d %ld calls %lld ns %.1f ns/call\n", (int)getpid(), n, ns, (double)ns / n);
	return 0;
}
