//! Type inference for everything the kernel touches: top-level variables
//! and tables that probes use, and the locals of probe bodies (with the
//! functions they call). Every use counts, in probes and in the main
//! context: the first use that fixes a type is kept, and a later use of
//! another type is a compile error that shows both. Strings widen: a value
//! that is a 16-byte task name in one use and a 64-byte string in another
//! is a 64-byte string everywhere. Types propagate through locals,
//! globals, table values and function results, so the walk repeats until
//! nothing new is learned (a walk limit reached first is a diagnostic),
//! and reports on a last walk. What nothing typed is then settled by rule:
//! globals, table values and function results are numbers. Names are the
//! resolver's (`resolve.rs`): no scopes are kept here. Pure; never panics.

use super::*;
use crate::frontend::resolve::{Binding, FuncId, LocalId, Resolution, VarId};
use crate::frontend::visit;
use crate::frontend::fasthash::{FastIndexMap, FastMap, FastSet};

/// What is known of one typed thing, and the use that fixed it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fact {
    pub(super) ty: Ty,
    pub(super) span: Span,
}

/// The types inference settled on.
#[derive(Default)]
pub(super) struct Types {
    /// Top-level variables, by the resolver's id.
    pub(super) globals: FastMap<VarId, Fact>,
    pub(super) keys: FastIndexMap<String, Fact>,
    pub(super) values: FastIndexMap<String, Fact>,
    /// Probe locals and function parameters, by the resolver's id.
    pub(super) locals: FastMap<LocalId, Fact>,
    /// What user functions called from probes return, by the resolver's id.
    pub(super) returns: FastMap<FuncId, Fact>,
}

/// The longest string literal a probe can hold (its NUL makes `STR_LEN`).
pub(super) const MAX_LITERAL: usize = ir::STR_LEN as usize - 1;

/// The type of a string literal: a task-name-sized string when it fits.
pub(super) fn literal_ty(s: &[u8]) -> Ty {
    if s.len() < Ty::Comm.size() as usize {
        Ty::Comm
    } else {
        Ty::Str
    }
}

/// The type both uses can share, if any.
pub(super) fn join(a: Ty, b: Ty) -> Option<Ty> {
    match (a, b) {
        _ if a == b => Some(a),
        (Ty::Comm | Ty::Str, Ty::Comm | Ty::Str) => Some(Ty::Str),
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Global(VarId),
    Key(String),
    Value(String),
    Local(LocalId, String),
    Return(FuncId),
}

struct Infer<'a> {
    res: &'a Resolution,
    vars: &'a IndexMap<String, VarDecl>,
    functions: &'a Functions<'a>,
    t: Types,
    changed: bool,
    /// On the last walk only: conflicts become diagnostics.
    report: bool,
    diags: Vec<Diagnostic>,
    reported: FastSet<Span>,
    /// The last use that taught something new (for the walk limit).
    learned: Option<(Slot, Span)>,
    /// Functions being walked (recursion is lowering's error to report).
    calling: Vec<String>,
    /// Top-level names the probes use.
    used: FastSet<String>,
}

/// Walks over the program before inference gives up (chains of names
/// typing one another against the source order need one walk per link).
pub(super) const MAX_WALKS: usize = 8;

/// Infers the types of what `probes` (trace, profile and kdebug bodies,
/// with their filters) touch, counting the main context's uses of the same
/// names (`main`: top-level statements in order).
pub(super) fn infer(
    program: &ast::Program,
    res: &Resolution,
    vars: &IndexMap<String, VarDecl>,
    functions: &Functions<'_>,
) -> (Types, Vec<Diagnostic>) {
    let mut inf = Infer {
        res,
        vars,
        functions,
        t: Types::default(),
        changed: false,
        report: false,
        diags: Vec::new(),
        reported: FastSet::default(),
        learned: None,
        calling: Vec::new(),
        used: FastSet::default(),
    };
    // Which names the kernel uses decides which main-context uses count.
    inf.walk_probes(program);
    let used = std::mem::take(&mut inf.used);
    inf.t = Types::default();
    // Each walk can type what the last one left open (a local typed by a
    // global typed by a table...); chains are short.
    let mut settled = false;
    for _ in 0..MAX_WALKS {
        inf.changed = false;
        inf.learned = None;
        inf.main_uses(program, &used);
        inf.walk_probes(program);
        if !inf.changed {
            settled = true;
            break;
        }
    }
    if let (false, Some((slot, span))) = (settled, inf.learned.clone()) {
        let name = inf.slot_name(&slot);
        inf.diags.push(unsettled(&slot, &name, span));
    }
    // The types are settled: one more walk reports the conflicts.
    inf.report = true;
    inf.main_uses(program, &used);
    inf.walk_probes(program);
    inf.settle_defaults();
    (inf.t, inf.diags)
}

