//! Diagnostics: the one type every frontend pass reports user mistakes
//! with, plus normalization and rendering through codespan-reporting.
//! Never does IO and never panics, whatever spans it is handed.

use std::fmt::Write as _;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label, Severity as CsSeverity};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::termcolor::{Ansi, NoColor};
use codespan_reporting::term::{self, Config};

pub use super::ast::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One user-facing message about one place in the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The primary location, underlined with `label`.
    pub span: Span,
    pub label: String,
    pub notes: Vec<String>,
    /// Other related places, each with its own label.
    pub secondary: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            notes: Vec::new(),
            secondary: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(span, message) }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The same diagnostic with every span moved `by` bytes to the right.
    pub fn shifted(mut self, by: u32) -> Self {
        let shift = |s: Span| Span { start: s.start.saturating_add(by), end: s.end.saturating_add(by) };
        self.span = shift(self.span);
        for (s, _) in &mut self.secondary {
            *s = shift(*s);
        }
        self
    }
}

/// Sorts by span then message, deduplicates.
pub fn normalize(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        (a.span.start, a.span.end, &a.message, a.severity, &a.label)
            .cmp(&(b.span.start, b.span.end, &b.message, b.severity, &b.label))
    });
    diags.dedup_by(|b, a| a.span == b.span && a.message == b.message);
}

/// Clamps a span to the source and to char boundaries so that rendering
/// never fails on a span produced by a buggy or synthetic location.
fn clamp(src: &str, span: Span) -> std::ops::Range<usize> {
    let mut start = (span.start as usize).min(src.len());
    let mut end = (span.end as usize).min(src.len()).max(start);
    while !src.is_char_boundary(start) {
        start -= 1;
    }
    while !src.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The texts a compilation's spans point into: the script at byte 0, then
/// each tapset it pulled in at a base past the end of the one before (so
/// one `Span` says which file it is in). Plain data for the renderers.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

/// One text of `Sources`.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// What diagnostics call it (a path, `<command line>`).
    pub name: String,
    pub text: String,
    /// Where its bytes start in the span space.
    pub base: u32,
    /// The tapset's namespace (`None`: the script).
    pub namespace: Option<String>,
    /// The first use that pulled it in (in the script or another tapset).
    pub used_at: Option<Span>,
}

impl Sources {
    /// Just the script.
    pub fn script(name: impl Into<String>, text: impl Into<String>) -> Sources {
        Sources { files: vec![SourceFile { name: name.into(), text: text.into(), base: 0, namespace: None, used_at: None }] }
    }

    /// Where the next file added will start.
    pub fn next_base(&self) -> u32 {
        self.files.last().map_or(0, |f| f.base.saturating_add(f.text.len() as u32).saturating_add(1))
    }

    /// Adds a tapset's text at `next_base()`; returns that base.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>, namespace: &str, used_at: Span) -> u32 {
        let base = self.next_base();
        self.files.push(SourceFile { name: name.into(), text: text.into(), base, namespace: Some(namespace.to_string()), used_at: Some(used_at) });
        base
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The index of the file `offset` is in (the script when none is).
    pub fn file_of(&self, offset: u32) -> usize {
        self.files.iter().rposition(|f| f.base <= offset).unwrap_or(0)
    }

    /// `file:line:col` of an offset anywhere in the span space.
    pub fn location(&self, offset: u32) -> String {
        match self.files.get(self.file_of(offset)) {
            Some(f) => location(&f.name, &f.text, offset.saturating_sub(f.base)),
            None => format!("<unknown>:{offset}"),
        }
    }

    /// Where `offset` is for a listing: its line number (`12` in the
    /// script, `FILE:12` in a tapset) and that line's text.
    pub fn line(&self, offset: u32) -> (String, String) {
        let Some(f) = self.files.get(self.file_of(offset)) else { return (String::new(), String::new()) };
        let at = clamp(&f.text, Span { start: offset.saturating_sub(f.base), end: offset.saturating_sub(f.base) }).start;
        let start = f.text[..at].rfind('\n').map_or(0, |p| p + 1);
        let end = f.text[at..].find('\n').map_or(f.text.len(), |p| at + p);
        let n = f.text[..start].matches('\n').count() + 1;
        let text = f.text[start..end].to_string();
        match f.namespace {
            None => (n.to_string(), text),
            Some(_) => (format!("{}:{n}", f.name), text),
        }
    }

    /// "`net` is used at x.kp:3:9" lines, from a tapset back to the
    /// script (at most as many as there are files: no loop).
    fn used_notes(&self, offset: u32) -> Vec<String> {
        let mut notes = Vec::new();
        let mut file = self.file_of(offset);
        while let Some(f) = self.files.get(file).filter(|_| notes.len() < self.files.len()) {
            let (Some(ns), Some(at)) = (&f.namespace, f.used_at) else { break };
            notes.push(format!("tapset `{ns}` ({}) is used at {}", f.name, self.location(at.start)));
            file = self.file_of(at.start);
        }
        notes
    }

