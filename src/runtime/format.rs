//! (runtime: format) — being written.