impl Infer<'_> {
    fn walk_probes(&mut self, program: &ast::Program) {
        for probe in visit::probe_bodies(program) {
            if let Some(f) = probe.filter {
                self.expr(f);
            }
            self.block(probe.body);
        }
    }

    /// What no use typed takes the default: every top-level variable and
    /// table value, and every function's result, is a number. Lowering
    /// reads these and never guesses.
    fn settle_defaults(&mut self) {
        for (name, decl) in self.vars {
            let fact = Fact { ty: Ty::Int, span: decl.span };
            if let Some((v, _)) = self.res.var(name) {
                self.t.globals.entry(v).or_insert(fact);
            }
            self.t.values.entry(name.clone()).or_insert(fact);
        }
        for (f, info) in self.res.functions() {
            self.t.returns.entry(f).or_insert(Fact { ty: Ty::Int, span: info.span });
        }
    }

    /// The top-level variable a name means here.
    fn global(&self, id: &ast::Ident) -> Option<Slot> {
        match self.res.binding(id.span) {
            Binding::Global(v) => Some(Slot::Global(v)),
            _ => None,
        }
    }

    /// The name a slot's diagnostics show.
    fn slot_name(&self, slot: &Slot) -> String {
        match slot {
            Slot::Global(v) => self.res.var_info(*v).map(|v| v.name.clone()).unwrap_or_default(),
            Slot::Key(n) | Slot::Value(n) | Slot::Local(_, n) => n.clone(),
            Slot::Return(f) => self.res.func_info(*f).map(|f| f.name.clone()).unwrap_or_default(),
        }
    }

    /// Main-context statements that give kernel-used names a type:
    /// `var x = "lit"`, `x = 5`, `t[k] = v`, `var t = {[k] = v}`.
    fn main_uses(&mut self, program: &ast::Program, used: &FastSet<String>) {
        for stmt in &program.stmts {
            match &stmt.kind {
                ast::StmtKind::Var { names, values } => {
                    for (n, v) in names.iter().zip(values) {
                        if !used.contains(&n.name) {
                            continue;
                        }
                        if let ast::ExprKind::Table(fields) = &v.kind {
                            self.table_fields(&n.name, fields);
                        } else if let (Some(ty), Some(slot)) = (self.main_literal(v), self.global(n)) {
                            self.unify(slot, ty, v.span);
                        }
                    }
                }
                ast::StmtKind::Assign { targets, values } => {
                    for (t, v) in targets.iter().zip(values) {
                        match &t.kind {
                            ast::ExprKind::Name(id) if used.contains(&id.name) => {
                                if let (Some(ty), Some(slot)) = (self.main_literal(v), self.global(id)) {
                                    self.unify(slot, ty, v.span);
                                }
                            }
                            ast::ExprKind::Index { base, index } => {
                                let ast::ExprKind::Name(id) = &base.kind else { continue };
                                if !used.contains(&id.name) {
                                    continue;
                                }
                                if let Some(ty) = self.main_literal(index) {
                                    self.unify(Slot::Key(id.name.clone()), ty, index.span);
                                }
                                if let Some(ty) = self.main_literal(v) {
                                    self.unify(Slot::Value(id.name.clone()), ty, v.span);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn table_fields(&mut self, name: &str, fields: &[ast::TableField]) {
        for f in fields {
            let (key, value) = match f {
                ast::TableField::Positional(v) => ((Some(Ty::Int), v.span), v),
                ast::TableField::Named(k, v) => ((Some(literal_ty(k.name.as_bytes())), k.span), v),
                ast::TableField::Keyed(k, v) => ((self.main_literal(k), k.span), v),
            };
            if let (Some(ty), span) = key {
                self.unify(Slot::Key(name.to_string()), ty, span);
            }
            if let Some(ty) = self.main_literal(value) {
                self.unify(Slot::Value(name.to_string()), ty, value.span);
            }
        }
    }

    /// The type of a main-context literal that reaches the kernel; a
    /// string too long for it is an error here rather than when loading.
    fn main_literal(&mut self, e: &ast::Expr) -> Option<Ty> {
        if let ast::ExprKind::Str(s) = &e.kind {
            if s.len() > MAX_LITERAL {
                if self.report && self.reported.insert(e.span) {
                    self.diags.push(
                        Diagnostic::error(e.span, format!("this string is {} bytes long; probes keep strings of at most {MAX_LITERAL} bytes", s.len()))
                            .with_label("too long for the kernel")
                            .with_note("probes use this variable or table, so its strings live in the kernel"),
                    );
                }
                return None;
            }
        }
        main_literal(e)
    }

    fn fact(&self, slot: &Slot) -> Option<Fact> {
        match slot {
            Slot::Global(v) => self.t.globals.get(v).copied(),
            Slot::Key(n) => self.t.keys.get(n).copied(),
            Slot::Value(n) => self.t.values.get(n).copied(),
            Slot::Local(s, _) => self.t.locals.get(s).copied(),
            Slot::Return(f) => self.t.returns.get(f).copied(),
        }
    }

    fn set(&mut self, slot: &Slot, fact: Fact, at: Span) {
        self.changed = true;
        self.learned = Some((slot.clone(), at));
        match slot {
            Slot::Global(v) => {
                self.t.globals.insert(*v, fact);
            }
            Slot::Key(n) => {
                self.t.keys.insert(n.clone(), fact);
            }
            Slot::Value(n) => {
                self.t.values.insert(n.clone(), fact);
            }
            Slot::Local(s, _) => {
                self.t.locals.insert(*s, fact);
            }
            Slot::Return(f) => {
                self.t.returns.insert(*f, fact);
            }
        }
    }

    /// Records that `slot` holds a `ty` at `span`; a use of another type
    /// is a conflict, reported on the last walk.
    fn unify(&mut self, slot: Slot, ty: Ty, span: Span) {
        if matches!(ty, Ty::ArgStr { .. }) {
            return;
        }
        // A string global holds 64 bytes whatever its uses: ticks and the
        // main context may give it longer strings at run time.
        let ty = if matches!(slot, Slot::Global(_)) && ty == Ty::Comm { Ty::Str } else { ty };
        let Some(old) = self.fact(&slot) else {
            self.set(&slot, Fact { ty, span }, span);
            return;
        };
        match join(old.ty, ty) {
            Some(j) if j == old.ty => {}
            Some(j) => self.set(&slot, Fact { ty: j, span: old.span }, span),
            // A number where a string lives becomes its decimal text, as
            // in ktap: a warning at the number, and the slot a string.
            None if !matches!(slot, Slot::Return(_)) && matches!((old.ty, ty), (Ty::Int, Ty::Comm | Ty::Str) | (Ty::Comm | Ty::Str, Ty::Int)) => {
                let number_at = if ty == Ty::Int { span } else { old.span };
                if self.report && self.reported.insert(number_at) {
                    let name = self.slot_name(&slot);
                    self.diags.push(to_text(&slot, &name, number_at));
                }
                if old.ty != Ty::Str {
                    let string_at = if ty == Ty::Int { old.span } else { span };
                    self.set(&slot, Fact { ty: Ty::Str, span: string_at }, span);
                }
            }
            None => {
                if self.report && self.reported.insert(span) {
                    let name = self.slot_name(&slot);
                    self.diags.push(conflict(&slot, &name, ty, span, old));
                }
            }
        }
    }

    /// The local the name at this use or declaration binds to.
    fn local(&self, id: &ast::Ident) -> Option<Slot> {
        match self.res.binding(id.span) {
            Binding::Local(l) => Some(Slot::Local(l, id.name.clone())),
            _ => None,
        }
    }

    fn declare(&mut self, name: &ast::Ident, ty: Option<Ty>, at: Span) {
        if let (Some(slot), Some(ty)) = (self.local(name), ty) {
            self.unify(slot, ty, at);
        }
    }

    fn block(&mut self, b: &ast::Block) {
        for s in &b.stmts {
            self.stmt(s);
        }
    }

    /// The slot an assignment target names, if it is typed here.
    fn target(&mut self, t: &ast::Expr) -> Option<Slot> {
        match &t.kind {
            ast::ExprKind::Name(id) => {
                if let Some(slot) = self.local(id) {
                    return Some(slot);
                }
                let slot = self.global(id)?;
                self.used.insert(id.name.clone());
                Some(slot)
            }
            ast::ExprKind::Index { base, index } => {
                let ast::ExprKind::Name(id) = &base.kind else { return None };
                self.used.insert(id.name.clone());
                self.key_use(&id.name, index);
                Some(Slot::Value(id.name.clone()))
            }
            _ => None,
        }
    }

    fn stmt(&mut self, s: &ast::Stmt) {
        match &s.kind {
            ast::StmtKind::Var { names, values } => {
                let tys: Vec<Option<Ty>> = values.iter().map(|v| self.expr(v)).collect();
                for (i, n) in names.iter().enumerate() {
                    let at = values.get(i).map_or(n.span, |v| v.span);
                    let ty = match values.get(i) {
                        Some(_) => tys[i],
                        None => Some(Ty::Int),
                    };
                    self.declare(n, ty, at);
                    // `var s = t[k]` with s typed by later uses types t.
                    let later = self.res.local(n.span).and_then(|l| self.t.locals.get(&l).copied());
                    if let (None, Some(v), Some(f)) = (ty, values.get(i), later) {
                        self.hint(v, f.ty);
                    }
                }
            }
            ast::StmtKind::Assign { targets, values } => {
                let tys: Vec<Option<Ty>> = values.iter().map(|v| self.expr(v)).collect();
                for (i, t) in targets.iter().enumerate() {
                    let slot = self.target(t);
                    let (Some(slot), Some(v)) = (slot, values.get(i)) else { continue };
                    match tys.get(i).copied().flatten() {
                        // `t[k] = nil` deletes: it says nothing of the values.
                        _ if matches!(v.kind, ast::ExprKind::Nil) => {}
                        Some(ty) => self.unify(slot, ty, v.span),
                        // `x = t[k]` with x known tells what t holds.
                        None => {
                            if let Some(f) = self.fact(&slot) {
                                self.hint(v, f.ty);
                            }
                        }
                    }
                }
            }
            ast::StmtKind::AddAssign { target, value } => {
                self.expr(value);
                if let Some(slot) = self.target(target) {
                    self.unify(slot, Ty::Int, target.span);
                }
            }
            ast::StmtKind::Expr(e) => {
                self.expr(e);
            }
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
            ast::StmtKind::ForNum { var, body, .. } => {
                self.declare(var, Some(Ty::Int), var.span);
                self.block(body);
            }
            ast::StmtKind::ForC { init, cond, step, body } => {
                if let Some(i) = init {
                    self.stmt(i);
                }
                if let Some(c) = cond {
                    self.expr(c);
                }
                if let Some(st) = step {
                    self.stmt(st);
                }
                self.block(body);
            }
            ast::StmtKind::Return(Some(e)) => {
                let ty = self.expr(e);
                if let (Some(f), Some(ty)) = (self.calling.last().and_then(|f| self.res.function(f)), ty) {
                    self.unify(Slot::Return(f), ty, e.span);
                }
            }
            ast::StmtKind::Block(b) => self.block(b),
            _ => {}
        }
    }

    /// The type of a probe expression, when it is known yet.
    fn expr(&mut self, e: &ast::Expr) -> Option<Ty> {
        match &e.kind {
            ast::ExprKind::Int(_) | ast::ExprKind::Bool(_) => Some(Ty::Int),
            ast::ExprKind::Str(s) => Some(literal_ty(s)),
            ast::ExprKind::Nil | ast::ExprKind::Error | ast::ExprKind::Table(_) | ast::ExprKind::Function(_) => None,
            ast::ExprKind::Name(id) => self.name(id),
            ast::ExprKind::Field { base, .. } => {
                // `args.name`: event fields are numbers (fetched strings
                // of dynamic probes are typed when lowered).
                self.expr(base);
                None
            }
            ast::ExprKind::Unary { operand, .. } => {
                self.expr(operand);
                Some(Ty::Int)
            }
            ast::ExprKind::Binary { op, lhs, rhs } => {
                let (l, r) = (self.expr(lhs), self.expr(rhs));
                // Comparing with a string: an untyped variable or table
                // element compared holds strings. (A join takes numbers
                // too, as their text: its operands' use says nothing.)
                if matches!(op, ast::BinOp::Eq | ast::BinOp::Ne) {
                    match (l, r) {
                        (_, Some(t)) if t.is_string() => self.hint(lhs, t),
                        (Some(t), _) if t.is_string() => self.hint(rhs, t),
                        _ => {}
                    }
                }
                Some(if *op == ast::BinOp::Concat { Ty::Str } else { Ty::Int })
            }
            ast::ExprKind::Index { base, index } => {
                let ast::ExprKind::Name(id) = &base.kind else { return None };
                self.used.insert(id.name.clone());
                self.key_use(&id.name, index);
                self.fact(&Slot::Value(id.name.clone())).map(|f| f.ty)
            }
            ast::ExprKind::Call { callee, args } => self.call(callee, args),
        }
    }

    /// `table[index]`: the index is a use of the key type, and a key type
    /// already known types an index that is a variable or table element.
    fn key_use(&mut self, table: &str, index: &ast::Expr) {
        match self.expr(index) {
            Some(ty) => self.unify(Slot::Key(table.to_string()), ty, index.span),
            None => {
                if let Some(f) = self.fact(&Slot::Key(table.to_string())) {
                    self.hint(index, f.ty);
                }
            }
        }
    }

    /// Gives the variable or table element `e` names the type `ty`, when
    /// nothing typed it yet.
    fn hint(&mut self, e: &ast::Expr, ty: Ty) {
        let slot = match &e.kind {
            ast::ExprKind::Name(id) => match self.local(id).or_else(|| self.global(id)) {
                Some(slot) => slot,
                None => return,
            },
            ast::ExprKind::Index { base, .. } => match &base.kind {
                ast::ExprKind::Name(id) => Slot::Value(id.name.clone()),
                _ => return,
            },
            _ => return,
        };
        // Only an untyped slot learns from the other side: a task-name
        // local compared with a longer string stays a task name (the
        // comparison pads it), and a number never becomes a string here.
        if self.fact(&slot).is_none() {
            self.unify(slot, ty, e.span);
        }
    }

    fn name(&mut self, id: &ast::Ident) -> Option<Ty> {
        if let Some(slot) = self.local(id) {
            return self.fact(&slot).map(|f| f.ty);
        }
        if let Some(slot) = self.global(id) {
            self.used.insert(id.name.clone());
            return self.fact(&slot).map(|f| f.ty);
        }
        if let Some(b) = crate::builtins::name(&id.name) {
            return crate::builtins::kernel_ty(b);
        }
        match id.name.as_str() {
            "retval" => Some(Ty::Int),
            n if n.strip_prefix("arg").is_some_and(|d| d.parse::<usize>().is_ok()) => Some(Ty::Int),
            _ => None,
        }
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Expr]) -> Option<Ty> {
        let tys: Vec<Option<Ty>> = args.iter().map(|a| self.expr(a)).collect();
        if let Some(b) = crate::builtins::callee(callee) {
            return crate::builtins::kernel_ty(b);
        }
        let ast::ExprKind::Name(id) = &callee.kind else { return None };
        let name = id.name.as_str();
        let func = self.functions.get(name)?;
        if self.calling.iter().any(|f| f == name) {
            return None;
        }
        self.calling.push(name.to_string());
        for (p, (a, ty)) in func.params.iter().zip(args.iter().zip(&tys)) {
            self.declare(p, *ty, a.span);
            // An untyped argument takes the parameter's type.
            let param = self.res.local(p.span).and_then(|l| self.t.locals.get(&l).copied());
            if let (None, Some(f)) = (ty, param) {
                self.hint(a, f.ty);
            }
        }
        self.block(&func.body);
        self.calling.pop();
        let f = self.res.function(name)?;
        self.fact(&Slot::Return(f)).map(|f| f.ty)
    }
}

/// The type of a main-context value, when it is a literal.
fn main_literal(e: &ast::Expr) -> Option<Ty> {
    match &e.kind {
        ast::ExprKind::Int(_) | ast::ExprKind::Bool(_) => Some(Ty::Int),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } if matches!(operand.kind, ast::ExprKind::Int(_)) => Some(Ty::Int),
        ast::ExprKind::Str(s) => Some(literal_ty(s)),
        _ => None,
    }
}

/// The walk limit was reached while uses still taught new types.
fn unsettled(slot: &Slot, n: &str, span: Span) -> Diagnostic {
    let what = match slot {
        Slot::Global(_) | Slot::Local(..) => format!("`{n}`"),
        Slot::Key(_) => format!("the keys of table `{n}`"),
        Slot::Value(_) => format!("the values of table `{n}`"),
        Slot::Return(_) => format!("what `{n}` returns"),
    };
    Diagnostic::error(span, format!("the type of {what} is still changing after {MAX_WALKS} walks over the script"))
        .with_label("typed here on the last walk")
        .with_note("names here type one another in a chain that runs against the source order: give one of them its type where it is declared (e.g. `var x = \"\"` or `var x = 0`)")
}

/// The warning for a number given where strings live.
fn to_text(slot: &Slot, n: &str, span: Span) -> Diagnostic {
    let what = match slot {
        Slot::Key(_) => format!("table `{n}` is keyed by strings: this number key becomes its decimal text"),
        Slot::Value(_) => format!("table `{n}` holds strings: this number becomes its decimal text"),
        _ => format!("`{n}` holds a string: this number becomes its decimal text"),
    };
    Diagnostic::warning(span, what).with_label("a number").with_note("as in ktap; `tostring(n)` says so without this warning")
}

fn conflict(slot: &Slot, n: &str, ty: Ty, span: Span, old: Fact) -> Diagnostic {
    let (new, was) = (ty_name(ty), ty_name(old.ty));
    let d = match slot {
        Slot::Global(_) => Diagnostic::error(span, format!("`{n}` is given a {new} here"))
            .with_label(format!("a {new}"))
            .with_secondary(old.span, format!("but a {was} here")),
        Slot::Local(..) => Diagnostic::error(span, format!("`{n}` is given a {new} here"))
            .with_label(format!("a {new}"))
            .with_secondary(old.span, format!("but a {was} here")),
        Slot::Key(_) => Diagnostic::error(span, format!("table `{n}` is keyed by a {new} here"))
            .with_label(format!("a {new} key"))
            .with_secondary(old.span, format!("but by a {was} here")),
        Slot::Value(_) => Diagnostic::error(span, format!("table `{n}` is given a {new} value here"))
            .with_label(format!("a {new}"))
            .with_secondary(old.span, format!("but a {was} here")),
        Slot::Return(_) => Diagnostic::error(span, format!("`{n}` returns a {new} here"))
            .with_label(format!("a {new}"))
            .with_secondary(old.span, format!("but a {was} here")),
    };
    d.with_note("what the kernel touches has one type in every use")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves and infers `src` (probes on `profile-1ms`, which needs no
    /// events): what inference settled and its diagnostics.
    fn typed(src: &str) -> (Types, Resolution, Vec<Diagnostic>) {
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{src}: {diags:?}");
        let res = crate::frontend::resolve::resolve(&program);
        let mut vars = IndexMap::new();
        let mut functions = IndexMap::new();
        for s in &program.stmts {
            match &s.kind {
                ast::StmtKind::Var { names, .. } => {
                    for n in names {
                        vars.insert(n.name.clone(), VarDecl { zero_init: true, table: None, span: n.span });
                    }
                }
                ast::StmtKind::Function { name, func } => {
                    functions.insert(name[0].name.clone(), func);
                }
                _ => {}
            }
        }
        let (types, diags) = infer(&program, &res, &vars, &functions);
        (types, res, diags)
    }

    fn local_ty(src: &str, decl: &str) -> Option<Ty> {
        let (types, res, diags) = typed(src);
        assert!(diags.is_empty(), "{src}: {diags:?}");
        let at = src.find(decl).expect("declaration") + decl.len() - 1;
        let l = res.local(Span::new(at, at + 1))?;
        types.locals.get(&l).map(|f| f.ty)
    }

    #[test]
    fn shadowed_locals_have_their_own_types() {
        let src = "profile-1ms { var x = 1 if (x) { var x = \"s\" print(x) } print(x) }";
        assert_eq!(local_ty(src, "var x"), Some(Ty::Int));
        assert_eq!(local_ty(src, "(x) { var x"), Some(Ty::Comm));
    }

    #[test]
    fn functions_type_parameters_and_results_from_calls() {
        let src = "function f(a) { return a } profile-1ms { print(f(execname)) }";
        let (types, res, diags) = typed(src);
        assert!(diags.is_empty(), "{diags:?}");
        let a = src.find("(a)").expect("param") + 1;
        let l = res.local(Span::new(a, a + 1)).expect("a local");
        assert_eq!(types.locals.get(&l).map(|f| f.ty), Some(Ty::Comm));
        let f = res.function("f").expect("f");
        assert_eq!(types.returns.get(&f).map(|f| f.ty), Some(Ty::Comm));
        // A function nothing typed returns a number, by rule.
        let (types, res, _) = typed("function g() { } profile-1ms { g() }");
        let g = res.function("g").expect("g");
        assert_eq!(types.returns.get(&g).map(|f| f.ty), Some(Ty::Int));
    }

    #[test]
    fn a_conflict_shows_both_uses() {
        let src = "var v\nprofile-1ms { v = 1 }\nprofile-1ms { v = stack() }";
        let (_, _, diags) = typed(src);
        assert_eq!(diags.len(), 1, "{diags:?}");
        let d = &diags[0];
        assert_eq!(d.message, "`v` is given a stack trace here");
        assert_eq!(&src[d.span.range()], "stack()");
        assert_eq!(d.secondary.iter().map(|(s, _)| &src[s.range()]).collect::<Vec<_>>(), ["1"]);
    }

    #[test]
    fn a_number_where_a_string_lives_is_its_text_with_a_warning() {
        // Either order: the slot is a string, the warning at the number.
        for src in ["var v\nprofile-1ms { v = 1 }\nprofile-1ms { v = \"s\" }", "var v\nprofile-1ms { v = \"s\" }\nprofile-1ms { v = 1 }"] {
            let (types, res, diags) = typed(src);
            assert_eq!(diags.len(), 1, "{diags:?}");
            assert!(!diags[0].is_error());
            assert_eq!(diags[0].message, "`v` holds a string: this number becomes its decimal text");
            assert_eq!(&src[diags[0].span.range()], "1");
            let v = res.var("v").map(|(v, _)| v).expect("v");
            assert_eq!(types.globals.get(&v).map(|f| f.ty), Some(Ty::Str));
        }
    }

    #[test]
    fn a_chain_that_does_not_settle_is_reported() {
        // Each `xN = xN+1` learns its type one walk after the next one.
        let n = MAX_WALKS + 2;
        let mut src: String = (1..=n).map(|i| format!("var x{i}\n")).collect();
        src.push_str("profile-1ms {\n");
        for i in 1..n {
            src.push_str(&format!("    x{i} = x{}\n", i + 1));
        }
        src.push_str(&format!("    x{n} = \"s\"\n}}\n"));
        let (_, _, diags) = typed(&src);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("is still changing after 8 walks"), "{:?}", diags[0]);
        // A chain one walk shorter settles (the last walk learns nothing).
        let short: String = src.replace("    x1 = x2\n", "").replace("    x2 = x3\n", "").replace("    x3 = x4\n", "");
        let (types, res, diags) = typed(&short);
        assert!(diags.is_empty(), "{diags:?}");
        let (x4, _) = res.var("x4").expect("x4");
        assert_eq!(types.globals.get(&x4).map(|f| f.ty), Some(Ty::Str));
    }
}
