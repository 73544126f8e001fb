//! (bpfgen: insn) — being written.
