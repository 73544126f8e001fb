//! (temporary stand-in for the diagnostics contract; replaced by the frontend branch)
use super::ast::Span;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity { Error, Warning }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic { pub severity: Severity, pub message: String, pub span: Span, pub label: String, pub notes: Vec<String>, pub secondary: Vec<(Span, String)> }
impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self { Diagnostic { severity: Severity::Error, message: message.into(), span, label: String::new(), notes: vec![], secondary: vec![] } }
    pub fn with_label(mut self, l: impl Into<String>) -> Self { self.label = l.into(); self }
    pub fn with_note(mut self, n: impl Into<String>) -> Self { self.notes.push(n.into()); self }
    pub fn with_secondary(mut self, s: Span, l: impl Into<String>) -> Self { self.secondary.push((s, l.into())); self }
}
pub fn normalize(d: &mut Vec<Diagnostic>) { d.sort_by(|a, b| (a.span, &a.message).cmp(&(b.span, &b.message))); d.dedup(); }
