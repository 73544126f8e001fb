//! BPF iterators, `iter:TARGET[(PARAM)]`: a program the kernel runs once
//! per object of a kind (task, open file, VMA, socket, map...) when the
//! iterator is read, printing into the reader's seq_file. Targets are the
//! kernel's, found in its BTF (`bpf_iter_TARGET` functions,
//! [`crate::facts::iter_targets`]); bodies read the context's fields as
//! typed `args.NAME` (the function's parameters: `args.task`,
//! `args.file`, `args.fd`...) through the BTF tracepoints' reader. The
//! kernel calls the program once more at the end with a NULL object: that
//! call is skipped unless the body reads `iter_end` (the object is the
//! target's last pointer parameter: `task` for task, `file` for
//! task_file, `vma` for task_vma, `sk_common` for tcp). `(PID)` limits
//! task, task_file and task_vma to one process (the link's
//! `bpf_iter_link_info`); `bpf_map_elem(MAP)` walks one map (an id or
//! a pinned path, asked of the facts: `args.key` and `args.value` typed
//! by its BTF, or as integers of its sizes); the other targets walking a
//! map are refused (not supported yet); `(PATH)` starts `cgroup` at a cgroup
//! directory (by default the unified hierarchy's root, found at attach),
//! walking it and those under it. Pure: the kernel is seen through the facts'
//! lazy BTF reader; never panics.

use super::btf::BtfArgs;
use super::spec::{sub, Piece, SpecCx};
use super::{Cx, Family, Point, ProbeArgs, Provider, Reads, Shape, TypeOrigin, Typed};
use crate::btf::Kind;
use crate::facts::{is_iter_target, iter_targets, MapRef, TypeDesc, TypeTable, BPF_ITER_PREFIX};
use crate::frontend::ast::{self, Span};
use crate::frontend::diag::{near_names, Diagnostic};
use crate::ir::{self, Attach, Expr, ExprKind, IterParam, Stmt, StmtKind, Ty};

pub struct Iter;

const PREFIX: &str = "iter:";

/// Targets whose link takes a process id (`bpf_iter_link_info.task`).
const TAKES_PID: &[&str] = &["task", "task_file", "task_vma"];

