//! Frontend: source text to a checked AST. Owns every user-facing
//! diagnostic. Pure: no IO, never panics on any input.

pub mod ast;
pub mod diag;
pub mod lower;
pub mod lexer;
pub mod parser;
pub mod print;
