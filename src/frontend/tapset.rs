//! Tapsets, linked into the script: which namespaces a source uses
//! (`uses`), and the one program the rest of the compiler and the
//! interpreter see (`link`): each tapset function becomes a top-level
//! function named `ns.f` (so probes inline it and userspace calls it like
//! any user function), each call `ns.f(...)` a call of that name, each
//! constant `ns.NAME` its literal. Pure: the loader (`runtime::tapsets`)
//! finds and reads the files; never does IO, never panics.

use super::ast::{self, Span};
use super::diag::Diagnostic;
use super::fasthash::FastMap;
use super::resolve::{self, Binding, SourceId};
use super::visit::{self, Visitor};

/// One tapset, parsed at its own base of the span space.
pub struct Library {
    /// Its file name without `.kp`.
    pub namespace: String,
    pub program: ast::Program,
}

/// `ns.member` in a source, where `ns` is no local, no builtin namespace
/// and (unless `shadowed`) nothing the source declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    pub namespace: String,
    pub member: String,
    /// `ns.member` as written.
    pub span: Span,
    /// Called (`ns.f(...)`), not read (`ns.NAME`).
    pub call: bool,
    /// `ns` is also a top-level variable or function of the script: a
    /// clash if a tapset of that name exists.
    pub shadowed: bool,
}

/// Whether `ns` is a namespace of builtins (`ansi`, `table`, ...).
fn builtin_namespace(ns: &str) -> bool {
    crate::builtins::all().any(|(_, d)| d.namespace == Some(ns))
}

/// Names a source assigns without declaring them (userspace globals, as
/// in Lua): `t = {}`, wherever it is written.
fn assigned_globals<'p>(program: &'p ast::Program, res: &resolve::Resolution, source: SourceId) -> Vec<&'p ast::Ident> {
    struct Assigned<'p, 'r> {
        res: &'r resolve::Resolution,
        source: SourceId,
        out: Vec<&'p ast::Ident>,
    }
    impl<'p> Visitor<'p> for Assigned<'p, '_> {
        fn visit_stmt(&mut self, s: &'p ast::Stmt) {
            if let ast::StmtKind::Assign { targets, .. } = &s.kind {
                for t in targets {
                    if let ast::ExprKind::Name(id) = &t.kind {
                        if matches!(self.res.binding_in(self.source, id.span), Binding::Free) {
                            self.out.push(id);
                        }
                    }
                }
            }
            visit::walk_stmt(self, s);
        }
    }
    let mut a = Assigned { res, source, out: Vec::new() };
    for s in &program.stmts {
        a.visit_stmt(s);
    }
    a.out
}

/// The namespaces `program` uses, in source order. `namespace`: the
/// tapset's own name when `program` is one (its uses of itself are not
/// listed), `None` for the script.
pub fn uses(program: &ast::Program, namespace: Option<&str>) -> Vec<Use> {
    let empty = ast::Program::default();
    let (res, source) = match namespace {
        None => (resolve::resolve(program), SourceId::SCRIPT),
        Some(ns) => (resolve::resolve_with(&empty, &[(ns, program)]), SourceId(1)),
    };
    let assigned: Vec<&str> = assigned_globals(program, &res, source).into_iter().map(|id| id.name.as_str()).collect();
    let mut finder = UseFinder { res: &res, source, own: namespace, out: Vec::new() };
    for s in &program.stmts {
        finder.visit_stmt(s);
    }
    for u in &mut finder.out {
        u.shadowed |= assigned.contains(&u.namespace.as_str());
    }
    finder.out
}

struct UseFinder<'r> {
    res: &'r resolve::Resolution,
    source: SourceId,
    own: Option<&'r str>,
    out: Vec<Use>,
}

impl UseFinder<'_> {
    fn field(&mut self, e: &ast::Expr, call: bool) {
        let ast::ExprKind::Field { base, name } = &e.kind else { return };
        let ast::ExprKind::Name(ns) = &base.kind else { return };
        if Some(ns.name.as_str()) == self.own || builtin_namespace(&ns.name) {
            return;
        }
        let shadowed = match self.res.binding_in(self.source, ns.span) {
            Binding::Free => false,
            Binding::Global(_) | Binding::Function(_) => true,
            Binding::Local(_) | Binding::Builtin(_) => return,
        };
        self.out.push(Use { namespace: ns.name.clone(), member: name.name.clone(), span: e.span, call, shadowed });
    }
}

