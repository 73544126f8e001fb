//! Name resolution, once for the whole script: binds every name (each use
//! and each declaration) to what it means lexically — a local (`LocalId`),
//! a top-level variable or table (`VarId`), a user function (`FuncId`), a
//! builtin, or nothing — with the language's scopes: top-level `var`s are
//! globals visible everywhere; probe bodies, functions, tick-N and
//! trace_end bodies start with no locals; blocks, loops and parameters
//! open scopes; a closure (userspace only) sees the locals around it. The
//! result is a side table that typing, lowering and the userspace checks
//! read instead of keeping scopes of their own. Functions carry their
//! source and namespace, so functions from other files (tapsets) are more
//! entries of the same table. Pure, read-only; never panics.

use super::ast::{self, Span};
use super::fasthash::{FastIndexMap, FastMap};
use super::visit::{self, Visitor};
use crate::builtins::BuiltinId;

/// One source file the names come from (the script, later tapsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId(pub u32);

impl SourceId {
    /// The script being compiled.
    pub const SCRIPT: SourceId = SourceId(0);
}

/// A local variable: one declaration (`var`, a parameter, a loop variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);

impl LocalId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A top-level variable or table (`var` at the top level of the script).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VarId(pub u32);

/// A user function (`function name() {}` at the top level of a source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncId(pub u32);

impl FuncId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a name means where it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Local(LocalId),
    Global(VarId),
    Function(FuncId),
    Builtin(BuiltinId),
    /// Nothing declares it: an event field (`argN`, a filter field), an
    /// undeclared variable (a diagnostic where it matters), ...
    Free,
}

/// A declared local.
#[derive(Clone, Debug)]
pub struct Local {
    /// The declaring name.
    pub span: Span,
}

/// A declared top-level variable (the first `var` of that name).
#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub span: Span,
}

/// A user function.
#[derive(Clone, Debug)]
pub struct Func {
    pub name: String,
    /// `None` for the script's own functions; a tapset's name for its.
    pub namespace: Option<String>,
    pub source: SourceId,
    /// The name as written in the definition.
    pub span: Span,
}

/// Every binding of one source, sorted by span for lookup.
#[derive(Default)]
struct SourceTable {
    bindings: Vec<(Span, Binding)>,
}

impl SourceTable {
    fn get(&self, span: Span) -> Option<Binding> {
        self.bindings.binary_search_by(|(s, _)| s.cmp(&span)).ok().map(|i| self.bindings[i].1)
    }
}

/// The resolver's answer for a whole program.
#[derive(Default)]
pub struct Resolution {
    sources: Vec<SourceTable>,
    locals: Vec<Local>,
    vars: FastIndexMap<String, Var>,
    funcs: Vec<Func>,
    /// The script's functions by name, then each namespace's.
    by_name: FastMap<String, FuncId>,
    by_namespace: FastMap<(String, String), FuncId>,
}

impl Resolution {
    /// What the name at `span` in the script means (a use or a
    /// declaration); `Free` when no name is there.
    pub fn binding(&self, span: Span) -> Binding {
        self.binding_in(SourceId::SCRIPT, span)
    }

    pub fn binding_in(&self, source: SourceId, span: Span) -> Binding {
        self.sources.get(source.0 as usize).and_then(|t| t.get(span)).unwrap_or(Binding::Free)
    }

    /// The local the name at `span` uses or declares.
    pub fn local(&self, span: Span) -> Option<LocalId> {
        match self.binding(span) {
            Binding::Local(l) => Some(l),
            _ => None,
        }
    }

    pub fn local_info(&self, id: LocalId) -> Option<&Local> {
        self.locals.get(id.index())
    }

    pub fn local_count(&self) -> usize {
        self.locals.len()
    }

    /// The top-level variable called `name`.
    pub fn var(&self, name: &str) -> Option<(VarId, &Var)> {
        self.vars.get_full(name).map(|(i, _, v)| (VarId(i as u32), v))
    }

    pub fn var_info(&self, id: VarId) -> Option<&Var> {
        self.vars.get_index(id.0 as usize).map(|(_, v)| v)
    }

