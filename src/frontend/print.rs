//! Text dumps of the frontend's stages: the token stream and the AST, one
//! indented line per node with its span as `@start..end`. Used by golden
//! snapshots and `--emit`. Output must stay stable; never does IO.

use std::fmt::Write as _;

use super::ast::*;
use super::lexer::{self, Token};

/// One token per line with its span, then the lexer's diagnostics.
pub fn tokens(src: &str) -> String {
    let (toks, mut diags) = lexer::tokenize(src);
    super::diag::normalize(&mut diags);
    let mut out = String::new();
    for (t, s) in &toks {
        let _ = writeln!(out, "{} {}", at(*s), token(t));
    }
    for d in &diags {
        let kind = if d.is_error() { "error" } else { "warning" };
        let _ = writeln!(out, "{kind} {}: {}", at(d.span), d.message);
    }
    out
}

fn token(t: &Token) -> String {
    match t {
        Token::Ident(n) => format!("identifier {n}"),
        Token::Int(v) => format!("integer {v}"),
        Token::Str(b) => format!("string {}", quote(b)),
        Token::Timer(t) => format!("timer {:?} {}ns", t.kind, t.nanos),
        Token::EventDefs(text) => format!("event-spec {}", quote(text.as_bytes())),
        Token::FilterOpen => "filter-open".to_owned(),
        Token::FilterClose => "filter-close".to_owned(),
        t => t.spelling().map_or_else(|| format!("{t:?}"), |s| format!("'{s}'")),
    }
}

fn at(s: Span) -> String {
    format!("@{}..{}", s.start, s.end)
}

