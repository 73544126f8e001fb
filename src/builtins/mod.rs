//! Builtins: one definition per builtin (its name, namespace, where it may
//! run, its kernel type, how a probe lowers it and how userspace runs it),
//! grouped by topic, in one registry. Every other module asks the registry;
//! no builtin's name is spelled anywhere else. Never does IO itself: output
//! goes to the writer userspace hands in.
//!
//! Adding a builtin: one entry in the topic file it belongs to (a new topic
//! is a new file and one line in [`TOPICS`]).

use std::sync::OnceLock;

use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir;
use crate::runtime::interp::Value;
use crate::runtime::output::Output;
use crate::span::Span;

mod aggregates;
mod output;
mod probes;
mod stacks;
mod strings;
mod system;
mod tables;
mod task;
mod time;

pub use crate::runtime::interp::Throw;
pub use output::count_conversions;
pub use probes::PROBE_NAMESPACE;
pub use tables::is_constructor;

/// One builtin.
pub struct Def {
    /// `table` for `table.new`; `None` for a global name.
    pub namespace: Option<&'static str>,
    pub name: &'static str,
    /// Whether scripts write it as a name (`pid`) or call it (`pid()`).
    pub form: Form,
    /// How a probe runs it; `None`: userspace only.
    pub kernel: Option<Kernel>,
    /// How userspace runs it; `None`: probes only.
    pub user: Option<UserFn>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A value read by name: `pid`, `execname`.
    Name,
    /// A function: `print(x)`, `table.new(0, 8)`.
    Call,
}

/// What a builtin is in a probe.
#[derive(Clone, Copy)]
pub enum Kernel {
    /// It yields a value of this type (what type inference learns from it)
    /// by this lowering.
    Value { ty: ir::Ty, lower: LowerValue },
    /// It is a statement: a record sent to userspace, or any other action.
    Action(LowerAction),
    /// It is a pointer to a kernel struct of this BTF name, reached at
    /// `base`: a number as a value, and the root of member chains
    /// (`curtask.pid`).
    Typed { strukt: &'static str, base: ir::PathBase },
    /// Assigned to a table element (`t[k] = hist(v)`), it makes the
    /// table's entries aggregates of a kind: which, and the value folded in.
    Aggregate(MakeAgg),
}

pub type LowerValue = fn(&mut dyn KernelCx, &Call) -> Option<ir::Expr>;
pub type LowerAction = fn(&mut dyn KernelCx, &Call) -> Option<ir::Stmt>;
pub type MakeAgg = for<'a> fn(&Call<'a>) -> Result<aggregates::Made<'a>, Diagnostic>;
pub type UserFn = fn(&mut UserCx, &[Value]) -> Result<Value, Throw>;

/// A use of a builtin in a probe: its arguments (none for a name) and where.
pub struct Call<'a> {
    pub name: &'static str,
    pub args: &'a [ast::Expr],
    pub span: Span,
}

impl Call<'_> {
    /// Reports arguments given to a builtin that takes none.
    pub fn no_args(&self, cx: &mut dyn KernelCx) {
        if !self.args.is_empty() {
            cx.diag(Diagnostic::error(self.span, format!("{}() takes no arguments", self.name)));
        }
    }

    pub fn value(&self, kind: ir::ExprKind, ty: ir::Ty) -> ir::Expr {
        ir::Expr { kind, ty, span: Some(self.span) }
    }
}

