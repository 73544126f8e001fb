//! Frontend: source text to a checked AST. Owns every user-facing
//! diagnostic. Pure: no IO, never panics on any input.

pub mod ast;
pub mod check;
pub mod diag;
pub mod fasthash;
pub mod fetch;
pub mod lower;
pub mod lexer;
pub mod parser;
pub mod print;
pub mod providers;
pub mod resolve;
pub mod visit;

/// Lexes and parses a whole script. Always returns a Program (with Error
/// nodes where recovery happened) plus all diagnostics, normalized.
pub fn parse(src: &str) -> (ast::Program, Vec<diag::Diagnostic>) {
    let (tokens, mut diags) = lexer::tokenize(src);
    let stmts = parser::parse_tokens(src, tokens, &mut diags);
    diag::normalize(&mut diags);
    (ast::Program { stmts }, diags)
}