impl Provider for Iter {
    fn name(&self) -> &'static str {
        "iter"
    }

    fn claims(&self, head: &str) -> bool {
        head.starts_with(PREFIX)
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<ast::EventKind> {
        let rest = &text[PREFIX.len()..];
        let example = "expected `iter:TARGET` or `iter:TARGET(PID)`, e.g. `iter:task`, `iter:task_file(1234)`";
        let (name_end, param) = match rest.find('(') {
            Some(open) => {
                if !rest.ends_with(')') {
                    cx.err(head, "missing `)` after the iterator's parameter", example);
                    return None;
                }
                let p = sub(head, PREFIX.len() + open + 1, text.len() - 1);
                (open, Some(cx.word(p)))
            }
            None => (rest.len(), None),
        };
        if name_end == 0 {
            cx.err(head, "missing iterator target after `iter:`", example);
            return None;
        }
        Some(ast::EventKind::Target { target: cx.word(sub(head, PREFIX.len(), PREFIX.len() + name_end)), param })
    }

    fn family(&self) -> Family {
        Family::Record
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point> {
        let ast::EventKind::Target { target, param } = &spec.kind else { return Vec::new() };
        let reader = match cx.facts.kernel_btf() {
            Ok(r) => r,
            Err(e) => {
                cx.diags.push(Diagnostic::error(spec.span, format!("`iter:` probes need the kernel's BTF: {e}")).with_label("no kernel BTF"));
                return Vec::new();
            }
        };
        if target.text.contains(['*', '?']) {
            cx.diags.push(
                Diagnostic::error(target.span, "an iterator probe names one target")
                    .with_label("a glob")
                    .with_note("list them with `ktap -le 'iter:*'`"),
            );
            return Vec::new();
        }
        match is_iter_target(&reader, &target.text) {
            Ok(true) => {}
            Ok(false) => {
                let targets = iter_targets(&reader).unwrap_or_default();
                let mut d = Diagnostic::error(target.span, format!("no iterator target `{}` in this kernel", target.text))
                    .with_label("not a `bpf_iter_*` target of the kernel's BTF");
                let near = near_names(&target.text, targets.iter().map(String::as_str), 3);
                if !near.is_empty() {
                    d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`iter:{n}`")).collect::<Vec<_>>().join(", ")));
                }
                cx.diags.push(d.with_note(format!("this kernel's targets: {}", targets.join(", "))));
                return Vec::new();
            }
            Err(e) => {
                cx.error(spec.span, format!("cannot read the kernel's BTF: {e}"));
                return Vec::new();
            }
        }
        if target.text == MAP_ELEM {
            return map_elem(cx, spec, target, param.as_ref());
        }
        if walks_a_map(&reader, &target.text) {
            cx.diags.push(
                Diagnostic::error(target.span, format!("`iter:{}` walks the elements of one BPF map, which ktap cannot name yet", target.text))
                    .with_label("not supported yet")
                    .with_note("`iter:bpf_map_elem(MAP)` walks a hash or array map's keys and values; `iter:bpf_map` lists the maps themselves"),
            );
            return Vec::new();
        }
        let param = match (param, target.text.as_str()) {
            (None, _) => None,
            (Some(p), "cgroup") if p.text.starts_with('/') => Some(IterParam::Cgroup { path: Some(p.text.clone()), span: p.span }),
            (Some(p), "cgroup") => {
                cx.diags.push(
                    Diagnostic::error(p.span, format!("`iter:cgroup` takes a cgroup directory, not `{}`", p.text))
                        .with_label("expected an absolute path")
                        .with_note("e.g. `iter:cgroup(/sys/fs/cgroup/system.slice)`: that cgroup and those under it"),
                );
                return Vec::new();
            }
            (Some(p), t) if !TAKES_PID.contains(&t) => {
                cx.diags.push(
                    Diagnostic::error(p.span, format!("`iter:{t}` takes no parameter"))
                        .with_label("not a parameter of this target")
                        .with_note(format!(
                            "a process id limits {}; `iter:cgroup(PATH)` takes a cgroup directory",
                            TAKES_PID.iter().map(|t| format!("`iter:{t}(PID)`")).collect::<Vec<_>>().join(", ")
                        )),
                );
                return Vec::new();
            }
            (Some(p), t) => match p.text.trim().parse::<u32>() {
                Ok(pid) if pid > 0 => Some(IterParam::Pid { pid, span: p.span }),
                _ => {
                    cx.diags.push(
                        Diagnostic::error(p.span, format!("`iter:{t}` takes a process id, not `{}`", p.text))
                            .with_label("expected a positive number"),
                    );
                    return Vec::new();
                }
            },
        };
        // The cgroup iterator needs a cgroup to start from: the root of
        // the unified hierarchy unless the spec names one.
        let param = match (param, target.text.as_str()) {
            (None, "cgroup") => Some(IterParam::Cgroup { path: None, span: target.span }),
            (p, _) => p,
        };
        vec![Point { attach: Attach::Iter { target: target.text.clone(), param, spec: spec.span }, reads: Reads::Iter { spec: spec.span } }]
    }
}

/// The target walking one map's elements that ktap names a map for.
const MAP_ELEM: &str = "bpf_map_elem";

/// `iter:bpf_map_elem(MAP)`: the map, by id or pinned path, asked of the
/// facts now, so a wrong one is an error at its span.
fn map_elem(cx: &mut Cx<'_>, spec: &ast::EventSpec, target: &ast::Word, param: Option<&ast::Word>) -> Vec<Point> {
    let Some(p) = param else {
        cx.diags.push(
            Diagnostic::error(target.span, "`iter:bpf_map_elem` walks one BPF map: name it")
                .with_label("no map")
                .with_note("`iter:bpf_map_elem(ID)` with a map id, or `iter:bpf_map_elem(/sys/fs/bpf/PATH)` with the path it is pinned at"),
        );
        return Vec::new();
    };
    let text = p.text.trim().trim_matches('"');
    let map = if text.starts_with('/') {
        MapRef::Path(text.to_string())
    } else {
        match text.parse::<u32>() {
            Ok(id) if id > 0 => MapRef::Id(id),
            _ => {
                cx.diags.push(
                    Diagnostic::error(p.span, format!("`iter:bpf_map_elem` takes a map id or a pinned map's path, not `{}`", p.text))
                        .with_label("expected a number or a path on bpffs"),
                );
                return Vec::new();
            }
        }
    };
    if let Err(e) = cx.facts.bpf_map(&map) {
        cx.diags.push(
            Diagnostic::error(p.span, e)
                .with_label("no such map")
                .with_note("`ktap -e 'trace iter:bpf_map { printf(\"%d %s\\n\", args.map.id, args.map.name) }'` lists the maps"),
        );
        return Vec::new();
    }
    let param = Some(IterParam::Map { map, span: p.span });
    vec![Point { attach: Attach::Iter { target: target.text.clone(), param, spec: spec.span }, reads: Reads::Iter { spec: spec.span } }]
}

/// What an iterator body reads: the target's typed arguments, the end of
/// the sequence (`iter_end`), and where its prints go (the seq_file).
pub struct IterArgs {
    typed: BtfArgs,
    target: String,
    /// The map `iter:bpf_map_elem(MAP)` walks.
    map: Option<MapRef>,
    /// The body reads `iter_end`: the end call is not skipped.
    end_read: bool,
}

impl IterArgs {
    pub fn new(points: &[Point]) -> IterArgs {
        let target = points.first().map(|p| p.attach.event().to_string()).unwrap_or_default();
        let map = points.iter().find_map(|p| match &p.attach {
            Attach::Iter { param: Some(IterParam::Map { map, .. }), .. } => Some(map.clone()),
            _ => None,
        });
        IterArgs { typed: BtfArgs::new(points), target, map, end_read: false }
    }

    /// `args.key` or `args.value` of a map's element: the context's
    /// pointer followed, typed by the map's BTF, or as an unsigned
    /// integer of its size without BTF.
    fn element(&mut self, cx: &mut Cx<'_>, map: &MapRef, name: &str, span: Span) -> Option<Typed> {
        let info = match cx.facts.bpf_map(map) {
            Ok(info) => info,
            Err(e) => {
                cx.error(span, e);
                return None;
            }
        };
        let mut typed = self.typed.typed_field(cx, name, span)??;
        let key = name == "key";
        let size = if key { info.key_size } else { info.value_size };
        let plural = if key { "keys" } else { "values" };
        let what = format!("map {}'s {plural}", info.id);
        let btf = info.types.as_ref().map(|t| (if key { t.key } else { t.value }, t.table.clone()));
        let (ty, table) = match btf {
            Some((ty, table)) if ty != crate::facts::TypeId::VOID => (ty, table),
            _ => {
                if ![1, 2, 4, 8].contains(&size) {
                    cx.diags.push(
                        Diagnostic::error(span, format!("map {} (`{}`) has no BTF, and its {plural} are {size} bytes", info.id, info.name))
                            .with_label("no type to read it as")
                            .with_note(format!("without BTF, ktap reads {plural} of 1, 2, 4 or 8 bytes as unsigned numbers; a map created with BTF types them")),
                    );
                    return None;
                }
                let mut t = TypeTable::new();
                let ty = t.add(TypeDesc::Int { size, signed: false }, format!("u{}", size * 8));
                (ty, std::sync::Arc::new(t))
            }
        };
        // The context's slot holds the pointer: follow it once.
        typed.path.derefs.push(0);
        typed.ty = ty;
        typed.types = TypeOrigin::Map { types: table, size, what };
        Some(typed)
    }

    /// The argument that is NULL at the end call: the target's last
    /// pointer parameter: its context slot read as a number.
    fn object(&self, cx: &mut Cx<'_>, span: Option<Span>) -> Option<Expr> {
        let reader = cx.facts.kernel_btf().ok()?;
        let func = reader.find(Kind::FUNC, &format!("{BPF_ITER_PREFIX}{}", self.target)).ok()??;
        let params = reader.params(func).ok()?;
        let at = params.iter().rposition(|(_, ty)| reader.type_name(*ty).ends_with('*'))?;
        let path = ir::Path::plain(ir::PathBase::Arg(at as u32), Vec::new(), 0, 8, ir::Via::Direct);
        Some(Expr { kind: ExprKind::Load(path), ty: Ty::Int, span })
    }
}

impl ProbeArgs for IterArgs {
    fn arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Expr> {
        self.typed.arg(cx, n, span)
    }

    fn field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Expr> {
        self.typed.field(cx, name, span)
    }

    fn typed_field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Option<Typed>> {
        if let (Some(map), "key" | "value") = (self.map.clone(), name) {
            return Some(self.element(cx, &map, name, span));
        }
        self.typed.typed_field(cx, name, span)
    }

    fn typed_arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Option<Typed>> {
        self.typed.typed_arg(cx, n, span)
    }

    fn seq_file(&self) -> bool {
        true
    }

    fn iter_end(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<Expr> {
        self.end_read = true;
        let Some(object) = self.object(cx, Some(span)) else {
            cx.error(span, format!("`iter:{}` has no object pointer to test", self.target));
            return None;
        };
        Some(Expr::binary(ir::BinOp::Eq, object, Expr::constant(0), Some(span)))
    }

    fn entry(&mut self, cx: &mut Cx<'_>) -> Vec<Stmt> {
        if self.end_read {
            return Vec::new();
        }
        let Some(object) = self.object(cx, None) else { return Vec::new() };
        let cond = Expr::binary(ir::BinOp::Eq, object, Expr::constant(0), None);
        vec![Stmt { kind: StmtKind::If { cond, then: vec![Stmt { kind: StmtKind::Return, span: None }], otherwise: Vec::new() }, span: None }]
    }

    fn finish(self: Box<Self>, cx: &mut Cx<'_>, probe: usize, points: Vec<Attach>) -> Shape {
        Box::new(self.typed).finish(cx, probe, points)
    }
}

/// Whether a target walks one map's elements (`bpf_map_elem`, `sockmap`,
/// `bpf_sk_storage_map`: the map, then the element): its link needs a
/// map; only `bpf_map_elem` is given one (`map_elem`), the others are
/// refused here.
fn walks_a_map(reader: &crate::facts::BtfReader<'_>, target: &str) -> bool {
    let Ok(Some(func)) = reader.find(Kind::FUNC, &format!("{BPF_ITER_PREFIX}{target}")) else { return false };
    let params = reader.params(func).unwrap_or_default();
    params.len() > 2 && params.get(1).is_some_and(|(name, ty)| name == "map" && reader.type_name(*ty) == "struct bpf_map *")
}