    /// A span of the span space as (file, range in that file's text).
    fn local(&self, span: Span) -> (usize, std::ops::Range<usize>) {
        let i = self.file_of(span.start);
        match self.files.get(i) {
            Some(f) => {
                let shifted = Span { start: span.start - f.base, end: span.end.saturating_sub(f.base) };
                (i, clamp(&f.text, shifted))
            }
            None => (0, 0..0),
        }
    }
}

/// Renders with codespan-reporting: `error: message` then `--> file:line:col`,
/// the source line with the span underlined, label, notes.
pub fn render(file_name: &str, src: &str, diags: &[Diagnostic], color: bool) -> String {
    render_sources(&Sources::script(file_name, src), diags, color)
}

/// `render` for a script and its tapsets: each span shown in its own file;
/// a diagnostic in a tapset says which line pulled the tapset in.
pub fn render_sources(sources: &Sources, diags: &[Diagnostic], color: bool) -> String {
    let mut files = SimpleFiles::new();
    for f in sources.files() {
        files.add(f.name.as_str(), f.text.as_str());
    }
    let config = Config::default();
    let mut out = String::new();
    for d in diags {
        let (file, range) = sources.local(d.span);
        let mut labels = vec![Label::primary(file, range).with_message(d.label.clone())];
        for (span, label) in &d.secondary {
            let (file, range) = sources.local(*span);
            labels.push(Label::secondary(file, range).with_message(label.clone()));
        }
        let severity = match d.severity {
            Severity::Error => CsSeverity::Error,
            Severity::Warning => CsSeverity::Warning,
        };
        let mut notes = d.notes.clone();
        notes.extend(sources.used_notes(d.span.start));
        let cs = CsDiagnostic::new(severity).with_message(d.message.clone()).with_labels(labels).with_notes(notes);
        let rendered = if color {
            let mut w = Ansi::new(Vec::new());
            term::emit(&mut w, &config, &files, &cs).map(|()| w.into_inner())
        } else {
            let mut w = NoColor::new(Vec::new());
            term::emit(&mut w, &config, &files, &cs).map(|()| w.into_inner())
        };
        match rendered {
            Ok(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
            // Rendering only fails on bad spans, which clamp() rules out;
            // still, fall back to a one-line message rather than lose it.
            Err(_) => {
                let _ = writeln!(out, "{}: {}", sources.location(d.span.start), d.message);
            }
        }
    }
    out
}

/// `file:line:col` (1-based) of a byte offset, for one-line messages.
/// Columns count characters, not bytes.
/// Up to `n` of `candidates` close to `want` (by edit distance, or
/// sharing it as a prefix), closest first: for "did you mean" notes.
pub fn near_names<'a>(want: &str, candidates: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(|c| (edit_distance(want, c), c))
        .filter(|(d, c)| *d <= want.len() / 3 + 1 || (want.len() >= 3 && c.starts_with(want)))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(n).map(|(_, c)| c.to_string()).collect()
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let mut best = (d[(i - 1) * w + j - 1] + usize::from(a[i - 1] != b[j - 1])).min(d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

pub fn location(file_name: &str, src: &str, offset: u32) -> String {
    let at = clamp(src, Span { start: offset, end: offset }).start;
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    format!("{file_name}:{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tapset_diagnostic_shows_its_file_and_the_using_line() {
        let script = "print(t.f())";
        let mut sources = Sources::script("s.kp", script);
        let base = sources.add("/lib/t.kp", "function f() {\n  return x\n}", "t", Span::new(6, 9));
        assert_eq!(base as usize, script.len() + 1);
        let x = base + "function f() {\n  return ".len() as u32;
        let text = render_sources(&sources, &[Diagnostic::error(Span { start: x, end: x + 1 }, "bad x")], false);
        assert!(text.contains("/lib/t.kp:2:10"), "{text}");
        assert!(text.contains("tapset `t` (/lib/t.kp) is used at s.kp:1:7"), "{text}");
        assert_eq!(sources.location(x), "/lib/t.kp:2:10");
        // The script's own diagnostics render as before.
        let d = [Diagnostic::error(Span::new(6, 9), "bad call")];
        assert_eq!(render_sources(&sources, &d, false), render("s.kp", script, &d, false));
    }

    #[test]
    fn location_is_one_based() {
        let src = "ab\ncdé\nf";
        assert_eq!(location("x.kp", src, 0), "x.kp:1:1");
        assert_eq!(location("x.kp", src, 4), "x.kp:2:2");
        assert_eq!(location("x.kp", src, 8), "x.kp:3:1");
        assert_eq!(location("x.kp", src, 999), "x.kp:3:2");
    }

    #[test]
    fn normalize_sorts_and_dedups() {
        let a = Diagnostic::error(Span::new(5, 6), "b");
        let b = Diagnostic::error(Span::new(1, 2), "a");
        let mut v = vec![a.clone(), b.clone(), a.clone()];
        normalize(&mut v);
        assert_eq!(v, vec![b, a]);
    }

    #[test]
    fn render_survives_bad_spans() {
        let d = Diagnostic::error(Span::new(3, 400), "oops").with_label("here");
        let s = render("t.kp", "é=é", &[d], false);
        assert!(s.contains("error: oops"), "{s}");
        assert!(s.contains("t.kp:1:"), "{s}");
    }
}