impl<'a> Visitor<'a> for UseFinder<'_> {
    fn visit_expr(&mut self, e: &'a ast::Expr) {
        match &e.kind {
            ast::ExprKind::Call { callee, .. } if matches!(callee.kind, ast::ExprKind::Field { .. }) => self.field(callee, true),
            ast::ExprKind::Field { .. } => self.field(e, false),
            _ => {}
        }
        if let ast::ExprKind::Call { callee, args } = &e.kind {
            // The callee's `ns.f` is counted once, as a call.
            if let ast::ExprKind::Field { base, .. } = &callee.kind {
                self.visit_expr(base);
            } else {
                self.visit_expr(callee);
            }
            args.iter().for_each(|a| self.visit_expr(a));
            return;
        }
        visit::walk_expr(self, e);
    }
}

/// What a tapset defines, by name.
#[derive(Default)]
struct Members<'a> {
    functions: Vec<&'a str>,
    constants: FastMap<&'a str, &'a ast::Expr>,
}

/// A literal a constant may be.
fn is_literal(e: &ast::Expr) -> bool {
    match &e.kind {
        ast::ExprKind::Int(_) | ast::ExprKind::Str(_) | ast::ExprKind::Bool(_) | ast::ExprKind::Nil => true,
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } => matches!(operand.kind, ast::ExprKind::Int(_)),
        _ => false,
    }
}

/// The one program: the tapsets' functions (renamed `ns.f`) first, so
/// they exist before the script's main code runs, then the script; every
/// use rewritten. `libraries` are the tapsets the loader found for the
/// script's (and each other's) uses; the diagnostics are the linking's
/// own: a tapset statement that is no function or constant, an unknown
/// member, a name a tapset does not define, a clash with the script.
pub fn link(script: ast::Program, libraries: Vec<Library>) -> (ast::Program, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    if libraries.is_empty() {
        return (script, diags);
    }
    let mut members: FastMap<&str, Members<'_>> = FastMap::default();
    for lib in &libraries {
        let m = members.entry(lib.namespace.as_str()).or_default();
        for s in &lib.program.stmts {
            match &s.kind {
                ast::StmtKind::Function { name, .. } if name.len() == 1 => m.functions.push(&name[0].name),
                ast::StmtKind::Var { names, values } if names.len() == values.len() && values.iter().all(is_literal) => {
                    for (n, v) in names.iter().zip(values) {
                        m.constants.insert(&n.name, v);
                    }
                }
                ast::StmtKind::Var { .. } => diags.push(
                    Diagnostic::error(s.span, "a tapset constant must be a literal")
                        .with_label("not a literal")
                        .with_note("write `var NAME = 42` (a number, a string, true, false or nil)"),
                ),
                ast::StmtKind::Error => {}
                _ => diags.push(
                    Diagnostic::error(s.span, format!("tapset `{}` may hold only functions and constants", lib.namespace))
                        .with_label("not a function or a constant")
                        .with_note("probes, ticks and main code belong in the script that uses the tapset"),
                ),
            }
        }
    }
    // Script declarations (and undeclared globals it assigns) named like
    // a tapset it uses.
    let script_res = resolve::resolve(&script);
    let mut declared: Vec<&ast::Ident> = assigned_globals(&script, &script_res, SourceId::SCRIPT);
    for s in &script.stmts {
        match &s.kind {
            ast::StmtKind::Var { names, .. } => declared.extend(names),
            ast::StmtKind::Function { name, .. } => declared.extend(name.iter().take(1)),
            _ => {}
        }
    }
    // Only where the script itself writes `name.member` (a tapset another
    // tapset uses may share a name with the script's variables).
    let mut clashes: Vec<String> = uses(&script, None).into_iter().filter(|u| u.shadowed && members.contains_key(u.namespace.as_str())).map(|u| u.namespace).collect();
    clashes.sort();
    clashes.dedup();
    for n in declared {
        if let Some(i) = clashes.iter().position(|c| *c == n.name) {
            clashes.swap_remove(i);
            diags.push(
                Diagnostic::error(n.span, format!("`{}` is both a name of this script and a tapset", n.name))
                    .with_label("declared here")
                    .with_note(format!("the script uses tapset `{0}` ({0}.kp); rename the script's `{0}`", n.name)),
            );
        }
    }
    let libs: Vec<(&str, &ast::Program)> = libraries.iter().map(|l| (l.namespace.as_str(), &l.program)).collect();
    let res = resolve::resolve_with(&script, &libs);
    let rewrites = {
        let mut finder = Rewrites { res: &res, members: &members, source: SourceId::SCRIPT, own: None, out: FastMap::default(), diags: &mut diags };
        for s in &script.stmts {
            finder.visit_stmt(s);
        }
        for (i, lib) in libraries.iter().enumerate() {
            finder.source = SourceId(i as u32 + 1);
            finder.own = Some(lib.namespace.as_str());
            for s in &lib.program.stmts {
                if let ast::StmtKind::Function { func, .. } = &s.kind {
                    finder.visit_func(func);
                }
            }
        }
        finder.out
    };
    let mut stmts = Vec::new();
    for lib in libraries {
        for mut s in lib.program.stmts {
            if let ast::StmtKind::Function { name, func } = &mut s.kind {
                if let [only] = name.as_mut_slice() {
                    only.name = format!("{}.{}", lib.namespace, only.name);
                    rewrite_block(&mut func.body, &rewrites);
                    stmts.push(s);
                }
            }
        }
    }
    for mut s in script.stmts {
        rewrite_stmt(&mut s, &rewrites);
        stmts.push(s);
    }
    (ast::Program { stmts }, diags)
}

