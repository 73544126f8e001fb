/* The program tests/kernel_dwarf.rs probes by name: functions taking and
 * returning structs, a loop with a counter, built with -g at -O0 and -O2.
 * noipa keeps gcc from inlining, cloning or changing the probed functions'
 * calling convention; used keeps them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct point {
	int x;
	int y;
};

struct shape {
	struct point origin;
	const char *name;
	char tag[8];
	long area;
	int sides[4];
	struct shape *next;
};

#define PROBED __attribute__((noipa, used))

static volatile long sink_total;

PROBED void dw_sink(long v)
{
	sink_total += v;
}

PROBED long dw_area(struct shape *s, int scale, const char *label)
{
	long a = s->area * scale;
	dw_sink(a);
	return a + (long)strlen(label); /* AFTER */
}

PROBED struct shape *dw_make(int x, int y)
{
	static struct shape made = { .name = "made", .tag = "mk" };
	made.origin.x = x;
	made.origin.y = y;
	made.area = (long)x * y;
	return &made;
}

PROBED long dw_sum(int n)
{
	long total = 0;
	for (int i = 0; i < n; i++) {
		dw_sink(i); /* LOOP */
		total += i;
	}
	return total;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1;
	char line[16];
	struct shape other = { .origin = { 5, 6 }, .name = "other", .tag = "ot", .area = 1 };
	struct shape sq = { .origin = { 3, -4 }, .name = "square", .tag = "sq", .area = 16, .sides = { 4, 4, 4, 4 }, .next = &other };

	if (!fgets(line, sizeof(line), stdin))
		return 3;
	/* Fault the strings in: a probe cannot page them in. */
	sink_total += *(volatile const char *)sq.name + *(volatile const char *)other.name + *(volatile const char *)"big";
	for (long i = 1; i <= count; i++) {
		sq.sides[2] = (int)i;
		sink_total += dw_area(&sq, (int)i, "big");
		sink_total += dw_make((int)i, 7)->area;
		sink_total += dw_sum(3);
	}
	printf("done %ld\n", sink_total > 0);
	return 0;
}