/// What a builtin's kernel lowering may ask of the compiler (implemented
/// by the frontend's lowering of the probe being compiled).
pub trait KernelCx {
    /// Lowers an argument.
    fn lower(&mut self, e: &ast::Expr) -> Option<ir::Expr>;
    /// Lowers an argument that must be a number.
    fn lower_number(&mut self, e: &ast::Expr) -> Option<ir::Expr>;
    fn diag(&mut self, d: Diagnostic);
    /// The map stack ids go to (created on first use).
    fn stack_map(&mut self) -> ir::MapId;
    /// Whether every event of the probe is a syscall event.
    fn only_syscalls(&self) -> bool;
    /// How to read the kernel per-CPU variable `name`, or why not (asked
    /// of the kernel once per variable).
    fn percpu_var(&mut self, name: &str) -> Result<ir::PercpuAccess, String>;
    /// The bit offset of the one-bit field `member` of `task_struct`, from
    /// the kernel's BTF, or why it is unknown.
    fn task_flag_bit(&mut self, member: &str) -> Result<u32, String>;
    /// `task_struct.comm`'s offset, when the kernel's BTF gives it.
    fn task_comm_offset(&mut self) -> Option<u32>;
    /// The CO-RE record of `task_struct.comm` when the task name must be
    /// read relocatably (objects saved to run elsewhere); None otherwise.
    fn task_comm_record(&mut self) -> Option<ir::core::CoreField>;
    /// The global holding CLOCK_REALTIME minus CLOCK_BOOTTIME.
    fn boot_to_real(&self) -> Option<ir::GlobalId>;
    /// Splits record arguments into literals (kept in userspace) and
    /// lowered values: (field types, literals with their positions, values).
    #[expect(clippy::type_complexity, reason = "three parallel results of one pass")]
    fn record_args(&mut self, args: &[ast::Expr]) -> Option<(Vec<ir::Ty>, Vec<(usize, ir::SiteConst)>, Vec<ir::Expr>)>;
    /// A new record type crossing the ring buffer.
    fn site(&mut self, kind: ir::SiteKind, fields: Vec<ir::Ty>, consts: Vec<(usize, ir::SiteConst)>, span: Span) -> ir::SiteId;
    /// Whether `name` is a table declared at the top level.
    fn is_table(&self, name: &str) -> bool;
    /// Whether the probe's prints go into the seq_file of an iterator
    /// being read (`ir::StmtKind::SeqPrint`) rather than the ring buffer.
    fn seq_file(&self) -> bool;
    /// `iter_end`: whether this is the iterator's last, object-less run
    /// (reported when the probe is no iterator).
    fn iter_end(&mut self, span: Span) -> Option<ir::Expr>;
    /// Reports what probes cannot do yet.
    fn unsupported(&mut self, span: Span, what: &str) {
        self.diag(Diagnostic::error(span, format!("{what} is not supported yet in probe bodies")).with_label("not supported yet"));
    }
}

/// What a userspace builtin may use: the output and its own name.
pub struct UserCx<'a> {
    pub out: &'a mut dyn Output,
    pub name: &'static str,
}

impl UserCx<'_> {
    /// Output errors (a closed pipe) are not the script's fault and must
    /// not stop it: they are dropped here.
    pub fn emitted(&mut self, written: std::io::Result<()>) {
        let _ = written;
    }

    /// Terminal control bytes (`ansi.*`).
    pub fn terminal(&mut self, bytes: &[u8]) {
        let written = self.out.terminal(bytes);
        self.emitted(written);
    }

    /// Argument #`n` (1-based) was `got` (`None`: not passed at all).
    pub fn bad(&self, n: usize, expected: &str, got: Option<&Value>) -> Throw {
        let got = got.map_or("no value", Value::type_name);
        Throw::msg(crate::runtime::interp::bad_arg(n, self.name, expected, got))
    }

    pub fn table(&self, args: &[Value], i: usize) -> Result<std::rc::Rc<std::cell::RefCell<crate::runtime::interp::Table>>, Throw> {
        match args.get(i) {
            Some(Value::Table(t)) => Ok(t.clone()),
            other => Err(self.bad(i + 1, "table", other)),
        }
    }

    pub fn int(&self, args: &[Value], i: usize) -> Result<i64, Throw> {
        let v = args.get(i);
        v.and_then(Value::to_int).ok_or_else(|| self.bad(i + 1, "number", v))
    }
}

/// Every topic's builtins.
const TOPICS: &[&[Def]] = &[aggregates::DEFS, task::DEFS, time::DEFS, strings::DEFS, stacks::DEFS, output::DEFS, tables::DEFS, system::DEFS, probes::DEFS];

/// A builtin: its index in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BuiltinId(u16);

struct Registry {
    all: Vec<&'static Def>,
    /// `(namespace, name)` of every builtin, sorted, for binary search (a
    /// lookup runs for every name the compiler meets: cheaper than hashing).
    sorted: Vec<(Option<&'static str>, &'static str, BuiltinId)>,
    /// Global builtins by the length of their name: the compiler looks up
    /// every name it meets, so this must cost a few instructions.
    by_len: Vec<Vec<(&'static str, BuiltinId)>>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let all: Vec<&'static Def> = TOPICS.iter().flat_map(|t| t.iter()).collect();
        let mut sorted: Vec<_> = all.iter().enumerate().map(|(i, d)| (d.namespace, d.name, BuiltinId(i as u16))).collect();
        sorted.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut by_len: Vec<Vec<(&'static str, BuiltinId)>> = Vec::new();
        for &(ns, name, id) in sorted.iter().filter(|e| e.0.is_none()) {
            debug_assert!(ns.is_none());
            if by_len.len() <= name.len() {
                by_len.resize(name.len() + 1, Vec::new());
            }
            by_len[name.len()].push((name, id));
        }
        Registry { all, sorted, by_len }
    })
}

impl BuiltinId {
    pub fn def(self) -> &'static Def {
        registry().all[self.0 as usize]
    }

    /// `ns.name` or `name`, as scripts write it.
    pub fn display(self) -> String {
        let d = self.def();
        match d.namespace {
            Some(ns) => format!("{ns}.{}", d.name),
            None => d.name.to_string(),
        }
    }
}

