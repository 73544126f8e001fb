//! (bpfgen: elf) — being written.
