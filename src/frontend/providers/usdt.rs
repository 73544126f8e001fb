//! USDT markers, `sdt:BINARY:MARKER` (MARKER may be a glob): expands
//! against the binary's `.note.stapsdt` notes (kernel facts) into uprobe
//! points with the marker's semaphore; bodies read `arg0` (the ip) and
//! `arg1..` as the note's operands describe them. Pure.

use super::fetch_args::{convert, reg, value, ArgLayout, Slot};
use super::spec::{binary_colon, cx_piece_or, sub, Piece, SpecCx};
use super::{Cx, Family, Point, Provider, Reads};
use crate::frontend::ast::{self, EventKind};
use crate::frontend::diag::Diagnostic;
use crate::frontend::fetch;
use crate::ir::{AddrSpace, Attach, RegOffset, UprobePoint};

pub struct Usdt;

impl Provider for Usdt {
    fn name(&self) -> &'static str {
        "usdt"
    }

    fn claims(&self, head: &str) -> bool {
        head.starts_with("sdt:")
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<EventKind> {
        parse_sdt(cx, sub(head, 4, text.len()), &text[4..])
    }

    fn takes_fetch_args(&self) -> bool {
        true
    }

    fn family(&self) -> Family {
        Family::Fetch
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point> {
        let ast::EventKind::Sdt { binary, marker } = &spec.kind else { return Vec::new() };
        resolve(cx, spec, binary, marker).into_iter().map(|(layout, attach)| Point { attach, reads: Reads::Fetch(layout) }).collect()
    }
}

fn parse_sdt(cx: &mut SpecCx<'_>, p: Piece, rest: &str) -> Option<EventKind> {
    let Some(c) = binary_colon(rest) else {
        cx.err(cx_piece_or(p), "malformed sdt spec", "expected `sdt:/path/to/binary:marker`");
        return None;
    };
    if c == 0 {
        cx.err(sub(p, 0, 1), "missing binary before ':'", "expected a path");
        return None;
    }
    if c + 1 == rest.len() {
        cx.err(sub(p, c, c + 1), "missing sdt marker after ':'", "expected a marker name or glob");
        return None;
    }
    Some(EventKind::Sdt { binary: cx.word(sub(p, 0, c)), marker: cx.word(sub(p, c + 1, rest.len())) })
}

fn resolve(cx: &mut Cx<'_>, spec: &ast::EventSpec, binary: &ast::Word, marker: &ast::Word) -> Vec<(ArgLayout, Attach)> {
    if let Some(first) = spec.fetch_args.first() {
        let d = Diagnostic::error(first.span, "USDT markers bring their own arguments")
            .with_label("fetch arguments are for probe: specs")
            .with_note("a marker's arguments are arg1, arg2, ... as its note describes them");
        cx.diags.push(d);
        return Vec::new();
    }
    let found = match cx.facts.sdt_markers(&binary.text, &marker.text) {
        Ok(f) => f,
        Err(e) => {
            cx.diags.push(Diagnostic::error(binary.span, e).with_label("cannot probe this binary"));
            return Vec::new();
        }
    };
    if found.markers.is_empty() {
        let mut d = Diagnostic::error(marker.span, format!("no USDT marker `{}` in {}", marker.text, found.path)).with_label("no such marker");
        d = if found.all.is_empty() {
            d.with_note("the binary has no .note.stapsdt section")
        } else {
            let shown: Vec<&str> = found.all.iter().take(8).map(String::as_str).collect();
            let more = if found.all.len() > 8 { ", ..." } else { "" };
            d.with_note(format!("its markers are: {}{more}", shown.join(", ")))
        };
        cx.diags.push(d);
        return Vec::new();
    }
    found
        .markers
        .iter()
        .map(|m| {
            let mut numbered = vec![value(reg(RegOffset::IP))];
            for text in m.args.split_whitespace() {
                numbered.push(match fetch::parse_sdt_arg(text) {
                    Ok((ty, f)) => match convert(&f, ty, AddrSpace::User, false, &|_| None) {
                        Ok(slot) => slot,
                        Err(d) => Slot::Unavailable(d.message),
                    },
                    Err(e) => Slot::Unavailable(e),
                });
            }
            let layout = ArgLayout { numbered, named: Vec::new(), retval: None, debug: None, chains: Vec::new(), marker: true };
            let point = UprobePoint {
                binary: found.path.clone(),
                name: m.name.clone(),
                offset: m.offset,
                ret: false,
                ref_ctr: m.semaphore,
                spec: spec.span,
            };
            (layout, Attach::Uprobe(point))
        })
        .collect()
}

