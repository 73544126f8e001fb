//! Parser: tokens to AST. Hosts the LALRPOP-generated parser (quarantined
//! in `generated`), the helpers its actions call, the translation of parse
//! errors into readable diagnostics, and the hand-written parser of raw
//! event specs (`syscalls:sys_enter_*`, `probe:/bin/sh:f%return a=%di`).
//! Never panics and never gives up: it always returns statements, with
//! `Error` nodes where recovery happened.

use std::convert::Infallible;


use super::ast::{Span, Stmt};
use super::diag::Diagnostic;
use super::lexer::Token;

#[allow(clippy::all, unused_parens, unused_qualifications, dead_code, unused_imports)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/ktap.rs"));
}

/// Parses a token stream (from `lexer::tokenize` on `src`) into top-level
/// statements, pushing every syntax error into `diags`.
pub fn parse_tokens(src: &str, tokens: Vec<(Token, Span)>, diags: &mut Vec<Diagnostic>) -> Vec<Stmt> {
    let unclosed = unclosed_brackets(&tokens);
    let iter = tokens.into_iter().map(|(t, s)| Ok::<_, Infallible>((s.start as usize, t, s.end as usize)));
    let mut sink = helpers::Sink::default();
    let stmts = match generated::ProgramParser::new().parse(&mut sink, iter) {
        Ok(stmts) => stmts,
        Err(e) => {
            sink.syntax_error(e);
            // Recovery failed (only possible at end of input): nothing
            // could be kept, but the caller still gets a program.
            vec![Stmt { kind: super::ast::StmtKind::Error, span: Span::new(0, src.len()) }]
        }
    };
    if let Some((i, closers)) = sink.eof.take() {
        if let Some(d) = sink.syntax.get_mut(i) {
            if let Some((open, c)) = unclosed.iter().rev().find(|(_, c)| closers.contains(c)) {
                *d = d.clone().with_secondary(*open, format!("this '{}' is never closed", opener(c)));
            }
        }
    }
    diags.append(&mut sink.diags);
    // One syntax error per line: later ones on the same line are almost
    // always the parser stumbling over the rest of the first mistake.
    sink.syntax.sort_by_key(|d| (d.span.start, d.span.end));
    let mut lines: Vec<usize> = Vec::new();
    for d in sink.syntax {
        let line = line_of(src, d.span.start);
        if lines.last() != Some(&line) {
            lines.push(line);
            diags.push(d);
        }
    }
    for d in sink.shape {
        let line = line_of(src, d.span.start);
        if !lines.contains(&line) {
            diags.push(d);
        }
    }
    stmts
}

fn line_of(src: &str, offset: u32) -> usize {
    let end = (offset as usize).min(src.len());
    src.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count()
}

fn opener(closer: &str) -> &'static str {
    match closer {
        ")" => "(",
        "]" => "[",
        _ => "{",
    }
}

