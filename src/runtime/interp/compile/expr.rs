//! Code generation for expressions, conditions and calls, including the
//! fast paths (constant operands, fused compare-and-jump, direct builtin
//! calls). Never evaluates anything at compile time except literals.

use std::rc::Rc;

use super::{error, CResult, Compiler, Var};
use crate::frontend::ast::{BinOp, Expr, ExprKind, FuncBody, Ident, TableField, UnOp};
use crate::runtime::interp::builtins::{self, Builtin};
use crate::runtime::interp::capture::FuncKind;
use crate::runtime::interp::code::{ArithOp, CmpOp, Insn, Reg};
use crate::runtime::interp::value::Value;

impl Compiler<'_> {
    /// A register holding the value of `e`: the local's own register for
    /// a plain local, a fresh temporary otherwise.
    pub(super) fn expr_any(&mut self, e: &Expr) -> CResult<Reg> {
        if let ExprKind::Name(id) = &e.kind {
            if let Var::Reg(r) = self.resolve(&id.name, id.span)? {
                return Ok(r);
            }
        }
        let r = self.alloc_reg(e.span)?;
        self.expr_to(e, r)?;
        Ok(r)
    }

    /// Compiles `e` so that its value ends up in `dst`.
    pub(super) fn expr_to(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        self.enter(e.span)?;
        let mark = self.fs().free_reg;
        let r = self.expr_inner(e, dst);
        self.fs().free_reg = mark;
        self.leave();
        r
    }

    fn expr_inner(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        let span = e.span;
        match &e.kind {
            ExprKind::Nil => {
                self.emit(Insn::LoadNil { dst }, span);
            }
            ExprKind::Bool(val) => {
                self.emit(Insn::LoadBool { dst, val: *val }, span);
            }
            ExprKind::Int(i) => self.load_int(*i, dst, e),
            ExprKind::Str(s) => {
                let k = self.str_const(s);
                self.emit(Insn::LoadK { dst, k }, span);
            }
            ExprKind::Name(id) => self.name_to(id, dst)?,
            ExprKind::Index { base, index } => {
                let t = self.expr_any(base)?;
                if let ExprKind::Str(s) = &index.kind {
                    let k = self.str_const(s);
                    self.emit_noted(Insn::GetField { dst, t, k }, span, base);
                } else {
                    let k = self.expr_any(index)?;
                    self.emit_noted(Insn::GetIndex { dst, t, k }, span, base);
                }
            }
            ExprKind::Field { base, name } => {
                let t = self.expr_any(base)?;
                let k = self.str_const(name.name.as_bytes());
                self.emit_noted(Insn::GetField { dst, t, k }, span, base);
            }
            ExprKind::Call { callee, args } => self.call_to(e, callee, args, dst)?,
            ExprKind::Function(f) => self.closure("function", f, dst)?,
            ExprKind::Table(fields) => self.table(fields, dst, e)?,
            ExprKind::Unary {
                op: UnOp::Neg,
                operand,
            } => {
                if let ExprKind::Int(i) = operand.kind {
                    self.load_int(i.wrapping_neg(), dst, e);
                } else {
                    let src = self.expr_any(operand)?;
                    self.emit(Insn::Neg { dst, src }, span);
                }
            }
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => {
                let src = self.expr_any(operand)?;
                self.emit(Insn::Not { dst, src }, span);
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, dst, e)?,
            ExprKind::Error => {
                let k = self.str_const(b"invalid expression");
                self.emit(Insn::Fail { k }, span);
            }
        }
        Ok(())
    }

    fn load_int(&mut self, i: i64, dst: Reg, e: &Expr) {
        match i32::try_from(i) {
            Ok(val) => self.emit(Insn::LoadInt { dst, val }, e.span),
            Err(_) => {
                let k = self.constant(Value::Int(i));
                self.emit(Insn::LoadK { dst, k }, e.span)
            }
        };
    }

    pub(super) fn name_to(&mut self, id: &Ident, dst: Reg) -> CResult<()> {
        let v = self.resolve(&id.name, id.span)?;
        self.load_var(v, dst, id.span);
        Ok(())
    }

    fn binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, dst: Reg, e: &Expr) -> CResult<()> {
        let span = e.span;
        let arith = match op {
            BinOp::Add => Some(ArithOp::Add),
            BinOp::Sub => Some(ArithOp::Sub),
            BinOp::Mul => Some(ArithOp::Mul),
            BinOp::Div => Some(ArithOp::Div),
            BinOp::Mod => Some(ArithOp::Mod),
            _ => None,
        };
        if let Some(aop) = arith {
            if let (ArithOp::Add | ArithOp::Sub, ExprKind::Int(i)) = (aop, &rhs.kind) {
                let imm = if aop == ArithOp::Add {
                    Some(*i)
                } else {
                    i.checked_neg()
                };
                if let Some(imm) = imm.and_then(|v| i32::try_from(v).ok()) {
                    let a = self.expr_any(lhs)?;
                    self.emit(Insn::AddI { dst, a, imm }, span);
                    return Ok(());
                }
            }
            let a = self.expr_any(lhs)?;
            let b = self.expr_any(rhs)?;
            self.emit(Insn::Arith { op: aop, dst, a, b }, span);
            return Ok(());
        }
        match op {
            BinOp::Concat => {
                let a = self.expr_any(lhs)?;
                let b = self.expr_any(rhs)?;
                self.emit(Insn::Concat { dst, a, b }, span);
            }
            BinOp::And | BinOp::Or => {
                self.expr_to(lhs, dst)?;
                let j = self.emit(
                    Insn::Test {
                        src: dst,
                        want: op == BinOp::Or,
                        off: 0,
                    },
                    span,
                );
                self.expr_to(rhs, dst)?;
                self.patch_here(&[j]);
            }
            _ => {
                let a = self.expr_any(lhs)?;
                let b = self.expr_any(rhs)?;
                let (op, want, a, b) = match op {
                    BinOp::Eq => (CmpOp::Eq, true, a, b),
                    BinOp::Ne => (CmpOp::Eq, false, a, b),
                    BinOp::Lt => (CmpOp::Lt, true, a, b),
                    BinOp::Le => (CmpOp::Le, true, a, b),
                    BinOp::Gt => (CmpOp::Gt, true, a, b),
                    _ => (CmpOp::Ge, true, a, b),
                };
                self.emit(
                    Insn::Cmp {
                        op,
                        want,
                        dst,
                        a,
                        b,
                    },
                    span,
                );
            }
        }
        Ok(())
    }

    /// Emits code that jumps when the truthiness of `e` equals `jump_when`
    /// and falls through otherwise; returns the jumps to patch.
    pub(super) fn cond(&mut self, e: &Expr, jump_when: bool) -> CResult<Vec<usize>> {
        self.enter(e.span)?;
        let mark = self.fs().free_reg;
        let r = self.cond_inner(e, jump_when);
        self.fs().free_reg = mark;
        self.leave();
        r
    }

    fn cond_inner(&mut self, e: &Expr, jump_when: bool) -> CResult<Vec<usize>> {
        let span = e.span;
        let constant = match &e.kind {
            ExprKind::Nil | ExprKind::Bool(false) => Some(false),
            ExprKind::Bool(true) | ExprKind::Int(_) | ExprKind::Str(_) => Some(true),
            _ => None,
        };
        if let Some(truth) = constant {
            return Ok(if truth == jump_when {
                vec![self.emit(Insn::Jmp { off: 0 }, span)]
            } else {
                Vec::new()
            });
        }
        match &e.kind {
            ExprKind::Unary {
                op: UnOp::Not,
                operand,
            } => self.cond(operand, !jump_when),
            ExprKind::Binary {
                op: op @ (BinOp::And | BinOp::Or),
                lhs,
                rhs,
            } => {
                // `a && b` jumps on false when either does; on true only
                // when both do (and `||` the other way round).
                let short = *op != BinOp::And;
                if jump_when == short {
                    let mut j = self.cond(lhs, short)?;
                    j.extend(self.cond(rhs, short)?);
                    Ok(j)
                } else {
                    let skip = self.cond(lhs, short)?;
                    let j = self.cond(rhs, jump_when)?;
                    self.patch_here(&skip);
                    Ok(j)
                }
            }
            ExprKind::Binary {
                op: op @ (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
                lhs,
                rhs,
            } => {
                let want = if *op == BinOp::Ne {
                    !jump_when
                } else {
                    jump_when
                };
                let imm_op = |o: BinOp, flip: bool| match (o, flip) {
                    (BinOp::Eq | BinOp::Ne, _) => CmpOp::Eq,
                    (BinOp::Lt, false) | (BinOp::Gt, true) => CmpOp::Lt,
                    (BinOp::Le, false) | (BinOp::Ge, true) => CmpOp::Le,
                    (BinOp::Gt, false) | (BinOp::Lt, true) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let small = |x: &Expr| match x.kind {
                    ExprKind::Int(i) => i16::try_from(i).ok(),
                    _ => None,
                };
                if let Some(imm) = small(rhs) {
                    let a = self.expr_any(lhs)?;
                    let cmp = imm_op(*op, false);
                    let insn = Insn::JmpCmpI {
                        op: cmp,
                        want,
                        flip: false,
                        a,
                        imm,
                        off: 0,
                    };
                    return Ok(vec![self.emit(insn, span)]);
                }
                if let Some(imm) = small(lhs) {
                    let a = self.expr_any(rhs)?;
                    let cmp = imm_op(*op, true);
                    let insn = Insn::JmpCmpI {
                        op: cmp,
                        want,
                        flip: true,
                        a,
                        imm,
                        off: 0,
                    };
                    return Ok(vec![self.emit(insn, span)]);
                }
                let a = self.expr_any(lhs)?;
                let b = self.expr_any(rhs)?;
                let (cmp, a, b) = match op {
                    BinOp::Eq | BinOp::Ne => (CmpOp::Eq, a, b),
                    BinOp::Lt => (CmpOp::Lt, a, b),
                    BinOp::Le => (CmpOp::Le, a, b),
                    BinOp::Gt => (CmpOp::Gt, a, b),
                    _ => (CmpOp::Ge, a, b),
                };
                Ok(vec![self.emit(
                    Insn::JmpCmp {
                        op: cmp,
                        want,
                        a,
                        b,
                        off: 0,
                    },
                    span,
                )])
            }
            _ => {
                let r = self.expr_any(e)?;
                Ok(vec![self.emit(
                    Insn::Test {
                        src: r,
                        want: jump_when,
                        off: 0,
                    },
                    span,
                )])
            }
        }
    }

    /// The builtin a call goes straight to, when the callee is the name
    /// of a builtin (or `ns.name`) that the script never reassigns.
    pub(super) fn direct_builtin(&self, callee: &Expr) -> Option<Builtin> {
        match &callee.kind {
            ExprKind::Name(id) if self.is_pristine_global(&id.name) => builtins::find(None, &id.name),
            ExprKind::Field { base, name } => match &base.kind {
                ExprKind::Name(ns) if self.is_pristine_global(&ns.name) => builtins::find(Some(&ns.name), &name.name),
                _ => None,
            },
            _ => None,
        }
    }

    fn call_to(&mut self, e: &Expr, callee: &Expr, args: &[Expr], dst: Reg) -> CResult<()> {
        let nargs = u16::try_from(args.len()).or_else(|_| error("too many arguments", e.span))?;
        let top = self.fs().free_reg;
        let base = if self.is_temp(dst) && dst + 1 == top {
            dst
        } else {
            self.alloc_reg(e.span)?
        };
        match self.direct_builtin(callee) {
            Some(b) if builtins::registers_probe(b) => {
                // `kdebug.*(...)` registers a kernel probe: nothing else to
                // run.
                self.emit(Insn::Register { at: e.span.start }, e.span);
                self.emit(Insn::LoadNil { dst }, e.span);
                return Ok(());
            }
            Some(b) => {
                for (i, a) in args.iter().enumerate() {
                    let r = if i == 0 {
                        base
                    } else {
                        self.alloc_reg(a.span)?
                    };
                    self.expr_to(a, r)?;
                }
                self.emit(Insn::CallBuiltin { b, base, nargs }, e.span);
            }
            None => {
                self.expr_to(callee, base)?;
                for a in args {
                    let r = self.alloc_reg(a.span)?;
                    self.expr_to(a, r)?;
                }
                self.emit_noted(Insn::Call { base, nargs }, e.span, callee);
            }
        }
        if base != dst {
            self.emit(Insn::Move { dst, src: base }, e.span);
        }
        Ok(())
    }

    /// Puts the callee and arguments of a (tail) call in fresh registers;
    /// returns the callee's register.
    pub(super) fn call_setup(&mut self, callee: &Expr, args: &[Expr]) -> CResult<Reg> {
        let base = self.alloc_reg(callee.span)?;
        self.expr_to(callee, base)?;
        for a in args {
            let r = self.alloc_reg(a.span)?;
            self.expr_to(a, r)?;
        }
        Ok(base)
    }

    pub(super) fn closure(&mut self, name: &str, f: &FuncBody, dst: Reg) -> CResult<()> {
        let proto = self.body(FuncKind::Function, name, &f.params, &f.body, f.span)?;
        let fs = self.fs();
        fs.proto.protos.push(Rc::clone(&proto));
        let idx = (fs.proto.protos.len() - 1) as u32;
        self.emit(Insn::Closure { dst, proto: idx }, f.span);
        Ok(())
    }

    fn table(&mut self, fields: &[TableField], dst: Reg, e: &Expr) -> CResult<()> {
        let cap = u16::try_from(fields.len()).unwrap_or(u16::MAX);
        self.emit(Insn::NewTable { dst, cap }, e.span);
        let mut next_pos: i64 = 1;
        for f in fields {
            let mark = self.fs().free_reg;
            match f {
                TableField::Positional(v) => {
                    let k = self.alloc_reg(v.span)?;
                    self.load_int(next_pos, k, v);
                    next_pos += 1;
                    let r = self.expr_any(v)?;
                    self.emit(Insn::SetIndex { t: dst, k, v: r }, v.span);
                }
                TableField::Keyed(key, v) => {
                    let k = self.expr_any(key)?;
                    let r = self.expr_any(v)?;
                    self.emit(Insn::SetIndex { t: dst, k, v: r }, key.span.to(v.span));
                }
                TableField::Named(name, v) => {
                    let k = self.str_const(name.name.as_bytes());
                    let r = self.expr_any(v)?;
                    self.emit(Insn::SetField { t: dst, k, v: r }, name.span.to(v.span));
                }
            }
            self.fs().free_reg = mark;
        }
        Ok(())
    }
}
