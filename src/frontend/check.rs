//! Boundary checks between userspace and kernel code: a variable the
//! kernel uses has one static type, so userspace code may not give it a
//! value of another type, and kernel-only builtins cannot run in
//! userspace. Reports both uses. Pure; never panics.

use super::ast::{self, Span};
use super::diag::Diagnostic;
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};

/// The static type a probe gave a top-level variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelUse {
    Number,
    String,
    Table,
}

impl KernelUse {
    fn name(self) -> &'static str {
        match self {
            KernelUse::Number => "a number",
            KernelUse::String => "a string",
            KernelUse::Table => "a table",
        }
    }
}

/// Whether `name` is a builtin only probes can call.
fn kernel_only_call(name: &str) -> bool {
    crate::builtins::find(None, name).is_some_and(|b| b.def().form == crate::builtins::Form::Call && crate::builtins::kernel_only(b))
}

/// Checks every userspace statement of `program` (main, functions,
/// tick-N, trace_end) against the kernel uses.
pub fn userspace(program: &ast::Program, kernel: &IndexMap<String, (KernelUse, Span)>) -> Vec<Diagnostic> {
    let mut c = Checker { kernel, diags: Vec::new(), locals: vec![HashSet::new()], kernel_fns: kernel_functions(program), in_top_function: false };
    for s in &program.stmts {
        if super::providers::probe_stmt(s).is_some() {
            // Probe bodies are checked by lowering.
            continue;
        }
        match &s.kind {
            ast::StmtKind::Var { names, values } => {
                values.iter().for_each(|v| c.expr(v));
                // Top-level `var x = ...` initialises the global itself.
                for (n, v) in names.iter().zip(values) {
                    let target = ast::Expr { kind: ast::ExprKind::Name(n.clone()), span: n.span };
                    c.assign(&target, v);
                }
            }
            _ => c.stmt(s),
        }
    }
    c.diags
}

struct Checker<'a> {
    kernel: &'a IndexMap<String, (KernelUse, Span)>,
    diags: Vec<Diagnostic>,
    /// Names declared locally around the current statement.
    locals: Vec<HashSet<String>>,
    /// Top-level functions that call a kernel-only builtin (directly or
    /// through another), with that builtin: probes may call them,
    /// userspace may not.
    kernel_fns: HashMap<String, String>,
    /// Inside a top-level function's own body (which probes may inline).
    in_top_function: bool,
}

/// The calls an expression or block makes by name.
fn calls_in(stmts: &[ast::Stmt], out: &mut Vec<String>) {
    fn expr(e: &ast::Expr, out: &mut Vec<String>) {
        match &e.kind {
            ast::ExprKind::Call { callee, args } => {
                if let ast::ExprKind::Name(id) = &callee.kind {
                    out.push(id.name.clone());
                }
                expr(callee, out);
                args.iter().for_each(|a| expr(a, out));
            }
            ast::ExprKind::Index { base, index } => {
                expr(base, out);
                expr(index, out);
            }
            ast::ExprKind::Field { base, .. } => expr(base, out),
            ast::ExprKind::Unary { operand, .. } => expr(operand, out),
            ast::ExprKind::Binary { lhs, rhs, .. } => {
                expr(lhs, out);
                expr(rhs, out);
            }
            // A closure runs in userspace only: not the function's own code.
            _ => {}
        }
    }
    for s in stmts {
        match &s.kind {
            ast::StmtKind::Var { values, .. } => values.iter().for_each(|v| expr(v, out)),
            ast::StmtKind::Assign { targets, values } => targets.iter().chain(values).for_each(|v| expr(v, out)),
            ast::StmtKind::AddAssign { target, value } => {
                expr(target, out);
                expr(value, out);
            }
            ast::StmtKind::Expr(e) | ast::StmtKind::Return(Some(e)) => expr(e, out),
            ast::StmtKind::If { arms, otherwise } => {
                for (c, b) in arms {
                    expr(c, out);
                    calls_in(&b.stmts, out);
                }
                if let Some(b) = otherwise {
                    calls_in(&b.stmts, out);
                }
            }
            ast::StmtKind::While { cond, body } => {
                expr(cond, out);
                calls_in(&body.stmts, out);
            }
            ast::StmtKind::ForNum { body, .. } | ast::StmtKind::ForC { body, .. } | ast::StmtKind::ForIn { body, .. } => {
                calls_in(&body.stmts, out)
            }
            ast::StmtKind::Block(b) => calls_in(&b.stmts, out),
            _ => {}
        }
    }
}

