//! Pre-scans of the AST that decide how tables are stored before any probe
//! is lowered (per-CPU when probes only add to them) and which names a tick
//! touches, as `visit::Visitor`s. Pure and read-only.

use super::*;
use crate::frontend::visit::{self, Visitor};

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
pub(super) fn tick_names(body: &ast::Block, functions: &Functions<'_>) -> Option<Vec<String>> {
    struct Names<'a> {
        functions: &'a Functions<'a>,
        out: Vec<String>,
        /// A user function or closure may read anything.
        opaque: bool,
    }
    impl Visitor<'_> for Names<'_> {
        fn visit_stmt(&mut self, s: &ast::Stmt) {
            match &s.kind {
                ast::StmtKind::Function { .. } => self.opaque = true,
                ast::StmtKind::Trace { .. } | ast::StmtKind::TraceEnd { .. } | ast::StmtKind::Timer { .. } => {}
                _ => visit::walk_stmt(self, s),
            }
        }
        fn visit_expr(&mut self, e: &ast::Expr) {
            match &e.kind {
                ast::ExprKind::Name(id) => self.out.push(id.name.clone()),
                ast::ExprKind::Call { callee, .. } if matches!(&callee.kind, ast::ExprKind::Name(id) if self.functions.contains_key(&id.name)) => {
                    self.opaque = true
                }
                _ => visit::walk_expr(self, e),
            }
        }
        fn visit_func(&mut self, _: &ast::FuncBody) {
            self.opaque = true;
        }
    }
    let mut names = Names { functions, out: Vec::new(), opaque: false };
    names.visit_block(body);
    (!names.opaque).then(|| {
        let mut out = names.out;
        out.sort();
        out.dedup();
        out
    })
}

/// Records, per table name, whether probes only ever update it with one
/// aggregate kind (`+=`: a sum): every
/// probe body (trace, profile, kdebug), filter, and user function a probe
/// calls, directly or not.
pub(super) fn scan_probe_table_uses(program: &ast::Program, functions: &Functions<'_>, uses: &mut IndexMap<String, TableUses>) {
    let mut scan = TableScan { uses, calls: Vec::new() };
    for probe in visit::probe_bodies(program) {
        if let Some(f) = probe.filter {
            scan.visit_expr(f);
        }
        visit::walk_block(&mut scan, probe.body);
    }
    let mut done = std::collections::HashSet::new();
    while let Some(name) = scan.calls.pop() {
        if let Some(f) = functions.get(&name).filter(|_| done.insert(name.clone())) {
            visit::walk_block(&mut scan, &f.body);
        }
    }
}

/// Table uses found so far, and the names probe code calls.
struct TableScan<'a> {
    uses: &'a mut IndexMap<String, TableUses>,
    calls: Vec<String>,
}

impl TableScan<'_> {
    /// A use of table `base` at `span`: an update of kind `agg`, or (None)
    /// any other.
    fn mark(&mut self, base: &ast::Expr, agg: Option<ir::AggKind>, span: Span) {
        if let ast::ExprKind::Name(id) = &base.kind {
            let u = self.uses.entry(id.name.clone()).or_default();
            u.only = if u.seen && u.only != agg { None } else { agg };
            u.seen = true;
            match (agg, u.first_agg) {
                (Some(kind), None) => u.first_agg = Some((kind, span)),
                (Some(kind), Some((first, _))) if kind != first && u.other_kind.is_none() => u.other_kind = Some((kind, span)),
                (None, _) if u.first_other.is_none() => u.first_other = Some(span),
                _ => {}
            }
        }
    }
}

impl Visitor<'_> for TableScan<'_> {
    fn visit_stmt(&mut self, s: &ast::Stmt) {
        match &s.kind {
            ast::StmtKind::AddAssign { target: ast::Expr { kind: ast::ExprKind::Index { base, index }, .. }, value } => {
                self.mark(base, Some(ir::AggKind::Sum), s.span);
                self.visit_expr(index);
                self.visit_expr(value);
            }
            ast::StmtKind::Assign { targets, values } if targets.len() == 1 && values.len() == 1 => {
                let made = crate::builtins::aggregate(&values[0]);
                match (&targets[0].kind, made) {
                    (ast::ExprKind::Index { base, index }, Some(made)) => {
                        // A malformed call (reported when lowered) marks nothing.
                        if let Ok((kind, value)) = made {
                            self.mark(base, Some(kind), values[0].span);
                            if let Some(v) = value {
                                self.visit_expr(v);
                            }
                        }
                        self.visit_expr(index);
                    }
                    // A global aggregate (`lat = hist(d)`).
                    (ast::ExprKind::Name(_), Some(Ok((kind, value)))) => {
                        self.mark(&targets[0], Some(kind), values[0].span);
                        if let Some(v) = value {
                            self.visit_expr(v);
                        }
                    }
                    _ => visit::walk_stmt(self, s),
                }
            }
            _ => visit::walk_stmt(self, s),
        }
    }

    fn visit_expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ast::ExprKind::Index { base, index } => {
                self.mark(base, None, e.span);
                self.visit_expr(index);
            }
            ast::ExprKind::Call { callee, .. } => {
                if let ast::ExprKind::Name(id) = &callee.kind {
                    self.calls.push(id.name.clone());
                }
                visit::walk_expr(self, e);
            }
            _ => visit::walk_expr(self, e),
        }
    }

    /// A closure runs in userspace.
    fn visit_func(&mut self, _: &ast::FuncBody) {}
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
                    functions.insert(name[0].name.clone(), func);
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
