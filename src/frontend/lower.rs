//! Lowering: the AST of a script to the IR. The only module that sees both
//! (with the providers it drives, `frontend::providers`).
//! It decides what runs in the kernel (probe bodies) and what stays in
//! userspace, types every kernel expression, and reports every construct
//! the kernel side cannot (yet) do as a diagnostic at its span. Pure: what
//! it knows of the running kernel's events arrives through
//! [`crate::facts::KernelFacts`].

use super::ast::{self, Span};
use super::diag::Diagnostic;
use super::providers::{self, ProbeArgs};
use super::resolve::{Binding, Resolution};
use crate::facts::KernelFacts;
use crate::ir::{self, Expr, ExprKind, GlobalId, Module, Section, SiteId, SiteKind, Stmt, StmtKind, Ty};
use indexmap::IndexMap;

mod agg;
mod cx;
mod events;
mod expr;
mod infer;
mod members;
mod scan;
mod stmt;

use scan::*;
pub use crate::builtins::count_conversions;
pub use expr::ty_name;

pub use crate::ir::{EventField, FieldKind};

/// The kernel facts trait under the name lowering code has used.
pub use crate::facts::KernelFacts as EventSource;

/// Default size of the ring buffer that carries records to userspace.
pub const EVENTS_RINGBUF_BYTES: u32 = 16 << 20;

/// Choices the command line makes for the kernel side.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Size of the event ring buffer: a power of two, a multiple of the
    /// page size.
    pub event_buffer_bytes: u32,
    /// Record a CO-RE relocation for every kernel struct offset (on by
    /// default). Off only for an object loaded at once on the kernel whose
    /// BTF typed it: relocating would make libbpf parse that kernel's whole
    /// BTF (~4 ms) to change nothing.
    pub core_records: bool,
    /// Read the task name (`execname`) through a relocatable typed read
    /// too, rather than two loads at the compiling kernel's offset: for
    /// objects saved to run elsewhere (`--emit obj`, `--btf`).
    pub portable_task_name: bool,
    /// `-T`: records that print carry the event's kernel time (8 bytes
    /// and one helper call each; none without it).
    pub timestamps: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { event_buffer_bytes: EVENTS_RINGBUF_BYTES, core_records: true, portable_task_name: false, timestamps: false }
    }
}
/// Frames kept per stack (the kernel's default perf_event_max_stack) and
/// distinct stacks kept.
const STACK_DEPTH: u32 = 127;
const STACK_ENTRIES: u32 = 16384;
/// Entries of a table whose size the script does not set.
const DEFAULT_TABLE_ENTRIES: u32 = 10240;

pub fn lower(program: &ast::Program, events: &dyn KernelFacts, opts: &Options) -> (Module, Vec<Diagnostic>) {
    let mut l = Lowerer {
        events,
        opts: *opts,
        m: Module::default(),
        diags: Vec::new(),
        vars: IndexMap::new(),
        kernel_globals: IndexMap::new(),
        tables: IndexMap::new(),
        table_uses: IndexMap::new(),
        functions: IndexMap::new(),
        kernel_uses: IndexMap::new(),
        types: infer::Types::default(),
        res: super::resolve::resolve(program),
        comm_offset: None,
        percpu: IndexMap::new(),
        nilable: std::collections::HashSet::new(),
        nested: false,
    };
    l.nilable = nilable_locals(&l.res, program);
    l.collect_vars(program);
    let (types, diags) = infer::infer(program, &l.res, &l.vars, &l.functions);
    l.types = types;
    l.diags.extend(diags);
    scan_probe_table_uses(program, &l.functions, &mut l.table_uses);
    l.add_synthetic();
    for (stmt, nested) in super::visit::main_probe_stmts(program) {
        l.nested = nested;
        l.top_level(stmt);
    }
    l.nested = false;
    l.m.tick_uses = super::visit::ticks(program).into_iter().map(|body| tick_names(body, &l.functions)).collect();
    let diags = super::check::userspace(program, &l.res, &l.kernel_uses);
    l.diags.extend(diags);
    // A conflict inference reported may be met again while lowering.
    let mut seen = std::collections::HashSet::new();
    l.diags.retain(|d| seen.insert((d.span, d.message.clone())));
    (l.m, l.diags)
}

