//! One walk over the AST for every pass that only looks: a `Visitor` trait
//! whose default methods visit every child node in source order
//! (`walk_stmt`, `walk_expr`, ...), so a pass overrides only the nodes it
//! cares about. Read-only, no semantics: scopes belong to `resolve.rs`.

use super::ast;

/// A read-only AST walk. Each `visit_*` defaults to its `walk_*`, which
/// visits the children; override one and call `walk_*` from it to keep
/// descending.
/// `'ast` is the tree's lifetime, so a visitor may keep references into
/// it (names, nodes) while it walks.
pub trait Visitor<'ast> {
    fn visit_stmt(&mut self, s: &'ast ast::Stmt) {
        walk_stmt(self, s);
    }
    fn visit_expr(&mut self, e: &'ast ast::Expr) {
        walk_expr(self, e);
    }
    fn visit_block(&mut self, b: &'ast ast::Block) {
        walk_block(self, b);
    }
    /// A function body: a top-level `function` or a closure expression.
    fn visit_func(&mut self, f: &'ast ast::FuncBody) {
        walk_func(self, f);
    }
}

pub fn walk_block<'ast, V: Visitor<'ast> + ?Sized>(v: &mut V, b: &'ast ast::Block) {
    for s in &b.stmts {
        v.visit_stmt(s);
    }
}

pub fn walk_func<'ast, V: Visitor<'ast> + ?Sized>(v: &mut V, f: &'ast ast::FuncBody) {
    v.visit_block(&f.body);
}

pub fn walk_stmt<'ast, V: Visitor<'ast> + ?Sized>(v: &mut V, s: &'ast ast::Stmt) {
    match &s.kind {
        ast::StmtKind::Var { values, .. } => values.iter().for_each(|e| v.visit_expr(e)),
        ast::StmtKind::Assign { targets, values } => targets.iter().chain(values).for_each(|e| v.visit_expr(e)),
        ast::StmtKind::AddAssign { target, value } => {
            v.visit_expr(target);
            v.visit_expr(value);
        }
        ast::StmtKind::Expr(e) | ast::StmtKind::Return(Some(e)) => v.visit_expr(e),
        ast::StmtKind::If { arms, otherwise } => {
            for (c, b) in arms {
                v.visit_expr(c);
                v.visit_block(b);
            }
            if let Some(b) = otherwise {
                v.visit_block(b);
            }
        }
        ast::StmtKind::While { cond, body } => {
            v.visit_expr(cond);
            v.visit_block(body);
        }
        ast::StmtKind::ForNum { start, limit, step, body, .. } => {
            v.visit_expr(start);
            v.visit_expr(limit);
            if let Some(s) = step {
                v.visit_expr(s);
            }
            v.visit_block(body);
        }
        ast::StmtKind::ForC { init, cond, step, body } => {
            if let Some(i) = init {
                v.visit_stmt(i);
            }
            if let Some(c) = cond {
                v.visit_expr(c);
            }
            if let Some(s) = step {
                v.visit_stmt(s);
            }
            v.visit_block(body);
        }
        ast::StmtKind::ForIn { iter, body, .. } => {
            v.visit_expr(iter);
            v.visit_block(body);
        }
        ast::StmtKind::Block(b) | ast::StmtKind::TraceEnd { body: b } | ast::StmtKind::Timer { body: b, .. } => v.visit_block(b),
        ast::StmtKind::Trace { filter, body, .. } => {
            if let Some(f) = filter {
                v.visit_expr(f);
            }
            v.visit_block(body);
        }
        ast::StmtKind::Function { func, .. } => v.visit_func(func),
        ast::StmtKind::Break | ast::StmtKind::Return(None) | ast::StmtKind::Error => {}
    }
}

pub fn walk_expr<'ast, V: Visitor<'ast> + ?Sized>(v: &mut V, e: &'ast ast::Expr) {
    match &e.kind {
        ast::ExprKind::Index { base, index } => {
            v.visit_expr(base);
            v.visit_expr(index);
        }
        ast::ExprKind::Field { base, .. } => v.visit_expr(base),
        ast::ExprKind::Call { callee, args } => {
            v.visit_expr(callee);
            args.iter().for_each(|a| v.visit_expr(a));
        }
        ast::ExprKind::Function(f) => v.visit_func(f),
        ast::ExprKind::Table(fields) => {
            for f in fields {
                match f {
                    ast::TableField::Positional(x) | ast::TableField::Named(_, x) => v.visit_expr(x),
                    ast::TableField::Keyed(k, x) => {
                        v.visit_expr(k);
                        v.visit_expr(x);
                    }
                }
            }
        }
        ast::ExprKind::Unary { operand, .. } => v.visit_expr(operand),
        ast::ExprKind::Binary { lhs, rhs, .. } => {
            v.visit_expr(lhs);
            v.visit_expr(rhs);
        }
        ast::ExprKind::Nil | ast::ExprKind::Bool(_) | ast::ExprKind::Int(_) | ast::ExprKind::Str(_) | ast::ExprKind::Name(_) | ast::ExprKind::Error => {}
    }
}