/// Every builtin, in registry order.
pub fn all() -> impl Iterator<Item = (BuiltinId, &'static Def)> {
    registry().all.iter().enumerate().map(|(i, d)| (BuiltinId(i as u16), *d))
}

/// The builtin a script names: `name` (global) or `ns.name`.
pub fn find(namespace: Option<&str>, name: &str) -> Option<BuiltinId> {
    let r = registry();
    if namespace.is_none() {
        return r.by_len.get(name.len())?.iter().find(|e| e.0 == name).map(|e| e.1);
    }
    r.sorted.binary_search_by(|e| (e.0, e.1).cmp(&(namespace, name))).ok().map(|i| r.sorted[i].2)
}

/// A global builtin written as a name (`pid`).
pub fn name(name: &str) -> Option<BuiltinId> {
    find(None, name).filter(|b| b.def().form == Form::Name)
}

/// A builtin called as a function, from its callee expression (`f` or
/// `ns.f`).
pub fn callee(e: &ast::Expr) -> Option<BuiltinId> {
    let b = match &e.kind {
        ast::ExprKind::Name(id) => find(None, &id.name),
        ast::ExprKind::Field { base, name } => match &base.kind {
            ast::ExprKind::Name(ns) => find(Some(&ns.name), &name.name),
            _ => None,
        },
        _ => None,
    }?;
    (b.def().form == Form::Call).then_some(b)
}

/// Runs a userspace builtin.
pub fn call_user(b: BuiltinId, args: &[Value], out: &mut dyn Output) -> Result<Value, Throw> {
    let d = b.def();
    let mut cx = UserCx { out, name: d.name };
    match d.user {
        Some(f) => f(&mut cx, args),
        None => Err(Throw::msg(format!("{}() only works in probes", b.display()))),
    }
}

/// Lowers a builtin used for its value in a probe; `None` with a
/// diagnostic when it has none there.
pub fn lower_value(b: BuiltinId, cx: &mut dyn KernelCx, args: &[ast::Expr], span: Span, callee_span: Span) -> Option<ir::Expr> {
    let d = b.def();
    let call = Call { name: d.name, args, span };
    match d.kernel {
        Some(Kernel::Value { lower, .. }) => lower(cx, &call),
        Some(Kernel::Typed { base, .. }) => {
            call.no_args(cx);
            Some(call.value(ir::ExprKind::Load(ir::Path::plain(base, Vec::new(), 0, 0, ir::Via::Direct)), ir::Ty::Int))
        }
        Some(Kernel::Aggregate(_)) => {
            aggregate_elsewhere(cx, span, &b.display());
            None
        }
        Some(Kernel::Action(_)) => {
            cx.unsupported(callee_span, &format!("calling `{}` for its value", b.display()));
            None
        }
        None => {
            userspace_only(cx, span, &b.display());
            None
        }
    }
}

/// Lowers a builtin called as a statement in a probe.
pub fn lower_action(b: BuiltinId, cx: &mut dyn KernelCx, args: &[ast::Expr], span: Span, callee_span: Span) -> Option<ir::Stmt> {
    let d = b.def();
    let call = Call { name: d.name, args, span };
    match d.kernel {
        Some(Kernel::Action(lower)) => lower(cx, &call),
        Some(Kernel::Aggregate(_)) => {
            aggregate_elsewhere(cx, span, &b.display());
            None
        }
        Some(Kernel::Value { .. } | Kernel::Typed { .. }) => {
            cx.unsupported(callee_span, &format!("calling `{}`", b.display()));
            None
        }
        None => {
            userspace_only(cx, span, &b.display());
            None
        }
    }
}

/// The kernel type of a builtin's value (for type inference).
pub fn kernel_ty(b: BuiltinId) -> Option<ir::Ty> {
    match b.def().kernel {
        Some(Kernel::Value { ty, .. }) => Some(ty),
        Some(Kernel::Typed { .. }) => Some(ir::Ty::Int),
        // What a table of aggregates holds as far as inference goes: the
        // numbers updates fold in.
        Some(Kernel::Aggregate(_)) => Some(ir::Ty::Int),
        _ => None,
    }
}

/// A builtin that is a typed kernel pointer: its struct's BTF name and
/// where it is reached.
pub fn typed_root(b: BuiltinId) -> Option<(&'static str, ir::PathBase)> {
    match b.def().kernel {
        Some(Kernel::Typed { strukt, base }) => Some((strukt, base)),
        _ => None,
    }
}

/// Whether only probes can run it.
pub fn kernel_only(b: BuiltinId) -> bool {
    b.def().user.is_none()
}

