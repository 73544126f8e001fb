//! Lowering: the AST of a script to the IR. The only module that sees both.
//! It decides what runs in the kernel (probe bodies) and what stays in
//! userspace, types every kernel expression, and reports every construct
//! the kernel side cannot (yet) do as a diagnostic at its span. Pure: what
//! it knows of the running kernel's events arrives through [`EventSource`].

use super::ast::{self, Span};
use super::diag::Diagnostic;
use crate::ir::{self, Attach, Builtin, Expr, ExprKind, GlobalId, Module, Section, SiteId, SiteKind, Stmt, StmtKind, Ty};
use indexmap::IndexMap;

pub mod dynprobe;

pub use crate::ir::{EventField, FieldKind};

/// What lowering needs to know of the kernel's events.
pub trait EventSource {
    /// Tracepoints whose system and event match the globs, sorted.
    fn tracepoints(&self, system: &str, event: &str) -> Result<Vec<(String, String)>, String>;
    /// The record layout of one tracepoint.
    fn format(&self, system: &str, event: &str) -> Result<Vec<EventField>, String>;
    /// Existing names close to `system:event`, best first (for suggestions).
    fn similar(&self, system: &str, event: &str) -> Vec<String>;
    /// The number of syscall `name` (`openat`), if known.
    fn syscall_nr(&self, name: &str) -> Option<u32>;
    /// The path a binary spec (`/bin/ls`, `libc`) names.
    fn resolve_binary(&self, _binary: &str) -> Result<String, String> {
        Err(dynprobe::NO_PROBES.into())
    }
    /// The functions of a binary whose names match `glob`.
    fn user_symbols(&self, _binary: &str, _glob: &str) -> Result<dynprobe::UserSymbols, String> {
        Err(dynprobe::NO_PROBES.into())
    }
    /// The USDT markers of a binary whose names match `glob`.
    fn sdt_markers(&self, _binary: &str, _glob: &str) -> Result<dynprobe::SdtMarkers, String> {
        Err(dynprobe::NO_PROBES.into())
    }
    /// Traceable kernel functions matching `glob`, sorted.
    fn kernel_functions(&self, _glob: &str) -> Result<Vec<String>, String> {
        Err(dynprobe::NO_PROBES.into())
    }
    /// The address of a kernel symbol (for `@sym` fetches).
    fn kernel_symbol(&self, _name: &str) -> Option<u64> {
        None
    }
}

/// Size of the ring buffer that carries records to userspace.
const EVENTS_RINGBUF_BYTES: u32 = 4 << 20;
/// Frames kept per stack (the kernel's default perf_event_max_stack) and
/// distinct stacks kept.
const STACK_DEPTH: u32 = 127;
const STACK_ENTRIES: u32 = 16384;
/// Room for `__data_loc` strings in an `argstr` copy, and its cap.
const ARGSTR_DYNAMIC_BYTES: u32 = 256;
const ARGSTR_MAX_BYTES: u32 = 1024;
/// From how many syscall events a probe rides raw_syscalls.
const RIDE_RAW_SYSCALLS_FROM: usize = 4;
/// Syscall numbers a syscall filter map covers.
const SYSCALL_FILTER_ENTRIES: u32 = 1024;
/// Entries of a table whose size the script does not set.
const DEFAULT_TABLE_ENTRIES: u32 = 10240;

pub fn lower(program: &ast::Program, events: &dyn EventSource) -> (Module, Vec<Diagnostic>) {
    let mut l = Lowerer {
        events,
        m: Module::default(),
        diags: Vec::new(),
        vars: IndexMap::new(),
        kernel_globals: IndexMap::new(),
        tables: IndexMap::new(),
        table_uses: IndexMap::new(),
        functions: IndexMap::new(),
        kernel_uses: IndexMap::new(),
    };
    l.collect_vars(program);
    for stmt in &program.stmts {
        match &stmt.kind {
            ast::StmtKind::Trace { body, .. } => scan_table_uses(&body.stmts, &mut l.table_uses),
            // Tables the main context fills with strings hold strings.
            _ => scan_string_values(stmt, &mut l.table_uses),
        }
    }
    l.add_synthetic();
    for stmt in &program.stmts {
        l.top_level(stmt);
    }
    let diags = super::check::userspace(program, &l.kernel_uses);
    l.diags.extend(diags);
    (l.m, l.diags)
}

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
    /// Only `t[k] += v`: a per-CPU table will do.
    only_add: bool,
    seen: bool,
    /// Some assignment (in a probe or in the main context) stores a string:
    /// the table holds strings.
    string_values: bool,
}

/// A table that lives in a BPF map, with where its key type came from.
struct KernelTable {
    map: ir::MapId,
    key: Ty,
    key_span: Span,
}

struct Lowerer<'a> {
    events: &'a dyn EventSource,
    m: Module,
    diags: Vec<Diagnostic>,
    vars: IndexMap<String, VarDecl>,
    kernel_globals: IndexMap<String, GlobalId>,
    tables: IndexMap<String, KernelTable>,
    table_uses: IndexMap<String, TableUses>,
    /// Top-level `function name() {}` definitions, inlined into probes.
    functions: IndexMap<String, ast::FuncBody>,
    /// Top-level variables probes use, with their type and first use.
    kernel_uses: IndexMap<String, (super::check::KernelUse, Span)>,
}

/// What a probe body can see of its events.
struct ProbeCtx {
    /// Fields after the common ones, in format order, if every attached
    /// event agrees on them.
    formats: Vec<Vec<EventField>>,
    /// In a filter, event field names are in scope directly.
    in_filter: bool,
    /// Set when the body or filter reads an event field: then it needs a
    /// classic tracepoint program.
    uses_fields: std::cell::Cell<bool>,
    /// The bytes of the record `argstr` copies: (offset, length).
    argstr_window: Option<(u32, u32)>,
    /// How many of the probe's events are syscall events, of how many.
    syscalls: (usize, usize),
    /// Local variables in scope, innermost last; a function being inlined
    /// sees only its own.
    scopes: Vec<IndexMap<String, ir::LocalId>>,
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
    /// For k/uprobes and USDT: the arguments the probe spec gives.
    dynamic: Option<dynprobe::ArgLayout>,
}

impl ProbeCtx {
    fn new(formats: Vec<Vec<EventField>>, argstr_window: Option<(u32, u32)>, syscalls: (usize, usize)) -> ProbeCtx {
        ProbeCtx {
            formats,
            in_filter: false,
            uses_fields: std::cell::Cell::new(false),
            argstr_window,
            syscalls,
            scopes: vec![IndexMap::new()],
            locals: Vec::new(),
            loops: 0,
            inlining: Vec::new(),
            returns: Vec::new(),
            next_block: 0,
            dynamic: None,
        }
    }

    fn new_local(&mut self, ty: Ty) -> ir::LocalId {
        self.locals.push(ty);
        ir::LocalId(self.locals.len() as u32 - 1)
    }

    fn declare(&mut self, name: &str, ty: Ty) -> ir::LocalId {
        let id = self.new_local(ty);
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), id);
        }
        id
    }

    fn lookup(&self, name: &str) -> Option<ir::LocalId> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn new_block(&mut self) -> ir::BlockId {
        self.next_block += 1;
        ir::BlockId(self.next_block - 1)
    }
}

