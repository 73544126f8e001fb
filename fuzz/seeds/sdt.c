#define NOTE(prov, name, args) __asm__ volatile("990: nop\n" \
  ".pushsection .note.stapsdt,\"?\",\"note\"\n.balign 4\n" \
  ".4byte 992f-991f, 994f-993f, 3\n991: .asciz \"stapsdt\"\n992: .balign 4\n" \
  "993: .8byte 990b\n.8byte _.stapsdt.base\n.8byte 0\n" \
  ".asciz \"" prov "\"\n.asciz \"" name "\"\n.asciz \"" args "\"\n994: .balign 4\n.popsection\n" \
  ".ifndef _.stapsdt.base\n.pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n" \
  ".weak _.stapsdt.base\n.hidden _.stapsdt.base\n_.stapsdt.base: .space 1\n.popsection\n.endif\n")
int app_open(int x) { NOTE("app", "request", "-4@%eax 8@-8(%rbp) 8@$12"); return x + 1; }
int app_read(int x) { NOTE("app", "done", "8@%rdx"); return x * 2; }
void _start(void) { app_open(app_read(1)); for (;;) {} }
