/* getppid storm: calls syscall(SYS_getppid) N times and prints ns/call.
 * Usage: getppid_storm [N [NR]]   (default 1000000 calls of getppid; NR:
 * another syscall number without arguments, e.g. 39 for getpid, to measure
 * what tracing getppid costs the other syscalls)
 * Output (one line):
 *   "pid <PID> <N> calls <wall_ns> ns <wall_ns_per_call> ns/call <cpu_ns_per_call> cpu-ns/call"
 * cpu-ns/call counts this thread's CPU time only (user + kernel, which
 * includes the BPF programs run in its syscalls), so time slices lost to
 * other processes on a shared machine do not inflate it. */
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
	struct timespec a, b, ca, cb;
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
	for (long i = 0; i < n; i++)
		syscall(nr);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
	long long cpu = (cb.tv_sec - ca.tv_sec) * 1000000000LL + (cb.tv_nsec - ca.tv_nsec);
	printf("pid %d %ld calls %lld ns %.1f ns/call %.1f cpu-ns/call\n", (int)getpid(), n, ns, (double)ns / n, (double)cpu / n);
	return 0;
}
