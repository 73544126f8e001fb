//! (frontend: diag) — being written.
