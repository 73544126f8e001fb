//! (frontend: print) — being written.
