//! Kernel functions through BPF trampolines, `fentry:FUNC` and
//! `fexit:FUNC` (globs allowed): expands against the functions of the
//! kernel's BTF into points whose bodies read the function's arguments
//! with their C types (`args.NAME`, `argN` from 0, member chains) and, at
//! exit, `retval`. The typed arguments are the BTF tracepoints' reader
//! ([`super::btf::BtfArgs`]). Pure: the kernel is seen through the facts'
//! lazy BTF reader; only globs and errors list every function.

use super::spec::{sub, Piece, SpecCx};
use super::{Cx, Family, Point, Provider, Reads};
use crate::btf::Kind;
use crate::facts::glob_match;
use crate::frontend::ast;
use crate::frontend::diag::{near_names, Diagnostic};
use crate::ir::Attach;

pub struct Fentry;

const ENTRY: &str = "fentry:";
const EXIT: &str = "fexit:";

impl Provider for Fentry {
    fn name(&self) -> &'static str {
        "fentry"
    }

    fn claims(&self, head: &str) -> bool {
        head.starts_with(ENTRY) || head.starts_with(EXIT)
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<ast::EventKind> {
        let prefix = if text.starts_with(ENTRY) { ENTRY.len() } else { EXIT.len() };
        if text.len() == prefix {
            cx.err(head, "missing function after the prefix", "expected `fentry:FUNC` or `fexit:FUNC`, e.g. `fentry:vfs_read`");
            return None;
        }
        // The exit flavour is the parameter: `fexit:f` parses as `f(ret)`.
        let param = (prefix == EXIT.len()).then(|| cx.word(sub(head, 0, prefix - 1)));
        Some(ast::EventKind::Target { target: cx.word(sub(head, prefix, text.len())), param })
    }

    fn family(&self) -> Family {
        Family::Record
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point> {
        let ast::EventKind::Target { target, param } = &spec.kind else { return Vec::new() };
        let ret = param.is_some();
        let reader = match cx.facts.kernel_btf() {
            Ok(r) => r,
            Err(e) => {
                cx.diags.push(
                    Diagnostic::error(spec.span, format!("`fentry:`/`fexit:` probes need the kernel's BTF: {e}"))
                        .with_label("no kernel BTF")
                        .with_note("kprobes (`probe:FUNC`) still work without it where the kernel has them"),
                );
                return Vec::new();
            }
        };
        let glob = target.text.contains(['*', '?']);
        let found = if glob {
            reader.names_with_prefix(Kind::FUNC, "").map(|mut all| {
                all.retain(|f| glob_match(&target.text, f));
                all.sort();
                all.dedup();
                all
            })
        } else {
            reader.find(Kind::FUNC, &target.text).map(|id| id.map(|_| vec![target.text.clone()]).unwrap_or_default())
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                cx.error(spec.span, format!("cannot read the kernel's BTF: {e}"));
                return Vec::new();
            }
        };
        if found.is_empty() {
            let mut d = Diagnostic::error(target.span, format!("no kernel function {} `{}` in the kernel's BTF", if glob { "matches" } else { "named" }, target.text))
                .with_label("not a function the kernel's BTF describes");
            let all = reader.names_with_prefix(Kind::FUNC, "").unwrap_or_default();
            let near = near_names(&target.text, all.iter().map(String::as_str), 3);
            if !near.is_empty() {
                d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
            }
            cx.diags.push(d);
            return Vec::new();
        }
        found.into_iter().map(|func| Point { attach: Attach::Fentry { func, ret, spec: spec.span }, reads: Reads::Btf { spec: spec.span } }).collect()
    }
}
