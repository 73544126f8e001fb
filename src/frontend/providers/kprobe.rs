//! Kernel probes, `probe:FUNC[%return]` (`MODULE:FUNC` too; globs
//! allowed), with fetch arguments (`@symbol` addresses included):
//! expands against the kernel's traceable functions (kernel facts) into
//! kprobe/kretprobe points; bodies read `arg0` (the ip), `arg1..`,
//! `args.NAME` and `retval`, as for uprobes. Pure.

use super::fetch_args::{fetch_layout, has_glob, ArgLayout};
use super::spec::{is_user_probe, probe_syntax, sub, Piece, SpecCx};
use super::{Cx, Family, Point, Provider, Reads};
use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir::{AddrSpace, Attach};

pub struct Kprobe;

impl Provider for Kprobe {
    fn name(&self) -> &'static str {
        "kprobe"
    }

    fn claims(&self, head: &str) -> bool {
        head.strip_prefix("probe:").is_some_and(|rest| !is_user_probe(rest))
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
        let ast::EventKind::Probe { binary: None, symbol, ret } = &spec.kind else { return Vec::new() };
        resolve(cx, spec, symbol, *ret).into_iter().map(|(layout, attach)| Point { attach, reads: Reads::Fetch(layout) }).collect()
    }
}

fn resolve(cx: &mut Cx<'_>, spec: &ast::EventSpec, symbol: &ast::Word, ret: bool) -> Vec<(ArgLayout, Attach)> {
    let Some(layout) = fetch_layout(cx, spec, ret, AddrSpace::Kernel) else { return Vec::new() };
    // `MODULE:FUNC` names a module's function; kprobes take the name.
    let name = symbol.text.rsplit(':').next().unwrap_or(&symbol.text);
    let found = match cx.facts.kernel_functions(name) {
        Ok(f) => f,
        Err(e) => {
            cx.error(symbol.span, e);
            return Vec::new();
        }
    };
    if found.is_empty() {
        let what = if has_glob(name) { format!("no kernel function matches `{name}`") } else { format!("no kernel function `{name}`") };
        cx.diags.push(Diagnostic::error(symbol.span, what).with_label("not a traceable kernel function"));
        return Vec::new();
    }
    found.into_iter().map(|f| (layout.clone(), Attach::Kprobe { symbol: f, ret, spec: spec.span })).collect()
}

