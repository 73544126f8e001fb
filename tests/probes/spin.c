/* Flame graph target: spins in ktap_hot_spin (called from main through
 * ktap_outer) until killed, so profile samples land there. Built with
 * frame pointers, so user stacks can be walked. */
#include <stdio.h>

static volatile unsigned long sink;

__attribute__((noinline)) void ktap_hot_spin(void)
{
	for (unsigned long i = 0; i < 100000000UL; i++)
		sink += i;
}

__attribute__((noinline)) void ktap_outer(void)
{
	ktap_hot_spin();
	__asm__ volatile("" ::: "memory");
}

int main(void)
{
	for (;;)
		ktap_outer();
	return 0;
}
