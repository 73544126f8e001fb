//! Compiles the userspace parts of an AST (main, tick bodies, trace_end,
//! functions) into register-machine prototypes: locals become frame
//! registers, captured locals shared cells, globals vector indices. Never
//! executes code; probe bodies are skipped, never compiled here.

mod expr;
mod stmt;

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexSet;

use super::capture::{analyze, Captures, FuncKind};
use super::code::{CellIdx, ConstIdx, GlobalIdx, Insn, Offset, Proto, Reg, UpIdx, UpvalSource};
use super::error::RuntimeError;
use super::value::Value;
use crate::frontend::ast::{Block, Expr, ExprKind, Ident, Program, StmtKind, TimerKind};
use crate::span::Span;

/// How deeply statements and expressions may nest (the compiler recurses
/// on them and must not exhaust the Rust stack).
const MAX_NESTING: usize = 400;

/// The compiled userspace program.
pub(crate) struct Compiled {
    pub main: Rc<Proto>,
    /// `tick-N` bodies with their period in nanoseconds, and for one
    /// nested in main-context code, where its statement starts (it runs
    /// only once main ran that statement: `Insn::Register`).
    pub ticks: Vec<(u64, Rc<Proto>, Option<u32>)>,
    pub trace_ends: Vec<Rc<Proto>>,
}

type CResult<T> = Result<T, RuntimeError>;

fn error<T>(message: impl Into<String>, span: Span) -> CResult<T> {
    Err(RuntimeError::new(message, Some(span)))
}

/// Where a variable lives.
#[derive(Clone, Copy, Debug)]
enum Var {
    Reg(Reg),
    Cell(CellIdx),
    Upval(UpIdx),
    Global(GlobalIdx),
}

struct Local {
    name: String,
    slot: Var,
}

struct Scope {
    nlocals: usize,
    active: Reg,
    free_cell: CellIdx,
}

/// A function being compiled.
struct FuncState {
    kind: FuncKind,
    proto: Proto,
    locals: Vec<Local>,
    scopes: Vec<Scope>,
    /// Registers below this hold locals; temporaries start here.
    active: Reg,
    free_reg: Reg,
    free_cell: CellIdx,
    /// Pending `break` jumps, one list per enclosing loop.
    loops: Vec<Vec<usize>>,
    upval_names: Vec<String>,
    const_strs: HashMap<Vec<u8>, ConstIdx>,
}

impl FuncState {
    fn new(kind: FuncKind, name: String) -> FuncState {
        FuncState {
            kind,
            proto: Proto {
                name,
                ..Proto::default()
            },
            locals: Vec::new(),
            scopes: Vec::new(),
            active: 0,
            free_reg: 0,
            free_cell: 0,
            loops: Vec::new(),
            upval_names: Vec::new(),
            const_strs: HashMap::new(),
        }
    }
}

pub(crate) struct Compiler<'g> {
    caps: Captures,
    globals: &'g mut IndexSet<String>,
    funcs: Vec<FuncState>,
    depth: usize,
    /// `tick-N` bodies nested in main-context code, registered when it
    /// runs them.
    nested_ticks: Vec<(u64, Rc<Proto>, Option<u32>)>,
}

/// Compiles `program`, interning every global name it uses in `globals`.
pub(crate) fn compile(program: &Program, globals: &mut IndexSet<String>) -> CResult<Compiled> {
    let mut c = Compiler {
        caps: analyze(program),
        globals,
        funcs: Vec::new(),
        depth: 0,
        nested_ticks: Vec::new(),
    };
    let mut ticks = Vec::new();
    let mut trace_ends = Vec::new();
    c.funcs.push(FuncState::new(FuncKind::Main, "main".into()));
    c.open_scope();
    for s in &program.stmts {
        match &s.kind {
            StmtKind::TraceEnd { body } => {
                trace_ends.push(c.body(FuncKind::Body, "trace_end", &[], body, s.span)?);
            }
            StmtKind::Timer {
                kind: TimerKind::Tick,
                period,
                body,
            } => {
                let name = format!("tick-{}ns", period.nanos);
                ticks.push((
                    period.nanos,
                    c.body(FuncKind::Body, &name, &[], body, s.span)?,
                    None,
                ));
            }
            _ => c.stmt(s)?,
        }
    }
    c.close_scope();
    c.emit(Insn::Return0, Span::default());
    let main = c.finish();
    ticks.append(&mut c.nested_ticks);
    Ok(Compiled {
        main: Rc::new(main),
        ticks,
        trace_ends,
    })
}

