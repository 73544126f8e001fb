//! runtime: the only module that touches the kernel.

pub mod format;
pub mod interp;
pub mod tracefs;
pub mod argstr;
pub mod attach;
pub mod bpfmap;
pub mod btf_listing;
pub mod child;
pub mod session;
pub mod elfsyms;
pub mod dwarf;
pub mod facts;
pub mod kbtf;
pub mod mapped;
pub mod listing;
pub mod output;
pub mod symbols;
pub mod flame;
pub mod metrics;
pub mod tapsets;
