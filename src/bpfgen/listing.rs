//! Annotated listings: disassembly interleaved with the source lines each
//! run of instructions came from (`--emit bpf`, goldens). No IO.

use super::disasm::insn_text;
use super::insn::Insn;
use crate::span::Span;
use std::fmt::Write;

/// One line per instruction (`index: text`), preceded by `; N: source`
/// whenever the source line changes.
pub fn with_source(insns: &[Insn], spans: &[Option<Span>], src: &str) -> String {
    let mut out = String::new();
    let mut last_line = None;
    let mut i = 0;
    while i < insns.len() {
        let line = spans.get(i).copied().flatten().map(|s| line_of(src, s.start as usize));
        if line.is_some() && line != last_line {
            if let Some((n, text)) = &line {
                let _ = writeln!(out, "; {n}: {}", text.trim());
            }
            last_line = line.clone();
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