/// The script's functions by name (borrowed from the tree: inlining
/// reads them, never copies them).
type Functions<'p> = IndexMap<String, &'p ast::FuncBody>;

/// A top-level `var` declaration.
struct VarDecl {
    /// True when its initializer is absent, nil or the literal 0.
    zero_init: bool,
    /// `Some(entries)` when it is initialised with a table constructor or
    /// `table.new(narr, nrec)` (entries 0: the default size).
    table: Option<u32>,
    span: Span,
}

/// How the probe bodies use one table.
#[derive(Clone, Copy, Debug, Default)]
struct TableUses {
    /// Every use updates it with this aggregate kind (`t[k] += v`: a sum):
    /// its entries are aggregates, per-CPU when the kind allows it.
    only: Option<ir::AggKind>,
    seen: bool,
    /// The first aggregating update, its kind and where.
    first_agg: Option<(ir::AggKind, Span)>,
    /// The first update of another kind than the first's, and where.
    other_kind: Option<(ir::AggKind, Span)>,
    /// The first use that is not an aggregating update.
    first_other: Option<Span>,
}

/// A table that lives in a BPF map, with where its key type came from.
struct KernelTable {
    map: ir::MapId,
    key: Ty,
    key_span: Span,
}

struct Lowerer<'a> {
    events: &'a dyn KernelFacts,
    opts: Options,
    m: Module,
    diags: Vec<Diagnostic>,
    vars: IndexMap<String, VarDecl>,
    kernel_globals: IndexMap<String, GlobalId>,
    tables: IndexMap<String, KernelTable>,
    table_uses: IndexMap<String, TableUses>,
    /// Top-level `function name() {}` definitions, inlined into probes.
    functions: Functions<'a>,
    /// Top-level variables probes use, with their type and first use.
    kernel_uses: IndexMap<String, (super::check::KernelUse, Span)>,
    /// What inference settled for globals, tables and probe locals.
    types: infer::Types,
    /// What every name means (`resolve.rs`).
    res: Resolution,
    /// `KernelFacts::task_comm_offset`'s answer, once asked.
    comm_offset: Option<Option<u32>>,
    /// `KernelFacts::percpu_var` answers, asked once per variable.
    percpu: IndexMap<String, Result<ir::PercpuAccess, String>>,
    /// Locals that may be nil: declared or assigned `nil` or a table
    /// element (which may be missing). Each gets a hidden presence flag.
    nilable: std::collections::HashSet<super::resolve::LocalId>,
    /// The probe statement being lowered is nested in main-context code
    /// (`ir::Probe::nested`).
    nested: bool,
}

/// The locals a script declares or assigns `nil` or a table element.
fn nilable_locals(res: &Resolution, program: &ast::Program) -> std::collections::HashSet<super::resolve::LocalId> {
    use super::visit::{self, Visitor};
    struct Nilable<'r> {
        res: &'r Resolution,
        found: std::collections::HashSet<super::resolve::LocalId>,
    }
    impl Visitor<'_> for Nilable<'_> {
        fn visit_stmt(&mut self, s: &ast::Stmt) {
            let maybe_nil = |v: &ast::Expr| matches!(v.kind, ast::ExprKind::Nil | ast::ExprKind::Index { .. });
            match &s.kind {
                ast::StmtKind::Var { names, values } => {
                    for (n, v) in names.iter().zip(values) {
                        if let (true, Some(l)) = (maybe_nil(v), self.res.local(n.span)) {
                            self.found.insert(l);
                        }
                    }
                    // `var x` alone is nil too.
                    for n in names.iter().skip(values.len()) {
                        self.found.extend(self.res.local(n.span));
                    }
                }
                ast::StmtKind::Assign { targets, values } => {
                    for (t, v) in targets.iter().zip(values) {
                        if let (true, ast::ExprKind::Name(id)) = (maybe_nil(v), &t.kind) {
                            if let Binding::Local(l) = self.res.binding(id.span) {
                                self.found.insert(l);
                            }
                        }
                    }
                }
                _ => {}
            }
            visit::walk_stmt(self, s);
        }
    }
    let mut v = Nilable { res, found: std::collections::HashSet::new() };
    for s in &program.stmts {
        v.visit_stmt(s);
    }
    v.found
}

