//! Capture analysis, the pass before code generation: finds the local
//! declarations that a nested function refers to (they live in shared
//! cells, every other local in a plain register) and the global names the
//! script assigns. Reads the AST only; never emits code.

use std::collections::HashSet;

use crate::frontend::ast::{
    Block, Expr, ExprKind, FuncBody, Ident, Program, Stmt, StmtKind, TableField, TimerKind,
};

/// What code generation needs to know ahead of time.
#[derive(Default)]
pub struct Captures {
    /// Declarations (identified by the address of their `Ident` in the
    /// borrowed program) that some nested function refers to.
    captured: HashSet<usize>,
    /// Global names assigned anywhere in userspace code.
    pub assigned_globals: HashSet<String>,
}

impl Captures {
    pub fn is_captured(&self, decl: &Ident) -> bool {
        self.captured.contains(&decl_key(decl))
    }
}

fn decl_key(decl: &Ident) -> usize {
    decl as *const Ident as usize
}

/// Which kind of function a scope stack belongs to: at the outermost
/// scope of the main chunk, `var` declares globals.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FuncKind {
    Main,
    Function,
    /// A tick or trace_end body.
    Body,
}

struct Func<'a> {
    kind: FuncKind,
    scopes: Vec<Vec<&'a Ident>>,
}

struct Analyzer<'a> {
    funcs: Vec<Func<'a>>,
    out: Captures,
    /// Statement and expression nesting; past `MAX_DEPTH` the analysis
    /// stops descending (code generation refuses such programs anyway).
    depth: usize,
}

const MAX_DEPTH: usize = 512;

/// Runs the analysis over every part of the program that runs in
/// userspace (probe bodies are skipped).
pub fn analyze(program: &Program) -> Captures {
    let mut a = Analyzer {
        funcs: Vec::new(),
        out: Captures::default(),
        depth: 0,
    };
    a.funcs.push(Func {
        kind: FuncKind::Main,
        scopes: vec![Vec::new()],
    });
    for stmt in &program.stmts {
        a.stmt(stmt);
    }
    a.out
}

