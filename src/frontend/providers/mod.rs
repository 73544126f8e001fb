//! Providers: the kinds of probe a script can write, one module each
//! behind one trait ([`Provider`]), listed in one registry
//! ([`REGISTRY`]). A provider claims the specs it understands (by prefix),
//! parses them, expands their globs against the kernel facts into attach
//! points, and says what `argN`, `args.NAME`, bare names (`retval`, event
//! fields in filters) and `argstr` mean in a body attached there
//! ([`ProbeArgs`]), and which attach mechanism the body finally gets.
//! Lowering (`frontend::lower`) drives them and knows no kind by name.
//! [`probe_stmt`] is the one place that decides which top-level statements
//! are probe bodies. Pure: the kernel is seen only through
//! [`KernelFacts`]; never panics.
//!
//! Not every provider has spec syntax: `profile-N` is a timer statement
//! ([`profile`]); raw tracepoints and raw_syscalls are mechanisms the
//! [`tracepoint`] provider picks for bodies that read no event fields
//! ([`raw_syscalls`]). `tick-N` and `trace_end` are not providers at all:
//! they run in userspace (the interpreter) and have no program.

use super::ast::{self, Span};
use super::diag::Diagnostic;
use crate::facts::KernelFacts;
use crate::ir::{self, Attach, EventField, Expr};

pub mod btf;
pub mod fentry;
pub mod fetch_args;
pub mod iter;
pub mod kprobe;
pub mod profile;
pub mod raw_syscalls;
pub mod spec;
pub mod tracepoint;
pub mod uprobe;
pub mod usdt;

/// Every provider with spec syntax, in the order they are asked to claim a
/// spec; the last claims whatever no other does.
pub static REGISTRY: &[&dyn Provider] = &[&uprobe::Uprobe, &kprobe::Kprobe, &usdt::Usdt, &btf::Btf, &fentry::Fentry, &iter::Iter, &tracepoint::Tracepoint];

/// The provider that claims a spec's first word.
pub fn claiming(head: &str) -> &'static dyn Provider {
    REGISTRY.iter().copied().find(|p| p.claims(head)).unwrap_or(&tracepoint::Tracepoint)
}

/// The provider a parsed spec names.
pub fn provider(id: ast::ProviderId) -> &'static dyn Provider {
    REGISTRY.iter().copied().find(|p| p.name() == id.0).unwrap_or(&tracepoint::Tracepoint)
}

/// One kind of probe a `trace` spec can name.
pub trait Provider: Sync {
    /// Its name, recorded in the specs it parses.
    fn name(&self) -> &'static str;

    /// Whether it claims a spec whose first word is `head`.
    fn claims(&self, head: &str) -> bool;

    /// Parses a claimed spec's first word (`head`, whose text is `text`),
    /// reporting what is wrong with it.
    fn parse(&self, cx: &mut spec::SpecCx<'_>, head: spec::Piece, text: &str) -> Option<ast::EventKind>;

    /// Whether `name=FETCH[:TYPE]` arguments may follow the spec.
    fn takes_fetch_args(&self) -> bool {
        false
    }

    /// How bodies read what it gives: a `trace` names one family.
    fn family(&self) -> Family;

    /// The spec's attach points, globs expanded against the kernel facts;
    /// empty after reporting why there are none.
    fn expand(&self, cx: &mut Cx<'_>, spec: &ast::EventSpec) -> Vec<Point>;

    /// The `kdebug.NAME("EVENT", function () { })` call that registers
    /// one of its probes: NAME and an example EVENT, if it has one.
    fn kdebug(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// The spec such a call names with the text of EVENT (at `span`).
    fn spec_of_name(&self, _text: &str, _span: Span) -> Option<ast::EventSpec> {
        None
    }
}

/// The provider `kdebug.NAME(...)` registers a probe of, with its example.
pub fn by_kdebug_name(name: &str) -> Option<(&'static dyn Provider, &'static str)> {
    REGISTRY.iter().find_map(|p| p.kdebug().filter(|(n, _)| *n == name).map(|(_, example)| (*p, example)))
}

/// How bodies read what a provider gives. One `trace` statement takes
/// one family: its record-family specs are errors when it also names
/// fetch-family ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// The event's record, laid out by its format file (tracepoints): all
    /// the events of a `trace` share one body.
    Record,
    /// Registers and memory fetched at the probe (k/uprobes, USDT): points
    /// share a body when their arguments are laid out alike.
    Fetch,
}

/// One attach point of a spec and what a body reads there.
#[derive(Clone, Debug)]
pub struct Point {
    pub attach: Attach,
    pub reads: Reads,
}

/// What a body reads at a point. A provider whose bodies read something
/// new (BTF-typed arguments, say) adds a variant here and its
/// [`ProbeArgs`] in its own module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The event's record (its format is read only when the body needs
    /// it); `spec` names the event for errors.
    Record { spec: Span },
    /// Numbered and named arguments fetched from registers and memory.
    Fetch(fetch_args::ArgLayout),
    /// A BTF-typed function's arguments (tp_btf, fentry, fexit).
    Btf { spec: Span },
    /// An iterator's context (its target's typed arguments): each spec
    /// is a probe of its own.
    Iter { spec: Span },
}

impl Reads {
    /// Whether a point reading `other` shares a body with points reading
    /// this: all records do (their fields must agree where read), fetched
    /// arguments when laid out alike.
    pub fn joins(&self, other: &Reads) -> bool {
        matches!((self, other), (Reads::Record { .. }, Reads::Record { .. }) | (Reads::Btf { .. }, Reads::Btf { .. })) || self == other
    }