/// If `e` calls an aggregating builtin (`hist(v)`): the kind it makes and
/// the value folded in, or what is wrong with the call.
pub fn aggregate(e: &ast::Expr) -> Option<Result<aggregates::Made<'_>, Diagnostic>> {
    let ast::ExprKind::Call { callee: c, args } = &e.kind else { return None };
    let b = callee(c)?;
    let Some(Kernel::Aggregate(make)) = b.def().kernel else { return None };
    Some(make(&Call { name: b.def().name, args, span: e.span }))
}

fn aggregate_elsewhere(cx: &mut dyn KernelCx, span: Span, name: &str) {
    cx.diag(
        Diagnostic::error(span, format!("`{name}()` makes an aggregate: assign it to a table element"))
            .with_label("not a value")
            .with_note(format!("write `t[key] = {name}(...)` (or `v = {name}(...)`, `v` a top-level variable) in a probe, and print or read it in a tick-N or trace_end block")),
    );
}

fn userspace_only(cx: &mut dyn KernelCx, span: Span, name: &str) {
    cx.diag(
        Diagnostic::error(span, format!("`{name}` only works in userspace (main, tick-N, trace_end), not in a probe"))
            .with_label("userspace only")
            .with_note("probes can count into tables and print; walk and format the tables in a tick-N or trace_end block"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// A builtin's name is spelled in one source file: its topic's. (Not
    /// counted: the same word meaning something else — the BPF `exit`
    /// instruction in the disassembler, a syscall's exit, the `$stack`
    /// fetch argument, JSON output's record types, `task_struct.pid` and
    /// `vfs_read`'s `count` in the fake kernel BTF.)
    #[test]
    fn each_builtin_is_named_in_one_file() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let texts: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.strip_prefix(&src).unwrap_or(f).display().to_string(), std::fs::read_to_string(f).unwrap_or_default()))
            .collect();
        let other_meaning = [
            ("exit", "bpfgen/disasm.rs"),
            ("exit", "frontend/providers/raw_syscalls.rs"),
            ("stack", "frontend/fetch.rs"),
            ("print", "runtime/output/json.rs"),
            ("printf", "runtime/output/json.rs"),
            ("print_hist", "runtime/output/json.rs"),
            ("pid", "facts/fake.rs"),
            // The iterator target `iter:cgroup`.
            ("cgroup", "frontend/providers/iter.rs"),
            ("count", "facts/fake.rs"),
        ];
        // An aggregating builtin's word is also its kind's name and its
        // entry's field names (`ir/agg/`), which output shows as a table's
        // `kind` and as JSON fields (a bucket's `"min"`, `"max"`,
        // `"count"`): those files and their tests may spell it.
        let kind_word = |d: &Def, path: &str| {
            matches!(d.kernel, Some(Kernel::Aggregate(_)))
                && (path.starts_with("ir/agg/") || ["runtime/output/json.rs", "runtime/format.rs", "runtime/metrics.rs"].contains(&path))
        };
        let mut checked = 0;
        for (id, d) in all() {
            // Namespaced userspace helpers (`ansi.*`, `kdebug.*`) are looked
            // up with their namespace; their bare words are common.
            if d.kernel.is_none() && d.namespace.is_some() {
                continue;
            }
            let quoted = format!("\"{}\"", d.name);
            let found: Vec<&str> = texts
                .iter()
                // (This file names some of them in the list above.)
                .filter(|(path, text)| path != "builtins/mod.rs" && text.contains(&quoted) && !other_meaning.contains(&(d.name, path.as_str())) && !kind_word(d, path))
                .map(|(path, _)| path.as_str())
                .collect();
            assert_eq!(found.len(), 1, "`{}` is named in {found:?}", id.display());
            assert!(found[0].starts_with("builtins/"), "`{}` is named in {found:?}", id.display());
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} builtins checked");
    }

    /// docs/language.md, the reference, names every builtin (as `name`,
    /// `name()` or `ns.name(...)` in backquotes): a new builtin without its
    /// documentation fails here.
    #[test]
    fn the_reference_lists_every_builtin() {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md")).expect("docs/language.md");
        let mut missing = Vec::new();
        for (id, _) in all() {
            let name = id.display();
            if !["`", "(", "[", ","].iter().any(|after| doc.contains(&format!("`{name}{after}"))) {
                missing.push(name);
            }
        }
        assert!(missing.is_empty(), "docs/language.md does not document: {}", missing.join(", "));
    }

    #[test]
    fn names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for (id, d) in all() {
            assert!(seen.insert((d.namespace, d.name)), "{} registered twice", id.display());
            assert_eq!(find(d.namespace, d.name), Some(id));
            assert!(d.kernel.is_some() || d.user.is_some(), "{} runs nowhere", id.display());
        }
    }
}