/// Top-level functions that reach a kernel-only builtin, with the builtin.
fn kernel_functions(program: &ast::Program) -> HashMap<String, String> {
    let calls: Vec<(String, Vec<String>)> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.kind {
            ast::StmtKind::Function { name, func } if name.len() == 1 => {
                let mut out = Vec::new();
                calls_in(&func.body.stmts, &mut out);
                Some((name[0].name.clone(), out))
            }
            _ => None,
        })
        .collect();
    let mut found: HashMap<String, String> = HashMap::new();
    loop {
        let before = found.len();
        for (name, called) in &calls {
            if found.contains_key(name) {
                continue;
            }
            let reach = called.iter().find_map(|c| {
                if kernel_only_call(c) {
                    Some(c.clone())
                } else {
                    found.get(c).cloned()
                }
            });
            if let Some(b) = reach {
                found.insert(name.clone(), b);
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// What a value expression certainly is, when that is evident.
fn literal_kind(e: &ast::Expr) -> Option<&'static str> {
    match &e.kind {
        ast::ExprKind::Str(_) | ast::ExprKind::Binary { op: ast::BinOp::Concat, .. } => Some("a string"),
        ast::ExprKind::Table(_) => Some("a table"),
        ast::ExprKind::Function(_) => Some("a function"),
        ast::ExprKind::Int(_) | ast::ExprKind::Binary { op: ast::BinOp::Add | ast::BinOp::Sub | ast::BinOp::Mul, .. } => Some("a number"),
        ast::ExprKind::Bool(_) => Some("a boolean"),
        _ => None,
    }
}

impl Checker<'_> {
    fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|s| s.contains(name))
    }

    fn declare(&mut self, name: &str) {
        if let Some(s) = self.locals.last_mut() {
            s.insert(name.to_string());
        }
    }

    fn assign(&mut self, target: &ast::Expr, value: &ast::Expr) {
        let ast::ExprKind::Name(id) = &target.kind else { return };
        if self.is_local(&id.name) {
            return;
        }
        let (Some(&(kind, kspan)), Some(what)) = (self.kernel.get(&id.name), literal_kind(value)) else { return };
        let fits = match kind {
            KernelUse::Number => matches!(what, "a number" | "a boolean"),
            KernelUse::String => what == "a string",
            KernelUse::Table => what == "a table",
        };
        if !fits {
            self.diags.push(
                Diagnostic::error(value.span, format!("`{}` is {} in the kernel, but {what} here", id.name, kind.name()))
                    .with_label(what.to_string())
                    .with_secondary(kspan, format!("used as {} in a probe here", kind.name()))
                    .with_note("a variable that probes use keeps one type everywhere"),
            );
        }
    }

    fn block(&mut self, b: &ast::Block) {
        self.locals.push(HashSet::new());
        b.stmts.iter().for_each(|s| self.stmt(s));
        self.locals.pop();
    }

    fn stmt(&mut self, s: &ast::Stmt) {
        match &s.kind {
            ast::StmtKind::Var { names, values } => {
                values.iter().for_each(|v| self.expr(v));
                names.iter().for_each(|n| self.declare(&n.name));
            }
            ast::StmtKind::Assign { targets, values } => {
                values.iter().for_each(|v| self.expr(v));
                for (t, v) in targets.iter().zip(values) {
                    self.assign(t, v);
                }
            }
            ast::StmtKind::AddAssign { value, .. } => self.expr(value),
            ast::StmtKind::Expr(e) => self.expr(e),
            ast::StmtKind::If { arms, otherwise } => {
                for (c, b) in arms {
                    self.expr(c);
                    self.block(b);
                }
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            ast::StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            ast::StmtKind::ForNum { var, start, limit, step, body } => {
                self.expr(start);
                self.expr(limit);
                if let Some(s) = step {
                    self.expr(s);
                }
                self.locals.push(HashSet::from([var.name.clone()]));
                self.block(body);
                self.locals.pop();
            }
            ast::StmtKind::ForC { init, cond, step, body } => {
                self.locals.push(HashSet::new());
                if let Some(i) = init {
                    self.stmt(i);
                }
                if let Some(c) = cond {
                    self.expr(c);
                }
                if let Some(s) = step {
                    self.stmt(s);
                }
                self.block(body);
                self.locals.pop();
            }
            ast::StmtKind::ForIn { key, value, iter, body } => {
                self.expr(iter);
                let mut names = HashSet::from([key.name.clone()]);
                if let Some(v) = value {
                    names.insert(v.name.clone());
                }
                self.locals.push(names);
                self.block(body);
                self.locals.pop();
            }
            ast::StmtKind::Return(Some(e)) => self.expr(e),
            ast::StmtKind::Block(b) | ast::StmtKind::TraceEnd { body: b } | ast::StmtKind::Timer { body: b, .. } => self.block(b),
            ast::StmtKind::Function { func, .. } => {
                // Probes may inline it: kernel-only builtins are fine in
                // its own body; userspace calls of it are checked instead.
                let outer = std::mem::replace(&mut self.in_top_function, self.locals.len() == 1);
                self.func(func);
                self.in_top_function = outer;
            }
            _ => {}
        }
    }

    fn func(&mut self, f: &ast::FuncBody) {
        self.locals.push(f.params.iter().map(|p| p.name.clone()).collect());
        self.block(&f.body);
        self.locals.pop();
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ast::ExprKind::Call { callee, args } => {
                if let ast::ExprKind::Name(id) = &callee.kind {
                    let userspace = !self.is_local(&id.name) && !self.in_top_function;
                    if kernel_only_call(&id.name) && userspace {
                        self.diags.push(
                            Diagnostic::error(e.span, format!("{}() only works in probes", id.name))
                                .with_label("not available in userspace")
                                .with_note("main, tick-N and trace_end run in userspace: take the value in a probe and keep it in a table"),
                        );
                    } else if let (Some(b), true) = (self.kernel_fns.get(&id.name), userspace) {
                        self.diags.push(
                            Diagnostic::error(e.span, format!("`{}` calls {b}(), which only works in probes", id.name))
                                .with_label("called in userspace")
                                .with_note("probes may call it; main, tick-N and trace_end run in userspace"),
                        );
                    }
                }
                self.expr(callee);
                args.iter().for_each(|a| self.expr(a));
            }
            ast::ExprKind::Index { base, index } => {
                self.expr(base);
                self.expr(index);
            }
            ast::ExprKind::Field { base, .. } => self.expr(base),
            ast::ExprKind::Function(f) => {
                // A closure only ever runs in userspace.
                let outer = std::mem::replace(&mut self.in_top_function, false);
                self.func(f);
                self.in_top_function = outer;
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
            ast::ExprKind::Unary { operand, .. } => self.expr(operand),
            ast::ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            _ => {}
        }
    }
}
