//! Source spans: byte ranges of the script text, shared by every layer
//! (AST nodes, IR side tables, BPF listings, runtime errors). Plain data:
//! no source text, no rendering.

use std::fmt;

/// A byte range `[start, end)` in the source text of one script, or of a
/// tapset it uses: those are placed after the script, each at its own base
/// (`frontend::diag::Sources` says which text an offset is in).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}