/// What a probe body can see of its events.
struct ProbeCtx {
    /// What `argN`, `args.NAME`, provider names and `argstr` mean: the
    /// provider's answer (`frontend::providers`).
    args: Box<dyn ProbeArgs>,
    /// In a filter, event field names are in scope directly.
    in_filter: bool,
    /// The IR local of each declaration the resolver found (by its
    /// `resolve::LocalId`), once lowered; an inlined function's
    /// declarations are rebound at each call.
    bound: Vec<Option<ir::LocalId>>,
    /// Hidden counters of counted `for (i = A; ...)` loops around the
    /// statement being lowered: uses of `i` there (whatever `i` means
    /// outside) read the counter. Hidden from inlined functions.
    counters: Vec<(Binding, String, ir::LocalId)>,
    /// Temporaries lowering synthesises names for (`\0tmpN`, a name no
    /// script can write).
    temps: Vec<(String, ir::LocalId)>,
    /// Types of the probe's locals, indexed by `LocalId`.
    locals: Vec<Ty>,
    /// Loops around the statement being lowered (in the current function).
    loops: usize,
    /// Functions being inlined, outermost first (to refuse recursion).
    inlining: Vec<String>,
    /// Where `return` goes inside an inlined function: its block and the
    /// local receiving the value.
    returns: Vec<(ir::BlockId, ir::LocalId)>,
    next_block: u32,
    /// The presence flag (1: a value, 0: nil) of each local that may be
    /// nil, by the IR local holding its value.
    present: std::collections::HashMap<ir::LocalId, ir::LocalId>,
}

impl ProbeCtx {
    fn new(args: Box<dyn ProbeArgs>) -> ProbeCtx {
        ProbeCtx {
            args,
            in_filter: false,
            bound: Vec::new(),
            counters: Vec::new(),
            temps: Vec::new(),
            locals: Vec::new(),
            loops: 0,
            inlining: Vec::new(),
            returns: Vec::new(),
            next_block: 0,
            present: std::collections::HashMap::new(),
        }
    }

    fn new_local(&mut self, ty: Ty) -> ir::LocalId {
        self.locals.push(ty);
        ir::LocalId(self.locals.len() as u32 - 1)
    }

    /// A new local for the declaration `name` (a `var` name, a parameter,
    /// a loop variable), bound to what the resolver made of it.
    fn declare(&mut self, res: &Resolution, name: &ast::Ident, ty: Ty) -> ir::LocalId {
        let id = self.new_local(ty);
        if let Some(l) = res.local(name.span) {
            if self.bound.len() <= l.index() {
                self.bound.resize(l.index() + 1, None);
            }
            self.bound[l.index()] = Some(id);
        }
        id
    }

    /// The IR local a name reads, when it names one: a loop counter, a
    /// synthesised temporary or a declared local already lowered.
    fn lookup(&self, res: &Resolution, name: &ast::Ident) -> Option<ir::LocalId> {
        if name.name.starts_with('\0') {
            return self.temps.iter().rev().find(|(n, _)| *n == name.name).map(|(_, l)| *l);
        }
        let binding = res.binding(name.span);
        if let Some((.., l)) = self.counters.iter().rev().find(|(b, n, _)| *b == binding && *n == name.name) {
            return Some(*l);
        }
        match binding {
            Binding::Local(l) => self.bound.get(l.index()).copied().flatten(),
            _ => None,
        }
    }

    fn new_block(&mut self) -> ir::BlockId {
        self.next_block += 1;
        ir::BlockId(self.next_block - 1)
    }
}

