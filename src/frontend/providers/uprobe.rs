//! User probes, `probe:BINARY:SYMBOL[%return]` (BINARY a path or a
//! library name, SYMBOL a function, a glob or a `0x` file offset), with
//! fetch arguments, and source-line probes `probe:BINARY:file.c:42`:
//! expands against the binary's symbols and debug info (kernel facts)
//! into uprobe/uretprobe points at file offsets; bodies read `arg0` (the
//! ip), `arg1..` (the argument registers or the fetch arguments),
//! `args.NAME` (a fetch argument, else a parameter or a local in scope,
//! from the debug info) and `retval`. Pure.

use super::fetch_args::{fetch_layout, has_glob, ArgLayout, DebugPlace, DebugSite};
use super::spec::{is_user_probe, probe_syntax, sub, Piece, SpecCx};
use super::{Cx, Family, Point, Provider, Reads};
use crate::facts::UserSymbols;
use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir::{AddrSpace, Attach, FileOffset, UprobePoint};

pub struct Uprobe;

impl Provider for Uprobe {
    fn name(&self) -> &'static str {
        "uprobe"
    }

    fn claims(&self, head: &str) -> bool {
        head.strip_prefix("probe:").is_some_and(is_user_probe)
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<ast::EventKind> {
        probe_syntax(cx, sub(head, 6, text.len()), &text[6..])
    }

    fn takes_fetch_args(&self) -> bool {
        true
    }

    fn family(&self) -> Family {
        Family::Fetch
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point> {
        let ast::EventKind::Probe { binary: Some(binary), symbol, ret } = &spec.kind else { return Vec::new() };
        resolve(cx, spec, binary, symbol, *ret).into_iter().map(|(layout, attach)| Point { attach, reads: Reads::Fetch(layout) }).collect()
    }
}

fn resolve(cx: &mut Cx<'_>, spec: &ast::EventSpec, binary: &ast::Word, symbol: &ast::Word, ret: bool) -> Vec<(ArgLayout, Attach)> {
    let Some(mut layout) = fetch_layout(cx, spec, ret, AddrSpace::User) else { return Vec::new() };
    if let Some((file, line)) = symbol.text.rsplit_once(':').filter(|(file, _)| file.contains('.')) {
        return source_line(cx, layout, binary, symbol, file, line, ret, spec);
    }
    let offset_spec = symbol.text.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16));
    let found = if offset_spec.is_some() {
        cx.facts.resolve_binary(&binary.text).map(|path| UserSymbols { path, ..Default::default() })
    } else {
        cx.facts.user_symbols(&binary.text, &symbol.text)
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            cx.diags.push(Diagnostic::error(binary.span, e).with_label("cannot probe this binary"));
            return Vec::new();
        }
    };
    let point = |name: String, offset: FileOffset| {
        Attach::Uprobe(UprobePoint { binary: found.path.clone(), name, offset, ret, ref_ctr: None, spec: spec.span })
    };
    if let Some(parsed) = offset_spec {
        return match parsed {
            Ok(off) => vec![(layout, point(symbol.text.clone(), FileOffset(off)))],
            Err(_) => {
                cx.diags.push(Diagnostic::error(symbol.span, format!("malformed file offset `{}`", symbol.text)).with_label("expected hex digits after 0x"));
                Vec::new()
            }
        };
    }
    if found.symbols.is_empty() {
        let mut d = if has_glob(&symbol.text) {
            Diagnostic::error(symbol.span, format!("no function of {} matches `{}`", found.path, symbol.text)).with_label("matches nothing")
        } else {
            Diagnostic::error(symbol.span, format!("no function `{}` in {}", symbol.text, found.path)).with_label("no such symbol")
        };
        if found.stripped {
            d = d.with_note("the binary is stripped (no .symtab): only its exported (.dynsym) functions can be probed by name; use a 0x file offset for others");
        }
        d = d.with_note(format!("list its functions with `ktap --list-functions {}`", binary.text));
        cx.diags.push(d);
        return Vec::new();
    }
    if let [(name, _)] = found.symbols.as_slice() {
        if !has_glob(&symbol.text) {
            layout.debug = Some(DebugSite { binary: found.path.clone(), place: DebugPlace::Function { name: name.clone(), ret } });
        }
    }
    found.symbols.iter().map(|(name, off)| (layout.clone(), point(name.clone(), *off))).collect()
}

/// `probe:BIN:file.c:42`: the line's first statement, its variables in
/// scope from the debug info.
#[expect(clippy::too_many_arguments, reason = "the pieces of one spec")]
fn source_line(
    cx: &mut Cx<'_>,
    mut layout: ArgLayout,
    binary: &ast::Word,
    symbol: &ast::Word,
    file: &str,
    line: &str,
    ret: bool,
    spec: &ast::EventSpec,
) -> Vec<(ArgLayout, Attach)> {
    let end = symbol.span.end as usize;
    let line_span = ast::Span::new(end.saturating_sub(line.len()), end);
    if ret {
        cx.diags.push(Diagnostic::error(symbol.span, "a source line has no %return").with_label("a line, not a function"));
        return Vec::new();
    }
    let Ok(n) = line.parse::<u32>() else {
        cx.diags.push(
            Diagnostic::error(line_span, format!("`{line}` is not a line number"))
                .with_label("expected `file.c:LINE`")
                .with_note(format!("list the probeable lines with `ktap -lv 'probe:{}:{file}:*'`", binary.text)),
        );
        return Vec::new();
    };
    let path = match cx.facts.resolve_binary(&binary.text) {
        Ok(p) => p,
        Err(e) => {
            cx.diags.push(Diagnostic::error(binary.span, e).with_label("cannot probe this binary"));
            return Vec::new();
        }
    };
    let scope = match cx.facts.debug_line(&path, file, n) {
        Ok(s) => s,
        Err(e) => {
            cx.diags.push(
                Diagnostic::error(symbol.span, e)
                    .with_label("no code for this line")
                    .with_note(format!("list the probeable lines with `ktap -lv 'probe:{}:{file}:*'`", binary.text)),
            );
            return Vec::new();
        }
    };
    let attach = Attach::Uprobe(UprobePoint {
        binary: path.clone(),
        name: format!("{file}:{n}"),
        offset: scope.offset,
        ret: false,
        ref_ctr: None,
        spec: spec.span,
    });
    layout.debug = Some(DebugSite { binary: path, place: DebugPlace::Line(Box::new(scope)) });
    vec![(layout, attach)]
}

