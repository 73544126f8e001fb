//! (runtime: interp) — being written.
