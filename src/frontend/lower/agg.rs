//! Lowering of aggregating assignments (`t[k] = hist(v)`, `t[k] = count()`)
//! to `AggUpdate`s of the kind the call makes, and the table-wide checks
//! the scan's findings allow: one kind a table, and no other use in probes
//! of a table whose entries are not plain numbers. Diagnostics at the
//! spans, never panics.

use super::*;

impl Lowerer<'_> {
    /// What is wrong with how probes use table `name`, if anything: two
    /// kinds of aggregate, or an aggregate other than a sum also read,
    /// stored or deleted in a probe.
    pub(super) fn table_conflict(&self, name: &str, uses: &TableUses) -> Option<Diagnostic> {
        let (first, first_span) = uses.first_agg?;
        let first_name = first.desc().name();
        if let Some((other, span)) = uses.other_kind {
            return Some(
                Diagnostic::error(span, format!("table `{name}` is made {} aggregate here but {} aggregate elsewhere", a(other.desc().name()), a(first_name)))
                    .with_label(a(other.desc().name()))
                    .with_secondary(first_span, format!("{} here", a(first_name)))
                    .with_note("a table holds one kind of aggregate: use another table for the other"),
            );
        }
        let other = uses.first_other.filter(|_| first != ir::AggKind::Sum)?;
        Some(
            Diagnostic::error(other, format!("table `{name}` holds {first_name} aggregates: probes can only update them"))
                .with_label("used as a number")
                .with_secondary(first_span, format!("made {} aggregate here", a(first_name)))
                .with_note(format!("read, print or delete `{name}` in a tick-N or trace_end block")),
        )
    }

    /// `t[k] = kind(v)` in a probe: one update of the table's aggregate.
    pub(super) fn agg_assign(&mut self, ctx: &mut ProbeCtx, base: &ast::Expr, index: &ast::Expr, call: &ast::Expr, span: Option<Span>, out: &mut Vec<Stmt>) {
        let made = match crate::builtins::aggregate(call) {
            Some(Ok(made)) => made,
            Some(Err(d)) => {
                self.diags.push(d);
                return;
            }
            None => return,
        };
        let (kind, value) = made;
        let Some((map, key)) = self.table_key(ctx, base, index) else { return };
        let value = match value {
            Some(v) => self.int_expr(ctx, v),
            None => Some(Expr { kind: ExprKind::Const(1), ty: Ty::Int, span: Some(call.span) }),
        };
        let Some(value) = value else { return };
        let holds = self.m.map(map).table.as_ref().and_then(|t| t.value.agg());
        if holds != Some(kind) {
            // A conflict reported when the table was made is enough.
            let reported = match &base.kind {
                ast::ExprKind::Name(id) => self.table_uses.get(&id.name).is_some_and(|u| self.table_conflict(&id.name, u).is_some()),
                _ => false,
            };
            if !reported {
                self.diags.push(Diagnostic::error(call.span, format!("this table cannot hold {} aggregates", kind.desc().name())).with_label("not an aggregate table"));
            }
            return;
        }
        let to = ir::AggTarget::Entry { map, key };
        out.push(Stmt { kind: StmtKind::AggUpdate { to, kind, value }, span });
    }
}

/// `a hist`, `an avg`.
fn a(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {kind}")
}

impl Lowerer<'_> {
    /// Whether `name` is a top-level variable (not a table) that probes
    /// make an aggregate (`lat = hist(d)`): where, and of which kind.
    fn global_agg(&self, name: &str) -> Option<(ir::AggKind, Span)> {
        let decl = self.vars.get(name)?;
        if decl.table.is_some() {
            return None;
        }
        self.table_uses.get(name)?.first_agg
    }

    /// A global aggregate used otherwise in a probe (read, assigned, `+=`).
    pub(super) fn global_agg_misuse(&self, id: &ast::Ident) -> Option<Diagnostic> {
        let (kind, at) = self.global_agg(&id.name)?;
        let what = kind.desc().name();
        Some(
            Diagnostic::error(id.span, format!("`{}` holds {} aggregate: probes can only update it", id.name, a(what)))
                .with_label("used as a number")
                .with_secondary(at, format!("made {} aggregate here", a(what)))
                .with_note(format!("read, print or delete `{}` in a tick-N or trace_end block", id.name)),
        )
    }

    /// `lat = kind(v)` in a probe, `lat` a top-level variable: the one
    /// entry (key 0) of a hidden table the variable stands for.
    pub(super) fn agg_assign_global(&mut self, ctx: &mut ProbeCtx, target: &ast::Expr, call: &ast::Expr, span: Option<Span>, out: &mut Vec<Stmt>) {
        let ast::ExprKind::Name(id) = &target.kind else { return };
        let (kind, value) = match crate::builtins::aggregate(call) {
            Some(Ok(made)) => made,
            Some(Err(d)) => {
                self.diags.push(d);
                return;
            }
            None => return,
        };
        let Some(decl) = self.vars.get(&id.name) else {
            self.diags.push(
                Diagnostic::error(id.span, format!("undeclared variable `{}`", id.name))
                    .with_label("not declared")
                    .with_note(format!("declare it at the top level: `var {} = 0`", id.name)),
            );
            return;
        };
        if decl.table.is_some() {
            self.diags.push(Diagnostic::error(target.span, format!("`{}` is a table: make its elements aggregates, `{}[key] = ...`", id.name, id.name)).with_label("a table"));
            return;
        }
        let map = match self.tables.get(&id.name) {
            Some(t) => t.map,
            None => {
                let uses = self.table_uses.get(&id.name).copied().unwrap_or_default();
                if let Some(d) = self.table_conflict(&id.name, &uses) {
                    self.diags.push(d);
                    return;
                }
                if self.kernel_globals.contains_key(&id.name) {
                    // Lowered as a number before this update was met.
                    self.diags.push(Diagnostic::error(call.span, format!("`{}` is a number in another probe: it cannot also be an aggregate", id.name)).with_label("an aggregate"));
                    return;
                }
                let holds = ir::TableValue::Agg(uses.only.unwrap_or(kind));
                let map = ir::MapId(self.m.maps.len() as u32);
                self.m.maps.push(ir::Map {
                    name: format!("ktap_tbl_{}", id.name),
                    kind: if holds.per_cpu() { ir::MapKind::PercpuHash } else { ir::MapKind::Hash },
                    key_size: Ty::Int.size(),
                    value_size: holds.size(),
                    max_entries: 1,
                    table: Some(ir::TableInfo { var: id.name.clone(), key: Ty::Int, value: holds, single: true }),
                    syscall_filter: None,
                });
                self.tables.insert(id.name.clone(), KernelTable { map, key: Ty::Int, key_span: id.span });
                map
            }
        };
        if self.m.map(map).table.as_ref().and_then(|t| t.value.agg()) != Some(kind) {
            return;
        }
        let value = match value {
            Some(v) => self.int_expr(ctx, v),
            None => Some(Expr { kind: ExprKind::Const(1), ty: Ty::Int, span: Some(call.span) }),
        };
        let Some(value) = value else { return };
        let key = Expr { kind: ExprKind::Const(0), ty: Ty::Int, span: None };
        out.push(Stmt { kind: StmtKind::AggUpdate { to: ir::AggTarget::Entry { map, key }, kind, value }, span });
    }
}