/// Brackets left open at the end of the token stream, innermost last, each
/// with the closer it needs.
fn unclosed_brackets(tokens: &[(Token, Span)]) -> Vec<(Span, &'static str)> {
    let mut stack: Vec<(Span, &'static str)> = Vec::new();
    for (t, s) in tokens {
        let close = match t {
            Token::LBrace => Some("}"),
            Token::LParen => Some(")"),
            Token::LBracket => Some("]"),
            _ => None,
        };
        if let Some(c) = close {
            stack.push((*s, c));
            continue;
        }
        let want = match t {
            Token::RBrace => "}",
            Token::RParen => ")",
            Token::RBracket => "]",
            _ => continue,
        };
        if let Some(pos) = stack.iter().rposition(|(_, c)| *c == want) {
            stack.truncate(pos);
        }
    }
    stack
}

/// Functions called from grammar actions.
pub(crate) mod helpers {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use lalrpop_util::{ErrorRecovery, ParseError};

    use crate::frontend::ast::*;
    use crate::frontend::diag::Diagnostic;
    use crate::frontend::lexer::Token;

    pub use super::events::event_specs;

    /// How deep a tree may nest (expressions, statements and blocks
    /// counted together). Deeper input is cut off with a diagnostic, so
    /// no pass, printer or `Drop` recurses without bound.
    pub const MAX_DEPTH: u32 = 200;

    /// The state grammar actions share: diagnostics by kind, and the
    /// nesting depth of every node built so far that is deeper than 1,
    /// keyed by (start, end, node class) — nested nodes of one class never
    /// share a span.
    #[derive(Default)]
    pub struct Sink {
        /// Diagnostics that are always kept (event specs, ...).
        pub diags: Vec<Diagnostic>,
        /// Syntax errors from LALRPOP, thinned out later (one per line).
        pub syntax: Vec<Diagnostic>,
        /// Statement-shape errors, dropped when a syntax error on the same
        /// line probably caused them.
        pub shape: Vec<Diagnostic>,
        /// The index in `syntax` of an end-of-file error and the closers it
        /// expected.
        pub eof: Option<(usize, Vec<&'static str>)>,
        depth: HashMap<(u32, u32, u8), u32>,
        too_deep: bool,
    }

    const EXPR: u8 = 0;
    const BLOCK: u8 = 1;
    const STMT: u8 = 2;

    impl Sink {
        fn d(&self, span: Span, class: u8) -> u32 {
            self.depth.get(&(span.start, span.end, class)).copied().unwrap_or(1)
        }

        fn de(&self, e: &Expr) -> u32 {
            self.d(e.span, EXPR)
        }

        fn db(&self, b: &Block) -> u32 {
            self.d(b.span, BLOCK)
        }

        fn ds(&self, s: &Stmt) -> u32 {
            self.d(s.span, STMT)
        }

        /// Records `depth` for a node, or reports it too deep.
        fn admit(&mut self, span: Span, class: u8, depth: u32) -> bool {
            if depth > MAX_DEPTH {
                if !self.too_deep {
                    self.too_deep = true;
                    self.diags.push(
                        Diagnostic::error(span, "program is nested too deeply")
                            .with_label(format!("more than {MAX_DEPTH} levels of nesting"))
                            .with_note("split the expression or move parts into variables or functions"),
                    );
                }
                return false;
            }
            if depth > 1 {
                self.depth.insert((span.start, span.end, class), depth);
            }
            true
        }

        fn finish(&mut self, e: Expr, child_depth: u32) -> Expr {
            if self.admit(e.span, EXPR, child_depth + 1) {
                e
            } else {
                Expr { kind: ExprKind::Error, span: e.span }
            }
        }

        fn kind_depth(&self, kind: &ExprKind) -> u32 {
            match kind {
                ExprKind::Nil | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Str(_) | ExprKind::Name(_) => 0,
                ExprKind::Error => 0,
                ExprKind::Index { base, index } => self.de(base).max(self.de(index)),
                ExprKind::Field { base, .. } => self.de(base),
                ExprKind::Call { callee, args } => args.iter().map(|a| self.de(a)).fold(self.de(callee), u32::max),
                ExprKind::Function(f) => self.db(&f.body),
                ExprKind::Table(fields) => fields
                    .iter()
                    .map(|f| match f {
                        TableField::Positional(v) | TableField::Named(_, v) => self.de(v),
                        TableField::Keyed(k, v) => self.de(k).max(self.de(v)),
                    })
                    .max()
                    .unwrap_or(0),
                ExprKind::Unary { operand, .. } => self.de(operand),
                ExprKind::Binary { lhs, rhs, .. } => self.de(lhs).max(self.de(rhs)),
            }
        }

        pub fn expr(&mut self, l: usize, r: usize, kind: ExprKind) -> Expr {
            let d = self.kind_depth(&kind);
            self.finish(Expr { kind, span: Span::new(l, r) }, d)
        }

        pub fn paren(&mut self, e: Expr, l: usize, r: usize) -> Expr {
            let d = self.de(&e);
            self.finish(Expr { span: Span::new(l, r), ..e }, d)
        }

        pub fn unary(&mut self, l: usize, op: UnOp, operand: Expr) -> Expr {
            let span = Span { start: l as u32, end: operand.span.end };
            let d = self.de(&operand);
            self.finish(Expr { kind: ExprKind::Unary { op, operand: Box::new(operand) }, span }, d)
        }

        pub fn binary(&mut self, op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
            let span = lhs.span.to(rhs.span);
            let d = self.de(&lhs).max(self.de(&rhs));
            self.finish(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }, d)
        }

        pub fn field(&mut self, base: Expr, name: Ident) -> Expr {
            let span = base.span.to(name.span);
            let d = self.de(&base);
            self.finish(Expr { kind: ExprKind::Field { base: Box::new(base), name }, span }, d)
        }

        pub fn index(&mut self, base: Expr, index: Expr, r: usize) -> Expr {
            let span = Span { start: base.span.start, end: r as u32 };
            let d = self.de(&base).max(self.de(&index));
            self.finish(Expr { kind: ExprKind::Index { base: Box::new(base), index: Box::new(index) }, span }, d)
        }

        pub fn call(&mut self, callee: Expr, args: Vec<Expr>, r: usize) -> Expr {
            let span = Span { start: callee.span.start, end: r as u32 };
            let d = args.iter().map(|a| self.de(a)).fold(self.de(&callee), u32::max);
            self.finish(Expr { kind: ExprKind::Call { callee: Box::new(callee), args }, span }, d)
        }

        pub fn block(&mut self, stmts: Vec<Stmt>, l: usize, r: usize) -> Block {
            let span = Span::new(l, r);
            let d = stmts.iter().map(|s| self.ds(s)).max().unwrap_or(0);
            if self.admit(span, BLOCK, d + 1) {
                Block { stmts, span }
            } else {
                Block { stmts: vec![Stmt { kind: StmtKind::Error, span }], span }
            }
        }

        fn stmt_depth(&self, k: &StmtKind) -> u32 {
            let exprs = |v: &[Expr]| v.iter().map(|e| self.de(e)).max().unwrap_or(0);
            match k {
                StmtKind::Var { values, .. } => exprs(values),
                StmtKind::Assign { targets, values } => exprs(targets).max(exprs(values)),
                StmtKind::AddAssign { target, value } => self.de(target).max(self.de(value)),
                StmtKind::Expr(e) => self.de(e),
                StmtKind::If { arms, otherwise } => arms
                    .iter()
                    .map(|(c, b)| self.de(c).max(self.db(b)))
                    .fold(otherwise.as_ref().map_or(0, |b| self.db(b)), u32::max),
                StmtKind::While { cond, body } => self.de(cond).max(self.db(body)),
                StmtKind::ForNum { start, limit, step, body, .. } => {
                    let s = step.as_ref().map_or(0, |e| self.de(e));
                    self.de(start).max(self.de(limit)).max(s).max(self.db(body))
                }
                StmtKind::ForC { init, cond, step, body } => {
                    let i = init.as_ref().map_or(0, |s| self.ds(s));
                    let c = cond.as_ref().map_or(0, |e| self.de(e));
                    let s = step.as_ref().map_or(0, |s| self.ds(s));
                    i.max(c).max(s).max(self.db(body))
                }
                StmtKind::ForIn { iter, body, .. } => self.de(iter).max(self.db(body)),
                StmtKind::Return(e) => e.as_ref().map_or(0, |e| self.de(e)),
                StmtKind::Block(b) => self.db(b),
                StmtKind::Function { func, .. } => self.db(&func.body),
                StmtKind::Trace { filter, body, .. } => filter.as_ref().map_or(0, |e| self.de(e)).max(self.db(body)),
                StmtKind::TraceEnd { body } | StmtKind::Timer { body, .. } => self.db(body),
                StmtKind::Break | StmtKind::Error => 0,
            }
        }

        pub fn stmt(&mut self, kind: StmtKind, l: usize, r: usize) -> Stmt {
            let span = Span::new(l, r);
            let d = self.stmt_depth(&kind);
            if self.admit(span, STMT, d + 1) {
                Stmt { kind, span }
            } else {
                Stmt { kind: StmtKind::Error, span }
            }
        }

        /// Records a syntax error LALRPOP recovered from.
        pub fn recovery(&mut self, e: ErrorRecovery<usize, Token, Infallible>) {
            self.syntax_error(e.error);
        }

        pub fn syntax_error(&mut self, e: ParseError<usize, Token, Infallible>) {
            if let ParseError::UnrecognizedEof { expected, .. } = &e {
                let closers: Vec<&'static str> = ["}", ")", "]"]
                    .into_iter()
                    .filter(|c| expected.iter().any(|x| x.trim_matches('"') == *c))
                    .collect();
                self.eof = Some((self.syntax.len(), closers));
            }
            self.syntax.push(error(e));
        }
    }

    fn describe_target(e: &Expr) -> &'static str {
        match e.kind {
            ExprKind::Call { .. } => "a function call",
            _ => "this expression",
        }
    }

    fn is_target(e: &Expr) -> bool {
        matches!(e.kind, ExprKind::Name(_) | ExprKind::Index { .. } | ExprKind::Field { .. })
    }

    fn check_target(diags: &mut Vec<Diagnostic>, e: &Expr) -> bool {
        if is_target(e) {
            return true;
        }
        diags.push(
            Diagnostic::error(e.span, format!("cannot assign to {}", describe_target(e)))
                .with_label("not a variable, table element or field"),
        );
        false
    }

    pub fn assign(diags: &mut Vec<Diagnostic>, targets: Vec<Expr>, values: Vec<Expr>) -> StmtKind {
        let mut ok = true;
        for t in &targets {
            ok &= check_target(diags, t);
        }
        if ok {
            StmtKind::Assign { targets, values }
        } else {
            StmtKind::Error
        }
    }

    pub fn add_assign(diags: &mut Vec<Diagnostic>, target: Expr, value: Expr) -> StmtKind {
        if check_target(diags, &target) {
            StmtKind::AddAssign { target, value }
        } else {
            StmtKind::Error
        }
    }

    pub fn expr_stmt(diags: &mut Vec<Diagnostic>, e: Expr) -> StmtKind {
        if matches!(e.kind, ExprKind::Call { .. }) {
            return StmtKind::Expr(e);
        }
        diags.push(
            Diagnostic::error(e.span, "expression statement is not a call")
                .with_label("this value is computed and thrown away")
                .with_note("a statement is a call, an assignment (`=`, `+=`), `var`, or a keyword statement"),
        );
        StmtKind::Error
    }

    /// What follows `else`.
    pub enum Else {
        Block(Block),
        /// `else if ...`, spanning from `if` to the end of its chain.
        If(StmtKind, Span),
    }

    /// Builds an `If`, flattening `else if` into further arms.
    pub fn make_if(cond: Expr, then: Block, elseifs: Vec<(Expr, Block)>, otherwise: Option<Else>) -> StmtKind {
        let mut arms = vec![(cond, then)];
        arms.extend(elseifs);
        let otherwise = match otherwise {
            None => None,
            Some(Else::Block(b)) => Some(b),
            Some(Else::If(StmtKind::If { arms: more, otherwise }, _)) => {
                arms.extend(more);
                otherwise
            }
            // Not produced by the grammar; keep it as a nested block.
            Some(Else::If(kind, span)) => Some(Block { stmts: vec![Stmt { kind, span }], span }),
        };
        StmtKind::If { arms, otherwise }
    }

    fn as_name(diags: &mut Vec<Diagnostic>, e: Expr, what: &str) -> Option<Ident> {
        match e.kind {
            ExprKind::Name(id) => Some(id),
            _ => {
                diags.push(
                    Diagnostic::error(e.span, format!("the {what} of a for loop must be a plain name"))
                        .with_label("expected a name"),
                );
                None
            }
        }
    }

    pub fn for_in(diags: &mut Vec<Diagnostic>, targets: Vec<Expr>, iter: Expr, body: Block) -> StmtKind {
        if targets.len() > 2 {
            let span = targets[2].span.to(targets[targets.len() - 1].span);
            diags.push(
                Diagnostic::error(span, "too many loop variables")
                    .with_label("a `for ... in` loop takes a key and an optional value")
                    .with_note("write `for (k, v in pairs(t)) { ... }`"),
            );
            return StmtKind::Error;
        }
        let mut it = targets.into_iter();
        let key = it.next().and_then(|e| as_name(diags, e, "key"));
        let value = match it.next() {
            Some(e) => as_name(diags, e, "value").map(Some),
            None => Some(None),
        };
        match (key, value) {
            (Some(key), Some(value)) => StmtKind::ForIn { key, value, iter, body },
            _ => StmtKind::Error,
        }
    }

    pub fn for_num(diags: &mut Vec<Diagnostic>, targets: Vec<Expr>, values: Vec<Expr>, body: Block) -> StmtKind {
        let all = |v: &[Expr]| match (v.first(), v.last()) {
            (Some(a), Some(b)) => a.span.to(b.span),
            _ => Span::default(),
        };
        if targets.len() != 1 {
            diags.push(
                Diagnostic::error(all(&targets), "a numeric for loop has exactly one variable")
                    .with_label("expected `i = start, limit[, step]`")
                    .with_note("for a C-style loop write `for (init; cond; step)`"),
            );
            return StmtKind::Error;
        }
        if !(2..=3).contains(&values.len()) {
            diags.push(
                Diagnostic::error(all(&values), "a numeric for loop needs a start, a limit and an optional step")
                    .with_label(format!("{} value(s) here", values.len()))
                    .with_note("write `for (i = 1, 10) { ... }` or `for (i = 10, 1, -1) { ... }`"),
            );
            return StmtKind::Error;
        }
        let Some(var) = targets.into_iter().next().and_then(|e| as_name(diags, e, "variable")) else {
            return StmtKind::Error;
        };
        let mut v = values.into_iter();
        match (v.next(), v.next()) {
            (Some(start), Some(limit)) => StmtKind::ForNum { var, start, limit, step: v.next(), body },
            _ => StmtKind::Error,
        }
    }

    /// The readable name of a terminal as LALRPOP lists it in `expected`
    /// (the grammar's quoted terminal names).
    fn terminal_name(t: &str) -> String {
        let bare = t.trim_matches('"');
        match bare {
            "identifier" | "integer" | "string" | "event spec" => bare.to_owned(),
            "timer" => "timer ('tick-N'/'profile-N')".to_owned(),
            "filter" => "filter '/'".to_owned(),
            "end of filter" => "closing filter '/'".to_owned(),
            _ => format!("'{bare}'"),
        }
    }

    const EXPR_START: &[&str] =
        &["identifier", "integer", "string", "nil", "true", "false", "(", "-", "!", "{", "function"];
    const BIN_OPS: &[&str] = &["+", "-", "*", "/", "%", "..", "==", "!=", "<", "<=", ">", ">=", "&&", "||"];
    const STMT_START: &[&str] =
        &["var", "if", "while", "for", "break", "function", "trace", "trace_end", "timer", "identifier", "{"];

    /// Summarises LALRPOP's expected-terminal list: groups that together
    /// mean "an expression", "a statement" or "an operator" are named so.
    pub fn expected_list(expected: &[String]) -> String {
        let mut names: Vec<&str> = expected.iter().map(|s| s.trim_matches('"')).collect();
        let mut groups: Vec<&str> = Vec::new();
        let covers = |names: &[&str], set: &[&str]| set.iter().all(|t| names.contains(t));
        if covers(&names, STMT_START) {
            // `return` and the empty statement `;` are statements too.
            names.retain(|n| !STMT_START.contains(n) && !matches!(*n, "return" | ";"));
            groups.push("a statement");
        }
        if covers(&names, EXPR_START) {
            names.retain(|n| !EXPR_START.contains(n));
            groups.push("an expression");
        }
        // After an operand the automaton may already have reduced past
        // some precedence levels and list only a few operators; any
        // operator would do there, and the call/index/field suffixes are
        // noise next to them.
        if names.iter().any(|n| BIN_OPS.contains(n)) {
            names.retain(|n| !BIN_OPS.contains(n) && !matches!(*n, "(" | "[" | "."));
            groups.push("an operator");
        }
        let mut items: Vec<String> = names.iter().map(|n| terminal_name(n)).collect();
        items.sort();
        items.dedup();
        items.extend(groups.iter().map(|g| (*g).to_owned()));
        match items.len() {
            0 => "nothing more".to_owned(),
            1 => items.remove(0),
            n if n > 8 => format!("one of {}, ...", items[..8].join(", ")),
            _ => {
                let last = items.pop().unwrap_or_default();
                format!("{} or {}", items.join(", "), last)
            }
        }
    }

    /// A diagnostic for one LALRPOP error.
    pub fn error(e: ParseError<usize, Token, Infallible>) -> Diagnostic {
        match e {
            ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
                let found = tok.describe();
                let mut d = Diagnostic::error(
                    Span::new(l, r),
                    format!("expected {}, found {found}", expected_list(&expected)),
                )
                .with_label(format!("unexpected {found}"));
                let expects = |t: &str| expected.iter().any(|e| e.trim_matches('"') == t);
                if tok == Token::LParen && expects("var") {
                    d = d.with_note("a statement cannot start with '('");
                }
                if expects("}") && expects(";") && !expects("var") && !expects(",") {
                    d = d.with_note("`return` must be the last statement of its block");
                }
                d
            }
            ParseError::UnrecognizedEof { location, expected } => {
                Diagnostic::error(Span::new(location, location), format!("expected {}, found end of file", expected_list(&expected)))
                    .with_label("unexpected end of file")
            }
            ParseError::ExtraToken { token: (l, tok, r) } => {
                Diagnostic::error(Span::new(l, r), format!("unexpected {}", tok.describe())).with_label("extra token")
            }
            ParseError::InvalidToken { location } => {
                Diagnostic::error(Span::new(location, location), "invalid token").with_label("here")
            }
            ParseError::User { error } => match error {},
        }
    }

}

