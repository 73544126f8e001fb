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
