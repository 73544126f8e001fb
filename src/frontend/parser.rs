//! (frontend: parser) — being written.