/// What an expression (by span) becomes.
enum Rewrite {
    /// A call's callee or a function name: `ns.f`.
    Function(String),
    /// A constant's literal.
    Constant(ast::ExprKind),
}

/// Finds what to rewrite (reading the resolution) before anything moves.
struct Rewrites<'r, 'd> {
    res: &'r resolve::Resolution,
    members: &'r FastMap<&'r str, Members<'r>>,
    source: SourceId,
    own: Option<&'r str>,
    out: FastMap<Span, Rewrite>,
    diags: &'d mut Vec<Diagnostic>,
}

impl Rewrites<'_, '_> {
    fn suggest(&self, ns: &str, member: &str) -> Option<String> {
        let m = self.members.get(ns)?;
        let names = m.functions.iter().copied().chain(m.constants.keys().copied());
        near(member, names).map(|n| format!("did you mean `{ns}.{n}`?"))
    }

    /// `ns.member` (called or read) at `e`.
    fn member(&mut self, e: &ast::Expr, call: bool) -> bool {
        let ast::ExprKind::Field { base, name } = &e.kind else { return false };
        let ast::ExprKind::Name(ns) = &base.kind else { return false };
        let Some(m) = self.members.get(ns.name.as_str()) else { return false };
        if !matches!(self.res.binding_in(self.source, ns.span), Binding::Free) {
            return false;
        }
        if call {
            if let Binding::Function(f) = self.res.binding_in(self.source, e.span) {
                if let Some(info) = self.res.func_info(f) {
                    self.out.insert(e.span, Rewrite::Function(format!("{}.{}", ns.name, info.name)));
                    return true;
                }
            }
        } else if let Some(v) = m.constants.get(name.name.as_str()) {
            self.out.insert(e.span, Rewrite::Constant(v.kind.clone()));
            return true;
        } else if m.functions.contains(&name.name.as_str()) {
            // A function as a value (userspace: `var f = ns.f`).
            self.out.insert(e.span, Rewrite::Function(format!("{}.{}", ns.name, name.name)));
            return true;
        }
        let what = if call { "function" } else { "constant" };
        let mut d = Diagnostic::error(e.span, format!("tapset `{}` has no {what} `{}`", ns.name, name.name)).with_label(format!("no such {what}"));
        if let Some(s) = self.suggest(&ns.name, &name.name) {
            d = d.with_note(s);
        }
        self.diags.push(d);
        true
    }
}

