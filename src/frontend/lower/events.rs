//! Lowering of event blocks: `trace`, `profile-N` and `kdebug.tracepoint`, the
//! cheapest attach mechanism for each event, and the prologue every probe
//! runs first. Pure: what it knows of the kernel comes via `KernelFacts`.

use super::*;

impl Lowerer<'_> {
    pub(super) fn trace(&mut self, span: Span, specs: &[ast::EventSpec], filter: Option<&ast::Expr>, body: &ast::Block) {
        if specs.iter().any(|s| !matches!(s.kind, ast::EventKind::Tracepoint { .. })) {
            return self.dyn_trace(span, specs, filter, body);
        }
        let mut found_events: Vec<(String, String, Span)> = Vec::new();
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
                        Ok(found) => found_events.extend(found.into_iter().map(|(system, event)| (system, event, spec.span))),
                        Err(e) => self.error(spec.span, e),
                    }
                }
                // Routed to dyn_trace above.
                ast::EventKind::Probe { .. } | ast::EventKind::Sdt { .. } => {}
            }
        }
        let syscall_events = found_events.iter().filter(|(s, _, _)| s == "syscalls").count();
        let mut ctx = ProbeCtx::new(Formats::Unread(found_events.clone()), (syscall_events, found_events.len()));
        let stmts = self.probe_body(&mut ctx, filter, body);
        if found_events.is_empty() {
            return;
        }
        let probe = self.m.probes.len();
        // Riding raw_syscalls runs the filter on every syscall of the
        // system: worth it only when many syscall events are traced.
        let ride = syscall_events >= RIDE_RAW_SYSCALLS_FROM;
        let attach: Vec<Attach> = found_events
            .into_iter()
            .map(|(system, event, _)| self.attach_point(system, event, ctx.uses_fields.get(), ride))
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
                    syscall_filter: Some((ir::ProbeId(probe as u32), kind)),
                });
            }
        }
        let formats = match ctx.formats {
            Formats::Read(f) => f,
            Formats::Unread(_) => vec![Vec::new(); attach.len()],
        };
        self.m.probes.push(ir::Probe { attach, formats, locals: ctx.locals, body: stmts, span });
    }

    /// Reads the formats of the probe's events, once: the fields after
    /// the common ones, and the window `argstr` copies. An unreadable
    /// format is an error at the spec that named the event.
    pub(super) fn read_formats(&mut self, ctx: &mut ProbeCtx) {
        let Formats::Unread(events) = &ctx.formats else { return };
        let mut formats = Vec::with_capacity(events.len());
        for (system, event, span) in events {
            match self.events.format(system, event) {
                Ok(f) => formats.push(f.into_iter().filter(|f| !f.common).collect()),
                Err(e) => {
                    self.error(*span, format!("cannot read the format of {system}:{event}: {e}"));
                    formats.push(Vec::new());
                }
            }
        }
        ctx.argstr_window = argstr_window(&formats);
        ctx.formats = Formats::Read(formats);
    }

    /// `kdebug.tracepoint("sched_switch", function () { ... })` (or
    /// `"sched:sched_switch"`): a probe registered by a call.
    pub(super) fn kdebug(&mut self, span: Span, callee: &ast::Expr, args: &[ast::Expr]) {
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
    pub(super) fn profile(&mut self, span: Span, period: &ast::Period, body: &ast::Block) {
        if period.nanos == 0 {
            return; // The parser reported the bad period.
        }
        let mut ctx = ProbeCtx::new(Formats::Read(Vec::new()), (0, 1));
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
    pub(super) fn attach_point(&self, system: String, event: String, uses_fields: bool, ride_syscalls: bool) -> Attach {
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
    /// The statements of a probe: the prologue, then the body under its
    /// filter.
    pub(super) fn probe_body(&mut self, ctx: &mut ProbeCtx, filter: Option<&ast::Expr>, body: &ast::Block) -> Vec<Stmt> {
        let mut stmts = self.prologue();
        let prologue_len = stmts.len();
        let sites_before = self.m.sites.len();
        let mut inner = Vec::new();
        self.block(ctx, body, &mut inner);
        match filter {
            Some(f) => {
                ctx.in_filter = true;
                let cond = self.int_expr(ctx, f);
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
        stmts
    }

    /// `if (pid == ktap's pid) return` (the process id: the upper half of
    /// the helper's pid/tgid pair).
    pub(super) fn skip_self(&self) -> Stmt {
        let synth = |kind| Expr { kind, ty: Ty::Int, span: None };
        let cond = match self.m.self_pid {
            Some(g) => binary(ir::BinOp::Eq, synth(PROCESS_ID), synth(ExprKind::Global(g)), None),
            None => constant(0, None),
        };
        Stmt { kind: StmtKind::If { cond, then: vec![Stmt { kind: StmtKind::Return, span: None }], otherwise: vec![] }, span: None }
    }

    pub(super) fn prologue(&self) -> Vec<Stmt> {
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
        for (target, builtin, bias) in [(self.m.target_pid, PROCESS_ID, 0), (self.m.target_cpu, CPU_ID, 1)] {
            let Some(target) = target else { continue };
            let synth = |kind| Expr { kind, ty: Ty::Int, span: None };
            let current = if bias == 0 {
                synth(builtin.clone())
            } else {
                synth(ExprKind::Binary {
                    op: ir::BinOp::Add,
                    lhs: Box::new(synth(builtin.clone())),
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
}

/// The span of event record bytes that `argstr` needs to render any of
/// the probe's events: all non-common fields, plus room for the dynamic
/// strings (`__data_loc`) that follow them.
pub(super) fn argstr_window(formats: &[Vec<EventField>]) -> Option<(u32, u32)> {
    let fields = || formats.iter().flatten().filter(|f| !f.common);
    let start = fields().map(|f| f.offset).min()?;
    let end = fields().map(|f| f.offset + f.size).max()?;
    let dynamic = if fields().any(|f| f.kind == FieldKind::DataLoc) { ARGSTR_DYNAMIC_BYTES } else { 0 };
    let start = start & !7;
    let len = (end - start + dynamic).next_multiple_of(8).min(ARGSTR_MAX_BYTES);
    Some((start, len))
}

pub(super) fn is_kdebug(callee: &ast::Expr) -> bool {
    matches!(&callee.kind, ast::ExprKind::Field { base, .. } if matches!(&base.kind, ast::ExprKind::Name(n) if n.name == "kdebug"))
}

/// `1s`, `100ms`, `10us` or `5ns`: the largest unit that divides.
pub(super) fn period_text(ns: u64) -> String {
    for (unit, size) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// The current process id and CPU, for the checks lowering adds.
const PROCESS_ID: ExprKind = ExprKind::Helper { func: ir::HelperFn::GET_CURRENT_PID_TGID, part: ir::Part::High32 };
const CPU_ID: ExprKind = ExprKind::Helper { func: ir::HelperFn::GET_SMP_PROCESSOR_ID, part: ir::Part::All };
