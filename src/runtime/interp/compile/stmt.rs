//! Code generation for statements: declarations, assignments, control
//! flow and loops. Leaves expressions to `expr.rs`; never evaluates.

use super::{error, CResult, Compiler, FuncKind, Var};
use crate::frontend::ast::{BinOp, Block, Expr, ExprKind, Ident, Stmt, StmtKind, TimerKind};
use crate::span::Span;
use crate::runtime::interp::code::{Insn, Reg};

/// A place an assignment stores to, with its parts already evaluated.
enum Place<'e> {
    Var(Var),
    /// `base` is the table expression, for error messages.
    Index {
        t: Reg,
        k: Reg,
        base: &'e Expr,
    },
    Field {
        t: Reg,
        k: u32,
        base: &'e Expr,
    },
}

impl Compiler<'_> {
    pub(super) fn block_stmts(&mut self, block: &Block) -> CResult<()> {
        for s in &block.stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn scoped_block(&mut self, block: &Block) -> CResult<()> {
        self.open_scope();
        self.block_stmts(block)?;
        self.close_scope();
        Ok(())
    }

    pub(super) fn stmt(&mut self, s: &Stmt) -> CResult<()> {
        self.enter(s.span)?;
        let r = self.stmt_inner(s);
        self.leave();
        self.free_temps();
        r
    }

    fn stmt_inner(&mut self, s: &Stmt) -> CResult<()> {
        let span = s.span;
        match &s.kind {
            StmtKind::Var { names, values } => self.var(names, values, span),
            StmtKind::Assign { targets, values } => self.assign(targets, values, span),
            StmtKind::AddAssign { target, value } => self.add_assign(target, value, span),
            StmtKind::Expr(e) => {
                let r = self.alloc_reg(e.span)?;
                self.expr_to(e, r)
            }
            StmtKind::If { arms, otherwise } => {
                let mut to_end = Vec::new();
                for (i, (cond, body)) in arms.iter().enumerate() {
                    let skip = self.cond(cond, false)?;
                    self.free_temps();
                    self.scoped_block(body)?;
                    let last = i + 1 == arms.len() && otherwise.is_none();
                    if !last {
                        to_end.push(self.emit(Insn::Jmp { off: 0 }, span));
                    }
                    self.patch_here(&skip);
                }
                if let Some(b) = otherwise {
                    self.scoped_block(b)?;
                }
                self.patch_here(&to_end);
                Ok(())
            }
            StmtKind::While { cond, body } => {
                let top = self.here();
                let exits = self.cond(cond, false)?;
                self.free_temps();
                self.fs().loops.push(Vec::new());
                self.scoped_block(body)?;
                let back = self.emit(Insn::Jmp { off: 0 }, span);
                self.patch(back, top);
                self.end_loop(&exits);
                Ok(())
            }
            StmtKind::ForNum {
                var,
                start,
                limit,
                step,
                body,
            } => self.for_num(var, start, limit, step.as_ref(), body, span),
            StmtKind::ForC {
                init,
                cond,
                step,
                body,
            } => {
                self.open_scope();
                if let Some(init) = init {
                    self.stmt(init)?;
                }
                let top = self.here();
                let exits = match cond {
                    Some(c) => self.cond(c, false)?,
                    None => Vec::new(),
                };
                self.free_temps();
                self.fs().loops.push(Vec::new());
                self.scoped_block(body)?;
                if let Some(step) = step {
                    self.stmt(step)?;
                }
                let back = self.emit(Insn::Jmp { off: 0 }, span);
                self.patch(back, top);
                self.end_loop(&exits);
                self.close_scope();
                Ok(())
            }
            StmtKind::ForIn {
                key,
                value,
                iter,
                body,
            } => self.for_in(key, value.as_ref(), iter, body, span),
            StmtKind::Break => {
                let j = self.emit(Insn::Jmp { off: 0 }, span);
                match self.fs().loops.last_mut() {
                    Some(l) => {
                        l.push(j);
                        Ok(())
                    }
                    None => error("break outside a loop", span),
                }
            }
            StmtKind::Return(value) => self.ret(value.as_ref(), span),
            StmtKind::Block(b) => self.scoped_block(b),
            StmtKind::Function { name, func } => {
                let fname = name
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                let r = self.alloc_reg(span)?;
                self.closure(&fname, func, r)?;
                match name.as_slice() {
                    [] => Ok(()),
                    [single] => {
                        let v = self.resolve(&single.name, single.span)?;
                        self.store(Place::Var(v), r, span)
                    }
                    [first, middle @ .., last] => {
                        let t = self.alloc_reg(span)?;
                        self.name_to(first, t)?;
                        for m in middle {
                            let k = self.str_const(m.name.as_bytes());
                            self.emit(Insn::GetField { dst: t, t, k }, m.span);
                        }
                        let k = self.str_const(last.name.as_bytes());
                        self.emit(Insn::SetField { t, k, v: r }, last.span);
                        Ok(())
                    }
                }
            }
            // Probe bodies run in the kernel, not here: running the
            // statement registers its probe.
            StmtKind::Trace { .. }
            | StmtKind::Timer {
                kind: TimerKind::Profile,
                ..
            } => {
                self.emit(Insn::Register { at: span.start }, span);
                Ok(())
            }
            // `compile` takes these at top level; one nested in main-context
            // code runs once main ran its statement.
            StmtKind::Timer {
                kind: TimerKind::Tick,
                period,
                body,
            } if self.in_main() => {
                let name = format!("tick-{}ns", period.nanos);
                let proto = self.body(FuncKind::Body, &name, &[], body, span)?;
                self.nested_ticks.push((period.nanos, proto, Some(span.start)));
                self.emit(Insn::Register { at: span.start }, span);
                Ok(())
            }
            StmtKind::Timer {
                kind: TimerKind::Tick,
                ..
            } => error("tick bodies must be at the top level of the script", span),
            StmtKind::TraceEnd { .. } => {
                error("trace_end must be at the top level of the script", span)
            }
            StmtKind::Error => Ok(()),
        }
    }

    /// Closes the innermost loop: its breaks and `exits` land here.
    fn end_loop(&mut self, exits: &[usize]) {
        let breaks = self.fs().loops.pop().unwrap_or_default();
        self.patch_here(exits);
        self.patch_here(&breaks);
    }

    fn var(&mut self, names: &[Ident], values: &[Expr], span: Span) -> CResult<()> {
        if self.at_main_top() {
            if let ([name], [value]) = (names, values) {
                let r = self.expr_any(value)?;
                let g = self.global(&name.name);
                self.emit(Insn::SetGlobal { g, src: r }, span);
                return Ok(());
            }
            let regs = self.values_to_temps(values, names.len(), span)?;
            for (n, r) in names.iter().zip(regs) {
                let g = self.global(&n.name);
                self.emit(Insn::SetGlobal { g, src: r }, n.span);
            }
            return Ok(());
        }
        let regs = self.values_to_temps(values, names.len(), span)?;
        // The temporaries become the locals; extra values above them go.
        if let Some(&last) = regs.last() {
            self.fs().free_reg = last + 1;
        }
        for (n, r) in names.iter().zip(regs) {
            self.declare_reg(n, r, n.span)?;
        }
        Ok(())
    }

    /// Evaluates `values` left to right into `n` fresh consecutive
    /// registers (nil for missing values; extra values are evaluated for
    /// their effects and dropped).
    fn values_to_temps(&mut self, values: &[Expr], n: usize, span: Span) -> CResult<Vec<Reg>> {
        let mut regs = Vec::with_capacity(n);
        for i in 0..n {
            let r = self.alloc_reg(span)?;
            match values.get(i) {
                Some(v) => self.expr_to(v, r)?,
                None => {
                    self.emit(Insn::LoadNil { dst: r }, span);
                }
            }
            regs.push(r);
        }
        for v in values.iter().skip(n) {
            let mark = self.fs().free_reg;
            let r = self.alloc_reg(v.span)?;
            self.expr_to(v, r)?;
            self.fs().free_reg = mark;
        }
        Ok(regs)
    }

    fn assign(&mut self, targets: &[Expr], values: &[Expr], span: Span) -> CResult<()> {
        if let ([target], [value]) = (targets, values) {
            if let ExprKind::Name(id) = &target.kind {
                let v = self.resolve(&id.name, id.span)?;
                if let Var::Reg(dst) = v {
                    if direct_ok(value) {
                        return self.expr_to(value, dst);
                    }
                }
                let r = self.expr_any(value)?;
                return self.store(Place::Var(v), r, span);
            }
            let place = self.place(target, false)?;
            let r = self.expr_any(value)?;
            return self.store(place, r, target.span);
        }
        let mut places = Vec::with_capacity(targets.len());
        for t in targets {
            places.push(self.place(t, true)?);
        }
        let regs = self.values_to_temps(values, targets.len(), span)?;
        for ((place, r), t) in places.into_iter().zip(regs).zip(targets) {
            self.store(place, r, t.span)?;
        }
        Ok(())
    }

    /// Evaluates the parts of an assignment target. With `copy`, parts are
    /// copied to fresh registers so that earlier stores cannot change them.
    fn place<'e>(&mut self, target: &'e Expr, copy: bool) -> CResult<Place<'e>> {
        let eval = |c: &mut Self, e: &Expr| -> CResult<Reg> {
            if copy {
                let r = c.alloc_reg(e.span)?;
                c.expr_to(e, r)?;
                Ok(r)
            } else {
                c.expr_any(e)
            }
        };
        match &target.kind {
            ExprKind::Name(id) => Ok(Place::Var(self.resolve(&id.name, id.span)?)),
            ExprKind::Index { base, index } => {
                let t = eval(self, base)?;
                if let ExprKind::Str(s) = &index.kind {
                    return Ok(Place::Field {
                        t,
                        k: self.str_const(s),
                        base,
                    });
                }
                let k = eval(self, index)?;
                Ok(Place::Index { t, k, base })
            }
            ExprKind::Field { base, name } => {
                let t = eval(self, base)?;
                Ok(Place::Field {
                    t,
                    k: self.str_const(name.name.as_bytes()),
                    base,
                })
            }
            _ => error("cannot assign to this expression", target.span),
        }
    }

    fn store(&mut self, place: Place, src: Reg, span: Span) -> CResult<()> {
        let insn = match place {
            Place::Var(Var::Reg(dst)) => {
                if dst == src {
                    return Ok(());
                }
                Insn::Move { dst, src }
            }
            Place::Var(Var::Cell(c)) => Insn::SetCell { c, src },
            Place::Var(Var::Upval(u)) => Insn::SetUpval { u, src },
            Place::Var(Var::Global(g)) => Insn::SetGlobal { g, src },
            Place::Index { t, k, base } => {
                self.emit_noted(Insn::SetIndex { t, k, v: src }, span, base);
                return Ok(());
            }
            Place::Field { t, k, base } => {
                self.emit_noted(Insn::SetField { t, k, v: src }, span, base);
                return Ok(());
            }
        };
        self.emit(insn, span);
        Ok(())
    }

    fn add_assign(&mut self, target: &Expr, value: &Expr, span: Span) -> CResult<()> {
        match self.place(target, false)? {
            Place::Var(Var::Reg(r)) => {
                let v = self.expr_any(value)?;
                self.emit(Insn::Inc { dst: r, a: r, b: v }, span);
            }
            Place::Var(Var::Global(g)) => {
                let v = self.expr_any(value)?;
                self.emit(Insn::IncGlobal { g, v }, span);
            }
            Place::Var(var) => {
                let cur = self.alloc_reg(span)?;
                self.load_var(var, cur, target.span);
                let v = self.expr_any(value)?;
                self.emit(
                    Insn::Inc {
                        dst: cur,
                        a: cur,
                        b: v,
                    },
                    span,
                );
                self.store(Place::Var(var), cur, span)?;
            }
            Place::Index { t, k, base } => {
                let v = self.expr_any(value)?;
                self.emit_noted(Insn::IncIndex { t, k, v }, span, base);
            }
            Place::Field { t, k, base } => {
                let v = self.expr_any(value)?;
                self.emit_noted(Insn::IncField { t, k, v }, span, base);
            }
        }
        Ok(())
    }

    fn ret(&mut self, value: Option<&Expr>, span: Span) -> CResult<()> {
        let Some(value) = value else {
            self.emit(Insn::Return0, span);
            return Ok(());
        };
        if let ExprKind::Call { callee, args } = &value.kind {
            if self.direct_builtin(callee).is_none() {
                let base = self.call_setup(callee, args)?;
                let nargs = args.len() as u16;
                self.emit_noted(Insn::TailCall { base, nargs }, value.span, callee);
                return Ok(());
            }
        }
        let r = self.expr_any(value)?;
        self.emit(Insn::Return { src: r }, span);
        Ok(())
    }

    fn for_num(
        &mut self,
        var: &Ident,
        start: &Expr,
        limit: &Expr,
        step: Option<&Expr>,
        body: &Block,
        span: Span,
    ) -> CResult<()> {
        self.open_scope();
        let base = self.alloc_regs(4, span)?;
        self.expr_to(start, base)?;
        self.expr_to(limit, base + 1)?;
        match step {
            Some(s) => self.expr_to(s, base + 2)?,
            None => {
                self.emit(
                    Insn::LoadInt {
                        dst: base + 2,
                        val: 1,
                    },
                    span,
                );
            }
        }
        self.fs().active = base + 3;
        let prep = self.emit(Insn::ForPrep { base, off: 0 }, span);
        let body_start = self.here();
        self.open_scope();
        self.declare_reg(var, base + 3, var.span)?;
        self.fs().loops.push(Vec::new());
        self.block_stmts(body)?;
        self.close_scope();
        let back = self.emit(Insn::ForLoop { base, off: 0 }, span);
        self.patch(back, body_start);
        let exit = self.here();
        self.patch(prep, exit);
        self.end_loop(&[]);
        self.close_scope();
        Ok(())
    }

    fn for_in(
        &mut self,
        key: &Ident,
        value: Option<&Ident>,
        iter: &Expr,
        body: &Block,
        span: Span,
    ) -> CResult<()> {
        self.open_scope();
        let base = self.alloc_regs(4, span)?;
        self.expr_to(iter, base)?;
        self.fs().active = base + 2;
        let prep = self.emit(Insn::IterPrep { base, off: 0 }, iter.span);
        let body_start = self.here();
        self.open_scope();
        self.declare_reg(key, base + 2, key.span)?;
        if let Some(v) = value {
            self.declare_reg(v, base + 3, v.span)?;
        }
        self.fs().active = base + 4;
        self.fs().loops.push(Vec::new());
        self.block_stmts(body)?;
        self.close_scope();
        let next = self.emit(Insn::IterNext { base, off: 0 }, span);
        self.patch(prep, next);
        self.patch(next, body_start);
        self.end_loop(&[]);
        self.close_scope();
        Ok(())
    }

    pub(super) fn load_var(&mut self, var: Var, dst: Reg, span: Span) {
        let insn = match var {
            Var::Reg(src) => {
                if src == dst {
                    return;
                }
                Insn::Move { dst, src }
            }
            Var::Cell(c) => Insn::GetCell { dst, c },
            Var::Upval(u) => Insn::GetUpval { dst, u },
            Var::Global(g) => Insn::GetGlobal { dst, g },
        };
        self.emit(insn, span);
    }
}

/// Whether `e` may be compiled straight into the register of the local
/// being assigned: it must read every operand before writing its result.
fn direct_ok(e: &Expr) -> bool {
    !matches!(
        &e.kind,
        ExprKind::Table(_)
            | ExprKind::Binary {
                op: BinOp::And | BinOp::Or,
                ..
            }
    )
}
