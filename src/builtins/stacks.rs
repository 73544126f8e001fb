//! Stack traces: `stack()` and `ustack()` in probes, or ktap's
//! `stack(skip, depth)` — frames skipped from the innermost, frames shown
//! — kept as stack-map ids and symbolized in userspace; and one address
//! symbolized the same way, in userspace: `ksym(addr)`, `usym(addr, pid)`.

use super::{Call, Def, Form, Kernel, KernelCx, UserCx};
use crate::runtime::interp::{Throw, Value};
use crate::runtime::symbols::Symbols;
use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir::{self, ExprKind, Ty, MAX_STACK_DEPTH};

pub(super) const DEFS: &[Def] = &[
    Def { namespace: None, name: "stack", form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Stack { user: false }, lower: |cx, c| stack(cx, c, false) }), user: None },
    Def { namespace: None, name: "ustack", form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Stack { user: true }, lower: |cx, c| stack(cx, c, true) }), user: None },
    Def { namespace: None, name: "ksym", form: Form::Call, kernel: None, user: Some(ksym) },
    Def { namespace: None, name: "usym", form: Form::Call, kernel: None, user: Some(usym) },
];

thread_local! {
    /// The symbolizer of `ksym` and `usym` (its files stay open and
    /// parsed between calls).
    static SYMBOLS: std::cell::RefCell<Symbols> = std::cell::RefCell::new(Symbols::default());
}

/// `ksym(addr)`: the kernel function holding `addr` (`vfs_read+0x5`), or
/// the address in hex.
fn ksym(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let addr = address(cx, args, 1)?;
    Ok(Value::str(SYMBOLS.with(|s| s.borrow_mut().symbol(0, addr))))
}

/// `usym(addr, pid)`: the function of process `pid` holding `addr`, or
/// the address in hex.
fn usym(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let addr = address(cx, args, 1)?;
    let pid = match args.get(1).and_then(Value::to_int) {
        Some(p) if p > 0 && p <= i64::from(u32::MAX) => p as u32,
        _ => return Err(cx.bad(2, "process id", args.get(1))),
    };
    Ok(Value::str(SYMBOLS.with(|s| s.borrow_mut().symbol(pid, addr))))
}

/// Argument #`n`, an address (a number; negative ones are the kernel's
/// upper half).
fn address(cx: &UserCx, args: &[Value], n: usize) -> Result<u64, Throw> {
    match args.get(n - 1) {
        Some(Value::Int(a)) => Ok(*a as u64),
        other => Err(cx.bad(n, "address (a number)", other)),
    }
}

/// Most frames the kernel can be asked to skip (the flags' low byte).
const MAX_SKIP: i64 = 255;

fn stack(cx: &mut dyn KernelCx, c: &Call, user: bool) -> Option<ir::Expr> {
    let (skip, depth) = match c.args {
        [] => (0, 0),
        [skip, depth] => {
            let (Some(s), Some(d)) = (literal(skip), literal(depth)) else {
                cx.diag(
                    Diagnostic::error(c.span, format!("{}(skip, depth) takes two number literals", c.name))
                        .with_note("as in ktap: `stack(-1, 12)` keeps the innermost 12 frames"),
                );
                return None;
            };
            if d > i64::from(MAX_STACK_DEPTH) {
                cx.diag(
                    Diagnostic::error(depth.span, format!("a stack keeps at most {MAX_STACK_DEPTH} frames"))
                        .with_label(format!("{d} frames")),
                );
                return None;
            }
            // A negative skip (ktap's -1) is the default: none; a depth
            // of 0 or less shows every frame.
            (s.clamp(0, MAX_SKIP) as u8, d.max(0) as u8)
        }
        _ => {
            cx.diag(Diagnostic::error(c.span, format!("{}() takes no arguments, or a skip and a depth: {}(skip, depth)", c.name, c.name)));
            return None;
        }
    };
    cx.stack_map();
    Some(c.value(ExprKind::Stack { user, skip, depth }, Ty::Stack { user }))
}

/// The value of an integer literal, negated ones included.
fn literal(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ast::ExprKind::Int(v) => Some(*v),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } => literal(operand).map(i64::wrapping_neg),
        _ => None,
    }
}
