/* Target for ktap's uprobe/uretprobe syscall test: a function that starts
 * with a 5-byte nop (a uprobe there is optimized into a call through the
 * kernel's uprobe trampoline after its first hit). Waits for a line on
 * stdin, so the tracer can attach first, then calls it COUNT times. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((naked, noinline)) void ktap_nop5(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n\tret\n");
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1;
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	for (long i = 0; i < count; i++)
		ktap_nop5();
	return 0;
}