impl<'a> Analyzer<'a> {
    fn cur(&mut self) -> &mut Func<'a> {
        let n = self.funcs.len() - 1;
        &mut self.funcs[n]
    }

    fn at_main_top(&self) -> bool {
        self.funcs
            .last()
            .is_some_and(|f| f.kind == FuncKind::Main && f.scopes.len() == 1)
    }

    fn declare(&mut self, ident: &'a Ident) {
        if let Some(scope) = self.cur().scopes.last_mut() {
            scope.push(ident);
        }
    }

    /// Resolves a use of `name`; `assign` when it is being written.
    fn reference(&mut self, name: &str, assign: bool) {
        let n = self.funcs.len();
        for depth in (0..n).rev() {
            let found = self.funcs[depth]
                .scopes
                .iter()
                .rev()
                .flat_map(|s| s.iter().rev())
                .find(|d| d.name == name)
                .copied();
            if let Some(decl) = found {
                if depth != n - 1 {
                    self.out.captured.insert(decl_key(decl));
                }
                return;
            }
        }
        if assign {
            self.out.assigned_globals.insert(name.to_string());
        }
    }

    fn block(&mut self, block: &'a Block) {
        self.cur().scopes.push(Vec::new());
        for s in &block.stmts {
            self.stmt(s);
        }
        self.cur().scopes.pop();
    }

    fn function(&mut self, kind: FuncKind, params: &'a [Ident], body: &'a Block, nested: bool) {
        let saved = if nested {
            Vec::new()
        } else {
            std::mem::take(&mut self.funcs)
        };
        self.funcs.push(Func {
            kind,
            scopes: vec![params.iter().collect()],
        });
        self.block(body);
        self.funcs.pop();
        if !nested {
            self.funcs = saved;
        }
    }

    fn func_body(&mut self, f: &'a FuncBody) {
        self.function(FuncKind::Function, &f.params, &f.body, true);
    }

    fn stmt(&mut self, stmt: &'a Stmt) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        self.depth += 1;
        self.stmt_inner(stmt);
        self.depth -= 1;
    }

    fn stmt_inner(&mut self, stmt: &'a Stmt) {
        match &stmt.kind {
            StmtKind::Var { names, values } => {
                for v in values {
                    self.expr(v);
                }
                if self.at_main_top() {
                    for n in names {
                        self.reference(&n.name, true);
                    }
                } else {
                    for n in names {
                        self.declare(n);
                    }
                }
            }
            StmtKind::Assign { targets, values } => {
                for t in targets {
                    self.target(t);
                }
                for v in values {
                    self.expr(v);
                }
            }
            StmtKind::AddAssign { target, value } => {
                self.target(target);
                self.expr(value);
            }
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::If { arms, otherwise } => {
                for (c, b) in arms {
                    self.expr(c);
                    self.block(b);
                }
                if let Some(b) = otherwise {
                    self.block(b);
                }
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            StmtKind::ForNum {
                var,
                start,
                limit,
                step,
                body,
            } => {
                self.expr(start);
                self.expr(limit);
                if let Some(s) = step {
                    self.expr(s);
                }
                self.cur().scopes.push(vec![var]);
                self.block(body);
                self.cur().scopes.pop();
            }
            StmtKind::ForC {
                init,
                cond,
                step,
                body,
            } => {
                self.cur().scopes.push(Vec::new());
                if let Some(s) = init {
                    self.stmt(s);
                }
                if let Some(c) = cond {
                    self.expr(c);
                }
                self.block(body);
                if let Some(s) = step {
                    self.stmt(s);
                }
                self.cur().scopes.pop();
            }
            StmtKind::ForIn {
                key,
                value,
                iter,
                body,
            } => {
                self.expr(iter);
                let mut scope = vec![key];
                scope.extend(value.iter());
                self.cur().scopes.push(scope);
                self.block(body);
                self.cur().scopes.pop();
            }
            StmtKind::Break | StmtKind::Error => {}
            StmtKind::Return(e) => {
                if let Some(e) = e {
                    self.expr(e);
                }
            }
            StmtKind::Block(b) => self.block(b),
            StmtKind::Function { name, func } => {
                if let Some(first) = name.first() {
                    self.reference(&first.name, name.len() == 1);
                }
                self.func_body(func);
            }
            StmtKind::Trace { .. } => {}
            StmtKind::TraceEnd { body } => self.function(FuncKind::Body, &[], body, false),
            StmtKind::Timer { kind, body, .. } => {
                if *kind == TimerKind::Tick {
                    self.function(FuncKind::Body, &[], body, false);
                }
            }
        }
    }

    fn target(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Name(id) => self.reference(&id.name, true),
            _ => self.expr(e),
        }
    }

    fn expr(&mut self, e: &'a Expr) {
        if self.depth >= MAX_DEPTH {
            return;
        }
        self.depth += 1;
        self.expr_inner(e);
        self.depth -= 1;
    }

    fn expr_inner(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Nil
            | ExprKind::Bool(_)
            | ExprKind::Int(_)
            | ExprKind::Str(_)
            | ExprKind::Error => {}
            ExprKind::Name(id) => self.reference(&id.name, false),
            ExprKind::Index { base, index } => {
                self.expr(base);
                self.expr(index);
            }
            ExprKind::Field { base, .. } => self.expr(base),
            ExprKind::Call { callee, args } => {
                self.expr(callee);
                for a in args {
                    self.expr(a);
                }
            }
            ExprKind::Function(f) => self.func_body(f),
            ExprKind::Table(fields) => {
                for f in fields {
                    match f {
                        TableField::Positional(v) | TableField::Named(_, v) => self.expr(v),
                        TableField::Keyed(k, v) => {
                            self.expr(k);
                            self.expr(v);
                        }
                    }
                }
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
        }
    }
}