fn local_expr(id: ir::LocalId, span: Option<Span>) -> Expr {
    Expr { kind: ExprKind::Local(id), ty: Ty::Int, span }
}

/// The value a nil local of type `ty` holds: 0, or the empty string.
fn zero(ty: Ty, span: Option<Span>) -> Expr {
    match ty {
        Ty::Comm | Ty::Str => Expr { kind: ExprKind::StrConst(Vec::new()), ty, span },
        _ => constant(0, span),
    }
}

fn constant(v: i64, span: Option<Span>) -> Expr {
    Expr { kind: ExprKind::Const(v), ty: Ty::Int, span }
}

fn binary(op: ir::BinOp, lhs: Expr, rhs: Expr, span: Option<Span>) -> Expr {
    Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, ty: Ty::Int, span }
}

/// `while (cond) { inner; counter += step }`.
fn counted_loop_stmt(counter: ir::LocalId, cond: Expr, inner: Vec<Stmt>, step: i64, trips: u32, sp: Option<Span>) -> Stmt {
    let next = binary(ir::BinOp::Add, local_expr(counter, sp), constant(step, sp), sp);
    Stmt { kind: StmtKind::Loop { cond, body: inner, step: vec![set_local(counter, next, sp)], max_iterations: trips }, span: sp }
}

fn set_local(id: ir::LocalId, value: Expr, span: Option<Span>) -> Stmt {
    Stmt { kind: StmtKind::LocalSet { local: id, value }, span }
}

/// Most iterations a loop in a probe may make.
const MAX_LOOP_ITERATIONS: i64 = 1024;

fn is_zero(e: &ast::Expr) -> bool {
    matches!(e.kind, ast::ExprKind::Int(0) | ast::ExprKind::Nil)
}

