//! ktap: compiles ktap scripts to eBPF and runs them. This file is the
//! pipeline in a few straight lines; the stages live in their modules.

pub mod bpfgen;
pub mod frontend;
pub mod ir;
pub mod runtime;