    /// What a body attached at `points` (which all read this) reads.
    pub fn into_args(self, points: &[Point]) -> Box<dyn ProbeArgs> {
        match self {
            Reads::Record { .. } => Box::new(tracepoint::EventArgs::new(points)),
            Reads::Fetch(layout) => {
                // Entry kprobes' functions: their BTF types `args.NAME`.
                let funcs = points
                    .iter()
                    .map(|p| match &p.attach {
                        Attach::Kprobe { symbol, ret: false, .. } => Some(symbol.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<String>>>()
                    .unwrap_or_default();
                Box::new(fetch_args::FetchArgs::new(layout, funcs))
            }
            Reads::Btf { .. } => Box::new(btf::BtfArgs::new(points)),
            Reads::Iter { .. } => Box::new(iter::IterArgs::new(points)),
        }
    }
}

/// What providers see of the compiler: the kernel facts and the
/// diagnostics.
pub struct Cx<'a> {
    pub facts: &'a dyn KernelFacts,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl Cx<'_> {
    pub fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, msg));
    }

    /// `WHAT is not supported yet in probe bodies`.
    pub fn unsupported(&mut self, span: Span, what: &str) {
        self.diags.push(
            Diagnostic::error(span, format!("{what} is not supported yet in probe bodies")).with_label("not supported yet"),
        );
    }
}

/// What a probe body can read of where it is attached, for one probe.
/// Every method that returns `None` has reported why.
pub trait ProbeArgs {
    /// `argN`.
    fn arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Expr>;

    /// `args.NAME`.
    fn field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Expr>;

    /// `args.NAME[index]` of a field that is an array of numbers: `None`
    /// when the provider has no such fields (the index is then refused
    /// as other indexes are), `Some(None)` after reporting a problem.
    fn element(&mut self, _cx: &mut Cx<'_>, _name: &str, _index: i64, _span: Span) -> Option<Option<Expr>> {
        None
    }

    /// A bare name that is no local, builtin, `argN` or script variable:
    /// `Some` when the provider gives it a meaning (an event field in a
    /// filter, `retval`).
    fn name(&mut self, _cx: &mut Cx<'_>, _name: &str, _in_filter: bool, _span: Span) -> Option<Option<Expr>> {
        None
    }

    /// A name the probe spec gave a member chain (`path=req->path` of
    /// `probe:BIN:FUNC`, as perf probe writes them): the typed argument it
    /// starts from and the members after it. `args.NAME` then reads
    /// `args.ARG->MEMBER...`.
    fn alias(&self, _name: &str) -> Option<(ast::Ident, Vec<ast::Ident>)> {
        None
    }

    /// `args.NAME` as a kernel value of a BTF type, for member chains:
    /// `None` when this provider's arguments have no BTF types, `Some(None)`
    /// after reporting why this one has none.
    fn typed_field(&mut self, _cx: &mut Cx<'_>, _name: &str, _span: Span) -> Option<Option<Typed>> {
        None
    }

    /// A bare name (`retval`) as a kernel value of a BTF type (as
    /// [`ProbeArgs::typed_field`]).
    fn typed_name(&mut self, _cx: &mut Cx<'_>, _name: &str, _span: Span) -> Option<Option<Typed>> {
        None
    }

    /// `argN` as a kernel value of a BTF type (as [`ProbeArgs::typed_field`]).
    fn typed_arg(&mut self, _cx: &mut Cx<'_>, _n: usize, _span: Span) -> Option<Option<Typed>> {
        None
    }

