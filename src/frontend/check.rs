//! Boundary checks between userspace and kernel code: a variable the
//! kernel uses has one static type, so userspace code may not give it a
//! value of another type, and kernel-only builtins cannot run in
//! userspace. Reports both uses. Reads the resolver's bindings for which
//! names are locals; keeps no scopes of its own. Pure; never panics.

use super::ast::{self, Span};
use super::diag::Diagnostic;
use super::resolve::{Binding, Resolution};
use super::visit::{self, Visitor};
use indexmap::IndexMap;
use std::collections::HashMap;

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
/// tick-N, trace_end) against the kernel uses; `res` says which names are
/// locals.
pub fn userspace(program: &ast::Program, res: &Resolution, kernel: &IndexMap<String, (KernelUse, Span)>) -> Vec<Diagnostic> {
    let mut c = Checker { res, kernel, diags: Vec::new(), kernel_fns: kernel_functions(program), in_top_function: false, top: false, in_handler: false, in_function: false };
    for s in &program.stmts {
        match &s.kind {
            // Probe bodies are checked by lowering.
            _ if visit::is_probe_stmt(s) => {}
            ast::StmtKind::Var { names, values } => {
                values.iter().for_each(|v| c.visit_expr(v));
                // Top-level `var x = ...` initialises the global itself.
                for (n, v) in names.iter().zip(values) {
                    c.assign(n, v);
                }
            }
            // Probes may inline it: kernel-only builtins are fine in its
            // own body; userspace calls of it are checked instead.
            ast::StmtKind::Function { func, .. } => {
                c.in_top_function = true;
                c.in_function = true;
                visit::walk_func(&mut c, func);
                c.in_top_function = false;
                c.in_function = false;
            }
            _ => {
                c.top = true;
                c.in_handler = matches!(s.kind, ast::StmtKind::Timer { .. } | ast::StmtKind::TraceEnd { .. });
                c.visit_stmt(s);
                c.in_handler = false;
            }
        }
    }
    c.diags
}

struct Checker<'a> {
    res: &'a Resolution,
    kernel: &'a IndexMap<String, (KernelUse, Span)>,
    diags: Vec<Diagnostic>,
    /// Top-level functions that call a kernel-only builtin (directly or
    /// through another), with that builtin: probes may call them,
    /// userspace may not.
    kernel_fns: HashMap<String, String>,
    /// Inside a top-level function's own body (which probes may inline).
    in_top_function: bool,
    /// The statement being visited is a top-level one.
    top: bool,
    /// Inside a tick or trace_end body.
    in_handler: bool,
    /// Inside a function's body (a top-level one or a closure).
    in_function: bool,
}

/// The calls a function body makes by name (a closure in it runs in
/// userspace only: not the function's own code).
fn calls_in(body: &ast::Block) -> Vec<String> {
    struct Calls(Vec<String>);
    impl Visitor<'_> for Calls {
        fn visit_expr(&mut self, e: &ast::Expr) {
            if let ast::ExprKind::Call { callee, .. } = &e.kind {
                if let ast::ExprKind::Name(id) = &callee.kind {
                    self.0.push(id.name.clone());
                }
            }
            visit::walk_expr(self, e);
        }
        fn visit_func(&mut self, _: &ast::FuncBody) {}
    }
    let mut calls = Calls(Vec::new());
    visit::walk_block(&mut calls, body);
    calls.0
}

/// Top-level functions that reach a kernel-only builtin, with the builtin.
fn kernel_functions(program: &ast::Program) -> HashMap<String, String> {
    let calls: Vec<(String, Vec<String>)> = program
        .stmts
        .iter()
        .filter_map(|s| match &s.kind {
            ast::StmtKind::Function { name, func } if name.len() == 1 => Some((name[0].name.clone(), calls_in(&func.body))),
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
    fn is_local(&self, id: &ast::Ident) -> bool {
        matches!(self.res.binding(id.span), Binding::Local(_))
    }

    fn assign(&mut self, id: &ast::Ident, value: &ast::Expr) {
        if self.is_local(id) {
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

    fn call(&mut self, e: &ast::Expr, id: &ast::Ident) {
        let userspace = !self.is_local(id) && !self.in_top_function;
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
}

impl Visitor<'_> for Checker<'_> {
    fn visit_stmt(&mut self, s: &ast::Stmt) {
        let top = std::mem::replace(&mut self.top, false);
        match &s.kind {
            // Probes nested in main-context code (an `if`, a loop) are
            // registered when that code runs them; their bodies are
            // lowering's to check.
            ast::StmtKind::Trace { .. } | ast::StmtKind::Timer { kind: ast::TimerKind::Profile, .. }
                if !top && !self.in_handler && !self.in_function => {}
            // A tick nested in main-context code starts when that code runs
            // it; its body is userspace code like a top-level tick's.
            ast::StmtKind::Timer { kind: ast::TimerKind::Tick, .. } if !top && !self.in_handler && !self.in_function => {
                let outer = std::mem::replace(&mut self.in_handler, true);
                visit::walk_stmt(self, s);
                self.in_handler = outer;
            }
            // `kdebug.*(...)` registers a probe: as `trace` does, only from
            // the main context.
            ast::StmtKind::Expr(_) if !top && (self.in_handler || self.in_function) && visit::is_probe_stmt(s) => {
                let label = if self.in_handler { "inside a tick or trace_end" } else { "inside a function" };
                self.diags.push(Diagnostic::error(s.span, "probes and ticks can only be registered by the main context").with_label(label));
            }
            // A tick, trace_end or function cannot register probes; ticks
            // and trace_end are blocks of the script itself.
            ast::StmtKind::Trace { .. } | ast::StmtKind::Timer { .. } | ast::StmtKind::TraceEnd { .. } if !top => {
                let d = match (&s.kind, self.in_handler, self.in_function) {
                    (ast::StmtKind::TraceEnd { .. }, _, _) => {
                        Diagnostic::error(s.span, "trace_end belongs at the top level of the script").with_label("not at the top level")
                    }
                    (_, true, _) => Diagnostic::error(s.span, "probes and ticks can only be registered by the main context").with_label("inside a tick or trace_end"),
                    _ => Diagnostic::error(s.span, "probes and ticks can only be registered by the main context").with_label("inside a function"),
                };
                self.diags.push(d);
            }
            ast::StmtKind::Assign { targets, values } => {
                values.iter().for_each(|v| self.visit_expr(v));
                for (t, v) in targets.iter().zip(values) {
                    if let ast::ExprKind::Name(id) = &t.kind {
                        self.assign(id, v);
                    }
                }
            }
            ast::StmtKind::AddAssign { value, .. } => self.visit_expr(value),
            // Probe bodies are lowering's to check.
            ast::StmtKind::Trace { .. } => {}
            _ => visit::walk_stmt(self, s),
        }
    }

    fn visit_expr(&mut self, e: &ast::Expr) {
        if let ast::ExprKind::Call { callee, .. } = &e.kind {
            if let ast::ExprKind::Name(id) = &callee.kind {
                self.call(e, id);
            }
        }
        visit::walk_expr(self, e);
    }

    fn visit_func(&mut self, f: &ast::FuncBody) {
        // A closure or nested function only ever runs in userspace.
        let outer = std::mem::replace(&mut self.in_top_function, false);
        let in_function = std::mem::replace(&mut self.in_function, true);
        visit::walk_func(self, f);
        self.in_top_function = outer;
        self.in_function = in_function;
    }
}
