#!/usr/bin/env python3
"""Writes a large C program for scripts/bench/dwarf.sh: a header of
NTYPES structs (every compilation unit emits them all, built with
-fno-eliminate-unused-debug-types) and NUNITS units of small functions,
so the binary carries tens of megabytes of DWARF. Usage:
dwarf_gen.py DIR NUNITS NTYPES"""
import os
import sys

out, nunits, ntypes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
kinds = ["int", "long", "unsigned short", "char", "const char *", "unsigned long long"]
with open(os.path.join(out, "big.h"), "w") as h:
    h.write("#define PROBED __attribute__((noipa, used))\n")
    for t in range(ntypes):
        h.write(f"struct s{t} {{\n")
        for m in range(24):
            if m == 5 and t > 0:
                h.write(f"\tstruct s{t - 1} *prev;\n")
            elif m == 9:
                h.write(f"\tchar name{m}[16];\n")
            else:
                h.write(f"\t{kinds[(t + m) % len(kinds)]} m{m};\n")
        h.write("};\n")
for u in range(nunits):
    with open(os.path.join(out, f"unit{u}.c"), "w") as c:
        c.write('#include "big.h"\n')
        for f in range(8):
            t = (u * 8 + f) % ntypes
            c.write(f"PROBED long fn_{u}_{f}(struct s{t} *p, int n)\n{{\n\tlong t = n;\n\tt += (long)p->m0;\n\treturn t;\n}}\n")
with open(os.path.join(out, "main.c"), "w") as c:
    c.write('#include "big.h"\n')
    c.write(f"long fn_{nunits // 2}_3(struct s{(nunits // 2 * 8 + 3) % ntypes} *p, int n);\n")
    c.write(f"int main(void) {{ struct s{(nunits // 2 * 8 + 3) % ntypes} s = {{ 0 }}; return (int)fn_{nunits // 2}_3(&s, 1) - 1; }}\n")
