//! Lowering of probe-body expressions: builtins, event fields, table reads,
//! string literals, comparisons and joins, and calls that yield values
//! (member chains on typed kernel values: `members.rs`);
//! every result typed (inference, `infer.rs`, settled the types of what is
//! stored). Reports what the kernel cannot do at its span; never panics.

use super::*;


impl Lowerer<'_> {
    pub(super) fn int_expr(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Expr> {
        let v = self.expr(ctx, e)?;
        if v.ty != Ty::Int {
            self.diags.push(
                Diagnostic::error(e.span, format!("a number is needed here, but this is a {}", ty_name(v.ty))).with_label(format!("a {}", ty_name(v.ty))),
            );
            return None;
        }
        Some(v)
    }

    pub(super) fn expr(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Expr> {
        let span = Some(e.span);
        let int = |kind| Some(Expr { kind, ty: Ty::Int, span });
        match &e.kind {
            ast::ExprKind::Int(v) => int(ExprKind::Const(*v)),
            ast::ExprKind::Bool(b) => int(ExprKind::Const(i64::from(*b))),
            ast::ExprKind::Name(id) => self.name(ctx, id, e.span),
            ast::ExprKind::Field { base, name } => {
                if let Some(typed) = self.member_access(ctx, e) {
                    return typed;
                }
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
                if let Some(named) = self.enum_compare(ctx, other, lit, *op == ast::BinOp::Eq, e.span) {
                    return named;
                }
                let mut value = self.expr(ctx, other)?;
                if value.ty == Ty::Int {
                    self.number_as_text(other.span);
                    value = as_text(value);
                }
                if !value.ty.is_string() {
                    self.error(e.span, format!("comparing a {} with a string", ty_name(value.ty)));
                    return None;
                }
                if lit.len() as u32 >= value.ty.size() {
                    // Valid, as in ktap, and decided here.
                    let (always, label) = if *op == ast::BinOp::Eq { (0, "always false") } else { (1, "always true") };
                    self.diags.push(
                        Diagnostic::warning(e.span, format!("this string can never match: it is longer than the {} bytes the value holds", value.ty.size() - 1))
                            .with_label(label),
                    );
                    return int(ExprKind::Const(always));
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
                let has = match &other.kind {
                    // `nil == nil`.
                    ast::ExprKind::Nil => constant(0, span),
                    // A local: its presence flag; one that is never nil
                    // is always there.
                    ast::ExprKind::Name(id) if matches!(self.res.binding(id.span), Binding::Local(_)) || ctx.lookup(&self.res, id).is_some() => {
                        let local = ctx.lookup(&self.res, id)?;
                        match ctx.present.get(&local) {
                            Some(flag) => local_expr(*flag, span),
                            None => constant(1, span),
                        }
                    }
                    ast::ExprKind::Index { base, index } => {
                        let (map, key) = self.table_key(ctx, base, index)?;
                        Expr { kind: ExprKind::MapHas { map, key: Box::new(key) }, ty: Ty::Int, span }
                    }
                    _ => {
                        self.unsupported(e.span, "comparing this with nil");
                        return None;
                    }
                };
                if *op == ast::BinOp::Eq {
                    int(ExprKind::Unary { op: ir::UnOp::Not, operand: Box::new(has) })
                } else {
                    Some(has)
                }
            }
            ast::ExprKind::Binary { op: ast::BinOp::Concat, lhs, rhs } => {
                let (l, r) = (self.expr(ctx, lhs), self.expr(ctx, rhs));
                // A number joins as its decimal text, as in ktap.
                let (l, r) = (as_text(l?), as_text(r?));
                for (v, a) in [(&l, lhs), (&r, rhs)] {
                    if !v.ty.is_string() {
                        self.diags.push(
                            Diagnostic::error(a.span, format!("`..` in a probe joins strings and numbers, but this is a {}", ty_name(v.ty)))
                                .with_label(format!("a {}", ty_name(v.ty))),
                        );
                        return None;
                    }
                }
                Some(Expr { kind: ExprKind::StrConcat { lhs: Box::new(l), rhs: Box::new(r) }, ty: Ty::Str, span })
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
                    // Handled above.
                    ast::BinOp::Concat => return None,
                };
                if matches!(op, ir::BinOp::Eq | ir::BinOp::Ne) {
                    let (l, r) = (self.expr(ctx, lhs), self.expr(ctx, rhs));
                    let (mut l, mut r) = (l?, r?);
                    // A number compared with a string: its decimal text.
                    if l.ty == Ty::Int && r.ty.is_string() {
                        self.number_as_text(lhs.span);
                        l = as_text(l);
                    } else if r.ty == Ty::Int && l.ty.is_string() {
                        self.number_as_text(rhs.span);
                        r = as_text(r);
                    }
                    return match (l.ty.is_string(), r.ty.is_string()) {
                        (true, true) => {
                            let eq = Expr { kind: ExprKind::StrCmp { lhs: Box::new(l), rhs: Box::new(r) }, ty: Ty::Int, span };
                            if op == ir::BinOp::Eq {
                                Some(eq)
                            } else {
                                int(ExprKind::Unary { op: ir::UnOp::Not, operand: Box::new(eq) })
                            }
                        }
                        (false, false) if l.ty == Ty::Int && r.ty == Ty::Int => int(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) }),
                        _ => {
                            self.diags.push(
                                Diagnostic::error(e.span, format!("comparing a {} with a {}", ty_name(l.ty), ty_name(r.ty)))
                                    .with_label("different types"),
                            );
                            None
                        }
                    };
                }
                let (l, r) = (self.expr(ctx, lhs), self.expr(ctx, rhs));
                let (l, r) = (l?, r?);
                if l.ty.is_string() || r.ty.is_string() {
                    let what = if matches!(op, ir::BinOp::Lt | ir::BinOp::Le | ir::BinOp::Gt | ir::BinOp::Ge) {
                        "strings in probes compare only with == and !="
                    } else {
                        "arithmetic on a string"
                    };
                    self.diags.push(Diagnostic::error(e.span, what).with_label("a string operand"));
                    return None;
                }
                for (v, a) in [(&l, lhs), (&r, rhs)] {
                    if v.ty != Ty::Int {
                        self.diags.push(
                            Diagnostic::error(a.span, format!("a number is needed here, but this is a {}", ty_name(v.ty)))
                                .with_label(format!("a {}", ty_name(v.ty))),
                        );
                        return None;
                    }
                }
                int(ExprKind::Binary { op, lhs: Box::new(l), rhs: Box::new(r) })
            }
            ast::ExprKind::Nil => {
                self.unsupported(e.span, "`nil`");
                None
            }
            ast::ExprKind::Str(s) => {
                if s.len() > infer::MAX_LITERAL {
                    self.diags.push(
                        Diagnostic::error(e.span, format!("this string is {} bytes long; strings in probes hold at most {} bytes", s.len(), infer::MAX_LITERAL))
                            .with_label("too long for a probe"),
                    );
                    return None;
                }
                Some(Expr { kind: ExprKind::StrConst(s.clone()), ty: infer::literal_ty(s), span })
            }
            ast::ExprKind::Call { callee, args } => self.call_value(ctx, callee, args, e.span),
            ast::ExprKind::Index { base, index } => {
                if let Some(typed) = self.member_access(ctx, e) {
                    return typed;
                }
                // `args.NAME[i]`: an element of an array field.
                if let (ast::ExprKind::Field { base: args, name }, ast::ExprKind::Int(i)) = (&base.kind, &index.kind) {
                    if matches!(&args.kind, ast::ExprKind::Name(a) if a.name == "args") {
                        if let Some(element) = ctx.args.element(&mut self.pcx(), &name.name, *i, e.span) {
                            return element;
                        }
                    }
                }
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

    /// The warning for a number compared with a string.
    fn number_as_text(&mut self, span: Span) {
        self.diags.push(
            Diagnostic::warning(span, "comparing a number with a string: the number's decimal text is compared")
                .with_label("a number")
                .with_note("as a number put where a string lives; `tostring(n)` says so without this warning"),
        );
    }

    /// A value for a place that holds `holds`: a number where a string
    /// lives becomes its decimal text (inference warned of it).
    pub(super) fn fit(value: Expr, holds: Ty) -> Expr {
        if holds.is_string() {
            as_text(value)
        } else {
            value
        }
    }

    pub(super) fn name(&mut self, ctx: &mut ProbeCtx, id: &ast::Ident, span: Span) -> Option<Expr> {
        if let Some(local) = ctx.lookup(&self.res, id) {
            return Some(Expr { kind: ExprKind::Local(local), ty: ctx.locals[local.index()], span: Some(span) });
        }
        if matches!(self.res.binding(id.span), Binding::Local(_)) {
            // A local whose declaration did not lower: that was reported
            // at the declaration, once.
            return None;
        }
        if let Some(b) = crate::builtins::name(&id.name) {
            return self.builtin_value(ctx, b, &[], span, span);
        }
        if let Some(n) = id.name.strip_prefix("arg").and_then(|n| n.parse::<usize>().ok()) {
            if let Some(typed) = self.typed_arg(ctx, n, span) {
                return typed;
            }
            return self.event_arg(ctx, n, span);
        }
        if !self.vars.contains_key(&id.name) {
            if let Some(typed) = self.typed_name(ctx, &id.name, span) {
                return typed;
            }
            let in_filter = ctx.in_filter;
            if let Some(e) = ctx.args.name(&mut self.pcx(), &id.name, in_filter, span) {
                return e;
            }
        }
        if id.name == "argstr" {
            return ctx.args.argstr(&mut self.pcx(), span);
        }
        let g = self.kernel_global(id)?;
        let ty = self.m.global(g).ty;
        Some(Expr { kind: ExprKind::Global(g), ty, span: Some(span) })
    }

    pub(super) fn stack_map(&mut self) -> ir::MapId {
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

    /// Calls that yield a value in a probe: builtins, inlined functions.
    pub(super) fn call_value(&mut self, ctx: &mut ProbeCtx, callee: &ast::Expr, args: &[ast::Expr], span: Span) -> Option<Expr> {
        if let Some(b) = crate::builtins::callee(callee) {
            return self.builtin_value(ctx, b, args, span, callee.span);
        }
        let ast::ExprKind::Name(id) = &callee.kind else {
            self.unsupported(callee.span, "calling this expression");
            return None;
        };
        let name = id.name.as_str();
        if self.functions.contains_key(name) {
            let ((id, body), result) = self.inline_call(ctx, span, name, args)?;
            let block = Stmt { kind: StmtKind::Block { id, body }, span: Some(span) };
            let ty = ctx.locals[result.index()];
            return Some(Expr { kind: ExprKind::Seq { body: vec![block], result }, ty, span: Some(span) });
        }
        self.unsupported(callee.span, &format!("calling `{name}` for its value"));
        None
    }

    /// The type of the values a table holds (an aggregate's: what updates
    /// fold in).
    pub(super) fn table_value(&self, map: ir::MapId) -> Ty {
        self.m.map(map).table.as_ref().map_or(Ty::Int, |t| t.value.ty())
    }

    /// The map behind `base` and the lowered key, creating the map on first
    /// use with the types inference settled (this use's key type when
    /// inference could not tell).
    pub(super) fn table_key(&mut self, ctx: &mut ProbeCtx, base: &ast::Expr, index: &ast::Expr) -> Option<(ir::MapId, Expr)> {
        let ast::ExprKind::Name(id) = &base.kind else {
            self.unsupported(base.span, "indexing this expression");
            return None;
        };
        let key = self.expr(ctx, index)?;
        // A number key of a string-keyed table is its decimal text.
        let key = match self.types.keys.get(&id.name) {
            Some(f) if f.ty.is_string() => as_text(key),
            _ => key,
        };
        if matches!(key.ty, Ty::ArgStr { .. }) {
            self.unsupported(index.span, "`argstr` as a table key");
            return None;
        }
        if let Some(t) = self.tables.get(&id.name) {
            if !key.ty.fits(t.key) {
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
        if let Some(d) = self.table_conflict(&id.name, &uses) {
            self.diags.push(d);
        }
        let Some(value) = self.types.values.get(&id.name).map(|f| f.ty) else {
            self.unsettled(id.span, &format!("the values of table `{}`", id.name));
            return None;
        };
        let holds = match uses.only {
            Some(kind) if kind.desc().input() == value => ir::TableValue::Agg(kind),
            _ => ir::TableValue::Scalar(value),
        };
        // Every use counts: a task-name key widens to a string key when
        // another use keys the table by a longer string.
        let key_ty = self.types.keys.get(&id.name).and_then(|f| infer::join(f.ty, key.ty)).unwrap_or(key.ty);
        let map = ir::MapId(self.m.maps.len() as u32);
        self.m.maps.push(ir::Map {
            name: format!("ktap_tbl_{}", id.name),
            kind: if holds.per_cpu() { ir::MapKind::PercpuHash } else { ir::MapKind::Hash },
            key_size: key_ty.size(),
            value_size: holds.size(),
            max_entries: if entries == 0 { DEFAULT_TABLE_ENTRIES } else { entries },
            table: Some(ir::TableInfo { var: id.name.clone(), key: key_ty, value: holds, single: false }),
            syscall_filter: None,
        });
        self.tables.insert(id.name.clone(), KernelTable { map, key: key_ty, key_span: index.span });
        self.kernel_uses.entry(id.name.clone()).or_insert((crate::frontend::check::KernelUse::Table, id.span));
        Some((map, key))
    }

    /// `argN`, as the probe's provider gives it.
    pub(super) fn event_arg(&mut self, ctx: &mut ProbeCtx, n: usize, span: Span) -> Option<Expr> {
        ctx.args.arg(&mut self.pcx(), n, span)
    }

    /// `args.NAME`, as the probe's provider gives it.
    pub(super) fn event_field(&mut self, ctx: &mut ProbeCtx, name: &str, span: Span) -> Option<Expr> {
        ctx.args.field(&mut self.pcx(), name, span)
    }
}

pub fn ty_name(ty: Ty) -> &'static str {
    match ty {
        Ty::Int => "number",
        Ty::Comm | Ty::Str | Ty::ArgStr { .. } => "string",
        Ty::ProbeName => "probe name",
        Ty::Stack { .. } => "stack trace",
    }
}

/// A number's decimal text; any other value as it is.
pub(super) fn as_text(v: Expr) -> Expr {
    if v.ty == Ty::Int {
        let span = v.span;
        Expr { kind: ExprKind::IntText(Box::new(v)), ty: Ty::Str, span }
    } else {
        v
    }
}
