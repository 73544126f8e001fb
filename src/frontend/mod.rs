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
pub mod tapset;
pub mod visit;

/// Lexes and parses a whole script. Always returns a Program (with Error
/// nodes where recovery happened) plus all diagnostics, normalized.
pub fn parse(src: &str) -> (ast::Program, Vec<diag::Diagnostic>) {
    let (tokens, mut diags) = lexer::tokenize(src);
    let stmts = parser::parse_tokens(src, tokens, &mut diags);
    diag::normalize(&mut diags);
    (ast::Program { stmts }, diags)
}

/// `parse` for a source placed at byte `base` of the compilation's span
/// space (a tapset after the script, see `diag::Sources`): every span of
/// the tree and of the diagnostics is `base` bytes further on.
pub fn parse_at(src: &str, base: u32) -> (ast::Program, Vec<diag::Diagnostic>) {
    let (mut tokens, lex_diags) = lexer::tokenize(src);
    for (_, s) in &mut tokens {
        *s = ast::Span { start: s.start.saturating_add(base), end: s.end.saturating_add(base) };
    }
    let mut diags: Vec<diag::Diagnostic> = lex_diags.into_iter().map(|d| d.shifted(base)).collect();
    let stmts = parser::parse_tokens_at(src, base, tokens, &mut diags);
    diag::normalize(&mut diags);
    (ast::Program { stmts }, diags)
}
