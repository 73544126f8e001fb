//! (bpfgen: disasm) — being written.
