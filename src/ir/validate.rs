//! The IR validator: runs once after lowering and checks every invariant
//! bpfgen relies on (ids in range, types of operands, record layouts).
//! After it passes, bpfgen may only fail on target limits. A failure here
//! is a compiler bug, never a user mistake. No IO.

use super::{ExprKind, Module, Stmt, StmtKind, Ty};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub probe: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid IR in probe {}: {}", self.probe, self.message)
    }
}

impl std::error::Error for Error {}

pub fn validate(m: &Module) -> Result<(), Error> {
    for (i, probe) in m.probes.iter().enumerate() {
        if probe.attach.is_empty() {
            return Err(Error { probe: i, message: "probe has no attach point".into() });
        }
        let v = Validator { m, probe: i, locals: &probe.locals };
        v.stmts(&probe.body)?;
    }
    if let Some(g) = m.stop_flag {
        if g.index() >= m.globals.len() {
            return Err(Error { probe: 0, message: "stop flag out of range".into() });
        }
    }
    Ok(())
}

struct Validator<'a> {
    m: &'a Module,
    probe: usize,
    locals: &'a [Ty],
}

impl Validator<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error { probe: self.probe, message: message.into() }
    }

    fn stmts(&self, stmts: &[Stmt]) -> Result<(), Error> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&self, s: &Stmt) -> Result<(), Error> {
        match &s.kind {
            StmtKind::If { cond, then, otherwise } => {
                self.int_expr(cond)?;
                self.stmts(then)?;
                self.stmts(otherwise)
            }
            StmtKind::GlobalAdd { global, value } => {
                let g = self.m.globals.get(global.index()).ok_or_else(|| self.err("global out of range"))?;
                if g.ty != Ty::Int {
                    return Err(self.err(format!("add to non-integer global {}", g.name)));
                }
                self.int_expr(value)
            }
            StmtKind::GlobalStore { global, value } => {
                let g = self.m.globals.get(global.index()).ok_or_else(|| self.err("global out of range"))?;
                if !value.ty.fits(g.ty) || !matches!(g.ty, Ty::Int | Ty::Comm | Ty::Str) {
                    return Err(self.err(format!("store of a {:?} to global {} of type {:?}", value.ty, g.name, g.ty)));
                }
                self.expr(value)
            }
            StmtKind::Emit { site, args } => {
                if self.m.events.is_none() {
                    return Err(self.err("record emitted without an event ring buffer"));
                }
                let site = self.m.sites.get(site.index()).ok_or_else(|| self.err("site out of range"))?;
                if site.fields.len() != args.len() {
                    return Err(self.err("record field count differs from its site"));
                }
                for (ty, arg) in site.fields.iter().zip(args) {
                    if *ty != arg.ty {
                        return Err(self.err("record field type differs from its site"));
                    }
                    self.expr(arg)?;
                }
                Ok(())
            }
            StmtKind::Return => Ok(()),
            StmtKind::MapAdd { map, key, value } => {
                self.table_key(*map, key)?;
                self.int_expr(value)
            }
            StmtKind::MapStore { map, key, value } => {
                self.table_key(*map, key)?;
                let holds = self.m.maps[map.index()].table.as_ref().map_or(Ty::Int, |t| t.value);
                match holds {
                    Ty::Int | Ty::Comm | Ty::Str | Ty::ProbeName | Ty::Stack { .. } if value.ty.fits(holds) => self.expr(value),
                    _ => Err(self.err("value of the wrong type for its table")),
                }
            }
            StmtKind::MapDelete { map, key } => self.table_key(*map, key),
            StmtKind::LocalSet { local, value } => {
                self.local(*local)?;
                if !value.ty.fits(self.locals[local.index()]) {
                    return Err(self.err(format!("a {:?} stored in a local of type {:?}", value.ty, self.locals[local.index()])));
                }
                self.expr(value)
            }
            StmtKind::Loop { cond, body, step, .. } => {
                self.int_expr(cond)?;
                self.stmts(body)?;
                self.stmts(step)
            }
            StmtKind::Block { body, .. } => self.stmts(body),
            StmtKind::Break | StmtKind::Leave(_) => Ok(()),
        }
    }

    fn local(&self, l: super::LocalId) -> Result<(), Error> {
        if l.index() >= self.locals.len() {
            return Err(self.err("local out of range"));
        }
        Ok(())
    }

    fn table_key(&self, map: super::MapId, key: &super::Expr) -> Result<(), Error> {
        let m = self.m.maps.get(map.index()).ok_or_else(|| self.err("map out of range"))?;
        let info = m.table.as_ref().ok_or_else(|| self.err("map is not a table"))?;
        if !key.ty.fits(info.key) || info.key.size() != m.key_size {
            return Err(self.err(format!("key of type {:?} for table {} keyed by {:?}", key.ty, info.var, info.key)));
        }
        self.expr(key)
    }

    fn int_expr(&self, e: &super::Expr) -> Result<(), Error> {
        if e.ty != Ty::Int {
            return Err(self.err("integer expected"));
        }
        self.expr(e)
    }

    fn expr(&self, e: &super::Expr) -> Result<(), Error> {
        match &e.kind {
            ExprKind::Const(_) => Ok(()),
            ExprKind::Helper { func, part } => {
                let want = if *func == super::HelperFn::GET_CURRENT_COMM { Ty::Comm } else { Ty::Int };
                if e.ty != want || (want == Ty::Comm && *part != super::Part::All) {
                    return Err(self.err(format!("helper {} has the wrong type", func.name())));
                }
                Ok(())
            }
            ExprKind::Global(g) => {
                if g.index() >= self.m.globals.len() {
                    return Err(self.err("global out of range"));
                }
                Ok(())
            }
            ExprKind::Load(path) => {
                match (e.ty, path.via) {
                    // A task name: two direct 8-byte loads at a 16-bit offset.
                    (Ty::Comm, super::Via::Direct) => {
                        if path.size != 16 || !path.derefs.is_empty() || i16::try_from(path.offset + 8).is_err() || path.offset < 0 {
                            return Err(self.err("task name read out of reach"));
                        }
                    }
                    (Ty::Int, super::Via::ProbeRead) => {
                        if ![1, 2, 4, 8].contains(&path.size) {
                            return Err(self.err(format!("read of size {}", path.size)));
                        }
                        if path.derefs.is_empty() || i32::try_from(path.offset).is_err() {
                            return Err(self.err("read without a way to it"));
                        }
                    }
                    (ty, via) => return Err(self.err(format!("a {ty:?} read {via:?}"))),
                }
                Ok(())
            }
            ExprKind::CtxField { size, .. } => {
                if ![1, 2, 4, 8].contains(size) {
                    return Err(self.err(format!("context field of size {size}")));
                }
                Ok(())
            }
            ExprKind::Unary { operand, .. } => self.int_expr(operand),
            ExprKind::MapGet { map, key } | ExprKind::MapHas { map, key } => self.table_key(*map, key),
            ExprKind::Stack { user } => {
                if e.ty != (Ty::Stack { user: *user }) || self.m.stacks.is_none() {
                    return Err(self.err("stack without a stack map"));
                }
                Ok(())
            }
            ExprKind::ArgStr { .. } => {
                if !matches!(e.ty, Ty::ArgStr { len, .. } if len % 8 == 0) {
                    return Err(self.err("argstr has the wrong type"));
                }
                Ok(())
            }
            ExprKind::Local(l) => self.local(*l),
            ExprKind::ReadStr { ptr, .. } => {
                if e.ty != Ty::Str {
                    return Err(self.err("string read has the wrong type"));
                }
                self.int_expr(ptr)
            }
            ExprKind::StrEq { value, literal } => {
                if !matches!(value.ty, Ty::Comm | Ty::Str) || literal.len() as u32 >= value.ty.size() {
                    return Err(self.err("string comparison of the wrong shape"));
                }
                self.expr(value)
            }
            ExprKind::StrCmp { lhs, rhs } => {
                if !lhs.ty.is_string() || !rhs.ty.is_string() {
                    return Err(self.err("string comparison of non-strings"));
                }
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::StrConcat { lhs, rhs } => {
                if e.ty != Ty::Str || !lhs.ty.is_string() || !rhs.ty.is_string() {
                    return Err(self.err("string join of non-strings"));
                }
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::StrConst(s) => {
                if !e.ty.is_string() || s.len() as u32 >= e.ty.size() {
                    return Err(self.err("string literal of the wrong type"));
                }
                Ok(())
            }
            ExprKind::Seq { body, result } => {
                self.stmts(body)?;
                self.local(*result)
            }
            ExprKind::ProbeName => {
                if e.ty != Ty::ProbeName {
                    return Err(self.err("probename has the wrong type"));
                }
                Ok(())
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.int_expr(lhs)?;
                self.int_expr(rhs)
            }
            ExprKind::Fetch(f) => {
                let probe = &self.m.probes[self.probe];
                if !probe.attach.iter().all(|a| a.kind().shape().context == super::Context::PtRegs) {
                    return Err(self.err("a fetch argument outside a k/uprobe"));
                }
                if ![1, 2, 4, 8].contains(&f.bytes) {
                    return Err(self.err(format!("fetch of {} bytes", f.bytes)));
                }
                Ok(())
            }
        }
    }
}