impl Compiler<'_> {
    fn fs(&mut self) -> &mut FuncState {
        let n = self.funcs.len() - 1;
        &mut self.funcs[n]
    }

    fn fs_ref(&self) -> &FuncState {
        &self.funcs[self.funcs.len() - 1]
    }

    fn finish(&mut self) -> Proto {
        match self.funcs.pop() {
            Some(fs) => fs.proto,
            None => Proto::default(),
        }
    }

    /// Compiles a function body: a nested function when `kind` is
    /// `Function`, a standalone one (tick, trace_end) otherwise.
    fn body(
        &mut self,
        kind: FuncKind,
        name: &str,
        params: &[Ident],
        block: &Block,
        span: Span,
    ) -> CResult<Rc<Proto>> {
        let saved = if kind == FuncKind::Function {
            Vec::new()
        } else {
            std::mem::take(&mut self.funcs)
        };
        self.funcs.push(FuncState::new(kind, name.to_string()));
        let nparams = u16::try_from(params.len()).unwrap_or(u16::MAX);
        self.fs().proto.nparams = nparams;
        self.open_scope();
        for p in params {
            let r = self.alloc_reg(p.span)?;
            self.declare_reg(p, r, p.span)?;
        }
        self.block_stmts(block)?;
        self.close_scope();
        self.emit(Insn::Return0, span);
        let proto = self.finish();
        if kind != FuncKind::Function {
            self.funcs = saved;
        }
        Ok(Rc::new(proto))
    }

    // ---- emission ---------------------------------------------------------

    fn emit(&mut self, insn: Insn, span: Span) -> usize {
        let p = &mut self.fs().proto;
        p.code.push(insn);
        p.spans.push(span);
        p.code.len() - 1
    }

    /// Emits an instruction whose table or function operand is the value
    /// of `operand`, noting what that operand is called in the source.
    fn emit_noted(&mut self, insn: Insn, span: Span, operand: &Expr) -> usize {
        let at = self.emit(insn, span);
        if let Some(desc) = self.describe(operand) {
            self.fs()
                .proto
                .notes
                .push((at as u32, desc.into_boxed_str()));
        }
        at
    }

    /// How an error message names the value of `e`, when it has a name.
    fn describe(&self, e: &Expr) -> Option<String> {
        match &e.kind {
            ExprKind::Name(id) => {
                let n = &id.name;
                let kind = if find_local(self.fs_ref(), n).is_some() {
                    "local"
                } else if self.funcs.iter().any(|f| find_local(f, n).is_some()) {
                    "upvalue"
                } else {
                    "global"
                };
                Some(format!("{kind} '{n}'"))
            }
            ExprKind::Field { name, .. } => Some(format!("field '{}'", name.name)),
            ExprKind::Index { index, .. } => match &index.kind {
                ExprKind::Str(s) => Some(format!("field '{}'", String::from_utf8_lossy(s))),
                _ => None,
            },
            _ => None,
        }
    }

    fn here(&self) -> usize {
        self.fs_ref().proto.code.len()
    }

    /// Points the jump at `at` to `target`.
    fn patch(&mut self, at: usize, target: usize) {
        let off = target as i64 - (at as i64 + 1);
        let off = Offset::try_from(off).unwrap_or(0);
        if let Some(
            Insn::Jmp { off: o }
            | Insn::Test { off: o, .. }
            | Insn::JmpCmp { off: o, .. }
            | Insn::JmpCmpI { off: o, .. }
            | Insn::ForPrep { off: o, .. }
            | Insn::ForLoop { off: o, .. }
            | Insn::IterPrep { off: o, .. }
            | Insn::IterNext { off: o, .. },
        ) = self.fs().proto.code.get_mut(at)
        {
            *o = off;
        }
    }

    fn patch_here(&mut self, jumps: &[usize]) {
        let here = self.here();
        for &j in jumps {
            self.patch(j, here);
        }
    }

    fn constant(&mut self, v: Value) -> ConstIdx {
        let fs = self.fs();
        if let Value::Str(s) = &v {
            if let Some(&k) = fs.const_strs.get(s.as_bytes()) {
                return k;
            }
            let k = fs.proto.consts.len() as ConstIdx;
            fs.const_strs.insert(s.as_bytes().to_vec(), k);
            fs.proto.consts.push(v);
            return k;
        }
        fs.proto.consts.push(v);
        (fs.proto.consts.len() - 1) as ConstIdx
    }

    fn str_const(&mut self, s: &[u8]) -> ConstIdx {
        self.constant(Value::str(s))
    }

    // ---- registers and scopes ---------------------------------------------

    /// `n` consecutive registers; returns the first.
    fn alloc_regs(&mut self, n: usize, span: Span) -> CResult<Reg> {
        let base = self.alloc_reg(span)?;
        for _ in 1..n {
            self.alloc_reg(span)?;
        }
        Ok(base)
    }

    fn alloc_reg(&mut self, span: Span) -> CResult<Reg> {
        let fs = self.fs();
        let r = fs.free_reg;
        if r >= u16::MAX - 8 {
            return error("function or expression needs too many registers", span);
        }
        fs.free_reg += 1;
        fs.proto.nregs = fs.proto.nregs.max(fs.free_reg);
        Ok(r)
    }

    fn alloc_cell(&mut self, span: Span) -> CResult<CellIdx> {
        let fs = self.fs();
        let c = fs.free_cell;
        if c >= u16::MAX - 8 {
            return error("function captures too many variables", span);
        }
        fs.free_cell += 1;
        fs.proto.ncells = fs.proto.ncells.max(fs.free_cell);
        Ok(c)
    }

    /// True when `r` holds no local variable.
    fn is_temp(&self, r: Reg) -> bool {
        r >= self.fs_ref().active
    }

    /// Releases every temporary (between statements).
    fn free_temps(&mut self) {
        let fs = self.fs();
        fs.free_reg = fs.active;
    }

    fn open_scope(&mut self) {
        let fs = self.fs();
        let s = Scope {
            nlocals: fs.locals.len(),
            active: fs.active,
            free_cell: fs.free_cell,
        };
        fs.scopes.push(s);
    }

    fn close_scope(&mut self) {
        let fs = self.fs();
        if let Some(s) = fs.scopes.pop() {
            fs.locals.truncate(s.nlocals);
            fs.active = s.active;
            fs.free_reg = s.active;
            fs.free_cell = s.free_cell;
        }
    }

    /// Makes `ident` a local whose value is in register `r` (moving it
    /// into a fresh cell when a closure captures it).
    fn declare_reg(&mut self, ident: &Ident, r: Reg, span: Span) -> CResult<()> {
        let slot = if self.caps.is_captured(ident) {
            let c = self.alloc_cell(span)?;
            self.emit(Insn::NewCell { c }, span);
            self.emit(Insn::SetCell { c, src: r }, span);
            Var::Cell(c)
        } else {
            Var::Reg(r)
        };
        let fs = self.fs();
        fs.locals.push(Local {
            name: ident.name.clone(),
            slot,
        });
        fs.active = fs.active.max(r + 1);
        Ok(())
    }

    /// Whether this is main's own code (not a function's).
    fn in_main(&self) -> bool {
        self.funcs.len() == 1 && self.fs_ref().kind == FuncKind::Main
    }

    /// Whether a `var` here declares globals (the outermost scope of main).
    fn at_main_top(&self) -> bool {
        let fs = self.fs_ref();
        fs.kind == FuncKind::Main && fs.scopes.len() == 1
    }

    // ---- names ------------------------------------------------------------

    fn global(&mut self, name: &str) -> GlobalIdx {
        let (i, _) = self.globals.insert_full(name.to_string());
        i as GlobalIdx
    }

    fn resolve(&mut self, name: &str, span: Span) -> CResult<Var> {
        let top = self.funcs.len() - 1;
        if let Some(v) = find_local(&self.funcs[top], name) {
            return Ok(v);
        }
        if let Some(u) = self.resolve_upval(top, name, span)? {
            return Ok(Var::Upval(u));
        }
        Ok(Var::Global(self.global(name)))
    }

    /// Finds `name` in the functions enclosing `funcs[level]`, adding the
    /// captured-variable entries on the way down.
    fn resolve_upval(&mut self, level: usize, name: &str, span: Span) -> CResult<Option<UpIdx>> {
        if level == 0 {
            return Ok(None);
        }
        if let Some(i) = self.funcs[level].upval_names.iter().position(|n| n == name) {
            return Ok(Some(i as UpIdx));
        }
        let source = match find_local(&self.funcs[level - 1], name) {
            Some(Var::Cell(c)) => UpvalSource::Cell(c),
            Some(_) => return error(format!("internal error: '{name}' was not captured"), span),
            None => match self.resolve_upval(level - 1, name, span)? {
                Some(u) => UpvalSource::Upval(u),
                None => return Ok(None),
            },
        };
        let fs = &mut self.funcs[level];
        fs.upval_names.push(name.to_string());
        fs.proto.upvals.push(source);
        Ok(Some((fs.upval_names.len() - 1) as UpIdx))
    }

    /// True when `name` is the unassigned global of a builtin or namespace.
    fn is_pristine_global(&self, name: &str) -> bool {
        find_local(self.fs_ref(), name).is_none()
            && !self.funcs.iter().any(|f| find_local(f, name).is_some())
            && !self.caps.assigned_globals.contains(name)
    }

    fn enter(&mut self, span: Span) -> CResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return error("statements or expressions nested too deeply", span);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}

fn find_local(fs: &FuncState, name: &str) -> Option<Var> {
    fs.locals
        .iter()
        .rev()
        .find(|l| l.name == name)
        .map(|l| l.slot)
}
