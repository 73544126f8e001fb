//! Parser: tokens to AST. Hosts the LALRPOP-generated parser (quarantined
//! in `generated`), the helpers its actions call, the translation of parse
//! errors into readable diagnostics. Event specs after `trace` are parsed
//! by `providers::spec` (each provider parses its own spec syntax).
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
    parse_tokens_at(src, 0, tokens, diags)
}

/// `parse_tokens` for a source whose spans start at `base` (a tapset
/// after the script: every token already shifted by `base`).
pub fn parse_tokens_at(src: &str, base: u32, tokens: Vec<(Token, Span)>, diags: &mut Vec<Diagnostic>) -> Vec<Stmt> {
    let unclosed = unclosed_brackets(&tokens);
    let iter = tokens.into_iter().map(|(t, s)| Ok::<_, Infallible>((s.start as usize, t, s.end as usize)));
    let mut sink = helpers::Sink::default();
    let stmts = match generated::ProgramParser::new().parse(&mut sink, iter) {
        Ok(stmts) => stmts,
        Err(e) => {
            sink.syntax_error(e);
            // Recovery failed (only possible at end of input): nothing
            // could be kept, but the caller still gets a program.
            vec![Stmt { kind: super::ast::StmtKind::Error, span: Span::new(base as usize, base as usize + src.len()) }]
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
        let line = line_of(src, d.span.start.saturating_sub(base));
        if lines.last() != Some(&line) {
            lines.push(line);
            diags.push(d);
        }
    }
    for d in sink.shape {
        let line = line_of(src, d.span.start.saturating_sub(base));
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

    pub use crate::frontend::providers::spec::event_specs;

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
            names.retain(|n| !BIN_OPS.contains(n) && !matches!(*n, "(" | "[" | "." | "->"));
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

#[cfg(test)]
mod tests {
    use super::helpers::expected_list;

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
