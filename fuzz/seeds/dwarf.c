/* The dwarf fuzz target's seed program: the shapes the DWARF reader
 * converts (structs, pointers, arrays, bitfields, enums, unions,
 * typedefs, const/volatile, function pointers, a struct pointing to
 * itself, a declared-only struct, locals in nested blocks). Built without
 * libc and never run; in fuzz/seeds, with
 *   F="-nostdlib -static -fno-pie -no-pie -fdebug-prefix-map=$PWD=/src
 *      -Wl,--build-id=none -Wl,-n -Wl,-z,noseparate-code"
 *   gcc -g -O0 $F -o dwarf/dwarf_O0.elf dwarf.c
 *   gcc -g -O2 $F -o dwarf/dwarf_O2.elf dwarf.c
 *   gcc -gdwarf-4 -O2 $F -o dwarf/dwarf_O2_dwarf4.elf dwarf.c
 *   gcc -g -O2 -shared -fPIC -nostdlib -fdebug-prefix-map=$PWD=/src
 *       -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-z,max-page-size=0x10
 *       -o dwarf/dwarf_O2.so dwarf.c
 * and tests/dwarf/shapes.c, in its directory, with -g -O0 and -g -O2,
 * $F -e main -Wl,--unresolved-symbols=ignore-all, into
 * dwarf/shapes_O0.elf and dwarf/shapes_O2.elf; then
 *   objcopy -R .comment -R .note.gnu.property dwarf/FILE
 * (gcc 12.2, Debian 12: DWARF 5 unless told otherwise). */
typedef unsigned long size_t;
enum color { RED, GREEN = 5, BLUE = -1 };
struct point { int x, y; };
struct flags { unsigned ready : 1, mode : 3; signed level : 4; unsigned long wide; };
union word { int i; char c[4]; float f; };
typedef struct node { struct node *next; const char *name; struct point at[2]; union word w; enum color color; struct flags fl; int grid[2][3]; } node_t;
typedef int (*visit_fn)(node_t *, void *);
struct opaque;
volatile long sink;

__attribute__((noinline, used)) long fz_walk(node_t *n, visit_fn f, void *arg)
{
	long total = 0;
	for (int depth = 0; n && depth < 8; depth++) {
		int seen = f ? f(n, arg) : 0;
		if (seen > 1) {
			long inner = seen * 2 + n->at[1].y;
			total += inner;
		}
		total += n->fl.level + n->grid[1][2];
		n = n->next;
	}
	return total;
}

__attribute__((noinline, used)) struct point fz_mid(const struct point *a, struct point b, enum color c, struct opaque *o)
{
	struct point m = { (a->x + b.x) / 2, (a->y + b.y) / 2 };
	sink += (long)o + c;
	return m;
}

__attribute__((noinline, used)) union word fz_word(unsigned char k, size_t n, const volatile char *s)
{
	union word w = { .i = k };
	{
		char last = s[n];
		w.c[3] = last;
	}
	return w;
}

static int count(node_t *n, void *arg) { return n->name[0] + (arg != 0); }

void _start(void)
{
	node_t b = { .name = "b", .color = BLUE, .fl = { 1, 2, -3, 4 } };
	node_t a = { .next = &b, .name = "a", .at = { { 1, 2 }, { 3, 4 } }, .grid = { { 1 }, { 2 } } };
	struct point p = { 7, 8 };
	sink = fz_walk(&a, count, &p) + fz_mid(&p, p, GREEN, 0).x + fz_word(9, 0, "x").i;
	for (;;) {}
}
