//! Pre-scans of the AST that decide how tables are stored before any probe
//! is lowered: per-CPU when probes only add to them. Pure and read-only.

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

/// The names a tick body mentions; `None` if it calls a user function.
pub(super) fn tick_names(body: &ast::Block, functions: &IndexMap<String, ast::FuncBody>) -> Option<Vec<String>> {
    fn expr(e: &ast::Expr, f: &IndexMap<String, ast::FuncBody>, out: &mut Vec<String>) -> bool {
        match &e.kind {
            ast::ExprKind::Name(id) => {
                out.push(id.name.clone());
                true
            }
            ast::ExprKind::Call { callee, args } => {
                if matches!(&callee.kind, ast::ExprKind::Name(id) if f.contains_key(&id.name)) {
                    return false;
                }
                expr(callee, f, out) && args.iter().all(|a| expr(a, f, out))
            }
            ast::ExprKind::Index { base, index } => expr(base, f, out) && expr(index, f, out),
            ast::ExprKind::Field { base, .. } => expr(base, f, out),
            ast::ExprKind::Unary { operand, .. } => expr(operand, f, out),
            ast::ExprKind::Binary { lhs, rhs, .. } => expr(lhs, f, out) && expr(rhs, f, out),
            // A closure may run anything later.
            ast::ExprKind::Function(_) => false,
            ast::ExprKind::Table(fields) => fields.iter().all(|fl| match fl {
                ast::TableField::Positional(v) | ast::TableField::Named(_, v) => expr(v, f, out),
                ast::TableField::Keyed(k, v) => expr(k, f, out) && expr(v, f, out),
            }),
            _ => true,
        }
    }
    fn stmts(ss: &[ast::Stmt], f: &IndexMap<String, ast::FuncBody>, out: &mut Vec<String>) -> bool {
        ss.iter().all(|s| match &s.kind {
            ast::StmtKind::Var { values, .. } => values.iter().all(|v| expr(v, f, out)),
            ast::StmtKind::Assign { targets, values } => targets.iter().chain(values).all(|e| expr(e, f, out)),
            ast::StmtKind::AddAssign { target, value } => expr(target, f, out) && expr(value, f, out),
            ast::StmtKind::Expr(e) => expr(e, f, out),
            ast::StmtKind::If { arms, otherwise } => {
                arms.iter().all(|(c, b)| expr(c, f, out) && stmts(&b.stmts, f, out))
                    && otherwise.as_ref().is_none_or(|b| stmts(&b.stmts, f, out))
            }
            ast::StmtKind::While { cond, body } => expr(cond, f, out) && stmts(&body.stmts, f, out),
            ast::StmtKind::ForNum { start, limit, step, body, .. } => {
                expr(start, f, out) && expr(limit, f, out) && step.as_ref().is_none_or(|s| expr(s, f, out)) && stmts(&body.stmts, f, out)
            }
            ast::StmtKind::ForC { init, cond, step, body } => {
                init.as_deref().is_none_or(|s| stmts(std::slice::from_ref(s), f, out))
                    && cond.as_ref().is_none_or(|c| expr(c, f, out))
                    && step.as_deref().is_none_or(|s| stmts(std::slice::from_ref(s), f, out))
                    && stmts(&body.stmts, f, out)
            }
            ast::StmtKind::ForIn { iter, body, .. } => expr(iter, f, out) && stmts(&body.stmts, f, out),
            ast::StmtKind::Return(Some(e)) => expr(e, f, out),
            ast::StmtKind::Block(b) => stmts(&b.stmts, f, out),
            ast::StmtKind::Function { .. } => false,
            _ => true,
        })
    }
    let mut out = Vec::new();
    stmts(&body.stmts, functions, &mut out).then(|| {
        out.sort();
        out.dedup();
        out
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tick_of(src: &str) -> Option<Vec<String>> {
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let mut functions = IndexMap::new();
        let mut body = None;
        for s in &program.stmts {
            match &s.kind {
                ast::StmtKind::Function { name, func } => {
                    functions.insert(name[0].name.clone(), func.clone());
                }
                ast::StmtKind::Timer { body: b, .. } => body = Some(b.clone()),
                _ => {}
            }
        }
        tick_names(&body.expect("a tick"), &functions)
    }

    #[test]
    fn ticks_name_what_they_touch() {
        let names = tick_of("var s = {}\ntick-1s { print_hist(s) if (n > 3) { delete(t) } }");
        assert_eq!(names, Some(vec!["delete".into(), "n".into(), "print_hist".into(), "s".into(), "t".into()]));
        // A user function may read anything: sync everything.
        assert_eq!(tick_of("function f() { print(x) }\ntick-1s { f() }"), None);
        assert_eq!(tick_of("tick-1s { var g = function () { print(y) } }"), None);
    }
}