    /// `argstr`: the event as text, rendered in userspace.
    fn argstr(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<Expr> {
        cx.unsupported(span, "`argstr`");
        None
    }

    /// Whether every event of the probe is a syscall event.
    fn only_syscalls(&self) -> bool {
        false
    }

    /// Whether the body runs when a reader reads it (iterators): its
    /// prints go into the reader's seq_file (`ir::StmtKind::SeqPrint`),
    /// and it runs in the reader's process, so neither the tracer's
    /// process nor `-p`/`-C` filters apply.
    fn seq_file(&self) -> bool {
        false
    }

    /// `iter_end`: whether this run is the iterator's last, object-less
    /// call; reading it keeps that call.
    fn iter_end(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<Expr> {
        cx.diags.push(Diagnostic::error(span, "`iter_end` is only known in `iter:` probes").with_label("not an iterator probe"));
        None
    }

    /// Statements every run starts with, before the filter, once the body
    /// is lowered (iterators: leave at the end call unless the body reads
    /// `iter_end`).
    fn entry(&mut self, _cx: &mut Cx<'_>) -> Vec<ir::Stmt> {
        Vec::new()
    }

    /// The probe's shape once its body is lowered: its final attach
    /// points (`points` as expanded, in order), each one's event fields
    /// (for `argstr`), and the maps its programs need. `probe` is the
    /// index the probe will have.
    fn finish(self: Box<Self>, _cx: &mut Cx<'_>, _probe: usize, points: Vec<Attach>) -> Shape {
        let formats = vec![Vec::new(); points.len()];
        Shape { attach: points, formats, maps: Vec::new() }
    }
}

/// A value whose type is known: where it lies (a path that reads nothing
/// yet), its type, and whose types those are.
#[derive(Clone, Debug)]
pub struct Typed {
    pub path: ir::Path,
    pub ty: crate::facts::TypeId,
    pub types: TypeOrigin,
}

impl Typed {
    /// A kernel value typed by the kernel's BTF.
    pub fn kernel(path: ir::Path, ty: crate::facts::TypeId) -> Typed {
        Typed { path, ty, types: TypeOrigin::Kernel }
    }
}

/// Where a [`Typed`] value's type ids point.
#[derive(Clone, Debug)]
pub enum TypeOrigin {
    /// The kernel's BTF (`KernelFacts::kernel_btf`).
    Kernel,
    /// A user binary's types from its DWARF; the value lies in user memory.
    User(std::sync::Arc<crate::facts::TypeTable>),
    /// A BPF map's key or value types (its BTF, or an integer of its
    /// size); the value lies in a buffer of `size` bytes the program
    /// reads directly (`iter:bpf_map_elem`: PTR_TO_BUF), whose pointers
    /// are not followed. `what` names it in messages (`map 12's values`).
    Map { types: std::sync::Arc<crate::facts::TypeTable>, size: u32, what: String },
}

/// A probe's attach points and what goes with them.
pub struct Shape {
    pub attach: Vec<Attach>,
    pub formats: Vec<Vec<EventField>>,
    pub maps: Vec<ir::Map>,
}

/// A body with nothing to read: `profile-N`, or specs that expanded to
/// nothing (lowered for its diagnostics).
pub struct NoArgs;

impl ProbeArgs for NoArgs {
    fn arg(&mut self, cx: &mut Cx<'_>, _n: usize, span: Span) -> Option<Expr> {
        cx.error(span, "`argN` needs a tracepoint event");
        None
    }

    fn field(&mut self, cx: &mut Cx<'_>, _name: &str, span: Span) -> Option<Expr> {
        cx.error(span, "event fields need a tracepoint event");
        None
    }
}

/// A top-level statement that is a probe body, whatever its syntax.
pub struct ProbeStmt<'a> {
    pub source: ProbeSource<'a>,
    pub filter: Option<&'a ast::Expr>,
    /// None for a `kdebug.*` call without a function (lowering reports it).
    pub body: Option<&'a ast::Block>,
}

pub enum ProbeSource<'a> {
    /// `trace SPEC, SPEC [/filter/] { }`.
    Trace(&'a [ast::EventSpec]),
    /// `profile-N { }`.
    Profile(&'a ast::Period),
    /// `kdebug.tracepoint("event", function () { })`.
    Kdebug { callee: &'a ast::Expr, args: &'a [ast::Expr], span: Span },
}

/// The one decision of which top-level statements are probe bodies (they
/// compile to BPF; everything else runs in userspace).
pub fn probe_stmt(stmt: &ast::Stmt) -> Option<ProbeStmt<'_>> {
    match &stmt.kind {
        ast::StmtKind::Trace { events, filter, body } => {
            Some(ProbeStmt { source: ProbeSource::Trace(events), filter: filter.as_ref(), body: Some(body) })
        }
        ast::StmtKind::Timer { kind: ast::TimerKind::Profile, period, body } => {
            Some(ProbeStmt { source: ProbeSource::Profile(period), filter: None, body: Some(body) })
        }
        ast::StmtKind::Expr(ast::Expr { kind: ast::ExprKind::Call { callee, args }, span }) if is_kdebug(callee) => {
            let body = match args.get(1) {
                Some(ast::Expr { kind: ast::ExprKind::Function(f), .. }) => Some(&f.body),
                _ => None,
            };
            Some(ProbeStmt { source: ProbeSource::Kdebug { callee, args, span: *span }, filter: None, body })
        }
        _ => None,
    }
}

/// `kdebug.NAME`: a probe registered by a call.
fn is_kdebug(callee: &ast::Expr) -> bool {
    matches!(&callee.kind, ast::ExprKind::Field { base, .. } if matches!(&base.kind, ast::ExprKind::Name(n) if n.name == crate::builtins::PROBE_NAMESPACE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_claimed_by_prefix() {
        for (head, name) in [
            ("syscalls:sys_enter_*", "tracepoint"),
            ("*:*", "tracepoint"),
            ("probe:do_sys_open", "kprobe"),
            ("probe:ext4:ext4_sync_file%return", "kprobe"),
            ("probe:libc:malloc", "uprobe"),
            ("probe:/bin/bash:readline%return", "uprobe"),
            ("probe:/bin/bash", "uprobe"),
            ("sdt:/usr/bin/python3:function__entry", "usdt"),
        ] {
            assert_eq!(claiming(head).name(), name, "{head}");
        }
    }

    #[test]
    fn parsed_specs_name_their_provider() {
        let mut diags = Vec::new();
        let text = "probe:/bin/sh:main a=%di, sched:*, probe:vfs_read, sdt:/bin/x:m";
        let specs = spec::event_specs(&mut diags, text, 0, text.len());
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<&str> = specs.iter().map(|s| s.provider.0).collect();
        assert_eq!(names, ["uprobe", "tracepoint", "kprobe", "usdt"]);
        for s in &specs {
            assert_eq!(provider(s.provider).name(), s.provider.0);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
    }

    #[test]
    fn one_decision_of_what_is_a_probe_body() {
        let src = "var n = 0\n\
                   trace sched:* /pid == 1/ { n += 1 }\n\
                   profile-1ms { n += 1 }\n\
                   tick-1s { print(n) }\n\
                   trace_end { print(n) }\n\
                   kdebug.tracepoint(\"sched_switch\", function () { n += 1 })\n\
                   kdebug.tracepoint(\"sched_switch\")\n\
                   function f() { return 1 }\n\
                   print(f())";
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let probes: Vec<(&str, bool, bool)> = program
            .stmts
            .iter()
            .filter_map(probe_stmt)
            .map(|p| {
                let what = match p.source {
                    ProbeSource::Trace(_) => "trace",
                    ProbeSource::Profile(_) => "profile",
                    ProbeSource::Kdebug { .. } => "kdebug",
                };
                (what, p.filter.is_some(), p.body.is_some())
            })
            .collect();
        assert_eq!(probes, [("trace", true, true), ("profile", false, true), ("kdebug", false, true), ("kdebug", false, false)]);
    }

    #[test]
    fn kdebug_calls_go_to_their_provider() {
        let kernel = crate::facts::FakeKernel::new().event("sched", "sched_switch", Vec::new());
        let lower = |src: &str| {
            let (program, diags) = crate::frontend::parse(src);
            assert!(diags.is_empty(), "{diags:?}");
            crate::frontend::lower::lower(&program, &kernel, &Default::default())
        };
        let (m, d) = lower("kdebug.tracepoint(\"sched_switch\", function () { print(1) })");
        assert!(d.is_empty(), "{d:?}");
        let names: Vec<String> = m.probes.iter().flat_map(|p| p.attach.iter().map(Attach::full_name)).collect();
        assert_eq!(names, ["sched:sched_switch"]);
        let (m, d) = lower("kdebug.tracepoint(\"sched_switch\")");
        assert!(m.probes.is_empty());
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["kdebug.tracepoint takes an event name and a function: kdebug.tracepoint(\"sched_switch\", function () { ... })"]);
        let (_, d) = lower("kdebug.kprobe(\"f\", function () { })");
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["kdebug.kprobe is not supported yet in probe bodies"]);
    }
}
