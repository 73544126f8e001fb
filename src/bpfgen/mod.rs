//! bpfgen: kernel IR to BPF instructions and a BPF ELF object. Pure: bytes
//! in, bytes out, no syscalls.

pub mod codegen;
pub mod core;
pub mod disasm;
pub mod elf;
pub mod insn;
pub mod listing;
