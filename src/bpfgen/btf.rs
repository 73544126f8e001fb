//! (bpfgen: btf) — being written.
