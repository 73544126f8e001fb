//! runtime: the only module that touches the kernel.

pub mod format;
pub mod interp;
pub mod tracefs;
pub mod argstr;
pub mod child;
pub mod perf;
pub mod session;
pub mod elfsyms;
pub mod facts;
pub mod kbtf;
pub mod kprobe;
pub mod output;
pub mod uprobe;
pub mod symbols;
pub mod flame;
pub mod metrics;