mod events {
    //! The hand-written parser of the raw text after `trace`.
    use crate::frontend::ast::*;
    use crate::frontend::diag::Diagnostic;

    const FORMS: &str = "event specs look like `syscalls:sys_enter_openat`, `sched:*`, \
        `probe:do_sys_open`, `probe:/bin/bash:readline%return`, `sdt:/path/to/bin:marker`";

    /// A piece of the spec text: byte range relative to the text.
    #[derive(Clone, Copy)]
    struct Piece {
        start: usize,
        end: usize,
    }

    struct Ctx<'a> {
        text: &'a str,
        base: usize,
        diags: &'a mut Vec<Diagnostic>,
    }

    impl Ctx<'_> {
        fn span(&self, p: Piece) -> Span {
            Span::new(self.base + p.start, self.base + p.end)
        }
        fn word(&self, p: Piece) -> Word {
            Word { text: self.text.get(p.start..p.end).unwrap_or("").to_owned(), span: self.span(p) }
        }
        fn str(&self, p: Piece) -> &str {
            self.text.get(p.start..p.end).unwrap_or("")
        }
        fn err(&mut self, p: Piece, msg: impl Into<String>, label: impl Into<String>) {
            let d = Diagnostic::error(self.span(p), msg).with_label(label);
            self.diags.push(d);
        }
    }

    /// Parses the comma-separated event specs in `text`, which starts at
    /// byte `base` of the file (`end` is where it ends; equal for an
    /// empty spec list).
    pub fn event_specs(diags: &mut Vec<Diagnostic>, text: &str, base: usize, end: usize) -> Vec<EventSpec> {
        let mut cx = Ctx { text, base, diags };
        let words = split_words(text);
        if words.is_empty() {
            cx.diags.push(
                Diagnostic::error(Span::new(base, end), "expected an event spec after 'trace'")
                    .with_label("event spec missing here")
                    .with_note(FORMS),
            );
            return Vec::new();
        }
        // Group words into specs at commas (a comma is its own word).
        let mut specs = Vec::new();
        let mut current: Vec<Piece> = Vec::new();
        let mut last_comma: Option<Piece> = None;
        for w in words {
            if cx.str(w) == "," {
                if current.is_empty() {
                    cx.err(w, "empty event spec", "expected an event spec before this ','");
                } else {
                    specs.extend(spec(&mut cx, &current));
                }
                current.clear();
                last_comma = Some(w);
            } else {
                current.push(w);
            }
        }
        if current.is_empty() {
            if let Some(c) = last_comma {
                cx.err(c, "empty event spec", "expected an event spec after this ','");
            }
        } else {
            specs.extend(spec(&mut cx, &current));
        }
        specs
    }

    /// Splits at whitespace (and `#` comments); every `,` outside
    /// parentheses is a word of its own.
    fn split_words(text: &str) -> Vec<Piece> {
        let b = text.as_bytes();
        let mut words = Vec::new();
        let mut i = 0;
        let mut start: Option<usize> = None;
        let mut depth = 0usize;
        while i < b.len() {
            let c = b[i];
            let boundary = c.is_ascii_whitespace() || c == b'#' || (c == b',' && depth == 0);
            if boundary {
                if let Some(s) = start.take() {
                    words.push(Piece { start: s, end: i });
                }
                depth = 0;
                match c {
                    b'#' => {
                        while i < b.len() && b[i] != b'\n' {
                            i += 1;
                        }
                        continue;
                    }
                    b',' => words.push(Piece { start: i, end: i + 1 }),
                    _ => {}
                }
            } else {
                start.get_or_insert(i);
                match c {
                    b'(' => depth += 1,
                    b')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            i += 1;
        }
        if let Some(s) = start {
            words.push(Piece { start: s, end: b.len() });
        }
        words
    }

    /// Where the binary of `probe:`/`sdt:` ends: at the first `:` after
    /// the last `/` of a path, else at the first `:`.
    fn binary_colon(s: &str) -> Option<usize> {
        let from = s.rfind('/').unwrap_or(0);
        s[from..].find(':').map(|i| from + i)
    }

    fn sub(p: Piece, from: usize, to: usize) -> Piece {
        Piece { start: p.start + from, end: p.start + to }
    }

    fn spec(cx: &mut Ctx<'_>, words: &[Piece]) -> Option<EventSpec> {
        let head = *words.first()?;
        let last = *words.last()?;
        let span = cx.span(head).to(cx.span(last));
        let text = cx.str(head).to_owned();
        let (kind, allows_args) = if let Some(rest) = text.strip_prefix("probe:") {
            (probe(cx, sub(head, 6, text.len()), rest)?, true)
        } else if let Some(rest) = text.strip_prefix("sdt:") {
            (sdt(cx, sub(head, 4, text.len()), rest)?, true)
        } else {
            (tracepoint(cx, head, &text)?, false)
        };
        let mut fetch_args = Vec::new();
        for &w in &words[1..] {
            if !allows_args {
                cx.err(w, "fetch arguments are only allowed after probe: and sdt: specs", "unexpected argument");
                continue;
            }
            fetch_args.extend(fetch_arg(cx, w));
        }
        Some(EventSpec { kind, fetch_args, span })
    }

    fn tracepoint(cx: &mut Ctx<'_>, head: Piece, text: &str) -> Option<EventKind> {
        let Some(colon) = text.find(':') else {
            let d = Diagnostic::error(cx.span(head), format!("malformed event spec '{text}'"))
                .with_label("expected `system:event`")
                .with_note(FORMS);
            cx.diags.push(d);
            return None;
        };
        let system = sub(head, 0, colon);
        let event = sub(head, colon + 1, text.len());
        let mut ok = true;
        if system.start == system.end {
            cx.err(sub(head, 0, 1), "missing tracepoint system before ':'", "expected a system name or '*'");
            ok = false;
        }
        if event.start == event.end {
            cx.err(sub(head, colon, colon + 1), "missing tracepoint event after ':'", "expected an event name or '*'");
            ok = false;
        }
        if let Some(extra) = text[colon + 1..].find(':') {
            let at = colon + 1 + extra;
            let d = Diagnostic::error(cx.span(sub(head, at, at + 1)), "unexpected ':' in tracepoint spec")
                .with_label("a tracepoint is `system:event`")
                .with_note("uprobes are written `probe:/path/to/binary:symbol`");
            cx.diags.push(d);
            ok = false;
        } else if let Some(bad) = text.find(|c: char| !is_tracepoint_char(c)) {
            let ch = text[bad..].chars().next().unwrap_or('?');
            let mut d = Diagnostic::error(
                cx.span(sub(head, bad, bad + ch.len_utf8())),
                format!("invalid character '{}' in tracepoint spec", ch.escape_default()),
            )
            .with_label("tracepoint names are letters, digits, '_' and globs");
            if ch == '/' {
                d = d.with_note("a filter must be separated from the event spec by whitespace: `trace a:b /cond/ {`");
            }
            cx.diags.push(d);
            ok = false;
        }
        ok.then(|| EventKind::Tracepoint { system: cx.word(system), event: cx.word(event) })
    }

    /// Characters of tracepoint system and event names, globs included.
    fn is_tracepoint_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?' | '[' | ']' | '!' | '-' | '.' | ':')
    }

    fn probe(cx: &mut Ctx<'_>, p: Piece, rest: &str) -> Option<EventKind> {
        let (sym_text, ret) = match rest.strip_suffix("%return") {
            Some(s) => (s, true),
            None => (rest, false),
        };
        let sym_end = sym_text.len();
        if let Some(pct) = sym_text.find('%') {
            cx.err(sub(p, pct, rest.len()), format!("unknown probe suffix '{}'", &rest[pct..]), "only '%return' is allowed");
            return None;
        }
        let user = binary_colon(sym_text).filter(|&c| is_binary(&sym_text[..c]));
        let (binary, symbol) = match user {
            Some(c) => {
                if c == 0 {
                    cx.err(sub(p, 0, 1), "missing binary before ':'", "expected a path or library");
                    return None;
                }
                (Some(sub(p, 0, c)), sub(p, c + 1, sym_end))
            }
            None => {
                if sym_text.contains('/') {
                    let mut d = Diagnostic::error(cx.span(p), "missing ':SYMBOL' after the binary")
                        .with_label("expected `probe:/path/to/binary:symbol`");
                    if sym_text.ends_with('/') && sym_text.contains(':') {
                        d = d.with_note("a filter must be separated from the event spec by whitespace: `trace a:b /cond/ {`");
                    }
                    cx.diags.push(d);
                    return None;
                }
                (None, sub(p, 0, sym_end))
            }
        };
        if symbol.start == symbol.end {
            let at = if sym_end == 0 { cx_piece_or(p) } else { sub(p, sym_end - 1, sym_end) };
            let what = if binary.is_some() { "missing symbol after the binary" } else { "missing symbol after 'probe:'" };
            cx.err(at, what, "expected a symbol, a glob or a 0x offset");
            return None;
        }
        Some(EventKind::Probe { binary: binary.map(|b| cx.word(b)), symbol: cx.word(symbol), ret })
    }

    /// A path (has `/`) or a short library name (`libc`, `foo.so`); else
    /// `MOD:SYM` names a kernel module symbol.
    fn is_binary(s: &str) -> bool {
        s.contains('/') || s.starts_with("lib") || s.contains(".so")
    }

    fn sdt(cx: &mut Ctx<'_>, p: Piece, rest: &str) -> Option<EventKind> {
        let Some(c) = binary_colon(rest) else {
            cx.err(cx_piece_or(p), "malformed sdt spec", "expected `sdt:/path/to/binary:marker`");
            return None;
        };
        if c == 0 {
            cx.err(sub(p, 0, 1), "missing binary before ':'", "expected a path");
            return None;
        }
        if c + 1 == rest.len() {
            cx.err(sub(p, c, c + 1), "missing sdt marker after ':'", "expected a marker name or glob");
            return None;
        }
        Some(EventKind::Sdt { binary: cx.word(sub(p, 0, c)), marker: cx.word(sub(p, c + 1, rest.len())) })
    }

    /// The piece itself, or (when empty) the character before it.
    fn cx_piece_or(p: Piece) -> Piece {
        if p.start == p.end {
            Piece { start: p.start.saturating_sub(1), end: p.end }
        } else {
            p
        }
    }

    fn fetch_arg(cx: &mut Ctx<'_>, w: Piece) -> Option<FetchArg> {
        let text = cx.str(w).to_owned();
        let Some(eq) = text.find('=') else {
            let d = Diagnostic::error(cx.span(w), format!("malformed fetch argument '{text}'"))
                .with_label("expected `NAME=FETCH[:TYPE]`")
                .with_note("e.g. `dfd=%di`, `mode=+4($stack):u32`");
            cx.diags.push(d);
            return None;
        };
        let name = &text[..eq];
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            let at = if eq == 0 { sub(w, 0, 1) } else { sub(w, 0, eq) };
            cx.err(at, "fetch argument needs a name before '='", "expected an identifier");
            return None;
        }
        let value = &text[eq + 1..];
        let (fetch, ty) = match value.rfind(':') {
            Some(c) => (sub(w, eq + 1, eq + 1 + c), Some(sub(w, eq + 2 + c, text.len()))),
            None => (sub(w, eq + 1, text.len()), None),
        };
        if fetch.start == fetch.end {
            cx.err(sub(w, eq, eq + 1), "missing fetch location after '='", "expected e.g. %di, $stack, +4($stack)");
            return None;
        }
        if let Some(t) = ty {
            if t.start == t.end {
                cx.err(sub(w, text.len() - 1, text.len()), "missing type after ':'", "expected e.g. u32, s64, string");
                return None;
            }
        }
        Some(FetchArg { name: cx.word(sub(w, 0, eq)), fetch: cx.word(fetch), ty: ty.map(|t| cx.word(t)), span: cx.span(w) })
    }
}