/// A byte string as a double-quoted literal: printable ASCII as is,
/// common escapes, everything else `\xHH`.
fn quote(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// The AST as an indented tree. Child lines may carry a role prefix
/// (`cond: `, `then: `...).
pub fn program(p: &Program) -> String {
    let mut pr = Printer { out: String::new(), depth: 0 };
    for s in &p.stmts {
        pr.stmt("", s);
    }
    pr.out
}

struct Printer {
    out: String,
    depth: usize,
}

fn id(i: &Ident) -> String {
    format!("{}{}", i.name, at(i.span))
}

fn word(w: &Word) -> String {
    format!("{}{}", quote(w.text.as_bytes()), at(w.span))
}

impl Printer {
    fn line(&mut self, role: &str, text: &str, span: Option<Span>) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(role);
        self.out.push_str(text);
        if let Some(s) = span {
            self.out.push(' ');
            self.out.push_str(&at(s));
        }
        self.out.push('\n');
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.depth += 1;
        f(self);
        self.depth -= 1;
    }

    fn block(&mut self, role: &str, b: &Block) {
        self.line(role, "Block", Some(b.span));
        self.nested(|p| {
            for s in &b.stmts {
                p.stmt("", s);
            }
        });
    }

    fn stmt(&mut self, role: &str, s: &Stmt) {
        match &s.kind {
            StmtKind::Var { names, values } => {
                let names: Vec<String> = names.iter().map(id).collect();
                self.line(role, &format!("Var {}", names.join(" ")), Some(s.span));
                self.nested(|p| values.iter().for_each(|v| p.expr("value: ", v)));
            }
            StmtKind::Assign { targets, values } => {
                self.line(role, "Assign", Some(s.span));
                self.nested(|p| {
                    targets.iter().for_each(|t| p.expr("target: ", t));
                    values.iter().for_each(|v| p.expr("value: ", v));
                });
            }
            StmtKind::AddAssign { target, value } => {
                self.line(role, "AddAssign", Some(s.span));
                self.nested(|p| {
                    p.expr("target: ", target);
                    p.expr("value: ", value);
                });
            }
            StmtKind::Expr(e) => {
                self.line(role, "ExprStmt", Some(s.span));
                self.nested(|p| p.expr("", e));
            }
            StmtKind::If { arms, otherwise } => {
                self.line(role, "If", Some(s.span));
                self.nested(|p| {
                    for (cond, body) in arms {
                        p.expr("cond: ", cond);
                        p.block("then: ", body);
                    }
                    if let Some(b) = otherwise {
                        p.block("else: ", b);
                    }
                });
            }
            StmtKind::While { cond, body } => {
                self.line(role, "While", Some(s.span));
                self.nested(|p| {
                    p.expr("cond: ", cond);
                    p.block("body: ", body);
                });
            }
            StmtKind::ForNum { var, start, limit, step, body } => {
                self.line(role, &format!("ForNum {}", id(var)), Some(s.span));
                self.nested(|p| {
                    p.expr("start: ", start);
                    p.expr("limit: ", limit);
                    if let Some(step) = step {
                        p.expr("step: ", step);
                    }
                    p.block("body: ", body);
                });
            }
            StmtKind::ForC { init, cond, step, body } => {
                self.line(role, "ForC", Some(s.span));
                self.nested(|p| {
                    match init {
                        Some(i) => p.stmt("init: ", i),
                        None => p.line("init: ", "-", None),
                    }
                    match cond {
                        Some(c) => p.expr("cond: ", c),
                        None => p.line("cond: ", "-", None),
                    }
                    match step {
                        Some(st) => p.stmt("step: ", st),
                        None => p.line("step: ", "-", None),
                    }
                    p.block("body: ", body);
                });
            }
            StmtKind::ForIn { key, value, iter, body } => {
                let head = match value {
                    Some(v) => format!("ForIn {} {}", id(key), id(v)),
                    None => format!("ForIn {}", id(key)),
                };
                self.line(role, &head, Some(s.span));
                self.nested(|p| {
                    p.expr("iter: ", iter);
                    p.block("body: ", body);
                });
            }
            StmtKind::Break => self.line(role, "Break", Some(s.span)),
            StmtKind::Return(e) => {
                self.line(role, "Return", Some(s.span));
                if let Some(e) = e {
                    self.nested(|p| p.expr("", e));
                }
            }
            StmtKind::Block(b) => self.block(role, b),
            StmtKind::Function { name, func } => {
                let name: Vec<String> = name.iter().map(id).collect();
                self.line(role, &format!("Function {}", name.join(".")), Some(s.span));
                self.nested(|p| p.func(func));
            }
            StmtKind::Trace { events, filter, body } => {
                self.line(role, "Trace", Some(s.span));
                self.nested(|p| {
                    events.iter().for_each(|e| p.event(e));
                    if let Some(f) = filter {
                        p.expr("filter: ", f);
                    }
                    p.block("body: ", body);
                });
            }
            StmtKind::TraceEnd { body } => {
                self.line(role, "TraceEnd", Some(s.span));
                self.nested(|p| p.block("body: ", body));
            }
            StmtKind::Timer { kind, period, body } => {
                let head = format!("Timer {kind:?} {}ns{}", period.nanos, at(period.span));
                self.line(role, &head, Some(s.span));
                self.nested(|p| p.block("body: ", body));
            }
            StmtKind::Error => self.line(role, "Error", Some(s.span)),
        }
    }

    fn func(&mut self, f: &FuncBody) {
        let params: Vec<String> = f.params.iter().map(id).collect();
        self.line("params: ", &format!("({})", params.join(", ")), Some(f.span));
        self.block("body: ", &f.body);
    }

    fn event(&mut self, e: &EventSpec) {
        let head = match &e.kind {
            EventKind::Tracepoint { system, event } => format!("Tracepoint {} {}", word(system), word(event)),
            EventKind::Probe { binary, symbol, ret } => {
                let bin = binary.as_ref().map_or_else(|| "kernel".to_owned(), word);
                let ret = if *ret { " %return" } else { "" };
                format!("Probe {bin} {}{ret}", word(symbol))
            }
            EventKind::Sdt { binary, marker } => format!("Sdt {} {}", word(binary), word(marker)),
            EventKind::Target { target, param } => {
                let param = param.as_ref().map_or_else(String::new, |p| format!(" ({})", word(p)));
                format!("Target {} {}{param}", e.provider.0, word(target))
            }
        };
        self.line("event: ", &head, Some(e.span));
        self.nested(|p| {
            for a in &e.fetch_args {
                let ty = a.ty.as_ref().map_or_else(String::new, |t| format!(" type={}", word(t)));
                p.line("", &format!("FetchArg {} = {}{ty}", word(&a.name), word(&a.fetch)), Some(a.span));
            }
        });
    }

    fn expr(&mut self, role: &str, e: &Expr) {
        match &e.kind {
            ExprKind::Nil => self.line(role, "Nil", Some(e.span)),
            ExprKind::Bool(b) => self.line(role, &format!("Bool {b}"), Some(e.span)),
            ExprKind::Int(v) => self.line(role, &format!("Int {v}"), Some(e.span)),
            ExprKind::Str(b) => self.line(role, &format!("Str {}", quote(b)), Some(e.span)),
            ExprKind::Name(i) => self.line(role, &format!("Name {}", i.name), Some(e.span)),
            ExprKind::Index { base, index } => {
                self.line(role, "Index", Some(e.span));
                self.nested(|p| {
                    p.expr("base: ", base);
                    p.expr("index: ", index);
                });
            }
            ExprKind::Field { base, name } => {
                self.line(role, &format!("Field {}", id(name)), Some(e.span));
                self.nested(|p| p.expr("base: ", base));
            }
            ExprKind::Call { callee, args } => {
                self.line(role, "Call", Some(e.span));
                self.nested(|p| {
                    p.expr("callee: ", callee);
                    args.iter().for_each(|a| p.expr("arg: ", a));
                });
            }
            ExprKind::Function(f) => {
                self.line(role, "Function", Some(e.span));
                self.nested(|p| p.func(f));
            }
            ExprKind::Table(fields) => {
                self.line(role, "Table", Some(e.span));
                self.nested(|p| {
                    for f in fields {
                        match f {
                            TableField::Positional(v) => p.expr("item: ", v),
                            TableField::Keyed(k, v) => {
                                p.line("", "Keyed", None);
                                p.nested(|p| {
                                    p.expr("key: ", k);
                                    p.expr("value: ", v);
                                });
                            }
                            TableField::Named(n, v) => {
                                p.line("", &format!("Named {}", id(n)), None);
                                p.nested(|p| p.expr("value: ", v));
                            }
                        }
                    }
                });
            }
            ExprKind::Unary { op, operand } => {
                let sym = match op {
                    UnOp::Neg => "-",
                    UnOp::Not => "!",
                };
                self.line(role, &format!("Unary {sym}"), Some(e.span));
                self.nested(|p| p.expr("", operand));
            }
            ExprKind::Binary { op, lhs, rhs } => {
                self.line(role, &format!("Binary {}", op.symbol()), Some(e.span));
                self.nested(|p| {
                    p.expr("", lhs);
                    p.expr("", rhs);
                });
            }
            ExprKind::Error => self.line(role, "Error", Some(e.span)),
        }
    }
}
