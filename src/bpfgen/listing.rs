//! Annotated listings: disassembly interleaved with the source lines each
//! run of instructions came from (`--emit bpf`, goldens). No IO.

use super::disasm::insn_text;
use super::insn::Insn;
use crate::span::Span;
use std::fmt::Write;

/// One line per instruction (`index: text`), preceded by `; N: source`
/// whenever the source line changes.
pub fn with_source(insns: &[Insn], spans: &[Option<Span>], src: &str) -> String {
    with_lines(insns, spans, &|s: Span| {
        let (n, text) = line_of(src, s.start as usize);
        (n.to_string(), text)
    })
}

/// `with_source` where `line` says where a span is (`12`, `net.kp:48`)
/// and the text of its line: for a script with tapsets, whose spans
/// point into several texts.
pub fn with_lines(insns: &[Insn], spans: &[Option<Span>], line: &dyn Fn(Span) -> (String, String)) -> String {
    let mut out = String::new();
    let mut last_line = None;
    let mut i = 0;
    while i < insns.len() {
        let at = spans.get(i).copied().flatten().map(line);
        if at.is_some() && at != last_line {
            if let Some((n, text)) = &at {
                let _ = writeln!(out, "; {n}: {}", text.trim());
            }
            last_line = at.clone();
        }
        let wide = insns[i].is_wide();
        let _ = writeln!(out, "{i:>4}: {}", insn_text(&insns[i], insns.get(i + 1).filter(|_| wide)));
        i += if wide { 2 } else { 1 };
    }
    out
}

/// 1-based line number and text of the line holding `offset`.
fn line_of(src: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(src.len());
    let start = src[..offset].rfind('\n').map_or(0, |p| p + 1);
    let end = src[offset..].find('\n').map_or(src.len(), |p| offset + p);
    (src[..start].matches('\n').count() + 1, src[start..end].to_string())
}
