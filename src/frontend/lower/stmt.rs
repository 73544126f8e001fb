//! Lowering of probe-body statements: assignments to locals, globals and
//! tables, print/printf/exit records, bounded loops and inlined calls.
//! Anything the kernel cannot do is a diagnostic at its span, never a panic.

use super::*;
use crate::frontend::visit::{self, Visitor};

impl Lowerer<'_> {
    /// Lowers a block; which name means which local is the resolver's.
    /// Statements after one that always leaves (`break`, `return`,
    /// `exit()`, an `if` whose every branch leaves) never run: they are
    /// dropped with a warning, as the verifier refuses unreachable code.
    pub(super) fn block(&mut self, ctx: &mut ProbeCtx, block: &ast::Block, out: &mut Vec<Stmt>) {
        for (i, s) in block.stmts.iter().enumerate() {
            let before = out.len();
            self.stmt(ctx, s, out);
            let leaves = out.get(before..).is_some_and(ir::diverges);
            if let (true, Some(first), Some(last)) = (leaves, block.stmts.get(i + 1), block.stmts.last()) {
                let span = Span { start: first.span.start, end: last.span.end };
                let how = match &s.kind {
                    ast::StmtKind::Break => "`break` leaves the loop here",
                    ast::StmtKind::Return(_) => "`return` leaves here",
                    ast::StmtKind::Expr(_) => "this call ends the probe here",
                    ast::StmtKind::If { .. } => "every branch of this `if` leaves",
                    _ => "this statement always leaves",
                };
                self.diags.push(
                    Diagnostic::warning(span, "unreachable code: it never runs and is left out")
                        .with_label("never runs")
                        .with_secondary(s.span, how),
                );
                return;
            }
        }
    }

    pub(super) fn stmt(&mut self, ctx: &mut ProbeCtx, s: &ast::Stmt, out: &mut Vec<Stmt>) {
        let span = Some(s.span);
        match &s.kind {
            ast::StmtKind::Expr(e) => {
                if let ast::ExprKind::Call { callee, args } = &e.kind {
                    if let Some(stmt) = self.call_stmt(ctx, e.span, callee, args) {
                        // `exit()` ends the probe too, as in ktap.
                        let ends = matches!(stmt.kind, StmtKind::Emit { site, .. } if matches!(self.m.sites.get(site.0 as usize).map(|s| &s.kind), Some(SiteKind::Exit)));
                        out.push(self.print_nil(ctx, stmt));
                        if ends {
                            out.push(Stmt { kind: StmtKind::Return, span });
                        }
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
                    let to = ir::AggTarget::Entry { map, key };
                    out.push(Stmt { kind: StmtKind::AggUpdate { to, kind: ir::AggKind::Sum, value }, span });
                }
            }
            ast::StmtKind::Assign { targets, values }
                if targets.len() == 1 && values.len() == 1 && matches!(targets[0].kind, ast::ExprKind::Index { .. }) =>
            {
                let ast::ExprKind::Index { base, index } = &targets[0].kind else { return };
                if crate::builtins::aggregate(&values[0]).is_some() {
                    self.agg_assign(ctx, base, index, &values[0], span, out);
                    return;
                }
                let Some((map, key)) = self.table_key(ctx, base, index) else { return };
                if matches!(values[0].kind, ast::ExprKind::Nil) {
                    out.push(Stmt { kind: StmtKind::MapDelete { map, key }, span });
                    return;
                }
                let Some(value) = self.expr(ctx, &values[0]) else { return };
                let holds = self.table_value(map);
                let value = Self::fit(value, holds);
                if value.ty.fits(holds) {
                    out.push(Stmt { kind: StmtKind::MapStore { map, key, value }, span });
                } else {
                    let msg = if holds.is_string() && value.ty.is_string() {
                        format!("this table holds strings of at most {} bytes; this one can be longer", holds.size() - 1)
                    } else {
                        format!("this table holds {}s, not {}s", ty_name(holds), ty_name(value.ty))
                    };
                    self.error(values[0].span, msg);
                }
            }
            ast::StmtKind::AddAssign { target: ast::Expr { kind: ast::ExprKind::Name(id), .. }, value } if ctx.lookup(&self.res, id).is_some() => {
                let Some(local) = ctx.lookup(&self.res, id) else { return };
                if ctx.locals[local.index()] != Ty::Int {
                    self.error(s.span, format!("`{}` holds a {}: `+=` needs a number", id.name, ty_name(ctx.locals[local.index()])));
                    return;
                }
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
                    && matches!(&targets[0].kind, ast::ExprKind::Name(id) if ctx.lookup(&self.res, id).is_some()) =>
            {
                let ast::ExprKind::Name(id) = &targets[0].kind else { return };
                let Some(local) = ctx.lookup(&self.res, id) else { return };
                let holds = ctx.locals[local.index()];
                let flag = ctx.present.get(&local).copied();
                let (value, presence) = match flag {
                    Some(_) => {
                        let Some(v) = self.maybe_nil(ctx, &values[0], Some(holds), out) else { return };
                        v
                    }
                    None => {
                        let Some(v) = self.expr(ctx, &values[0]) else { return };
                        (v, None)
                    }
                };
                let value = Self::fit(value, holds);
                if value.ty.fits(holds) {
                    if let (Some(flag), Some(p)) = (flag, presence) {
                        out.push(set_local(flag, p, span));
                    }
                    // Nil leaves 0 (or ""): false, as nil is.
                    out.push(set_local(local, value, span));
                } else {
                    self.type_conflict(values[0].span, &id.name, value.ty, holds);
                }
            }
            ast::StmtKind::AddAssign { target, value } => {
                let Some(global) = self.global_target(target) else { return };
                let holds = self.m.global(global).ty;
                if holds != Ty::Int {
                    self.error(s.span, format!("this variable holds a {}: `+=` needs a number", ty_name(holds)));
                    return;
                }
                if let Some(value) = self.int_expr(ctx, value) {
                    let to = ir::AggTarget::Global(global);
                    out.push(Stmt { kind: StmtKind::AggUpdate { to, kind: ir::AggKind::Sum, value }, span });
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
                    ctx.temps.push((format!("\u{0}tmp{}", tmp.0), tmp));
                    self.stmt(ctx, &one, out);
                    ctx.temps.pop();
                }
            }
            ast::StmtKind::Assign { targets, values } if matches!(targets[0].kind, ast::ExprKind::Name(_)) && crate::builtins::aggregate(&values[0]).is_some() => {
                self.agg_assign_global(ctx, &targets[0], &values[0], span, out);
            }
            ast::StmtKind::Assign { targets, values } => {
                let Some(global) = self.global_target(&targets[0]) else { return };
                let Some(value) = self.expr(ctx, &values[0]) else { return };
                let holds = self.m.global(global).ty;
                let value = Self::fit(value, holds);
                if value.ty.fits(holds) {
                    out.push(Stmt { kind: StmtKind::GlobalStore { global, value }, span });
                } else {
                    let name = self.m.global(global).var.clone().unwrap_or_default();
                    self.type_conflict(values[0].span, &name, value.ty, holds);
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
                        if let Some(lowered) = self.expr(ctx, v) {
                            let holds = ctx.locals[result.index()];
                            if lowered.ty.fits(holds) {
                                out.push(set_local(result, lowered, span));
                            } else {
                                let name = ctx.inlining.last().cloned().unwrap_or_default();
                                self.diags.push(
                                    Diagnostic::error(v.span, format!("`{name}` returns a {} here", ty_name(lowered.ty)))
                                        .with_label(format!("a {}", ty_name(lowered.ty)))
                                        .with_note(format!("it returns a {} elsewhere: what the kernel touches has one type in every use", ty_name(holds))),
                                );
                            }
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
                    let nilable = self.res.local(name.span).is_some_and(|l| self.nilable.contains(&l));
                    let (value, presence) = match values.get(i) {
                        Some(v) if nilable => match self.maybe_nil(ctx, v, self.local_ty(name.span), out) {
                            Some(v) => v,
                            None => continue,
                        },
                        Some(v) => match self.expr(ctx, v) {
                            Some(v) => (v, None),
                            None => continue,
                        },
                        None => {
                            let ty = self.local_ty(name.span).unwrap_or(Ty::Int);
                            (zero(ty, span), Some(constant(0, span)))
                        }
                    };
                    if matches!(value.ty, Ty::ArgStr { .. }) {
                        self.unsupported(values[i].span, "keeping `argstr` in a variable");
                        continue;
                    }
                    // Every use of the local decides its type; one no use
                    // typed (an event field) takes its value's.
                    let ty = self.local_ty(name.span).unwrap_or(value.ty);
                    let value = Self::fit(value, ty);
                    if !value.ty.fits(ty) {
                        self.type_conflict(values.get(i).map_or(name.span, |v| v.span), &name.name, value.ty, ty);
                        // Declared all the same: later uses are not errors.
                        ctx.declare(&self.res, name, ty);
                        continue;
                    }
                    // A local that may be nil has its presence flag.
                    let flag = presence.map(|p| {
                        let flag = ctx.new_local(Ty::Int);
                        out.push(set_local(flag, p, span));
                        flag
                    });
                    if names.len() == 1 {
                        // Nothing to swap: bind at once.
                        let local = ctx.declare(&self.res, name, ty);
                        out.push(set_local(local, value, Some(name.span)));
                        if let Some(flag) = flag {
                            ctx.present.insert(local, flag);
                        }
                        continue;
                    }
                    let tmp = ctx.new_local(ty);
                    out.push(set_local(tmp, value, span));
                    lowered.push((name, tmp, ty, flag));
                }
                for (name, tmp, ty, flag) in lowered {
                    let local = ctx.declare(&self.res, name, ty);
                    out.push(set_local(local, Expr { kind: ExprKind::Local(tmp), ty, span }, Some(name.span)));
                    if let Some(flag) = flag {
                        ctx.present.insert(local, flag);
                    }
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

    /// A print of locals that may be nil shows `nil` for those that are:
    /// one record type per combination (at most three such arguments;
    /// beyond that a nil one prints its 0).
    fn print_nil(&mut self, ctx: &ProbeCtx, stmt: Stmt) -> Stmt {
        let StmtKind::Emit { site, args } = &stmt.kind else { return stmt };
        if !matches!(self.m.sites.get(site.0 as usize).map(|s| &s.kind), Some(SiteKind::Print)) {
            return stmt;
        }
        let mut flagged: Vec<(usize, ir::LocalId)> = args
            .iter()
            .enumerate()
            .filter_map(|(k, a)| match a.kind {
                ExprKind::Local(l) => ctx.present.get(&l).map(|f| (k, *f)),
                _ => None,
            })
            .collect();
        if flagged.is_empty() || flagged.len() > 3 {
            return stmt;
        }
        // Last first: removing a value leaves the earlier ones in place.
        flagged.reverse();
        self.split_nil(stmt, &flagged)
    }

    fn split_nil(&mut self, stmt: Stmt, flagged: &[(usize, ir::LocalId)]) -> Stmt {
        let Some((&(k, flag), rest)) = flagged.split_first() else { return stmt };
        let StmtKind::Emit { site, args } = &stmt.kind else { return stmt };
        let Some(s) = self.m.sites.get(site.0 as usize).cloned() else { return stmt };
        // The argument position of the k-th value the kernel sends.
        let Some(at) = (0..).filter(|p| !s.consts.iter().any(|(c, _)| c == p)).nth(k) else { return stmt };
        let mut fields = s.fields.clone();
        fields.remove(k);
        let mut consts = s.consts.clone();
        consts.push((at, ir::SiteConst::Nil));
        consts.sort_by_key(|(p, _)| *p);
        let nil_site = self.site(s.kind.clone(), fields, consts, s.span);
        let mut nil_args = args.clone();
        nil_args.remove(k);
        let span = stmt.span;
        let absent = self.split_nil(Stmt { kind: StmtKind::Emit { site: nil_site, args: nil_args }, span }, rest);
        let present = self.split_nil(stmt, rest);
        Stmt { kind: StmtKind::If { cond: local_expr(flag, span), then: vec![present], otherwise: vec![absent] }, span }
    }

    /// A value that may be nil, for a local that may be: its value (0 or
    /// the empty string when nil) and its presence (1: a value, 0: nil).
    /// A table element's key is evaluated once, for both.
    pub(super) fn maybe_nil(&mut self, ctx: &mut ProbeCtx, v: &ast::Expr, ty: Option<Ty>, out: &mut Vec<Stmt>) -> Option<(Expr, Option<Expr>)> {
        let span = Some(v.span);
        match &v.kind {
            ast::ExprKind::Nil => {
                let ty = ty.unwrap_or(Ty::Int);
                Some((zero(ty, span), Some(constant(0, span))))
            }
            ast::ExprKind::Index { base, index } => {
                let (map, key) = self.table_key(ctx, base, index)?;
                let tmp = ctx.new_local(key.ty);
                let key_ty = key.ty;
                out.push(set_local(tmp, key, span));
                let key = || Box::new(Expr { kind: ExprKind::Local(tmp), ty: key_ty, span });
                let ty = self.table_value(map);
                let value = Expr { kind: ExprKind::MapGet { map, key: key() }, ty, span };
                Some((value, Some(Expr { kind: ExprKind::MapHas { map, key: key() }, ty: Ty::Int, span })))
            }
            _ => {
                let value = self.expr(ctx, v)?;
                let presence = match &v.kind {
                    ast::ExprKind::Name(id) => ctx.lookup(&self.res, id).and_then(|l| ctx.present.get(&l)).map(|f| local_expr(*f, span)),
                    _ => None,
                };
                Some((value, Some(presence.unwrap_or_else(|| constant(1, span)))))
            }
        }
    }

    pub(super) fn if_chain(&mut self, ctx: &mut ProbeCtx, arms: &[(ast::Expr, ast::Block)], otherwise: Option<&ast::Block>) -> Vec<Stmt> {
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
    pub(super) fn global_target(&mut self, target: &ast::Expr) -> Option<GlobalId> {
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

    pub(super) fn kernel_global(&mut self, id: &ast::Ident) -> Option<GlobalId> {
        if matches!(self.res.binding(id.span), Binding::Local(_)) {
            // A local whose declaration did not lower (reported there).
            return None;
        }
        if let Some(g) = self.kernel_globals.get(&id.name) {
            return Some(*g);
        }
        if let Some(d) = self.global_agg_misuse(id) {
            self.diags.push(d);
            return None;
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
        let settled = self.res.var(&id.name).and_then(|(v, _)| self.types.globals.get(&v));
        let Some(ty) = settled.map(|f| f.ty) else {
            self.unsettled(id.span, &format!("`{}`", id.name));
            return None;
        };
        let g = self.add_global(&format!("ktap_var_{}", id.name), Some(&id.name), ty, section, Some(decl_span));
        self.kernel_globals.insert(id.name.clone(), g);
        let used = if ty.is_string() { crate::frontend::check::KernelUse::String } else { crate::frontend::check::KernelUse::Number };
        self.kernel_uses.entry(id.name.clone()).or_insert((used, id.span));
        Some(g)
    }

    /// A value of type `ty` given to `name`, which holds a `holds`.
    pub(super) fn type_conflict(&mut self, span: Span, name: &str, ty: Ty, holds: Ty) {
        self.diags.push(
            Diagnostic::error(span, format!("`{name}` is given a {} here", ty_name(ty)))
                .with_label(format!("a {}", ty_name(ty)))
                .with_note(format!("`{name}` holds a {}: what the kernel touches has one type in every use", ty_name(holds))),
        );
    }

    pub(super) fn call_stmt(&mut self, ctx: &mut ProbeCtx, span: Span, callee: &ast::Expr, args: &[ast::Expr]) -> Option<Stmt> {
        if let Some(b) = crate::builtins::callee(callee) {
            return self.builtin_action(ctx, b, args, span, callee.span);
        }
        let name = match &callee.kind {
            ast::ExprKind::Name(id) => id.name.clone(),
            ast::ExprKind::Field { base, name } => match &base.kind {
                ast::ExprKind::Name(b) => format!("{}.{}", b.name, name.name),
                _ => String::new(),
            },
            _ => String::new(),
        };
        match name.as_str() {
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
    pub(super) fn inline_call(&mut self, ctx: &mut ProbeCtx, span: Span, name: &str, args: &[ast::Expr]) -> Option<((ir::BlockId, Vec<Stmt>), ir::LocalId)> {
        let func: &ast::FuncBody = self.functions.get(name)?;
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
        for (a, p) in args.iter().zip(&func.params) {
            let v = self.expr(ctx, a)?;
            let ty = self.local_ty(p.span).unwrap_or(v.ty);
            if matches!(v.ty, Ty::ArgStr { .. }) || !v.ty.fits(ty) {
                self.type_conflict(a.span, &p.name, v.ty, ty);
                return None;
            }
            let tmp = ctx.new_local(ty);
            body.push(set_local(tmp, v, Some(a.span)));
            params.push((tmp, ty));
        }
        // What the function returns, from every return in it (a function
        // that returns nothing yields 0).
        let settled = self.res.function(name).and_then(|f| self.types.returns.get(&f));
        let Some(returns) = settled.map(|f| f.ty) else {
            self.unsettled(span, &format!("what `{name}` returns"));
            return None;
        };
        let result = ctx.new_local(returns);
        let nothing = match returns {
            Ty::Comm | Ty::Str => ExprKind::StrConst(Vec::new()),
            _ => ExprKind::Const(0),
        };
        body.push(set_local(result, Expr { kind: nothing, ty: returns, span: None }, None));
        let block = ctx.new_block();
        // The callee sees its parameters and globals, not the caller's
        // locals (the resolver's bindings) nor its loop counters; nor
        // what an earlier call of it bound.
        let saved_counters = std::mem::take(&mut ctx.counters);
        let saved_bound = std::mem::take(&mut ctx.bound);
        let saved_loops = std::mem::replace(&mut ctx.loops, 0);
        for (p, &(tmp, ty)) in func.params.iter().zip(&params) {
            let local = ctx.declare(&self.res, p, ty);
            body.push(set_local(local, Expr { kind: ExprKind::Local(tmp), ty, span: None }, Some(p.span)));
        }
        ctx.inlining.push(name.to_string());
        ctx.returns.push((block, result));
        let before = self.diags.len();
        self.block(ctx, &func.body, &mut body);
        // A tapset function (`ns.f`, linked in) is in another file: its
        // mistakes in this probe also show the call.
        if name.contains('.') {
            for d in self.diags.iter_mut().skip(before).filter(|d| d.is_error()) {
                d.secondary.push((span, format!("in this call of `{name}`")));
            }
        }
        ctx.returns.pop();
        ctx.inlining.pop();
        ctx.counters = saved_counters;
        ctx.bound = saved_bound;
        ctx.loops = saved_loops;
        Some(((block, body), result))
    }

    /// `for (i = start, limit[, step])` with constant bounds: inclusive,
    /// as in Lua. A hidden counter drives the loop, so the body cannot
    /// change the trip count the verifier sees.
    #[expect(clippy::too_many_arguments, reason = "the parts of the loop")]
    pub(super) fn for_num(
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
        let visible = ctx.declare(&self.res, var, Ty::Int);
        let mut inner = vec![set_local(visible, local_expr(counter, sp), Some(var.span))];
        ctx.loops += 1;
        self.block(ctx, body, &mut inner);
        ctx.loops -= 1;
        out.push(counted_loop_stmt(counter, cond, inner, c, trips as u32, sp));
    }

    /// `for (init; cond; step)` when it has the shape of a counted loop:
    /// `i = A; i < B; i += C` (any of < <= > >= !=), with `i` not assigned
    /// in the body.
    #[expect(clippy::too_many_arguments, reason = "the parts of the loop")]
    pub(super) fn for_c(
        &mut self,
        ctx: &mut ProbeCtx,
        span: Span,
        init: Option<&ast::Stmt>,
        cond: Option<&ast::Expr>,
        step: Option<&ast::Stmt>,
        body: &ast::Block,
        out: &mut Vec<Stmt>,
    ) {
        let counted = counted_loop(init, cond, step).filter(|(var, ..)| !assigns(&self.res, body, var));
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
        // Every use of the counter's name in the loop means the counter.
        let counter = ctx.new_local(Ty::Int);
        ctx.counters.push((self.res.binding(var.span), var.name.clone(), counter));
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
        ctx.counters.pop();
        out.push(counted_loop_stmt(counter, cond, inner, c, trips as u32, sp));
    }

    pub(super) fn site(&mut self, kind: SiteKind, fields: Vec<Ty>, consts: Vec<(usize, ir::SiteConst)>, span: Span) -> SiteId {
        self.events_map();
        let id = SiteId(self.m.sites.len() as u32);
        // With -T, records that print carry the event's time.
        let stamped = self.opts.timestamps && matches!(kind, SiteKind::Print | SiteKind::Printf { .. } | SiteKind::PrintHist { .. });
        self.m.sites.push(ir::Site { kind, fields, consts, span, stamped });
        id
    }

    /// Splits print/printf arguments into literals (kept in userspace) and
    /// values the kernel sends.
    #[expect(clippy::type_complexity, reason = "three parallel results of one pass")]
    pub(super) fn site_args(&mut self, ctx: &mut ProbeCtx, args: &[ast::Expr]) -> Option<(Vec<Ty>, Vec<(usize, ir::SiteConst)>, Vec<Expr>)> {
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
}

/// The value of an integer literal (or its negation).
pub(super) fn const_int(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ast::ExprKind::Int(v) => Some(*v),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } => const_int(operand).map(i64::wrapping_neg),
        _ => None,
    }
}

/// `i = A; i OP B; i += C` (or `i = i + C`), as (i, A, OP, B, C), `i`
/// being the name the init assigns or declares.
pub(super) fn counted_loop<'a>(
    init: Option<&'a ast::Stmt>,
    cond: Option<&ast::Expr>,
    step: Option<&ast::Stmt>,
) -> Option<(&'a ast::Ident, i64, ast::BinOp, i64, i64)> {
    let (ident, a) = match &init?.kind {
        ast::StmtKind::Var { names, values } if names.len() == 1 && values.len() == 1 => (&names[0], const_int(&values[0])?),
        ast::StmtKind::Assign { targets, values } if targets.len() == 1 && values.len() == 1 => match &targets[0].kind {
            ast::ExprKind::Name(id) => (id, const_int(&values[0])?),
            _ => return None,
        },
        _ => return None,
    };
    let var = &ident.name;
    let ast::ExprKind::Binary { op, lhs, rhs } = &cond?.kind else { return None };
    if !matches!(op, ast::BinOp::Lt | ast::BinOp::Le | ast::BinOp::Gt | ast::BinOp::Ge | ast::BinOp::Ne) {
        return None;
    }
    let ast::ExprKind::Name(cv) = &lhs.kind else { return None };
    if cv.name != *var {
        return None;
    }
    let b = const_int(rhs)?;
    let c = match &step?.kind {
        ast::StmtKind::AddAssign { target, value } if matches!(&target.kind, ast::ExprKind::Name(id) if id.name == *var) => const_int(value)?,
        ast::StmtKind::Assign { targets, values } if targets.len() == 1 && values.len() == 1 => {
            let ast::ExprKind::Name(t) = &targets[0].kind else { return None };
            let ast::ExprKind::Binary { op: sop, lhs, rhs } = &values[0].kind else { return None };
            let ast::ExprKind::Name(l) = &lhs.kind else { return None };
            if t.name != *var || l.name != *var {
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
    (c != 0).then_some((ident, a, *op, b, c))
}

/// Whether a loop body assigns the counter `var`: a `=` or `+=` to a name
/// that means what `var` means (a local of the same name declared in
/// between is another variable: the resolver tells them apart). Inner
/// counted loops keep their own counters; closures are not probe code.
pub(super) fn assigns(res: &Resolution, body: &ast::Block, var: &ast::Ident) -> bool {
    struct Assigns<'a> {
        res: &'a Resolution,
        var: &'a ast::Ident,
        binding: Binding,
        found: bool,
    }
    impl Assigns<'_> {
        fn target(&mut self, e: &ast::Expr) {
            if let ast::ExprKind::Name(id) = &e.kind {
                self.found |= id.name == self.var.name && self.res.binding(id.span) == self.binding;
            }
        }
    }
    impl Visitor<'_> for Assigns<'_> {
        fn visit_stmt(&mut self, s: &ast::Stmt) {
            match &s.kind {
                ast::StmtKind::Assign { targets, .. } => targets.iter().for_each(|t| self.target(t)),
                ast::StmtKind::AddAssign { target, .. } => self.target(target),
                ast::StmtKind::If { .. } | ast::StmtKind::Block(_) | ast::StmtKind::While { .. } | ast::StmtKind::ForNum { .. } | ast::StmtKind::ForIn { .. } => {
                    visit::walk_stmt(self, s)
                }
                ast::StmtKind::ForC { body, .. } => self.visit_block(body),
                _ => {}
            }
        }
        fn visit_expr(&mut self, _: &ast::Expr) {}
    }
    let mut a = Assigns { res, var, binding: res.binding(var.span), found: false };
    a.visit_block(body);
    a.found
}