impl<'a> Visitor<'a> for Rewrites<'_, '_> {
    fn visit_expr(&mut self, e: &'a ast::Expr) {
        match &e.kind {
            ast::ExprKind::Call { callee, args } => {
                if !self.member(callee, true) {
                    self.visit_expr(callee);
                }
                args.iter().for_each(|a| self.visit_expr(a));
            }
            ast::ExprKind::Field { base, .. } => {
                if !self.member(e, false) {
                    self.visit_expr(base);
                }
            }
            ast::ExprKind::Name(id) => {
                let Some(own) = self.own else { return };
                match self.res.binding_in(self.source, id.span) {
                    Binding::Function(f) => {
                        if let Some(info) = self.res.func_info(f) {
                            let ns = info.namespace.as_deref().unwrap_or(own);
                            self.out.insert(id.span, Rewrite::Function(format!("{ns}.{}", info.name)));
                        }
                    }
                    Binding::Free => {
                        if let Some(v) = self.members.get(own).and_then(|m| m.constants.get(id.name.as_str())) {
                            self.out.insert(id.span, Rewrite::Constant(v.kind.clone()));
                        } else {
                            self.diags.push(
                                Diagnostic::error(id.span, format!("`{}` is not defined in tapset `{own}`", id.name))
                                    .with_label("not defined here")
                                    .with_note("a tapset function sees its parameters and locals, its tapset's functions and constants, other tapsets as `ns.name`, and builtins"),
                            );
                        }
                    }
                    _ => {}
                }
            }
            _ => visit::walk_expr(self, e),
        }
    }
}

/// The name of `names` nearest to `name`, if near enough to be a typo.
pub fn near<'n>(name: &str, names: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    let limit = (name.len() / 3).max(1);
    names.map(|n| (distance(name, n), n)).filter(|(d, _)| *d <= limit).min().map(|(_, n)| n)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn rewrite_block(b: &mut ast::Block, r: &FastMap<Span, Rewrite>) {
    b.stmts.iter_mut().for_each(|s| rewrite_stmt(s, r));
}

fn rewrite_stmt(s: &mut ast::Stmt, r: &FastMap<Span, Rewrite>) {
    use ast::StmtKind as S;
    match &mut s.kind {
        S::Var { values, .. } => values.iter_mut().for_each(|e| rewrite_expr(e, r)),
        S::Assign { targets, values } => targets.iter_mut().chain(values.iter_mut()).for_each(|e| rewrite_expr(e, r)),
        S::AddAssign { target, value } => {
            rewrite_expr(target, r);
            rewrite_expr(value, r);
        }
        S::Expr(e) | S::Return(Some(e)) => rewrite_expr(e, r),
        S::If { arms, otherwise } => {
            for (c, b) in arms {
                rewrite_expr(c, r);
                rewrite_block(b, r);
            }
            if let Some(b) = otherwise {
                rewrite_block(b, r);
            }
        }
        S::While { cond, body } => {
            rewrite_expr(cond, r);
            rewrite_block(body, r);
        }
        S::ForNum { start, limit, step, body, .. } => {
            rewrite_expr(start, r);
            rewrite_expr(limit, r);
            if let Some(st) = step {
                rewrite_expr(st, r);
            }
            rewrite_block(body, r);
        }
        S::ForC { init, cond, step, body } => {
            if let Some(i) = init {
                rewrite_stmt(i, r);
            }
            if let Some(c) = cond {
                rewrite_expr(c, r);
            }
            if let Some(st) = step {
                rewrite_stmt(st, r);
            }
            rewrite_block(body, r);
        }
        S::ForIn { iter, body, .. } => {
            rewrite_expr(iter, r);
            rewrite_block(body, r);
        }
        S::Block(b) | S::TraceEnd { body: b } | S::Timer { body: b, .. } => rewrite_block(b, r),
        S::Function { func, .. } => rewrite_block(&mut func.body, r),
        S::Trace { filter, body, .. } => {
            if let Some(f) = filter {
                rewrite_expr(f, r);
            }
            rewrite_block(body, r);
        }
        S::Break | S::Return(None) | S::Error => {}
    }
}

