/* Test workload for ktap's kernel tests: waits for a line on stdin (so the
 * tracer can attach first), then runs THREADS threads that each call
 * getppid() COUNT times with the raw syscall, then exits. With a NAME,
 * each thread first names itself with a long name, then NAME. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long count;
static const char *name;

static void *worker(void *arg)
{
	(void)arg;
	if (name) {
		prctl(PR_SET_NAME, "a-long-old-name", 0, 0, 0);
		prctl(PR_SET_NAME, name, 0, 0, 0);
	}
	for (long i = 0; i < count; i++)
		syscall(SYS_getppid);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 1;
	char line[16];
	pthread_t tid[64];

	count = argc > 2 ? atol(argv[2]) : 1;
	name = argc > 3 ? argv[3] : NULL;
	if (threads < 1 || threads > 64)
		return 2;
	if (!fgets(line, sizeof(line), stdin))
		return 3;
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
