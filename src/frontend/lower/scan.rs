//! Pre-scans of the AST that decide how tables are stored before any probe
//! is lowered: per-CPU when probes only add to them, string-valued when
//! something stores strings. Pure and read-only.

use super::*;


/// The size a table-valued initializer asks for (0: default).
pub(super) fn table_size(e: &ast::Expr) -> Option<u32> {
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
pub(super) fn is_stringy(e: &ast::Expr) -> bool {
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
pub(super) fn scan_string_values(stmt: &ast::Stmt, uses: &mut IndexMap<String, TableUses>) {
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
pub(super) fn scan_table_uses(stmts: &[ast::Stmt], uses: &mut IndexMap<String, TableUses>) {
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