fn local_expr(id: ir::LocalId, span: Option<Span>) -> Expr {
    Expr { kind: ExprKind::Local(id), ty: Ty::Int, span }
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

/// Builtins that need the userspace interpreter.
const USERSPACE_ONLY: &[&str] = &["pairs", "len", "table.new", "sort_pairs", "arch", "kernel_v", "num_cpus", "tostring", "tonumber"];

/// Most iterations a loop in a probe may make.
const MAX_LOOP_ITERATIONS: i64 = 1024;

fn is_zero(e: &ast::Expr) -> bool {
    matches!(e.kind, ast::ExprKind::Int(0) | ast::ExprKind::Nil)
}

impl Lowerer<'_> {
    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, msg));
    }

    fn userspace_only(&mut self, span: Span, name: &str) {
        self.diags.push(
            Diagnostic::error(span, format!("`{name}` only works in userspace (main, tick-N, trace_end), not in a probe"))
                .with_label("userspace only")
                .with_note("probes can count into tables and print; walk and format the tables in a tick-N or trace_end block"),
        );
    }

    fn unsupported(&mut self, span: Span, what: &str) {
        self.diags.push(
            Diagnostic::error(span, format!("{what} is not supported yet in probe bodies"))
                .with_label("not supported yet"),
        );
    }

    fn collect_vars(&mut self, program: &ast::Program) {
        for stmt in &program.stmts {
            if let ast::StmtKind::Function { name, func } = &stmt.kind {
                if let [only] = name.as_slice() {
                    self.functions.insert(only.name.clone(), func.clone());
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
        let stop = self.add_global("ktap_stopped", None, Section::Bss, None);
        let lost = self.add_global("ktap_lost_events", None, Section::Bss, None);
        let failures = self.add_global("ktap_map_failures", None, Section::Bss, None);
        self.m.stop_flag = Some(stop);
        self.m.lost_events = Some(lost);
        self.m.map_failures = Some(failures);
        self.m.target_pid = Some(self.add_global("ktap_target_pid", None, Section::Data, None));
        self.m.target_cpu = Some(self.add_global("ktap_target_cpu", None, Section::Data, None));
        self.m.boot_to_real = Some(self.add_global("ktap_boot_to_real", None, Section::Data, None));
        self.m.self_pid = Some(self.add_global("ktap_self_pid", None, Section::Data, None));
    }

    fn add_global(&mut self, name: &str, var: Option<&str>, section: Section, span: Option<Span>) -> GlobalId {
        let id = GlobalId(self.m.globals.len() as u32);
        self.m.globals.push(ir::Global { name: name.to_string(), var: var.map(str::to_string), ty: Ty::Int, section, span });
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
            max_entries: EVENTS_RINGBUF_BYTES,
            table: None,
            syscall_filter: None,
        });
        self.m.events = Some(id);
        id
    }

    fn top_level(&mut self, stmt: &ast::Stmt) {
        match &stmt.kind {
            ast::StmtKind::Trace { events, filter, body } => self.trace(stmt.span, events, filter.as_ref(), body),
            ast::StmtKind::Timer { kind: ast::TimerKind::Profile, period, body } => self.profile(stmt.span, period, body),
            ast::StmtKind::Expr(ast::Expr { kind: ast::ExprKind::Call { callee, args }, span }) if is_kdebug(callee) => {
                self.kdebug(*span, callee, args)
            }
            // Everything else runs in userspace (the interpreter).
            _ => {}
        }
    }

    fn trace(&mut self, span: Span, specs: &[ast::EventSpec], filter: Option<&ast::Expr>, body: &ast::Block) {
        if specs.iter().any(|s| !matches!(s.kind, ast::EventKind::Tracepoint { .. })) {
            return self.dyn_trace(span, specs, filter, body);
        }
        let mut found_events: Vec<(String, String)> = Vec::new();
        let mut formats: Vec<Vec<EventField>> = Vec::new();
        for spec in specs {
            match &spec.kind {
                ast::EventKind::Tracepoint { system, event } => {
                    match self.events.tracepoints(&system.text, &event.text) {
                        Ok(found) if found.is_empty() => {
                            let mut d = Diagnostic::error(
                                spec.span,
                                format!("unknown event `{}:{}`", system.text, event.text),
                            )
                            .with_label("no such tracepoint");
                            let similar = self.events.similar(&system.text, &event.text);
                            if !similar.is_empty() {
                                d = d.with_note(format!("did you mean {}?", similar.join(", ")));
                            }
                            self.diags.push(d);
                        }
                        Ok(found) => {
                            for (system, event) in found {
                                match self.events.format(&system, &event) {
                                    Ok(f) => formats.push(f),
                                    Err(e) => self.error(spec.span, format!("cannot read the format of {system}:{event}: {e}")),
                                }
                                found_events.push((system, event));
                            }
                        }
                        Err(e) => self.error(spec.span, e),
                    }
                }
                // Routed to dyn_trace above.
                ast::EventKind::Probe { .. } | ast::EventKind::Sdt { .. } => {}
            }
        }
        let argstr_window = argstr_window(&formats);
        let own: Vec<Vec<EventField>> = formats.iter().map(|f| f.iter().filter(|f| !f.common).cloned().collect()).collect();
        let syscalls = (found_events.iter().filter(|(s, _)| s == "syscalls").count(), found_events.len());
        let mut ctx = ProbeCtx::new(own, argstr_window, syscalls);
        let mut stmts = self.prologue();
        let prologue_len = stmts.len();
        let sites_before = self.m.sites.len();
        let mut inner = Vec::new();
        self.block(&mut ctx, body, &mut inner);
        match filter {
            Some(f) => {
                ctx.in_filter = true;
                let cond = self.int_expr(&mut ctx, f);
                ctx.in_filter = false;
                if let Some(cond) = cond {
                    stmts.push(Stmt { kind: StmtKind::If { cond, then: inner, otherwise: vec![] }, span: Some(f.span) });
                }
            }
            None => stmts.extend(inner),
        }
        if self.m.sites.len() > sites_before {
            // A probe that prints must not see the tracer's own writes, or
            // each line it prints would make another event.
            stmts.insert(prologue_len, self.skip_self());
        }
        if found_events.is_empty() {
            return;
        }
        let probe = self.m.probes.len();
        // Riding raw_syscalls runs the filter on every syscall of the
        // system: worth it only when many syscall events are traced.
        let syscall_events = found_events.iter().filter(|(s, _)| s == "syscalls").count();
        let ride = syscall_events >= RIDE_RAW_SYSCALLS_FROM;
        let attach: Vec<Attach> = found_events
            .into_iter()
            .map(|(system, event)| self.attach_point(system, event, ctx.uses_fields.get(), ride))
            .collect();
        for kind in [ir::ProgKind::SysEnter, ir::ProgKind::SysExit] {
            if attach.iter().any(|a| a.kind() == kind) {
                self.m.maps.push(ir::Map {
                    name: format!("ktap_sys_{probe}_{}", if kind == ir::ProgKind::SysEnter { "enter" } else { "exit" }),
                    kind: ir::MapKind::Array,
                    key_size: 4,
                    value_size: 8,
                    max_entries: SYSCALL_FILTER_ENTRIES,
                    table: None,
                    syscall_filter: Some((probe, kind)),
                });
            }
        }
        let formats = formats.into_iter().map(|f| f.into_iter().filter(|f| !f.common).collect()).collect();
        self.m.probes.push(ir::Probe { attach, formats, locals: ctx.locals, body: stmts, span });
    }

    /// `kdebug.tracepoint("sched_switch", function () { ... })` (or
    /// `"sched:sched_switch"`): a probe registered by a call.
    fn kdebug(&mut self, span: Span, callee: &ast::Expr, args: &[ast::Expr]) {
        let ast::ExprKind::Field { name, .. } = &callee.kind else { return };
        if name.name != "tracepoint" {
            self.unsupported(callee.span, &format!("kdebug.{}", name.name));
            return;
        }
        let (Some(ast::Expr { kind: ast::ExprKind::Str(event), span: event_span }), Some(ast::Expr { kind: ast::ExprKind::Function(func), .. }), 2) =
            (args.first(), args.get(1), args.len())
        else {
            self.error(span, "kdebug.tracepoint takes an event name and a function: kdebug.tracepoint(\"sched_switch\", function () { ... })");
            return;
        };
        if !func.params.is_empty() {
            self.error(func.span, "the probe function takes no parameters");
        }
        let text = String::from_utf8_lossy(event).into_owned();
        let (system, event) = match text.split_once(':') {
            Some((s, e)) => (s.to_string(), e.to_string()),
            None => ("*".to_string(), text.clone()),
        };
        // The span of the text inside the quotes.
        let inner = ast::Span { start: event_span.start + 1, end: event_span.end.saturating_sub(1).max(event_span.start + 1) };
        let spec = ast::EventSpec {
            kind: ast::EventKind::Tracepoint { system: ast::Word { text: system, span: inner }, event: ast::Word { text: event, span: inner } },
            fetch_args: Vec::new(),
            span: inner,
        };
        self.trace(span, &[spec], None, &func.body);
    }

    /// `profile-N { }`: a perf cpu-clock event on every CPU.
    fn profile(&mut self, span: Span, period: &ast::Period, body: &ast::Block) {
        if period.nanos == 0 {
            return; // The parser reported the bad period.
        }
        let mut ctx = ProbeCtx::new(Vec::new(), None, (0, 1));
        let mut stmts = self.prologue();
        self.block(&mut ctx, body, &mut stmts);
        let name = format!("profile-{}", period_text(period.nanos));
        self.m.probes.push(ir::Probe {
            attach: vec![Attach::Profile { period_ns: period.nanos, name }],
            formats: vec![Vec::new()],
            locals: ctx.locals,
            body: stmts,
            span,
        });
    }

    /// The cheapest way to attach to an event that still gives the body
    /// what it reads.
    fn attach_point(&self, system: String, event: String, uses_fields: bool, ride_syscalls: bool) -> Attach {
        if uses_fields {
            return Attach::Tracepoint { system, event };
        }
        if system == "syscalls" {
            if !ride_syscalls {
                return Attach::Tracepoint { system, event };
            }
            let (name, exit) = match (event.strip_prefix("sys_enter_"), event.strip_prefix("sys_exit_")) {
                (Some(n), _) => (n, false),
                (_, Some(n)) => (n, true),
                _ => return Attach::Tracepoint { system, event },
            };
            return match self.events.syscall_nr(name) {
                Some(nr) if nr < SYSCALL_FILTER_ENTRIES => Attach::Syscall { nr, exit, event },
                _ => Attach::Tracepoint { system, event },
            };
        }
        if system == "ftrace" {
            return Attach::Tracepoint { system, event };
        }
        Attach::RawTracepoint { system, event }
    }

    /// What every probe checks first: the stop flag, then -p and -C.
    /// `if (pid == ktap's pid) return`.
    fn skip_self(&self) -> Stmt {
        let synth = |kind| Expr { kind, ty: Ty::Int, span: None };
        let cond = match self.m.self_pid {
            Some(g) => binary(ir::BinOp::Eq, synth(ExprKind::Builtin(Builtin::Pid)), synth(ExprKind::Global(g)), None),
            None => constant(0, None),
        };
        Stmt { kind: StmtKind::If { cond, then: vec![Stmt { kind: StmtKind::Return, span: None }], otherwise: vec![] }, span: None }
    }

    fn prologue(&self) -> Vec<Stmt> {
        let mut stmts = Vec::new();
        if let Some(stop) = self.m.stop_flag {
            // Deliver nothing once userspace has begun to stop.
            stmts.push(Stmt {
                kind: StmtKind::If {
                    cond: Expr { kind: ExprKind::Global(stop), ty: Ty::Int, span: None },
                    then: vec![Stmt { kind: StmtKind::Return, span: None }],
                    otherwise: vec![],
                },
                span: None,
            });
        }
        // -p/-- and -C: `if (target && pid != target) return`.
        for (target, builtin, bias) in [(self.m.target_pid, Builtin::Pid, 0), (self.m.target_cpu, Builtin::Cpu, 1)] {
            let Some(target) = target else { continue };
            let synth = |kind| Expr { kind, ty: Ty::Int, span: None };
            let current = if bias == 0 {
                synth(ExprKind::Builtin(builtin))
            } else {
                synth(ExprKind::Binary {
                    op: ir::BinOp::Add,
                    lhs: Box::new(synth(ExprKind::Builtin(builtin))),
                    rhs: Box::new(synth(ExprKind::Const(bias))),
                })
            };
            let other = synth(ExprKind::Binary {
                op: ir::BinOp::Ne,
                lhs: Box::new(current),
                rhs: Box::new(synth(ExprKind::Global(target))),
            });
            let cond = synth(ExprKind::Binary { op: ir::BinOp::And, lhs: Box::new(synth(ExprKind::Global(target))), rhs: Box::new(other) });
            stmts.push(Stmt {
                kind: StmtKind::If { cond, then: vec![Stmt { kind: StmtKind::Return, span: None }], otherwise: vec![] },
                span: None,
            });
        }
        stmts
    }

    fn block(&mut self, ctx: &mut ProbeCtx, block: &ast::Block, out: &mut Vec<Stmt>) {
        ctx.scopes.push(IndexMap::new());
        for s in &block.stmts {
            self.stmt(ctx, s, out);
        }
        ctx.scopes.pop();
    }

    fn stmt(&mut self, ctx: &mut ProbeCtx, s: &ast::Stmt, out: &mut Vec<Stmt>) {
        let span = Some(s.span);
        match &s.kind {
            ast::StmtKind::Expr(e) => {
                if let ast::ExprKind::Call { callee, args } = &e.kind {
                    if let Some(stmt) = self.call_stmt(ctx, e.span, callee, args) {
                        out.push(stmt);
                    }
                } else {
                    self.error(e.span, "this expression does nothing");
                }
            }
            ast::StmtKind::AddAssign { target: ast::Expr { kind: ast::ExprKind::Index { base, index }, .. }, value } => {
                let Some((map, key)) = self.table_key(ctx, base, index) else { return };
                if self.table_value(map) != Ty::Int {
                    self.error(s.span, "this table holds strings: `+=` needs numbers");
                    return;
                }
                if let Some(value) = self.int_expr(ctx, value) {
                    out.push(Stmt { kind: StmtKind::MapAdd { map, key, value }, span });
                }
            }
            ast::StmtKind::Assign { targets, values }
                if targets.len() == 1 && values.len() == 1 && matches!(targets[0].kind, ast::ExprKind::Index { .. }) =>
            {
                let ast::ExprKind::Index { base, index } = &targets[0].kind else { return };
                let Some((map, key)) = self.table_key(ctx, base, index) else { return };
                if matches!(values[0].kind, ast::ExprKind::Nil) {
                    out.push(Stmt { kind: StmtKind::MapDelete { map, key }, span });
                    return;
                }
                let Some(value) = self.expr(ctx, &values[0]) else { return };
                let holds = self.table_value(map);
                let fits = match holds {
                    Ty::Str => matches!(value.ty, Ty::Str | Ty::Comm),
                    _ => value.ty == Ty::Int,
                };
                if fits {
                    out.push(Stmt { kind: StmtKind::MapStore { map, key, value }, span });
                } else {
                    self.error(values[0].span, format!("this table holds {}s, not {}s", ty_name(holds), ty_name(value.ty)));
                }
            }
            ast::StmtKind::AddAssign { target: ast::Expr { kind: ast::ExprKind::Name(id), .. }, value } if ctx.lookup(&id.name).is_some() => {
                let Some(local) = ctx.lookup(&id.name) else { return };
                if let Some(value) = self.int_expr(ctx, value) {
                    let sum = Expr {
                        kind: ExprKind::Binary { op: ir::BinOp::Add, lhs: Box::new(local_expr(local, span)), rhs: Box::new(value) },
                        ty: Ty::Int,
                        span,
                    };
                    out.push(set_local(local, sum, span));
                }
            }
            ast::StmtKind::Assign { targets, values }
                if targets.len() == 1
                    && values.len() == 1
                    && matches!(&targets[0].kind, ast::ExprKind::Name(id) if ctx.lookup(&id.name).is_some()) =>
            {
                let ast::ExprKind::Name(id) = &targets[0].kind else { return };
                let Some(local) = ctx.lookup(&id.name) else { return };
                if let Some(value) = self.int_expr(ctx, &values[0]) {
                    out.push(set_local(local, value, span));
                }
            }
            ast::StmtKind::AddAssign { target, value } => {
                let Some(global) = self.global_target(target) else { return };
                if let Some(value) = self.int_expr(ctx, value) {
                    out.push(Stmt { kind: StmtKind::GlobalAdd { global, value }, span });
                }
            }
            ast::StmtKind::Assign { targets, values } if targets.len() != 1 || values.len() != 1 => {
                // `a, b = b, a`: every value first, then every store.
                if targets.len() != values.len() {
                    self.error(s.span, format!("{} targets but {} values", targets.len(), values.len()));
                    return;
                }
                let mut temps = Vec::new();
                for v in values {
                    let Some(v) = self.int_expr(ctx, v) else { return };
                    let tmp = ctx.new_local(Ty::Int);
                    out.push(set_local(tmp, v, span));
                    temps.push(tmp);
                }
                for (t, tmp) in targets.iter().zip(temps) {
                    let one = ast::Stmt {
                        kind: ast::StmtKind::Assign { targets: vec![t.clone()], values: vec![ast::Expr { kind: ast::ExprKind::Name(ast::Ident { name: format!("\u{0}tmp{}", tmp.0), span: t.span }), span: t.span }] },
                        span: s.span,
                    };
                    ctx.scopes.push(IndexMap::from([(format!("\u{0}tmp{}", tmp.0), tmp)]));
                    self.stmt(ctx, &one, out);
                    ctx.scopes.pop();
                }
            }
            ast::StmtKind::Assign { targets, values } => {
                let Some(global) = self.global_target(&targets[0]) else { return };
                if let Some(value) = self.int_expr(ctx, &values[0]) {
                    out.push(Stmt { kind: StmtKind::GlobalStore { global, value }, span });
                }
            }
            ast::StmtKind::If { arms, otherwise } => {
                let lowered = self.if_chain(ctx, arms, otherwise.as_ref());
                out.extend(lowered);
            }
            ast::StmtKind::Block(b) => self.block(ctx, b, out),
            ast::StmtKind::Return(value) => match ctx.returns.last().copied() {
                Some((block, result)) => {
                    if let Some(v) = value {
                        if let Some(v) = self.int_expr(ctx, v) {
                            out.push(set_local(result, v, span));
                        }
                    }
                    out.push(Stmt { kind: StmtKind::Leave(block), span });
                }
                None if value.is_none() => out.push(Stmt { kind: StmtKind::Return, span }),
                None => self.unsupported(s.span, "returning a value from a probe"),
            },
            ast::StmtKind::Var { names, values } => {
                // Evaluate every value first, then bind (`var a, b = b, a`).
                let mut lowered = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match values.get(i) {
                        Some(v) => match self.int_expr(ctx, v) {
                            Some(v) => v,
                            None => continue,
                        },
                        None => Expr { kind: ExprKind::Const(0), ty: Ty::Int, span },
                    };
                    let tmp = ctx.new_local(Ty::Int);
                    out.push(set_local(tmp, value, span));
                    lowered.push((name, tmp));
                }
                for (name, tmp) in lowered {
                    let local = ctx.declare(&name.name, Ty::Int);
                    out.push(set_local(local, local_expr(tmp, span), Some(name.span)));
                }
            }
            ast::StmtKind::ForNum { var, start, limit, step, body } => self.for_num(ctx, s.span, var, start, limit, step.as_ref(), body, out),
            ast::StmtKind::ForC { init, cond, step, body } => {
                self.for_c(ctx, s.span, init.as_deref(), cond.as_ref(), step.as_deref(), body, out)
            }
            ast::StmtKind::While { .. } => self.diags.push(
                Diagnostic::error(s.span, "a `while` loop in a probe has no bound the compiler can see")
                    .with_label("unbounded loop")
                    .with_note(format!(
                        "loops in probes must be bounded: use `for (i = 1, N) {{ ... }}` with a constant N (at most {MAX_LOOP_ITERATIONS})"
                    )),
            ),
            ast::StmtKind::ForIn { .. } => self.unsupported(s.span, "iterating a table with pairs()"),
            ast::StmtKind::Break => {
                if ctx.loops == 0 {
                    self.error(s.span, "`break` outside a loop");
                } else {
                    out.push(Stmt { kind: StmtKind::Break, span });
                }
            }
            ast::StmtKind::Function { .. } => self.error(s.span, "functions can only be defined at the top level"),
            ast::StmtKind::Trace { .. } | ast::StmtKind::TraceEnd { .. } | ast::StmtKind::Timer { .. } => {
                self.error(s.span, "event blocks can only appear at the top level")
            }
            ast::StmtKind::Error => {}
        }
    }

    fn if_chain(&mut self, ctx: &mut ProbeCtx, arms: &[(ast::Expr, ast::Block)], otherwise: Option<&ast::Block>) -> Vec<Stmt> {
        let Some(((cond, body), rest)) = arms.split_first() else {
            let mut out = Vec::new();
            if let Some(b) = otherwise {
                self.block(ctx, b, &mut out);
            }
            return out;
        };
        let cond_ir = self.int_expr(ctx, cond);
        let mut then = Vec::new();
        self.block(ctx, body, &mut then);
        let els = self.if_chain(ctx, rest, otherwise);
        match cond_ir {
            Some(cond) => vec![Stmt { kind: StmtKind::If { cond, then, otherwise: els }, span: Some(body.span) }],
            None => Vec::new(),
        }
    }

    /// The kernel global a statement assigns to.
    fn global_target(&mut self, target: &ast::Expr) -> Option<GlobalId> {
        match &target.kind {
            ast::ExprKind::Name(id) => self.kernel_global(id),
            ast::ExprKind::Index { .. } | ast::ExprKind::Field { .. } => {
                self.unsupported(target.span, "assigning to a table element");
                None
            }
            _ => {
                self.error(target.span, "cannot assign to this expression");
                None
            }
        }
    }

    fn kernel_global(&mut self, id: &ast::Ident) -> Option<GlobalId> {
        if let Some(g) = self.kernel_globals.get(&id.name) {
            return Some(*g);
        }
        let Some(decl) = self.vars.get(&id.name) else {
            self.diags.push(
                Diagnostic::error(id.span, format!("undeclared variable `{}`", id.name))
                    .with_label("not declared")
                    .with_note(format!("declare it at the top level: `var {} = 0`", id.name)),
            );
            return None;
        };
        let section = if decl.zero_init { Section::Bss } else { Section::Data };
        let decl_span = decl.span;
        let g = self.add_global(&format!("ktap_var_{}", id.name), Some(&id.name), section, Some(decl_span));
        self.kernel_globals.insert(id.name.clone(), g);
        self.kernel_uses.entry(id.name.clone()).or_insert((super::check::KernelUse::Number, id.span));
        Some(g)
    }

    fn call_stmt(&mut self, ctx: &mut ProbeCtx, span: Span, callee: &ast::Expr, args: &[ast::Expr]) -> Option<Stmt> {
        let name = match &callee.kind {
            ast::ExprKind::Name(id) => id.name.clone(),
            ast::ExprKind::Field { base, name } => match &base.kind {
                ast::ExprKind::Name(b) => format!("{}.{}", b.name, name.name),
                _ => String::new(),
            },
            _ => String::new(),
        };
        match name.as_str() {
            "print" => {
                let (fields, consts, values) = self.site_args(ctx, args)?;
                let site = self.site(SiteKind::Print, fields, consts, span);
                Some(Stmt { kind: StmtKind::Emit { site, args: values }, span: Some(span) })
            }
            "printf" => {
                let Some(first) = args.first() else {
                    self.error(span, "printf needs a format string");
                    return None;
                };
                let ast::ExprKind::Str(format) = &first.kind else {
                    self.error(first.span, "the format of printf in a probe must be a string literal");
                    return None;
                };
                let wanted = count_conversions(format);
                if wanted != args.len() - 1 {
                    self.diags.push(
                        Diagnostic::error(span, format!("printf format has {wanted} conversions but {} arguments follow", args.len() - 1))
                            .with_secondary(first.span, "format"),
                    );
                    return None;
                }
                let (fields, consts, values) = self.site_args(ctx, &args[1..])?;
                let site = self.site(SiteKind::Printf { format: format.clone() }, fields, consts, span);
                Some(Stmt { kind: StmtKind::Emit { site, args: values }, span: Some(span) })
            }
            "exit" => {
                if !args.is_empty() {
                    self.error(span, "exit() takes no arguments");
                }
                let site = self.site(SiteKind::Exit, Vec::new(), Vec::new(), span);
                Some(Stmt { kind: StmtKind::Emit { site, args: Vec::new() }, span: Some(span) })
            }
            "print_hist" | "delete" => {
                let var = match args.first().map(|a| &a.kind) {
                    Some(ast::ExprKind::Name(id)) if self.vars.get(&id.name).is_some_and(|d| d.table.is_some()) => id.name.clone(),
                    _ => {
                        self.error(span, format!("{name}() in a probe takes a table declared at the top level"));
                        return None;
                    }
                };
                let kind = if name == "delete" {
                    if args.len() > 1 {
                        self.unsupported(span, "delete(t, key) (use t[key] = nil)");
                        return None;
                    }
                    SiteKind::Delete { var }
                } else {
                    let n = match args.get(1).map(|a| &a.kind) {
                        None => 20,
                        Some(ast::ExprKind::Int(n)) if *n > 0 => *n as usize,
                        Some(_) => {
                            self.error(args[1].span, "print_hist's count in a probe must be a positive number literal");
                            return None;
                        }
                    };
                    SiteKind::PrintHist { var, n }
                };
                let site = self.site(kind, Vec::new(), Vec::new(), span);
                Some(Stmt { kind: StmtKind::Emit { site, args: Vec::new() }, span: Some(span) })
            }
            n if USERSPACE_ONLY.contains(&n) || n.starts_with("ansi.") => {
                self.userspace_only(span, n);
                None
            }
            "" => {
                self.unsupported(callee.span, "calling this expression");
                None
            }
            other if self.functions.contains_key(other) => {
                let (body, _) = self.inline_call(ctx, span, other, args)?;
                Some(Stmt { kind: StmtKind::Block { id: body.0, body: body.1 }, span: Some(span) })
            }
            other => {
                self.unsupported(callee.span, &format!("calling `{other}`"));
                None
            }
        }
    }

    /// Inlines a call of the user function `name`: parameters become
    /// locals, `return` leaves the block. Returns the block and the local
    /// that receives the return value (0 when none is returned).
    #[expect(clippy::type_complexity, reason = "the block, its id and its result")]
    fn inline_call(&mut self, ctx: &mut ProbeCtx, span: Span, name: &str, args: &[ast::Expr]) -> Option<((ir::BlockId, Vec<Stmt>), ir::LocalId)> {
        let func = self.functions.get(name)?.clone();
        if ctx.inlining.iter().any(|f| f == name) {
            let chain = ctx.inlining.join(" -> ");
            self.diags.push(
                Diagnostic::error(span, format!("recursion in a probe: `{name}` is already being called ({chain} -> {name})"))
                    .with_label("recursive call")
                    .with_note("the kernel cannot run recursive functions: rewrite it with a bounded loop"),
            );
            return None;
        }
        if args.len() != func.params.len() {
            self.diags.push(
                Diagnostic::error(span, format!("`{name}` takes {} arguments but {} were given", func.params.len(), args.len()))
                    .with_secondary(func.span, "defined here"),
            );
            return None;
        }
        let mut body = Vec::new();
        let mut params = Vec::new();
        for a in args {
            let v = self.int_expr(ctx, a)?;
            let tmp = ctx.new_local(Ty::Int);
            body.push(set_local(tmp, v, Some(a.span)));
            params.push(tmp);
        }
        let result = ctx.new_local(Ty::Int);
        body.push(set_local(result, Expr { kind: ExprKind::Const(0), ty: Ty::Int, span: None }, None));
        let block = ctx.new_block();
        // The callee sees its parameters and globals, not the caller's locals.
        let saved_scopes = std::mem::replace(&mut ctx.scopes, vec![IndexMap::new()]);
        let saved_loops = std::mem::replace(&mut ctx.loops, 0);
        for (p, tmp) in func.params.iter().zip(&params) {
            let local = ctx.declare(&p.name, Ty::Int);
            body.push(set_local(local, local_expr(*tmp, None), Some(p.span)));
        }
        ctx.inlining.push(name.to_string());
        ctx.returns.push((block, result));
        self.block(ctx, &func.body, &mut body);
        ctx.returns.pop();
        ctx.inlining.pop();
        ctx.scopes = saved_scopes;
        ctx.loops = saved_loops;
        Some(((block, body), result))
    }

    /// `for (i = start, limit[, step])` with constant bounds: inclusive,
    /// as in Lua. A hidden counter drives the loop, so the body cannot
    /// change the trip count the verifier sees.
    #[expect(clippy::too_many_arguments, reason = "the parts of the loop")]
    fn for_num(
        &mut self,
        ctx: &mut ProbeCtx,
        span: Span,
        var: &ast::Ident,
        start: &ast::Expr,
        limit: &ast::Expr,
        step: Option<&ast::Expr>,
        body: &ast::Block,
        out: &mut Vec<Stmt>,
    ) {
        let (Some(a), Some(b), Some(c)) = (const_int(start), const_int(limit), step.map_or(Some(1), const_int)) else {
            self.diags.push(
                Diagnostic::error(span, "a loop in a probe needs constant bounds")
                    .with_label("bounds not constant")
                    .with_note(format!("write the bounds as numbers, e.g. `for (i = 1, 16) {{ ... }}` (at most {MAX_LOOP_ITERATIONS} iterations)")),
            );
            return;
        };
        if c == 0 {
            self.error(step.map_or(span, |s| s.span), "the loop step is 0: the loop would never end");
            return;
        }
        let trips = if (c > 0 && b < a) || (c < 0 && b > a) { 0 } else { (b as i128 - a as i128) / c as i128 + 1 };
        if trips > MAX_LOOP_ITERATIONS as i128 {
            self.error(span, format!("this loop runs {trips} times; loops in probes may run at most {MAX_LOOP_ITERATIONS} times"));
            return;
        }
        let sp = Some(span);
        let counter = ctx.new_local(Ty::Int);
        out.push(set_local(counter, Expr { kind: ExprKind::Const(a), ty: Ty::Int, span: sp }, sp));
        let cond = binary(if c > 0 { ir::BinOp::Le } else { ir::BinOp::Ge }, local_expr(counter, sp), constant(b, sp), sp);
        ctx.scopes.push(IndexMap::new());
        let visible = ctx.declare(&var.name, Ty::Int);
        let mut inner = vec![set_local(visible, local_expr(counter, sp), Some(var.span))];
        ctx.loops += 1;
        self.block(ctx, body, &mut inner);
        ctx.loops -= 1;
        ctx.scopes.pop();
        out.push(counted_loop_stmt(counter, cond, inner, c, trips as u32, sp));
    }

    /// `for (init; cond; step)` when it has the shape of a counted loop:
    /// `i = A; i < B; i += C` (any of < <= > >= !=), with `i` not assigned
    /// in the body.
    #[expect(clippy::too_many_arguments, reason = "the parts of the loop")]
    fn for_c(
        &mut self,
        ctx: &mut ProbeCtx,
        span: Span,
        init: Option<&ast::Stmt>,
        cond: Option<&ast::Expr>,
        step: Option<&ast::Stmt>,
        body: &ast::Block,
        out: &mut Vec<Stmt>,
    ) {
        let counted = counted_loop(init, cond, step).filter(|(var, ..)| !assigns(&body.stmts, var));
        let Some((var, a, op, b, c)) = counted else {
            self.diags.push(
                Diagnostic::error(span, "this loop has no bound the compiler can see")
                    .with_label("unbounded loop")
                    .with_note(format!(
                        "in a probe, write counted loops: `for (i = 0; i < N; i += 1)` or `for (i = 1, N)`, with constant N (at most {MAX_LOOP_ITERATIONS} iterations) and no assignment to i in the body"
                    )),
            );
            return;
        };
        // Trip count of `for (i = a; i op b; i += c)`.
        let mut i = a as i128;
        let mut trips: i128 = 0;
        let holds = |i: i128| match op {
            ast::BinOp::Lt => i < b as i128,
            ast::BinOp::Le => i <= b as i128,
            ast::BinOp::Gt => i > b as i128,
            ast::BinOp::Ge => i >= b as i128,
            _ => i != b as i128,
        };
        while holds(i) && trips <= MAX_LOOP_ITERATIONS as i128 {
            trips += 1;
            i += c as i128;
        }
        if trips > MAX_LOOP_ITERATIONS as i128 {
            self.error(span, format!("this loop runs more than {MAX_LOOP_ITERATIONS} times (or never ends); loops in probes may run at most {MAX_LOOP_ITERATIONS} times"));
            return;
        }
        let sp = Some(span);
        ctx.scopes.push(IndexMap::new());
        let counter = ctx.declare(&var, Ty::Int);
        out.push(set_local(counter, Expr { kind: ExprKind::Const(a), ty: Ty::Int, span: sp }, sp));
        let ir_op = match op {
            ast::BinOp::Lt => ir::BinOp::Lt,
            ast::BinOp::Le => ir::BinOp::Le,
            ast::BinOp::Gt => ir::BinOp::Gt,
            ast::BinOp::Ge => ir::BinOp::Ge,
            _ => ir::BinOp::Ne,
        };
        let cond = binary(ir_op, local_expr(counter, sp), constant(b, sp), sp);
        let mut inner = Vec::new();
        ctx.loops += 1;
        self.block(ctx, body, &mut inner);
        ctx.loops -= 1;
        ctx.scopes.pop();
        out.push(counted_loop_stmt(counter, cond, inner, c, trips as u32, sp));
    }

    fn site(&mut self, kind: SiteKind, fields: Vec<Ty>, consts: Vec<(usize, ir::SiteConst)>, span: Span) -> SiteId {
        self.events_map();
        let id = SiteId(self.m.sites.len() as u32);
        self.m.sites.push(ir::Site { kind, fields, consts, span });
        id
    }

    /// Splits print/printf arguments into literals (kept in userspace) and
    /// values the kernel sends.
    #[expect(clippy::type_complexity, reason = "three parallel results of one pass")]
    fn site_args(&mut self, ctx: &mut ProbeCtx, args: &[ast::Expr]) -> Option<(Vec<Ty>, Vec<(usize, ir::SiteConst)>, Vec<Expr>)> {
        let (mut fields, mut consts, mut values) = (Vec::new(), Vec::new(), Vec::new());
        let mut ok = true;
        for (i, a) in args.iter().enumerate() {
            let c = match &a.kind {
                ast::ExprKind::Str(s) => Some(ir::SiteConst::Str(s.clone())),
                ast::ExprKind::Int(v) => Some(ir::SiteConst::Int(*v)),
                ast::ExprKind::Bool(b) => Some(ir::SiteConst::Bool(*b)),
                ast::ExprKind::Nil => Some(ir::SiteConst::Nil),
                _ => None,
            };
            if let Some(c) = c {
                consts.push((i, c));
                continue;
            }
            match self.expr(ctx, a) {
                Some(v) => {
                    fields.push(v.ty);
                    values.push(v);
                }
                None => ok = false,
            }
        }
        ok.then_some((fields, consts, values))
    }

    fn int_expr(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Expr> {
        let v = self.expr(ctx, e)?;
        if v.ty != Ty::Int {
            self.unsupported(e.span, "using a string here");
            return None;
        }
        Some(v)
    }

    fn expr(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Expr> {
        let span = Some(e.span);
        let int = |kind| Some(Expr { kind, ty: Ty::Int, span });
        match &e.kind {
            ast::ExprKind::Int(v) => int(ExprKind::Const(*v)),
            ast::ExprKind::Bool(b) => int(ExprKind::Const(i64::from(*b))),
            ast::ExprKind::Name(id) => self.name(ctx, id, e.span),
            ast::ExprKind::Field { base, name } => {
                if let ast::ExprKind::Name(b) = &base.kind {
                    if b.name == "args" {
                        return self.event_field(ctx, &name.name, e.span);
                    }
                }
                self.unsupported(e.span, "field access");
                None
            }
            ast::ExprKind::Unary { op, operand } => {
                let operand = Box::new(self.int_expr(ctx, operand)?);
                let op = match op {
                    ast::UnOp::Neg => ir::UnOp::Neg,
                    ast::UnOp::Not => ir::UnOp::Not,
                };
                int(ExprKind::Unary { op, operand })
            }
            ast::ExprKind::Binary { op: op @ (ast::BinOp::Eq | ast::BinOp::Ne), lhs, rhs }
                if matches!(lhs.kind, ast::ExprKind::Str(_)) || matches!(rhs.kind, ast::ExprKind::Str(_)) =>
            {
                let (lit, other) = match (&lhs.kind, &rhs.kind) {
                    (ast::ExprKind::Str(l), _) => (l, rhs),
                    (_, ast::ExprKind::Str(l)) => (l, lhs),
                    _ => return None,
                };
                let value = self.expr(ctx, other)?;
                if !matches!(value.ty, Ty::Comm | Ty::Str) {
                    self.error(e.span, format!("comparing a {} with a string", ty_name(value.ty)));
                    return None;
                }
                if lit.len() as u32 >= value.ty.size() {
                    self.diags.push(
                        Diagnostic::error(e.span, format!("this string can never match: it is longer than the {} bytes the value holds", value.ty.size() - 1))
                            .with_label("always false"),
                    );
                    return None;
                }
                let eq = Expr { kind: ExprKind::StrEq { value: Box::new(value), literal: lit.clone() }, ty: Ty::Int, span };
                if *op == ast::BinOp::Eq {
                    Some(eq)
                } else {
                    int(ExprKind::Unary { op: ir::UnOp::Not, operand: Box::new(eq) })
                }
            }
            ast::ExprKind::Binary { op: op @ (ast::BinOp::Eq | ast::BinOp::Ne), lhs, rhs }
                if matches!(lhs.kind, ast::ExprKind::Nil) || matches!(rhs.kind, ast::ExprKind::Nil) =>
            {
                let other = if matches!(lhs.kind, ast::ExprKind::Nil) { rhs } else { lhs };
                let ast::ExprKind::Index { base, index } = &other.kind else {
                    self.unsupported(e.span, "comparing this with nil");
                    return None;
                };
                let (map, key) = self.table_key(ctx, base, index)?;
                let has = Expr { kind: ExprKind::MapHas { map, key: Box::new(key) }, ty: Ty::Int, span };
                if *op == ast::BinOp::Eq {
                    int(ExprKind::Unary { op: ir::UnOp::Not, operand: Box::new(has) })
                } else {
                    Some(has)
                }
            }
            ast::ExprKind::Binary { op, lhs, rhs } => {
                let op = match op {
                    ast::BinOp::Add => ir::BinOp::Add,
                    ast::BinOp::Sub => ir::BinOp::Sub,
                    ast::BinOp::Mul => ir::BinOp::Mul,
                    ast::BinOp::Div => ir::BinOp::Div,
                    ast::BinOp::Mod => ir::BinOp::Mod,
                    ast::BinOp::Eq => ir::BinOp::Eq,
                    ast::BinOp::Ne => ir::BinOp::Ne,
                    ast::BinOp::Lt => ir::BinOp::Lt,
                    ast::BinOp::Le => ir::BinOp::Le,
                    ast::BinOp::Gt => ir::BinOp::Gt,
                    ast::BinOp::Ge => ir::BinOp::Ge,
                    ast::BinOp::And => ir::BinOp::And,
                    ast::BinOp::Or => ir::BinOp::Or,
                    ast::BinOp::Concat => {
                        self.unsupported(e.span, "string concatenation");
                        return None;
                    }
                };
                let lhs = self.int_expr(ctx, lhs);
                let rhs = self.int_expr(ctx, rhs);
                int(ExprKind::Binary { op, lhs: Box::new(lhs?), rhs: Box::new(rhs?) })
            }
            ast::ExprKind::Nil => {
                self.unsupported(e.span, "`nil`");
                None
            }
            ast::ExprKind::Str(_) => {
                self.unsupported(e.span, "a string literal outside printf's format");
                None
            }
            ast::ExprKind::Call { callee, args } => self.call_value(ctx, callee, args, e.span),
            ast::ExprKind::Index { base, index } => {
                let (map, key) = self.table_key(ctx, base, index)?;
                let ty = self.table_value(map);
                Some(Expr { kind: ExprKind::MapGet { map, key: Box::new(key) }, ty, span })
            }
            ast::ExprKind::Table(_) | ast::ExprKind::Function(_) => {
                self.unsupported(e.span, "a table or function value");
                None
            }
            ast::ExprKind::Error => None,
        }
    }

    fn name(&mut self, ctx: &mut ProbeCtx, id: &ast::Ident, span: Span) -> Option<Expr> {
        if let Some(local) = ctx.lookup(&id.name) {
            return Some(local_expr(local, Some(span)));
        }
        let builtin = match id.name.as_str() {
            "pid" => Some(Builtin::Pid),
            "tid" => Some(Builtin::Tid),
            "uid" => Some(Builtin::Uid),
            "cpu" => Some(Builtin::Cpu),
            "execname" => Some(Builtin::Execname),
            _ => None,
        };
        if let Some(b) = builtin {
            let ty = if b == Builtin::Execname { Ty::Comm } else { Ty::Int };
            return Some(Expr { kind: ExprKind::Builtin(b), ty, span: Some(span) });
        }
        if let Some(n) = id.name.strip_prefix("arg").and_then(|n| n.parse::<usize>().ok()) {
            return self.event_arg(ctx, n, span);
        }
        if ctx.in_filter && !self.vars.contains_key(&id.name) {
            let is_field = ctx.formats.first().is_some_and(|fields| fields.iter().any(|f| f.name == id.name));
            if is_field {
                return self.event_field(ctx, &id.name, span);
            }
        }
        if let Some(e) = self.dyn_name(ctx, id, span) {
            return e;
        }
        if id.name == "probename" {
            return Some(Expr { kind: ExprKind::ProbeName, ty: Ty::ProbeName, span: Some(span) });
        }
        if id.name == "argstr" {
            if let Some((offset, len)) = ctx.argstr_window {
                ctx.uses_fields.set(true);
                return Some(Expr { kind: ExprKind::ArgStr { offset }, ty: Ty::ArgStr { start: offset, len }, span: Some(span) });
            }
            self.unsupported(span, &format!("`{}`", id.name));
            return None;
        }
        let g = self.kernel_global(id)?;
        Some(Expr { kind: ExprKind::Global(g), ty: Ty::Int, span: Some(span) })
    }

    fn stack_map(&mut self) -> ir::MapId {
        if let Some(id) = self.m.stacks {
            return id;
        }
        let id = ir::MapId(self.m.maps.len() as u32);
        self.m.maps.push(ir::Map {
            name: "ktap_stacks".into(),
            kind: ir::MapKind::StackTrace,
            key_size: 4,
            value_size: STACK_DEPTH * 8,
            max_entries: STACK_ENTRIES,
            table: None,
            syscall_filter: None,
        });
        self.m.stacks = Some(id);
        id
    }

    /// Builtin functions that return a value in a probe.
    fn call_value(&mut self, ctx: &mut ProbeCtx, callee: &ast::Expr, args: &[ast::Expr], span: Span) -> Option<Expr> {
        let ast::ExprKind::Name(id) = &callee.kind else {
            self.unsupported(callee.span, "calling this expression");
            return None;
        };
        let int = |kind| Some(Expr { kind, ty: Ty::Int, span: Some(span) });
        let divide = |ns: Expr, by: i64| {
            Some(Expr {
                kind: ExprKind::Binary { op: ir::BinOp::Div, lhs: Box::new(ns), rhs: Box::new(Expr { kind: ExprKind::Const(by), ty: Ty::Int, span: None }) },
                ty: Ty::Int,
                span: Some(span),
            })
        };
        let name = id.name.as_str();
        let no_args = |l: &mut Self| {
            if !args.is_empty() {
                l.error(span, format!("{name}() takes no arguments"));
            }
        };
        match name {
            "gettimeofday_ns" | "gettimeofday_us" | "gettimeofday_ms" | "gettimeofday_s" => {
                no_args(self);
                let ns = Expr { kind: ExprKind::Builtin(Builtin::RealtimeNs), ty: Ty::Int, span: Some(span) };
                match name {
                    "gettimeofday_ns" => Some(ns),
                    "gettimeofday_us" => divide(ns, 1_000),
                    "gettimeofday_ms" => divide(ns, 1_000_000),
                    _ => divide(ns, 1_000_000_000),
                }
            }
            "user_string" | "kernel_string" => {
                let [ptr] = args else {
                    self.error(span, format!("{name}() takes one argument: an address"));
                    return None;
                };
                let ptr = self.int_expr(ctx, ptr)?;
                Some(Expr { kind: ExprKind::ReadStr { ptr: Box::new(ptr), user: name == "user_string" }, ty: Ty::Str, span: Some(span) })
            }
            "stack" | "ustack" => {
                no_args(self);
                let user = name == "ustack";
                self.stack_map();
                Some(Expr { kind: ExprKind::Stack { user }, ty: Ty::Stack { user }, span: Some(span) })
            }
            "in_interrupt" => {
                no_args(self);
                let (sys, all) = ctx.syscalls;
                if sys == all && all > 0 {
                    // Syscall events fire in process context only.
                    return int(ExprKind::Const(0));
                }
                // The record header's flags are not filled for BPF
                // programs (kernel/trace/trace_syscalls.c,
                // perf_call_bpf_enter), so only syscall events can answer.
                self.unsupported(span, "in_interrupt() outside syscall events");
                None
            }
            n if USERSPACE_ONLY.contains(&n) => {
                self.userspace_only(span, n);
                None
            }
            _ if self.functions.contains_key(name) => {
                let ((id, body), result) = self.inline_call(ctx, span, name, args)?;
                let block = Stmt { kind: StmtKind::Block { id, body }, span: Some(span) };
                int(ExprKind::Seq { body: vec![block], result })
            }
            _ => {
                self.unsupported(callee.span, &format!("calling `{name}` for its value"));
                None
            }
        }
    }

    /// The type of the values a table holds.
    fn table_value(&self, map: ir::MapId) -> Ty {
        self.m.map(map).table.as_ref().map_or(Ty::Int, |t| t.value)
    }

    /// The map behind `base` and the lowered key, creating the map on first
    /// use; the first use fixes the key type.
    fn table_key(&mut self, ctx: &mut ProbeCtx, base: &ast::Expr, index: &ast::Expr) -> Option<(ir::MapId, Expr)> {
        let ast::ExprKind::Name(id) = &base.kind else {
            self.unsupported(base.span, "indexing this expression");
            return None;
        };
        let key = self.expr(ctx, index)?;
        if matches!(key.ty, Ty::MemStr(_)) {
            self.unsupported(index.span, "a fetched string as a table key");
            return None;
        }
        if let Some(t) = self.tables.get(&id.name) {
            if t.key != key.ty {
                let d = Diagnostic::error(index.span, format!("table `{}` is keyed by a {} here", id.name, ty_name(key.ty)))
                    .with_label(format!("a {} key", ty_name(key.ty)))
                    .with_secondary(t.key_span, format!("but by a {} here", ty_name(t.key)));
                self.diags.push(d);
                return None;
            }
            return Some((t.map, key));
        }
        let Some(decl) = self.vars.get(&id.name) else {
            self.diags.push(
                Diagnostic::error(id.span, format!("undeclared table `{}`", id.name))
                    .with_label("not declared")
                    .with_note(format!("declare it at the top level: `var {} = {{}}`", id.name)),
            );
            return None;
        };
        let Some(entries) = decl.table else {
            self.diags.push(
                Diagnostic::error(id.span, format!("`{}` is indexed in a probe but is not declared as a table", id.name))
                    .with_secondary(decl.span, "declared here")
                    .with_note(format!("declare it as `var {} = {{}}` or `table.new(narr, nrec)`", id.name)),
            );
            return None;
        };
        let uses = self.table_uses.get(&id.name).copied().unwrap_or_default();
        let only_add = uses.only_add && !uses.string_values;
        let value = if uses.string_values { Ty::Str } else { Ty::Int };
        let map = ir::MapId(self.m.maps.len() as u32);
        self.m.maps.push(ir::Map {
            name: format!("ktap_tbl_{}", id.name),
            kind: if only_add { ir::MapKind::PercpuHash } else { ir::MapKind::Hash },
            key_size: key.ty.size(),
            value_size: value.size(),
            max_entries: if entries == 0 { DEFAULT_TABLE_ENTRIES } else { entries },
            table: Some(ir::TableInfo { var: id.name.clone(), key: key.ty, value }),
            syscall_filter: None,
        });
        self.tables.insert(id.name.clone(), KernelTable { map, key: key.ty, key_span: index.span });
        self.kernel_uses.entry(id.name.clone()).or_insert((super::check::KernelUse::Table, id.span));
        Some((map, key))
    }

    fn field_expr(&mut self, f: &EventField, span: Span) -> Option<Expr> {
        if f.kind != FieldKind::Int {
            self.unsupported(span, &format!("reading the string or array field `{}`", f.name));
            return None;
        }
        Some(Expr { kind: ExprKind::CtxField { offset: f.offset, size: f.size, signed: f.signed }, ty: Ty::Int, span: Some(span) })
    }

    /// `argN`: the N-th field after the common ones, which must sit at the
    /// same place in every event of the probe.
    fn event_arg(&mut self, ctx: &mut ProbeCtx, n: usize, span: Span) -> Option<Expr> {
        if let Some(layout) = &ctx.dynamic {
            return self.dyn_arg(layout, n, span);
        }
        if ctx.formats.is_empty() {
            self.error(span, "`argN` needs a tracepoint event");
            return None;
        }
        ctx.uses_fields.set(true);
        let picked: Vec<Option<&EventField>> = ctx.formats.iter().map(|f| f.get(n)).collect();
        match agree(&picked) {
            Ok(f) => self.field_expr(&f, span),
            Err(None) => {
                let fewest = ctx.formats.iter().map(Vec::len).min().unwrap_or(0);
                self.error(span, format!("`arg{n}` does not exist: this event has {fewest} arguments (arg0..arg{})", fewest.saturating_sub(1)));
                None
            }
            Err(Some(_)) => {
                self.error(span, format!("`arg{n}` differs between the events of this probe; split them into separate `trace` blocks"));
                None
            }
        }
    }

    fn event_field(&mut self, ctx: &mut ProbeCtx, name: &str, span: Span) -> Option<Expr> {
        if let Some(layout) = &ctx.dynamic {
            return self.dyn_field(layout, name, span);
        }
        let Some(fields) = ctx.formats.first() else {
            self.error(span, "event fields need a tracepoint event");
            return None;
        };
        ctx.uses_fields.set(true);
        let picked: Vec<Option<&EventField>> = ctx.formats.iter().map(|f| f.iter().find(|f| f.name == name)).collect();
        match agree(&picked) {
            Ok(f) => self.field_expr(&f, span),
            Err(Some(_)) => {
                self.error(span, format!("field `{name}` differs between the events of this probe; split them into separate `trace` blocks"));
                None
            }
            Err(None) => {
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                self.diags.push(
                    Diagnostic::error(span, format!("this event has no field `{name}`"))
                        .with_note(format!("its fields are: {}", names.join(", "))),
                );
                None
            }
        }
    }
}


fn ty_name(ty: Ty) -> &'static str {
    match ty {
        Ty::Int => "number",
        Ty::Comm | Ty::Str | Ty::ArgStr { .. } => "string",
        Ty::ProbeName => "probename",
        Ty::Stack { .. } => "stack",
        Ty::MemStr(_) => "string",
    }
}

