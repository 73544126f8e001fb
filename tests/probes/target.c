/* Probe target for ktap's dynamic-probe tests: waits for a line on stdin
 * (so the tracer can attach first), then calls functions with known
 * arguments, hits USDT markers (one guarded by a semaphore) and mallocs a
 * known size, COUNT times. With "loop" it repeats until killed. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>

unsigned short ktap_test_guarded_semaphore __attribute__((unused, section(".probes")));
unsigned short ktap_test_plain_semaphore __attribute__((unused, section(".probes")));

struct pair {
	long x;
	int y;
	const char *name;
};

__attribute__((noinline)) long ktap_add3(long a, long b, long c)
{
	__asm__ volatile("" ::: "memory");
	return a + b + c;
}

__attribute__((noinline)) int ktap_neg(int v)
{
	__asm__ volatile("" ::: "memory");
	return -v;
}

__attribute__((noinline)) long ktap_pair(const struct pair *p)
{
	__asm__ volatile("" ::: "memory");
	return p->x + p->y + (long)strlen(p->name);
}

__attribute__((noinline)) void ktap_greet(const char *who)
{
	__asm__ volatile("" ::: "memory");
	(void)who;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1;
	int loop = argc > 2 && strcmp(argv[2], "loop") == 0;
	char line[16];
	long sum = 0;

	if (!loop && !fgets(line, sizeof(line), stdin))
		return 3;
	do {
		for (long i = 1; i <= count; i++) {
			struct pair p = { .x = 40 + i, .y = -7, .name = "pairname" };
			/* Fault the string in: a probe cannot page it in. */
			sum += *(volatile const char *)p.name;
			sum += ktap_add3(i, 20, 300);
			sum += ktap_neg(5);
			sum += ktap_pair(&p);
			ktap_greet("world");
			STAP_PROBE2(ktap_test, plain, i, -3);
			if (ktap_test_guarded_semaphore)
				STAP_PROBE3(ktap_test, guarded, i, 7, "marker");
			void *m = malloc(12345);
			__asm__ volatile("" : : "r"(m) : "memory");
			free(m);
		}
		if (loop)
			usleep(10000);
	} while (loop);
	printf("sum %ld semaphore %d\n", sum, ktap_test_guarded_semaphore);
	return 0;
}
