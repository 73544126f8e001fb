//! Pre-scans of the AST that decide how tables are stored before any probe
//! is lowered: per-CPU when probes only add to them. Pure and read-only.

use super::*;

/// The size a table-valued initializer asks for (0: default).
pub(super) fn table_size(e: &ast::Expr) -> Option<u32> {
    match &e.kind {
        ast::ExprKind::Table(_) => Some(0),
        ast::ExprKind::Call { callee, args } => {
            if !crate::builtins::callee(callee).is_some_and(crate::builtins::is_constructor) {
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

/// Records, per table name, whether probes only ever add to it: every
/// probe body (trace, profile, kdebug), filter, and user function a probe
/// calls, directly or not.
pub(super) fn scan_probe_table_uses(program: &ast::Program, functions: &IndexMap<String, ast::FuncBody>, uses: &mut IndexMap<String, TableUses>) {
    let mut scan = TableScan { uses, calls: Vec::new() };
    for stmt in &program.stmts {
        let Some(probe) = crate::frontend::providers::probe_stmt(stmt) else { continue };
        if let Some(f) = probe.filter {
            scan.expr(f);
        }
        if let Some(body) = probe.body {
            scan.stmts(&body.stmts);
        }
    }
    let mut done = std::collections::HashSet::new();
    while let Some(name) = scan.calls.pop() {
        if let Some(f) = functions.get(&name).filter(|_| done.insert(name.clone())) {
            scan.stmts(&f.body.stmts);
        }
    }
}

/// Table uses found so far, and the names probe code calls.
struct TableScan<'a> {
    uses: &'a mut IndexMap<String, TableUses>,
    calls: Vec<String>,
}

impl TableScan<'_> {
    /// A use of table `base`: an update of an aggregate kind, or `None`
    /// for any other use.
    fn mark(&mut self, base: &ast::Expr, agg: Option<ir::AggKind>) {
        if let ast::ExprKind::Name(id) = &base.kind {
            let u = self.uses.entry(id.name.clone()).or_default();
            u.only = if u.seen && u.only != agg { None } else { agg };
            u.seen = true;
        }
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ast::ExprKind::Index { base, index } => {
                self.mark(base, None);
                self.expr(index);
            }
            ast::ExprKind::Field { base, .. } => self.expr(base),
            ast::ExprKind::Call { callee, args } => {
                if let ast::ExprKind::Name(id) = &callee.kind {
                    self.calls.push(id.name.clone());
                }
                self.expr(callee);
                args.iter().for_each(|a| self.expr(a));
            }
            ast::ExprKind::Unary { operand, .. } => self.expr(operand),
            ast::ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            ast::ExprKind::Table(fields) => {
                for f in fields {
                    match f {
                        ast::TableField::Positional(v) | ast::TableField::Named(_, v) => self.expr(v),
                        ast::TableField::Keyed(k, v) => {
                            self.expr(k);
                            self.expr(v);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn stmts(&mut self, stmts: &[ast::Stmt]) {
        for s in stmts {
            match &s.kind {
                ast::StmtKind::AddAssign { target, value } => {
                    if let ast::ExprKind::Index { base, index } = &target.kind {
                        self.mark(base, Some(ir::AggKind::Sum));
                        self.expr(index);
                    } else {
                        self.expr(target);
                    }
                    self.expr(value);
                }
                ast::StmtKind::Assign { targets, values } => targets.iter().chain(values).for_each(|e| self.expr(e)),
                ast::StmtKind::Var { values, .. } => values.iter().for_each(|e| self.expr(e)),
                ast::StmtKind::Expr(e) => self.expr(e),
                ast::StmtKind::If { arms, otherwise } => {
                    for (c, b) in arms {
                        self.expr(c);
                        self.stmts(&b.stmts);
                    }
                    if let Some(b) = otherwise {
                        self.stmts(&b.stmts);
                    }
                }
                ast::StmtKind::While { cond, body } => {
                    self.expr(cond);
                    self.stmts(&body.stmts);
                }
                ast::StmtKind::ForNum { body, .. } | ast::StmtKind::ForC { body, .. } | ast::StmtKind::ForIn { body, .. } => {
                    self.stmts(&body.stmts)
                }
                ast::StmtKind::Return(Some(e)) => self.expr(e),
                ast::StmtKind::Block(b) => self.stmts(&b.stmts),
                _ => {}
            }
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
        // Builtins' names are collected too (a global may shadow them).
        let names: Option<Vec<String>> = names.map(|n| n.into_iter().filter(|n| crate::builtins::find(None, n).is_none()).collect());
        assert_eq!(names, Some(vec!["n".into(), "s".into(), "t".into()]));
        // A user function may read anything: sync everything.
        assert_eq!(tick_of("function f() { print(x) }\ntick-1s { f() }"), None);
        assert_eq!(tick_of("tick-1s { var g = function () { print(y) } }"), None);
    }
}