/// The span of event record bytes that `argstr` needs to render any of
/// the probe's events: all non-common fields, plus room for the dynamic
/// strings (`__data_loc`) that follow them.
fn argstr_window(formats: &[Vec<EventField>]) -> Option<(u32, u32)> {
    let fields = || formats.iter().flatten().filter(|f| !f.common);
    let start = fields().map(|f| f.offset).min()?;
    let end = fields().map(|f| f.offset + f.size).max()?;
    let dynamic = if fields().any(|f| f.kind == FieldKind::DataLoc) { ARGSTR_DYNAMIC_BYTES } else { 0 };
    let start = start & !7;
    let len = (end - start + dynamic).next_multiple_of(8).min(ARGSTR_MAX_BYTES);
    Some((start, len))
}

/// The size a table-valued initializer asks for (0: default).
fn table_size(e: &ast::Expr) -> Option<u32> {
    match &e.kind {
        ast::ExprKind::Table(_) => Some(0),
        ast::ExprKind::Call { callee, args } => {
            let ast::ExprKind::Field { base, name } = &callee.kind else { return None };
            let ast::ExprKind::Name(b) = &base.kind else { return None };
            if b.name != "table" || name.name != "new" {
                return None;
            }
            let n = |i: usize| match args.get(i).map(|a| &a.kind) {
                Some(ast::ExprKind::Int(v)) => u32::try_from(*v).unwrap_or(0),
                _ => 0,
            };
            Some(n(0).saturating_add(n(1)))
        }
        _ => None,
    }
}