impl<'a> Lowerer<'a> {
    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, msg));
    }

    /// A type inference must have settled but did not: a compiler bug,
    /// reported at the use rather than guessed.
    fn unsettled(&mut self, span: Span, what: &str) {
        self.diags.push(
            Diagnostic::error(span, format!("internal error: inference left the type of {what} unsettled"))
                .with_label("no type")
                .with_note("this is a bug in ktap; please report it with the script"),
        );
    }

    /// The type inference settled for the local declared at `decl` (a
    /// `var` name or a parameter), if any use typed it.
    fn local_ty(&self, decl: Span) -> Option<Ty> {
        self.res.local(decl).and_then(|l| self.types.locals.get(&l)).map(|f| f.ty)
    }

    fn unsupported(&mut self, span: Span, what: &str) {
        self.diags.push(
            Diagnostic::error(span, format!("{what} is not supported yet in probe bodies"))
                .with_label("not supported yet"),
        );
    }

    fn collect_vars(&mut self, program: &'a ast::Program) {
        for stmt in &program.stmts {
            if let ast::StmtKind::Function { name, func } = &stmt.kind {
                if let [only] = name.as_slice() {
                    self.functions.insert(only.name.clone(), func);
                }
            }
            if let ast::StmtKind::Var { names, values } = &stmt.kind {
                for (i, name) in names.iter().enumerate() {
                    let zero_init = values.get(i).is_none_or(is_zero);
                    let table = values.get(i).and_then(table_size);
                    self.vars.entry(name.name.clone()).or_insert(VarDecl { zero_init, table, span: name.span });
                }
            }
        }
    }

    fn add_synthetic(&mut self) {
        let stop = self.add_global("ktap_stopped", None, Ty::Int, Section::Bss, None);
        let lost = self.add_global("ktap_lost_events", None, Ty::Int, Section::Bss, None);
        let failures = self.add_global("ktap_map_failures", None, Ty::Int, Section::Bss, None);
        self.m.stop_flag = Some(stop);
        self.m.lost_events = Some(lost);
        self.m.map_failures = Some(failures);
        self.m.target_pid = Some(self.add_global("ktap_target_pid", None, Ty::Int, Section::Data, None));
        self.m.target_cpu = Some(self.add_global("ktap_target_cpu", None, Ty::Int, Section::Data, None));
        self.m.boot_to_real = Some(self.add_global("ktap_boot_to_real", None, Ty::Int, Section::Data, None));
        self.m.self_pid = Some(self.add_global("ktap_self_pid", None, Ty::Int, Section::Data, None));
    }

    fn add_global(&mut self, name: &str, var: Option<&str>, ty: Ty, section: Section, span: Option<Span>) -> GlobalId {
        let id = GlobalId(self.m.globals.len() as u32);
        self.m.globals.push(ir::Global { name: name.to_string(), var: var.map(str::to_string), ty, section, span });
        id
    }

    fn events_map(&mut self) -> ir::MapId {
        if let Some(id) = self.m.events {
            return id;
        }
        let id = ir::MapId(self.m.maps.len() as u32);
        self.m.maps.push(ir::Map {
            name: "ktap_events".into(),
            kind: ir::MapKind::RingBuf,
            key_size: 0,
            value_size: 0,
            max_entries: self.opts.event_buffer_bytes,
            table: None,
            syscall_filter: None,
        });
        self.m.events = Some(id);
        id
    }

    fn top_level(&mut self, stmt: &ast::Stmt) {
        // Everything but probe bodies runs in userspace (the interpreter).
        let Some(probe) = providers::probe_stmt(stmt) else { return };
        match (probe.source, probe.body) {
            (providers::ProbeSource::Trace(events), Some(body)) => self.trace(stmt.span, events, probe.filter, body),
            (providers::ProbeSource::Profile(period), Some(body)) => self.profile(stmt.span, period, body),
            (providers::ProbeSource::Kdebug { callee, args, span }, _) => self.kdebug(span, callee, args),
            _ => {}
        }
    }

    /// What providers see of the lowering: the facts and the diagnostics.
    fn pcx(&mut self) -> providers::Cx<'_> {
        providers::Cx { facts: self.events, diags: &mut self.diags }
    }

}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::FakeKernel;

    /// Three syscall events, each with `__syscall_nr` and `fd`.
    fn three_syscalls() -> FakeKernel {
        let field = |name: &str, offset| EventField { name: name.into(), offset, size: 8, signed: false, common: false, kind: FieldKind::Int };
        let mut k = FakeKernel::new();
        for (name, nr) in [("close", 3), ("dup", 32), ("getppid", 110)] {
            k = k.event("syscalls", &format!("sys_enter_{name}"), vec![field("__syscall_nr", 8), field("fd", 16)]).syscall(name, nr);
        }
        k
    }

    /// The events whose formats lowering `src` read, and the errors.
    fn reads(src: &str) -> (Vec<String>, usize) {
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{src}: {diags:?}");
        let events = three_syscalls();
        let (_, diags) = lower(&program, &events, &Options::default());
        (events.format_reads(), diags.len())
    }

    #[test]
    fn formats_are_read_only_when_needed() {
        let all = ["sys_enter_close", "sys_enter_dup", "sys_enter_getppid"].map(String::from).to_vec();
        for src in [
            "var s = {} trace syscalls:* { s[probename] += 1 }",
            "var n = 0 trace syscalls:* /pid == 1/ { n += 1 printf(\"%s %s %d\\n\", probename, execname, tid) }",
            "profile-1ms { print(cpu) }",
        ] {
            assert_eq!(reads(src), (Vec::new(), 0), "{src}");
        }
        for src in [
            "trace syscalls:* { print(arg1) print(arg0) }",
            "trace syscalls:* { print(args.fd + args.fd) }",
            "var n = 0 trace syscalls:* /fd == 1/ { n += 1 }",
            "trace syscalls:* { print(argstr) }",
            "function f() { return arg1 } trace syscalls:* { print(f()) }",
        ] {
            // Each event once, however many fields the body reads.
            assert_eq!(reads(src), (all.clone(), 0), "{src}");
        }
        // Errors still name what is missing.
        assert_eq!(reads("trace syscalls:* { print(args.nope) }"), (all.clone(), 1));
        assert_eq!(reads("profile-1ms { print(arg0) }"), (Vec::new(), 1));
    }
}
