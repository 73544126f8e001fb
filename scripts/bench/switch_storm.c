/* Context-switch storm: two threads hand the CPU to each other N times
 * over two pipes (run it pinned to one CPU, so every hand-over is a
 * context switch between them: 2N switches). Prints, like getppid_storm,
 *   "pid <PID> <2N> calls <wall_ns> ns <wall_ns_per_switch> ns/call <cpu_ns_per_switch> cpu-ns/call"
 * where the CPU time is the process's (both threads: their syscalls, the
 * switches and the BPF programs run at each sched_switch). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long n;
static int ab[2], ba[2];

static void *pong(void *arg)
{
	char c;
	(void)arg;
	for (long i = 0; i < n; i++)
		if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
			exit(4);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	struct timespec a, b, ca, cb;
	char c = 0;

	n = argc > 1 ? atol(argv[1]) : 200000;
	if (pipe(ab) || pipe(ba))
		return 2;
	pthread_create(&t, NULL, pong, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ca);
	for (long i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			return 4;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cb);
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
	long long cpu = (cb.tv_sec - ca.tv_sec) * 1000000000LL + (cb.tv_nsec - ca.tv_nsec);
	printf("pid %d %ld calls %lld ns %.1f ns/call %.1f cpu-ns/call\n", (int)getpid(), 2 * n, ns, (double)ns / (2 * n), (double)cpu / (2 * n));
	return 0;
}