/// Whether an expression evidently yields a string.
fn is_stringy(e: &ast::Expr) -> bool {
    match &e.kind {
        ast::ExprKind::Str(_) | ast::ExprKind::Binary { op: ast::BinOp::Concat, .. } => true,
        ast::ExprKind::Name(id) => id.name == "execname",
        ast::ExprKind::Call { callee, .. } => {
            matches!(&callee.kind, ast::ExprKind::Name(id) if id.name == "user_string" || id.name == "kernel_string")
        }
        _ => false,
    }
}

/// Marks tables that a top-level statement fills with strings:
/// `var t = {[1] = "EPERM"}` or `t[k] = "x"` in the main context.
fn scan_string_values(stmt: &ast::Stmt, uses: &mut IndexMap<String, TableUses>) {
    let mut mark = |name: &str| uses.entry(name.to_string()).or_default().string_values = true;
    match &stmt.kind {
        ast::StmtKind::Var { names, values } => {
            for (n, v) in names.iter().zip(values) {
                if let ast::ExprKind::Table(fields) = &v.kind {
                    let strings = fields.iter().any(|f| match f {
                        ast::TableField::Positional(v) | ast::TableField::Named(_, v) | ast::TableField::Keyed(_, v) => is_stringy(v),
                    });
                    if strings {
                        mark(&n.name);
                    }
                }
            }
        }
        ast::StmtKind::Assign { targets, values } => {
            for (t, v) in targets.iter().zip(values) {
                if let ast::ExprKind::Index { base, .. } = &t.kind {
                    if let (ast::ExprKind::Name(id), true) = (&base.kind, is_stringy(v)) {
                        mark(&id.name);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Records, per table name, whether probe bodies only ever add to it.
fn scan_table_uses(stmts: &[ast::Stmt], uses: &mut IndexMap<String, TableUses>) {
    fn mark(uses: &mut IndexMap<String, TableUses>, base: &ast::Expr, add: bool) {
        if let ast::ExprKind::Name(id) = &base.kind {
            let u = uses.entry(id.name.clone()).or_default();
            u.only_add = if u.seen { u.only_add && add } else { add };
            u.seen = true;
        }
    }
    fn expr(e: &ast::Expr, uses: &mut IndexMap<String, TableUses>) {
        match &e.kind {
            ast::ExprKind::Index { base, index } => {
                mark(uses, base, false);
                expr(index, uses);
            }
            ast::ExprKind::Field { base, .. } => expr(base, uses),
            ast::ExprKind::Call { callee, args } => {
                expr(callee, uses);
                args.iter().for_each(|a| expr(a, uses));
            }
            ast::ExprKind::Unary { operand, .. } => expr(operand, uses),
            ast::ExprKind::Binary { lhs, rhs, .. } => {
                expr(lhs, uses);
                expr(rhs, uses);
            }
            ast::ExprKind::Table(fields) => {
                for f in fields {
                    match f {
                        ast::TableField::Positional(v) | ast::TableField::Named(_, v) => expr(v, uses),
                        ast::TableField::Keyed(k, v) => {
                            expr(k, uses);
                            expr(v, uses);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    fn block(b: &ast::Block, uses: &mut IndexMap<String, TableUses>) {
        scan_table_uses(&b.stmts, uses);
    }
    for s in stmts {
        match &s.kind {
            ast::StmtKind::AddAssign { target, value } => {
                if let ast::ExprKind::Index { base, index } = &target.kind {
                    mark(uses, base, true);
                    expr(index, uses);
                } else {
                    expr(target, uses);
                }
                expr(value, uses);
            }
            ast::StmtKind::Assign { targets, values } => {
                scan_string_values(s, uses);
                targets.iter().chain(values).for_each(|e| expr(e, uses));
            }
            ast::StmtKind::Var { values, .. } => values.iter().for_each(|e| expr(e, uses)),
            ast::StmtKind::Expr(e) => expr(e, uses),
            ast::StmtKind::If { arms, otherwise } => {
                for (c, b) in arms {
                    expr(c, uses);
                    block(b, uses);
                }
                if let Some(b) = otherwise {
                    block(b, uses);
                }
            }
            ast::StmtKind::While { cond, body } => {
                expr(cond, uses);
                block(body, uses);
            }
            ast::StmtKind::ForNum { body, .. } | ast::StmtKind::ForC { body, .. } | ast::StmtKind::ForIn { body, .. } => {
                block(body, uses)
            }
            ast::StmtKind::Return(Some(e)) => expr(e, uses),
            ast::StmtKind::Block(b) => block(b, uses),
            _ => {}
        }
    }
}

fn is_kdebug(callee: &ast::Expr) -> bool {
    matches!(&callee.kind, ast::ExprKind::Field { base, .. } if matches!(&base.kind, ast::ExprKind::Name(n) if n.name == "kdebug"))
}

/// The value of an integer literal (or its negation).
fn const_int(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ast::ExprKind::Int(v) => Some(*v),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } => const_int(operand).map(i64::wrapping_neg),
        _ => None,
    }
}

/// `i = A; i OP B; i += C` (or `i = i + C`), as (i, A, OP, B, C).
fn counted_loop(init: Option<&ast::Stmt>, cond: Option<&ast::Expr>, step: Option<&ast::Stmt>) -> Option<(String, i64, ast::BinOp, i64, i64)> {
    let (var, a) = match &init?.kind {
        ast::StmtKind::Var { names, values } if names.len() == 1 && values.len() == 1 => (names[0].name.clone(), const_int(&values[0])?),
        ast::StmtKind::Assign { targets, values } if targets.len() == 1 && values.len() == 1 => match &targets[0].kind {
            ast::ExprKind::Name(id) => (id.name.clone(), const_int(&values[0])?),
            _ => return None,
        },
        _ => return None,
    };
    let ast::ExprKind::Binary { op, lhs, rhs } = &cond?.kind else { return None };
    if !matches!(op, ast::BinOp::Lt | ast::BinOp::Le | ast::BinOp::Gt | ast::BinOp::Ge | ast::BinOp::Ne) {
        return None;
    }
    let ast::ExprKind::Name(cv) = &lhs.kind else { return None };
    if cv.name != var {
        return None;
    }
    let b = const_int(rhs)?;
    let c = match &step?.kind {
        ast::StmtKind::AddAssign { target, value } if matches!(&target.kind, ast::ExprKind::Name(id) if id.name == var) => const_int(value)?,
        ast::StmtKind::Assign { targets, values } if targets.len() == 1 && values.len() == 1 => {
            let ast::ExprKind::Name(t) = &targets[0].kind else { return None };
            let ast::ExprKind::Binary { op: sop, lhs, rhs } = &values[0].kind else { return None };
            let ast::ExprKind::Name(l) = &lhs.kind else { return None };
            if t.name != var || l.name != var {
                return None;
            }
            match sop {
                ast::BinOp::Add => const_int(rhs)?,
                ast::BinOp::Sub => const_int(rhs)?.checked_neg()?,
                _ => return None,
            }
        }
        _ => return None,
    };
    (c != 0).then_some((var, a, *op, b, c))
}

/// Whether any statement assigns the variable `var`.
fn assigns(stmts: &[ast::Stmt], var: &str) -> bool {
    let target = |e: &ast::Expr| matches!(&e.kind, ast::ExprKind::Name(id) if id.name == var);
    stmts.iter().any(|s| match &s.kind {
        ast::StmtKind::Assign { targets, .. } => targets.iter().any(target),
        ast::StmtKind::AddAssign { target: t, .. } => target(t),
        ast::StmtKind::If { arms, otherwise } => arms.iter().any(|(_, b)| assigns(&b.stmts, var)) || otherwise.as_ref().is_some_and(|b| assigns(&b.stmts, var)),
        ast::StmtKind::While { body, .. } | ast::StmtKind::ForNum { body, .. } | ast::StmtKind::ForC { body, .. } | ast::StmtKind::ForIn { body, .. } => {
            assigns(&body.stmts, var)
        }
        ast::StmtKind::Block(b) => assigns(&b.stmts, var),
        _ => false,
    })
}

/// `1s`, `100ms`, `10us` or `5ns`: the largest unit that divides.
fn period_text(ns: u64) -> String {
    for (unit, size) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// The field every event has in the same place; `Err(None)` when some
/// event lacks it, `Err(Some(_))` when they disagree.
fn agree(picked: &[Option<&EventField>]) -> Result<EventField, Option<EventField>> {
    let Some(Some(first)) = picked.first() else { return Err(None) };
    for p in picked {
        match p {
            None => return Err(None),
            Some(f) if (f.offset, f.size, f.signed, f.kind) != (first.offset, first.size, first.signed, first.kind) => {
                return Err(Some((*f).clone()))
            }
            Some(_) => {}
        }
    }
    Ok((*first).clone())
}

/// Number of arguments a printf format consumes.
pub fn count_conversions(format: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < format.len() {
        if format[i] == b'%' {
            i += 1;
            if format.get(i) == Some(&b'%') {
                i += 1;
                continue;
            }
            while i < format.len() && !format[i].is_ascii_alphabetic() {
                i += 1;
            }
            while i < format.len() && matches!(format[i], b'l' | b'h') {
                i += 1;
            }
            n += 1;
        }
        i += 1;
    }
    n
}