    pub fn vars(&self) -> impl Iterator<Item = (VarId, &Var)> {
        self.vars.values().enumerate().map(|(i, v)| (VarId(i as u32), v))
    }

    /// The script's function called `name`.
    pub fn function(&self, name: &str) -> Option<FuncId> {
        self.by_name.get(name).copied()
    }

    /// A namespace's function (`ns.name`, a tapset's).
    pub fn namespaced(&self, namespace: &str, name: &str) -> Option<FuncId> {
        if self.by_namespace.is_empty() {
            return None;
        }
        self.by_namespace.get(&(namespace.to_string(), name.to_string())).copied()
    }

    pub fn func_info(&self, id: FuncId) -> Option<&Func> {
        self.funcs.get(id.index())
    }

    pub fn functions(&self) -> impl Iterator<Item = (FuncId, &Func)> {
        self.funcs.iter().enumerate().map(|(i, f)| (FuncId(i as u32), f))
    }
}

/// Resolves every name of `program` (the script).
pub fn resolve(program: &ast::Program) -> Resolution {
    resolve_with(program, &[])
}

/// Resolves the script and the function libraries it may call as
/// `namespace.name(...)` (tapsets: `(namespace, program)`, the i-th one
/// being `SourceId(i + 1)`, with spans into its own text). A library's
/// functions see their parameters, their own namespace's functions
/// unqualified, other namespaces qualified, and builtins; not the
/// script's globals.
pub fn resolve_with(program: &ast::Program, libraries: &[(&str, &ast::Program)]) -> Resolution {
    let mut r = Resolver { res: Resolution::default(), source: SourceId::SCRIPT, namespace: None, scopes: Vec::new(), outer: FastMap::default() };
    r.res.sources.push(SourceTable::default());
    r.declare_top_level(program, None);
    for (i, (ns, lib)) in libraries.iter().enumerate() {
        r.source = SourceId(i as u32 + 1);
        r.res.sources.push(SourceTable::default());
        r.declare_top_level(lib, Some(ns));
    }
    r.source = SourceId::SCRIPT;
    for s in &program.stmts {
        r.top_level(s);
    }
    for (i, (ns, lib)) in libraries.iter().enumerate() {
        r.source = SourceId(i as u32 + 1);
        r.namespace = Some(ns);
        r.outer.clear();
        for s in &lib.stmts {
            if let ast::StmtKind::Function { func, .. } = &s.kind {
                r.fresh(|r| r.visit_func(func));
            }
        }
    }
    for t in &mut r.res.sources {
        t.bindings.sort_by_key(|(s, _)| *s);
    }
    r.res
}

struct Resolver<'a> {
    res: Resolution,
    source: SourceId,
    /// The library being resolved (`None`: the script).
    namespace: Option<&'a str>,
    /// Local scopes, innermost last; empty at the top level of a source.
    scopes: Vec<Vec<(&'a str, LocalId)>>,
    /// What a name that is no local means: the same everywhere in a
    /// source (top-level names do not depend on order), so asked once.
    outer: FastMap<&'a str, Binding>,
}

impl<'a> Resolver<'a> {
    /// Globals and functions are visible everywhere, wherever declared.
    fn declare_top_level(&mut self, program: &'a ast::Program, namespace: Option<&str>) {
        for s in &program.stmts {
            match &s.kind {
                ast::StmtKind::Var { names, .. } if namespace.is_none() => {
                    for n in names {
                        self.res.vars.entry(n.name.clone()).or_insert(Var { name: n.name.clone(), span: n.span });
                    }
                }
                ast::StmtKind::Function { name, .. } => {
                    // A later definition replaces an earlier one (as the
                    // interpreter assigns it, and lowering inlines it).
                    let [only] = name.as_slice() else { continue };
                    let id = FuncId(self.res.funcs.len() as u32);
                    match namespace {
                        None => self.res.by_name.insert(only.name.clone(), id),
                        Some(ns) => self.res.by_namespace.insert((ns.to_string(), only.name.clone()), id),
                    };
                    let f = Func { name: only.name.clone(), namespace: namespace.map(str::to_string), source: self.source, span: only.span };
                    self.res.funcs.push(f);
                }
                _ => {}
            }
        }
    }