fn rewrite_expr(e: &mut ast::Expr, r: &FastMap<Span, Rewrite>) {
    use ast::ExprKind as E;
    let span = match &e.kind {
        E::Name(id) => id.span,
        _ => e.span,
    };
    match r.get(&span) {
        Some(Rewrite::Function(name)) => {
            e.kind = E::Name(ast::Ident { name: name.clone(), span });
            return;
        }
        Some(Rewrite::Constant(k)) => {
            e.kind = k.clone();
            return;
        }
        None => {}
    }
    match &mut e.kind {
        E::Index { base, index } => {
            rewrite_expr(base, r);
            rewrite_expr(index, r);
        }
        E::Field { base, .. } => rewrite_expr(base, r),
        E::Call { callee, args } => {
            rewrite_expr(callee, r);
            args.iter_mut().for_each(|a| rewrite_expr(a, r));
        }
        E::Function(f) => rewrite_block(&mut f.body, r),
        E::Table(fields) => {
            for f in fields {
                match f {
                    ast::TableField::Positional(v) | ast::TableField::Named(_, v) => rewrite_expr(v, r),
                    ast::TableField::Keyed(k, v) => {
                        rewrite_expr(k, r);
                        rewrite_expr(v, r);
                    }
                }
            }
        }
        E::Unary { operand, .. } => rewrite_expr(operand, r),
        E::Binary { lhs, rhs, .. } => {
            rewrite_expr(lhs, r);
            rewrite_expr(rhs, r);
        }
        E::Nil | E::Bool(_) | E::Int(_) | E::Str(_) | E::Name(_) | E::Error => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lib(ns: &str, src: &str, base: u32) -> Library {
        let (program, diags) = crate::frontend::parse_at(src, base);
        assert!(diags.is_empty(), "{diags:?}");
        Library { namespace: ns.into(), program }
    }

    #[test]
    fn uses_skip_locals_builtins_and_the_own_namespace() {
        // An undeclared global the script assigns is the script's.
        let (p, _) = crate::frontend::parse("t = {}\nprint(t.f(), u.f())");
        let got: Vec<(String, bool)> = uses(&p, None).into_iter().map(|u| (u.namespace, u.shadowed)).collect();
        assert_eq!(got, [("t".into(), true), ("u".into(), false)]);
        let (p, _) = crate::frontend::parse("var g = {}\ntick-1s { var t = {} t.x() ansi.new_line() net.ip_str(1) g.f() print(errno.EPERM) }");
        let got: Vec<(String, String, bool, bool)> = uses(&p, None).into_iter().map(|u| (u.namespace, u.member, u.call, u.shadowed)).collect();
        assert_eq!(got, [("net".into(), "ip_str".into(), true, false), ("g".into(), "f".into(), true, true), ("errno".into(), "EPERM".into(), false, false)]);
        let (p, _) = crate::frontend::parse("function f(x) { return net.g(x) + errno.name(x) }");
        let got: Vec<String> = uses(&p, Some("net")).into_iter().map(|u| u.namespace).collect();
        assert_eq!(got, ["errno"]);
    }

    #[test]
    fn link_renames_calls_functions_and_constants() {
        let src = "tick-1s { print(net.ip_str(net.LOOP)) }";
        let (p, _) = crate::frontend::parse(src);
        let base = src.len() as u32 + 1;
        let (linked, diags) = link(p, vec![lib("net", "var LOOP = 7\nfunction ip_str(x) { return helper(x) + LOOP }\nfunction helper(y) { return y }", base)]);
        assert!(diags.is_empty(), "{diags:?}");
        let printed = crate::frontend::print::program(&linked);
        assert!(printed.contains("net.ip_str") && printed.contains("net.helper"), "{printed}");
        assert!(!printed.contains("LOOP"), "constants are inlined: {printed}");
    }

    #[test]
    fn link_errors_name_the_member_and_suggest() {
        let src = "var net = 1\ntick-1s { print(net.ip_str(1), net2.ip_sttr(1)) }";
        let (p, _) = crate::frontend::parse(src);
        let base = src.len() as u32 + 1;
        let (_, diags) = link(p, vec![lib("net", "function ip_str(x) { return x }", base), lib("net2", "function ip_str(x) { return g }", base + 40)]);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(messages.contains(&"`net` is both a name of this script and a tapset"), "{messages:?}");
        assert!(messages.contains(&"tapset `net2` has no function `ip_sttr`"), "{messages:?}");
        assert!(messages.contains(&"`g` is not defined in tapset `net2`"), "{messages:?}");
        assert!(diags.iter().any(|d| d.notes.iter().any(|n| n == "did you mean `net2.ip_str`?")));
    }
}
