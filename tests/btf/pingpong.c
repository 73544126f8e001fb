/* Workload for ktap's BTF tests: two threads named "ping" and "pong"
 * hand the CPU to each other ROUNDS times over two pipes (run it pinned
 * to one CPU). Before the first round it prints its pid, its parent's
 * and both threads' ids: "pid P ppid Q ping T1 pong T2". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long rounds;
static int ab[2], ba[2];
static pthread_barrier_t ready, go;
static long tids[2];

static void *player(void *arg)
{
	long me = (long)arg;
	char c = 0;

	prctl(PR_SET_NAME, me ? "pong" : "ping", 0, 0, 0);
	tids[me] = syscall(SYS_gettid);
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&go);
	for (long i = 0; i < rounds; i++) {
		if (me == 0) {
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				exit(4);
		} else {
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				exit(4);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[2];

	rounds = argc > 1 ? atol(argv[1]) : 100;
	if (pipe(ab) || pipe(ba))
		return 2;
	pthread_barrier_init(&ready, NULL, 3);
	pthread_barrier_init(&go, NULL, 3);
	for (long i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, player, (void *)i);
	pthread_barrier_wait(&ready);
	printf("pid %d ppid %d ping %ld pong %ld\n", getpid(), getppid(), tids[0], tids[1]);
	fflush(stdout);
	pthread_barrier_wait(&go);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 0;
}
