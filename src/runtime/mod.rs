//! runtime: the only module that touches the kernel.

pub mod format;
pub mod interp;
