//! BTF-enabled raw tracepoints, `btf:EVENT` (globs allowed): expands
//! against the kernel's BTF (`btf_trace_EVENT` prototypes) into tp_btf
//! points, and gives bodies the tracepoint's arguments with their C types
//! (`args.NAME`, `argN` from 0; names from the `__bpf_trace_EVENT`
//! function's prototype), typed for member chains. Pure: the kernel is
//! seen through the facts' lazy BTF reader, which walks only as far as a
//! name; only globs and errors list every event.

use super::spec::{sub, Piece, SpecCx};
use super::{Cx, Family, Point, ProbeArgs, Provider, Reads, Typed};
use crate::btf::Kind;
use crate::facts::{glob_match, TypeId, BTF_TRACE_PREFIX};
use crate::frontend::ast::{self, Span};
use crate::frontend::diag::{near_names, Diagnostic};
use crate::ir::{self, Attach, Expr};

pub struct Btf;

const PREFIX: &str = "btf:";

impl Provider for Btf {
    fn name(&self) -> &'static str {
        "btf"
    }

    fn claims(&self, head: &str) -> bool {
        head.starts_with(PREFIX)
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<ast::EventKind> {
        let p = sub(head, PREFIX.len(), text.len());
        if text.len() == PREFIX.len() {
            cx.err(head, "missing event after `btf:`", "expected `btf:EVENT`, e.g. `btf:sched_switch`");
            return None;
        }
        Some(ast::EventKind::Target { target: cx.word(p), param: None })
    }

    fn family(&self) -> Family {
        Family::Record
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point> {
        let ast::EventKind::Target { target, .. } = &spec.kind else { return Vec::new() };
        let reader = match cx.facts.kernel_btf() {
            Ok(r) => r,
            Err(e) => {
                cx.diags.push(
                    Diagnostic::error(spec.span, format!("`btf:` probes need the kernel's BTF: {e}"))
                        .with_label("no kernel BTF")
                        .with_note("classic tracepoints (`sched:sched_switch`) and raw ones still work without it"),
                );
                return Vec::new();
            }
        };
        let glob = target.text.contains(['*', '?']);
        let found = if glob {
            reader.names_with_prefix(Kind::TYPEDEF, BTF_TRACE_PREFIX).map(|mut all| {
                all.retain(|e| glob_match(&target.text, e));
                all.sort();
                all.dedup();
                all
            })
        } else {
            let name = format!("{BTF_TRACE_PREFIX}{}", target.text);
            reader.find(Kind::TYPEDEF, &name).map(|id| id.map(|_| vec![target.text.clone()]).unwrap_or_default())
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                cx.error(spec.span, format!("cannot read the kernel's BTF: {e}"));
                return Vec::new();
            }
        };
        if found.is_empty() {
            let mut d = Diagnostic::error(target.span, format!("no BTF tracepoint {} `{}`", if glob { "matches" } else { "named" }, target.text))
                .with_label("not in the kernel's BTF");
            let all = reader.names_with_prefix(Kind::TYPEDEF, BTF_TRACE_PREFIX).unwrap_or_default();
            let near = near_names(&target.text, all.iter().map(String::as_str), 3);
            if !near.is_empty() {
                d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`btf:{n}`")).collect::<Vec<_>>().join(", ")));
            }
            cx.diags.push(d);
            return Vec::new();
        }
        found.into_iter().map(|event| Point { attach: Attach::TpBtf { event, spec: spec.span }, reads: Reads::Btf { spec: spec.span } }).collect()
    }
}

/// One argument of a BTF tracepoint or function: its name, type and C
/// spelling.
#[derive(Clone)]
struct Param {
    name: String,
    ty: TypeId,
    spelled: String,
}

/// Where a point's typed arguments come from.
enum Source {
    /// A tracepoint: `__bpf_trace_EVENT`'s parameters after the first.
    Tracepoint(String),
    /// A kernel function's parameters (and its return value at exit).
    Function { func: String, ret: bool },
}

/// Each point's arguments, and its return value (fexit).
type Prototypes = Vec<(Vec<Param>, Option<Param>)>;

/// What a body attached at BTF tracepoints or kernel functions reads:
/// each point's arguments (name, type), asked of the BTF once.
pub struct BtfArgs {
    sources: Vec<(String, Source)>,
    protos: Option<Prototypes>,
}

impl BtfArgs {
    pub fn new(points: &[Point]) -> BtfArgs {
        let sources = points
            .iter()
            .map(|p| {
                let source = match &p.attach {
                    Attach::Fentry { func, ret, .. } => Source::Function { func: func.clone(), ret: *ret },
                    Attach::Iter { target, .. } => Source::Function { func: format!("{}{target}", crate::facts::BPF_ITER_PREFIX), ret: false },
                    other => Source::Tracepoint(other.event().to_string()),
                };
                (p.attach.full_name(), source)
            })
            .collect();
        BtfArgs { sources, protos: None }
    }