#[cfg(test)]
mod tests {
    use super::events::event_specs;
    use super::helpers::expected_list;
    use crate::frontend::ast::*;
    use crate::frontend::diag::Diagnostic;

    fn specs(text: &str) -> (Vec<EventSpec>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let s = event_specs(&mut d, text, 100, 100 + text.len());
        (s, d)
    }

    fn w(text: &str, start: usize) -> Word {
        Word { text: text.into(), span: Span::new(100 + start, 100 + start + text.len()) }
    }

    #[test]
    fn tracepoints() {
        let (s, d) = specs("syscalls:sys_enter_*, *:*");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, EventKind::Tracepoint { system: w("syscalls", 0), event: w("sys_enter_*", 9) });
        assert_eq!(s[0].span, Span::new(100, 120));
        assert_eq!(s[1].kind, EventKind::Tracepoint { system: w("*", 22), event: w("*", 24) });
    }

    #[test]
    fn probes() {
        let (s, d) = specs("probe:/lib/libc.so.6:malloc%return size=%di:u64 p=+4($stack)");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            s[0].kind,
            EventKind::Probe { binary: Some(w("/lib/libc.so.6", 6)), symbol: w("malloc", 21), ret: true }
        );
        assert_eq!(s[0].fetch_args.len(), 2);
        let a = &s[0].fetch_args[0];
        assert_eq!((a.name.clone(), a.fetch.clone(), a.ty.clone()), (w("size", 35), w("%di", 40), Some(w("u64", 44))));
        assert_eq!(s[0].fetch_args[1].fetch, w("+4($stack)", 50));
        assert_eq!(s[0].fetch_args[1].ty, None);

        let (s, _) = specs("probe:do_sys_open");
        assert_eq!(s[0].kind, EventKind::Probe { binary: None, symbol: w("do_sys_open", 6), ret: false });
        let (s, _) = specs("probe:ext4:ext4_sync_file%return");
        assert_eq!(s[0].kind, EventKind::Probe { binary: None, symbol: w("ext4:ext4_sync_file", 6), ret: true });
        let (s, _) = specs("probe:libc:malloc");
        assert_eq!(s[0].kind, EventKind::Probe { binary: Some(w("libc", 6)), symbol: w("malloc", 11), ret: false });
        let (s, _) = specs("probe:/bin/bash:0x1a2b");
        assert_eq!(s[0].kind, EventKind::Probe { binary: Some(w("/bin/bash", 6)), symbol: w("0x1a2b", 16), ret: false });
    }

    #[test]
    fn sdt() {
        let (s, d) = specs("sdt:/usr/bin/python3.11:function__entry");
        assert!(d.is_empty());
        assert_eq!(
            s[0].kind,
            EventKind::Sdt { binary: w("/usr/bin/python3.11", 4), marker: w("function__entry", 24) }
        );
    }

    #[test]
    fn malformed() {
        for bad in ["", "syscalls", "a:", ":b", "a:b:c", "probe:", "probe:/x", "sdt:/x", "sdt:", "a:b x=1", "probe:f x", "probe:f =1", "a:b,", ",a:b", "probe:f%foo"] {
            let (_, d) = specs(bad);
            assert!(!d.is_empty(), "no diagnostic for {bad:?}");
            for d in &d {
                assert!(d.span.start >= 100 && d.span.end as usize <= 100 + bad.len().max(1), "{bad:?}: {d:?}");
            }
        }
    }

    #[test]
    fn expected_lists_read_well() {
        let q = |v: &[&str]| expected_list(&v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>());
        assert_eq!(q(&["}"]), "'}'");
        assert_eq!(q(&[")", ","]), "')' or ','");
        assert_eq!(q(&["identifier"]), "identifier");
        assert_eq!(
            q(&["identifier", "integer", "string", "nil", "true", "false", "(", "-", "!", "{", "function"]),
            "an expression"
        );
        assert_eq!(q(&[")", "||", "&&", "("]), "')' or an operator");
    }
}
