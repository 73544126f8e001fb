//! Lowering of probe statements: `trace` (its specs expanded and its body
//! lowered through their providers, `frontend::providers`), `profile-N`
//! and `kdebug.tracepoint`, and the prologue every probe runs first. Knows
//! no provider by name. Pure: what it knows of the kernel comes via
//! `KernelFacts`.

use super::*;
use providers::{Family, NoArgs, Point, Reads};

impl Lowerer<'_> {
    /// `trace SPEC, ... [/filter/] { body }`: one IR probe per group of
    /// points whose bodies read alike (all the events of a record family,
    /// each distinct argument layout of a fetch family).
    pub(super) fn trace(&mut self, span: Span, specs: &[ast::EventSpec], filter: Option<&ast::Expr>, body: &ast::Block) {
        let family = if specs.iter().any(|s| providers::provider(s.provider).family() == Family::Fetch) { Family::Fetch } else { Family::Record };
        let mut points: Vec<Point> = Vec::new();
        for spec in specs {
            let provider = providers::provider(spec.provider);
            if provider.family() != family {
                self.diags.push(
                    Diagnostic::error(spec.span, "tracepoints and dynamic probes cannot share one `trace`")
                        .with_label("a tracepoint")
                        .with_note("write a second `trace` statement for it"),
                );
                continue;
            }
            let found = provider.expand(&mut self.pcx(), spec);
            points.extend(found);
        }
        let mut groups: Vec<(Reads, Vec<Point>)> = Vec::new();
        for point in points {
            match groups.iter().position(|(r, _)| r.joins(&point.reads)) {
                Some(g) => groups[g].1.push(point),
                None => groups.push((point.reads.clone(), vec![point])),
            }
        }
        if groups.is_empty() {
            match family {
                // Lowered as a probe anyway, for its diagnostics.
                Family::Record => groups.push((Reads::Record { spec: span }, Vec::new())),
                Family::Fetch => {
                    // Lower the body anyway, for its diagnostics.
                    let mut ctx = ProbeCtx::new(Box::new(NoArgs));
                    let mut sink = Vec::new();
                    self.block(&mut ctx, body, &mut sink);
                    return;
                }
            }
        }
        for (reads, points) in groups {
            let mut ctx = ProbeCtx::new(reads.into_args(&points));
            let stmts = self.probe_body(&mut ctx, filter, body);
            if points.is_empty() {
                return;
            }
            let probe = self.m.probes.len();
            let ProbeCtx { args, locals, .. } = ctx;
            let shape = args.finish(&mut self.pcx(), probe, points.into_iter().map(|p| p.attach).collect());
            self.m.maps.extend(shape.maps);
            self.m.probes.push(ir::Probe { attach: shape.attach, formats: shape.formats, locals, body: stmts, span, nested: self.nested });
        }
    }

    /// `kdebug.NAME("EVENT", function () { ... })`: a probe registered by
    /// a call, on the spec the provider that answers to NAME makes of
    /// EVENT (`kdebug.tracepoint("sched_switch", ...)`).
    pub(super) fn kdebug(&mut self, span: Span, callee: &ast::Expr, args: &[ast::Expr]) {
        let ast::ExprKind::Field { name, .. } = &callee.kind else { return };
        let Some((provider, example)) = providers::by_kdebug_name(&name.name) else {
            self.unsupported(callee.span, &format!("kdebug.{}", name.name));
            return;
        };
        let (Some(ast::Expr { kind: ast::ExprKind::Str(event), span: event_span }), Some(ast::Expr { kind: ast::ExprKind::Function(func), .. }), 2) =
            (args.first(), args.get(1), args.len())
        else {
            let what = &name.name;
            self.error(span, format!("kdebug.{what} takes an event name and a function: kdebug.{what}(\"{example}\", function () {{ ... }})"));
            return;
        };
        if !func.params.is_empty() {
            self.error(func.span, "the probe function takes no parameters");
        }
        // The span of the text inside the quotes.
        let inner = ast::Span { start: event_span.start + 1, end: event_span.end.saturating_sub(1).max(event_span.start + 1) };
        let Some(spec) = provider.spec_of_name(&String::from_utf8_lossy(event), inner) else { return };
        self.trace(span, &[spec], None, &func.body);
    }

    /// `profile-N { }`: a perf cpu-clock event on every CPU.
    pub(super) fn profile(&mut self, span: Span, period: &ast::Period, body: &ast::Block) {
        // None: the parser reported the bad period.
        let Some(attach) = providers::profile::attach(period) else { return };
        let mut ctx = ProbeCtx::new(Box::new(NoArgs));
        let mut stmts = self.prologue();
        self.block(&mut ctx, body, &mut stmts);
        self.m.probes.push(ir::Probe { attach: vec![attach], formats: vec![Vec::new()], locals: ctx.locals, body: stmts, span, nested: self.nested });
    }

    /// What every probe checks first: the stop flag, then -p and -C.
    /// The statements of a probe: the prologue, then the body under its
    /// filter.
    /// An iterator's body runs in its reader's process, when read: the
    /// stop flag, `-p`/`-C` and the tracer's own process do not apply.
    pub(super) fn probe_body(&mut self, ctx: &mut ProbeCtx, filter: Option<&ast::Expr>, body: &ast::Block) -> Vec<Stmt> {
        let seq_file = ctx.args.seq_file();
        let mut stmts = if seq_file { Vec::new() } else { self.prologue() };
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
        let entry = ctx.args.entry(&mut self.pcx());
        stmts.splice(prologue_len..prologue_len, entry);
        if self.m.sites.len() > sites_before && !seq_file {
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

/// The current process id and CPU, for the checks lowering adds.
const PROCESS_ID: ExprKind = ExprKind::Helper { func: ir::HelperFn::GET_CURRENT_PID_TGID, part: ir::Part::High32 };
const CPU_ID: ExprKind = ExprKind::Helper { func: ir::HelperFn::GET_SMP_PROCESSOR_ID, part: ir::Part::All };