    fn bind(&mut self, span: Span, b: Binding) {
        if let Some(t) = self.res.sources.get_mut(self.source.0 as usize) {
            t.bindings.push((span, b));
        }
    }

    fn lookup(&mut self, name: &'a str) -> Binding {
        for scope in self.scopes.iter().rev() {
            if let Some((_, id)) = scope.iter().rev().find(|(n, _)| *n == name) {
                return Binding::Local(*id);
            }
        }
        if let Some(b) = self.outer.get(name) {
            return *b;
        }
        let own = match self.namespace {
            None => self.res.by_name.get(name).copied(),
            Some(ns) => self.res.namespaced(ns, name),
        };
        let b = if let (None, Some(i)) = (self.namespace, self.res.vars.get_index_of(name)) {
            Binding::Global(VarId(i as u32))
        } else if let Some(f) = own {
            Binding::Function(f)
        } else {
            match crate::builtins::find(None, name) {
                Some(b) => Binding::Builtin(b),
                None => Binding::Free,
            }
        };
        self.outer.insert(name, b);
        b
    }

    fn declare(&mut self, name: &'a ast::Ident) {
        let id = LocalId(self.res.locals.len() as u32);
        self.res.locals.push(Local { span: name.span });
        match self.scopes.last_mut() {
            Some(scope) => scope.push((&name.name, id)),
            None => self.scopes.push(vec![(&name.name, id)]),
        }
        self.bind(name.span, Binding::Local(id));
    }

    /// Runs `f` in a fresh scope stack (a body that sees no outer locals).
    fn fresh(&mut self, f: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.scopes, vec![Vec::new()]);
        f(self);
        self.scopes = outer;
    }

    fn scoped(&mut self, f: impl FnOnce(&mut Self)) {
        self.scopes.push(Vec::new());
        f(self);
        self.scopes.pop();
    }

    fn top_level(&mut self, s: &'a ast::Stmt) {
        match &s.kind {
            ast::StmtKind::Var { names, values } => {
                values.iter().for_each(|v| self.visit_expr(v));
                for n in names {
                    let b = self.lookup(&n.name);
                    self.bind(n.span, b);
                }
            }
            ast::StmtKind::Trace { filter, body, .. } => self.fresh(|r| {
                if let Some(f) = filter {
                    r.visit_expr(f);
                }
                r.visit_block(body);
            }),
            ast::StmtKind::Timer { body, .. } | ast::StmtKind::TraceEnd { body } => self.fresh(|r| r.visit_block(body)),
            ast::StmtKind::Function { name, func } => {
                for n in name.iter().take(1) {
                    let b = self.lookup(&n.name);
                    self.bind(n.span, b);
                }
                self.fresh(|r| r.visit_func(func));
            }
            _ => self.visit_stmt(s),
        }
    }
}

