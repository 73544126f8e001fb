//! (frontend: lexer) — being written.