/// The kernel's bodies in the main context, in source order: each `trace`
/// block (with its filter), `profile-N` block and `kdebug.*(...,
/// function () {})` callback, at the top level or nested in its `if`s,
/// loops and blocks. Every pass that asks "is this a probe body" asks
/// here.
pub fn probe_bodies(program: &ast::Program) -> impl Iterator<Item = ProbeBody<'_>> {
    main_probe_stmts(program).into_iter().filter_map(|(stmt, _)| {
        let p = super::providers::probe_stmt(stmt)?;
        Some(ProbeBody { filter: p.filter, body: p.body? })
    })
}

/// The probe statements of the main context in source order, each with
/// whether it is nested in main-context code (then the probe is
/// registered only when that code runs it). Functions, ticks and
/// `trace_end` are not the main context: probes there are errors
/// (`check`).
pub fn main_probe_stmts(program: &ast::Program) -> Vec<(&ast::Stmt, bool)> {
    main_stmts(program, |s| super::providers::probe_stmt(s).is_some())
}

/// The `tick-N` blocks of the script in the order the userspace side
/// numbers them: the top-level ones, then those nested in main-context
/// code, each in source order.
pub fn ticks(program: &ast::Program) -> Vec<&ast::Block> {
    let tick = |s: &ast::Stmt| matches!(s.kind, ast::StmtKind::Timer { kind: ast::TimerKind::Tick, .. });
    let (top, nested): (Vec<_>, Vec<_>) = main_stmts(program, tick).into_iter().partition(|(_, nested)| !nested);
    top.into_iter()
        .chain(nested)
        .filter_map(|(s, _)| match &s.kind {
            ast::StmtKind::Timer { body, .. } => Some(body),
            _ => None,
        })
        .collect()
}

/// The statements `pick` chooses in the main context, each with whether
/// it is nested in main-context code; what they hold is not searched.
fn main_stmts(program: &ast::Program, pick: impl Fn(&ast::Stmt) -> bool) -> Vec<(&ast::Stmt, bool)> {
    fn walk<'a>(s: &'a ast::Stmt, top: bool, pick: &dyn Fn(&ast::Stmt) -> bool, out: &mut Vec<(&'a ast::Stmt, bool)>) {
        if pick(s) {
            out.push((s, !top));
            return;
        }
        let mut block = |b: &'a ast::Block| b.stmts.iter().for_each(|s| walk(s, false, pick, out));
        match &s.kind {
            ast::StmtKind::If { arms, otherwise } => {
                arms.iter().for_each(|(_, b)| block(b));
                if let Some(b) = otherwise {
                    block(b);
                }
            }
            ast::StmtKind::While { body, .. }
            | ast::StmtKind::ForNum { body, .. }
            | ast::StmtKind::ForC { body, .. }
            | ast::StmtKind::ForIn { body, .. }
            | ast::StmtKind::Block(body) => block(body),
            _ => {}
        }
    }
    let mut out = Vec::new();
    program.stmts.iter().for_each(|s| walk(s, true, &pick, &mut out));
    out
}

/// One probe body and its filter.
#[derive(Clone, Copy)]
pub struct ProbeBody<'a> {
    pub filter: Option<&'a ast::Expr>,
    pub body: &'a ast::Block,
}

/// Whether a top-level statement holds a probe body (runs in the kernel):
/// the providers' one decision (`providers::probe_stmt`).
pub fn is_probe_stmt(stmt: &ast::Stmt) -> bool {
    super::providers::probe_stmt(stmt).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts every name use, to see that the walk reaches every node.
    #[derive(Default)]
    struct Names(Vec<String>);

    impl Visitor<'_> for Names {
        fn visit_expr(&mut self, e: &ast::Expr) {
            if let ast::ExprKind::Name(id) = &e.kind {
                self.0.push(id.name.clone());
            }
            walk_expr(self, e);
        }
    }

    #[test]
    fn reaches_every_name() {
        let src = "var t = {a, [b] = c, d = e}\n\
                   function f(p) { if (g) { return h } elseif (i) {} else { j(k) } }\n\
                   for (l = m, n, o) { while (q) { r += s } }\n\
                   for (u = v; w; x = y) {}\n\
                   for (k2, v2 in z) { aa[bb].cc = -dd .. ee }\n\
                   trace *:* /ff/ { gg() }\n\
                   tick-1s { hh = function () { ii() } }\n\
                   trace_end { jj() }";
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let mut v = Names::default();
        program.stmts.iter().for_each(|s| v.visit_stmt(s));
        let want = "a b c e g h i j k m n o q r s u v w x y z aa bb dd ee ff gg hh ii jj";
        assert_eq!(v.0.join(" "), want);
    }

    #[test]
    fn finds_probe_bodies() {
        let src = "trace *:* {} profile-1ms {} tick-1s {} trace_end {} kdebug.kprobe(\"f\", function () {}) print(1)";
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(probe_bodies(&program).count(), 3);
        assert_eq!(program.stmts.iter().filter(|s| is_probe_stmt(s)).count(), 3);
    }
}