impl<'a> Visitor<'a> for Resolver<'a> {
    fn visit_block(&mut self, b: &'a ast::Block) {
        self.scoped(|r| visit::walk_block(r, b));
    }

    fn visit_func(&mut self, f: &'a ast::FuncBody) {
        self.scoped(|r| {
            f.params.iter().for_each(|p| r.declare(p));
            r.visit_block(&f.body);
        });
    }

    fn visit_stmt(&mut self, s: &'a ast::Stmt) {
        match &s.kind {
            // The values are evaluated before the names exist.
            ast::StmtKind::Var { names, values } => {
                values.iter().for_each(|v| self.visit_expr(v));
                names.iter().for_each(|n| self.declare(n));
            }
            ast::StmtKind::ForNum { var, start, limit, step, body } => {
                self.visit_expr(start);
                self.visit_expr(limit);
                if let Some(st) = step {
                    self.visit_expr(st);
                }
                self.scoped(|r| {
                    r.declare(var);
                    r.visit_block(body);
                });
            }
            ast::StmtKind::ForC { .. } => self.scoped(|r| visit::walk_stmt(r, s)),
            ast::StmtKind::ForIn { key, value, iter, body } => {
                self.visit_expr(iter);
                self.scoped(|r| {
                    r.declare(key);
                    if let Some(v) = value {
                        r.declare(v);
                    }
                    r.visit_block(body);
                });
            }
            // Nested definitions run in userspace as closures would.
            ast::StmtKind::Function { func, .. } => self.visit_func(func),
            // A probe nested in main-context code sees what a top-level one
            // does (globals), not the locals around it.
            ast::StmtKind::Trace { filter, body, .. } => self.fresh(|r| {
                if let Some(f) = filter {
                    r.visit_expr(f);
                }
                r.visit_block(body);
            }),
            ast::StmtKind::Timer { body, .. } | ast::StmtKind::TraceEnd { body } => self.fresh(|r| r.visit_block(body)),
            _ => visit::walk_stmt(self, s),
        }
    }

    fn visit_expr(&mut self, e: &'a ast::Expr) {
        match &e.kind {
            ast::ExprKind::Name(id) => {
                let b = self.lookup(&id.name);
                self.bind(id.span, b);
            }
            // `ns.name(...)`: a library's function, unless `ns` is a
            // variable of the script.
            ast::ExprKind::Call { callee, args } => {
                if let ast::ExprKind::Field { base, name } = &callee.kind {
                    if let ast::ExprKind::Name(ns) = &base.kind {
                        let is_variable = matches!(self.lookup(&ns.name), Binding::Local(_) | Binding::Global(_));
                        if let (false, Some(f)) = (is_variable, self.res.namespaced(&ns.name, &name.name)) {
                            self.bind(callee.span, Binding::Function(f));
                        }
                    }
                }
                self.visit_expr(callee);
                args.iter().for_each(|a| self.visit_expr(a));
            }
            _ => visit::walk_expr(self, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the whole-word occurrences of `name` start in `src`.
    fn occurrences(src: &str, name: &str) -> Vec<usize> {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        src.match_indices(name)
            .map(|(i, _)| i)
            .filter(|&i| !src[..i].chars().next_back().is_some_and(word) && !src[i + name.len()..].chars().next().is_some_and(word))
            .collect()
    }

    /// The binding of the `nth` occurrence (0-based) of `name` in `src`:
    /// `local#K` (declared by occurrence K), `global`, `function`,
    /// `builtin`, `free`.
    fn at(src: &str, name: &str, nth: usize) -> String {
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{src}: {diags:?}");
        let res = resolve(&program);
        let occ = occurrences(src, name);
        let start = occ[nth];
        match res.binding(Span::new(start, start + name.len())) {
            Binding::Local(l) => {
                let decl = res.local_info(l).map_or(0, |i| i.span.start as usize);
                format!("local#{}", occ.iter().position(|&o| o == decl).unwrap_or(usize::MAX))
            }
            Binding::Global(_) => "global".into(),
            Binding::Function(_) => "function".into(),
            Binding::Builtin(_) => "builtin".into(),
            Binding::Free => "free".into(),
        }
    }

    #[test]
    fn shadowing_by_blocks() {
        let src = "var x = 1\ntrace *:* { var x = 2 if (x) { var x = 3 print(x) } print(x) }\ntick-1s { print(x) }";
        assert_eq!(at(src, "x", 0), "global");
        assert_eq!(at(src, "x", 1), "local#1");
        assert_eq!(at(src, "x", 2), "local#1");
        assert_eq!(at(src, "x", 3), "local#3");
        assert_eq!(at(src, "x", 4), "local#3");
        assert_eq!(at(src, "x", 5), "local#1");
        assert_eq!(at(src, "x", 6), "global");
    }

    #[test]
    fn a_var_value_sees_the_outer_name() {
        let src = "trace *:* { var y = 1 if (y) { var y = y + 1 } }";
        assert_eq!(at(src, "y", 2), "local#2");
        assert_eq!(at(src, "y", 3), "local#0");
    }

    #[test]
    fn functions_see_their_parameters_and_globals_only() {
        // Any builtin value will do (named through the registry, which
        // owns the names).
        let (_, value) = crate::builtins::all().find(|(_, d)| d.form == crate::builtins::Form::Name).expect("a value builtin");
        let src = format!("var g = 0\nfunction f(a) {{ return a + g + b }}\ntrace *:* {{ var b = 1 print(f(b), {}) }}", value.name);
        assert_eq!(at(&src, "a", 1), "local#0");
        assert_eq!(at(&src, "g", 1), "global");
        assert_eq!(at(&src, "b", 0), "free");
        assert_eq!(at(&src, "f", 1), "function");
        assert_eq!(at(&src, value.name, 0), "builtin");
    }

    #[test]
    fn loops_scope_their_variables() {
        let src = "trace *:* { for (i = 1, 3) { print(i) } print(i) for (var j = 0; j < 3; j += 1) {} print(j) }";
        assert_eq!(at(src, "i", 1), "local#0");
        assert_eq!(at(src, "i", 2), "free");
        assert_eq!(at(src, "j", 1), "local#0");
        assert_eq!(at(src, "j", 2), "local#0");
        assert_eq!(at(src, "j", 3), "free");
        let src = "tick-1s { for (k, v in pairs(t)) { print(k, v) } }";
        assert_eq!(at(src, "k", 1), "local#0");
        assert_eq!(at(src, "v", 1), "local#0");
    }

    #[test]
    fn closures_see_enclosing_locals() {
        let src = "tick-1s { var n = 1 var f = function (m) { return n + m } }";
        assert_eq!(at(src, "n", 1), "local#0");
        assert_eq!(at(src, "m", 1), "local#0");
        // Each probe body starts afresh.
        let src = "trace *:* { var n = 1 } trace *:* { print(n) }";
        assert_eq!(at(src, "n", 1), "free");
    }

    #[test]
    fn library_functions_are_namespaced() {
        let lib_src = "function ip_str(x) { return helper(x) + g }\nfunction helper(y) { return y }";
        let (lib, diags) = crate::frontend::parse(lib_src);
        assert!(diags.is_empty(), "{diags:?}");
        let src = "var g = 1\ntrace *:* { print(net.ip_str(g), helper(1)) }";
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let res = resolve_with(&program, &[("net", &lib)]);
        let callee = src.find("net.ip_str").expect("call");
        let Binding::Function(f) = res.binding(Span::new(callee, callee + "net.ip_str".len())) else { panic!("not bound") };
        let info = res.func_info(f).expect("a function");
        assert_eq!((info.name.as_str(), info.namespace.as_deref(), info.source), ("ip_str", Some("net"), SourceId(1)));
        // Unqualified, a library function is not the script's.
        let h = src.find("helper").expect("helper");
        assert_eq!(res.binding(Span::new(h, h + 6)), Binding::Free);
        // Inside the library: its own functions unqualified, its locals,
        // and not the script's globals.
        let lib_at = |needle: &str, len: usize| {
            let at = lib_src.find(needle).expect("needle");
            res.binding_in(SourceId(1), Span::new(at, at + len))
        };
        assert!(matches!(lib_at("helper(x)", 6), Binding::Function(_)));
        assert!(matches!(lib_at("x) +", 1), Binding::Local(_)));
        assert_eq!(lib_at("g }", 1), Binding::Free);
        assert_eq!(res.function("helper"), None);
        assert!(res.namespaced("net", "helper").is_some());
    }

    #[test]
    fn the_last_definition_of_a_function_counts() {
        let src = "function f() { return 1 }\nfunction f() { return 2 }\ntrace *:* { print(f()) }";
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let res = resolve(&program);
        let second = src.rfind("function f").expect("definition") + "function ".len();
        let f = res.function("f").and_then(|f| res.func_info(f)).expect("f");
        assert_eq!(f.span.start as usize, second);
    }

    #[test]
    fn globals_are_visible_before_their_declaration() {
        let src = "function f() { return t[1] }\nvar t = {}";
        assert_eq!(at(src, "t", 0), "global");
        assert_eq!(at(src, "t", 1), "global");
    }
}