    /// Each point's arguments and return value.
    fn protos(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<&Prototypes> {
        if self.protos.is_none() {
            let reader = match cx.facts.kernel_btf() {
                Ok(r) => r,
                Err(e) => {
                    cx.error(span, format!("typed arguments need the kernel's BTF: {e}"));
                    return None;
                }
            };
            let param = |name: String, ty: TypeId| Param { spelled: reader.type_name(ty), name, ty };
            let mut tracepoints = crate::facts::TracepointProtos::new(&reader);
            let mut all = Vec::new();
            for (_, source) in &self.sources {
                let (proto, skip, ret) = match source {
                    // The first is the tracepoint's private data.
                    Source::Tracepoint(event) => (tracepoints.proto(event), 1, false),
                    Source::Function { func, ret } => (reader.find(Kind::FUNC, func).ok().flatten(), 0, *ret),
                };
                let params = proto.and_then(|p| reader.params(p).ok()).unwrap_or_default();
                let list = params
                    .into_iter()
                    .skip(skip)
                    .enumerate()
                    .map(|(i, (name, ty))| param(if name.is_empty() { format!("arg{i}") } else { name }, ty))
                    .collect();
                let ret = if ret { proto.and_then(|p| reader.returns(p).ok()).map(|ty| param("retval".into(), ty)) } else { None };
                all.push((list, ret));
            }
            self.protos = Some(all);
        }
        self.protos.as_ref()
    }

    /// Argument `which` (a name or an index; `retval`, the return value)
    /// of every point, the same in each, typed.
    fn typed(&mut self, cx: &mut Cx<'_>, which: Result<&str, usize>, span: Span) -> Option<Typed> {
        let labels: Vec<String> = self.sources.iter().map(|(l, _)| l.clone()).collect();
        let protos = self.protos(cx, span)?.clone();
        let mut found: Option<(usize, TypeId, String)> = None;
        for (label, (list, ret)) in labels.iter().zip(&protos) {
            let at = match which {
                Ok("retval") => match ret {
                    Some(r) => Some((list.len(), r)),
                    None => {
                        cx.error(span, format!("`retval` is the return value of an fexit probe; `{label}` has none"));
                        return None;
                    }
                },
                Ok(name) => list.iter().position(|p| p.name == name).map(|i| (i, &list[i])),
                Err(n) => list.get(n).map(|p| (n, p)),
            };
            let Some((i, p)) = at else {
                let what = match which {
                    Ok(name) => format!("`{label}` has no argument `{name}`"),
                    Err(n) => format!("`{label}` has {} arguments: `arg{n}` is past them", list.len()),
                };
                let mut d = Diagnostic::error(span, what).with_label("no such argument");
                if let Ok(name) = which {
                    let near = near_names(name, list.iter().map(|p| p.name.as_str()), 3);
                    if !near.is_empty() {
                        d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`args.{n}`")).collect::<Vec<_>>().join(", ")));
                    }
                }
                let args: Vec<String> = list.iter().map(|p| format!("{}: {}", p.name, p.spelled)).collect();
                cx.diags.push(d.with_note(format!("its arguments: {}", args.join(", "))));
                return None;
            };
            match &found {
                Some((j, _, t)) if *j != i || *t != p.spelled => {
                    cx.error(span, format!("this argument differs between the points of the probe (`{label}` has `{}`)", p.spelled));
                    return None;
                }
                Some(_) => {}
                None => found = Some((i, p.ty, p.spelled.clone())),
            }
        }
        let (i, ty, _) = found?;
        // A pointer the verifier holds as a number (it may carry an error
        // or a special value) is followed with probe reads.
        let pointer = cx.facts.kernel_btf().is_ok_and(|r| matches!(r.describe(ty), Ok(crate::facts::TypeDesc::Ptr { .. })));
        let number = pointer
            && self.sources.iter().any(|(_, s)| matches!(s, Source::Tracepoint(event) if cx.facts.btf_arg_is_pointer(event, i as u32) == Some(false)));
        let via = if number { ir::Via::ProbeRead } else { ir::Via::Direct };
        Some(Typed::kernel(ir::Path::plain(ir::PathBase::Arg(i as u32), Vec::new(), 0, 0, via), ty))
    }
}

/// The parameters (name, type, C spelling) of kernel function `func` in
/// the kernel's BTF; `None` without a BTF or a prototype (nothing is
/// reported: the caller's other meanings of `args.NAME` stand).
pub(super) fn function_params(cx: &mut Cx<'_>, func: &str) -> Option<Vec<(String, TypeId, String)>> {
    let reader = cx.facts.kernel_btf().ok()?;
    let id = reader.find(Kind::FUNC, func).ok()??;
    let params = reader.params(id).ok()?;
    Some(params.into_iter().map(|(n, ty)| (n, ty, reader.type_name(ty))).collect())
}

impl ProbeArgs for BtfArgs {
    fn arg(&mut self, cx: &mut Cx<'_>, _n: usize, span: Span) -> Option<Expr> {
        cx.error(span, "typed arguments are read through their types");
        None
    }

    fn field(&mut self, cx: &mut Cx<'_>, _name: &str, span: Span) -> Option<Expr> {
        cx.error(span, "typed arguments are read through their types");
        None
    }

    fn typed_field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Option<Typed>> {
        Some(self.typed(cx, Ok(name), span))
    }

    fn typed_arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Option<Typed>> {
        Some(self.typed(cx, Err(n), span))
    }

    fn typed_name(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Option<Typed>> {
        (name == "retval").then(|| self.typed(cx, Ok(name), span))
    }
}
