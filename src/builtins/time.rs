//! Clocks: `gettimeofday_s/ms/us/ns()` (wall clock) in probes and in
//! userspace.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Call, Def, Form, Kernel, KernelCx};
use crate::ir::{self, ExprKind, HelperFn, Part, Ty};
use crate::runtime::interp::Value;

/// A wall-clock builtin in units of `ns_per_unit` nanoseconds.
macro_rules! wall_clock {
    ($name:literal, $per:expr) => {
        Def {
            namespace: None,
            name: $name,
            form: Form::Call,
            kernel: Some(Kernel::Value { ty: Ty::Int, lower: |cx, c| realtime(cx, c, $per) }),
            user: Some(|_, _| Ok(Value::Int((now_ns() / $per) as i64))),
        }
    };
}

pub(super) const DEFS: &[Def] = &[
    wall_clock!("gettimeofday_s", 1_000_000_000),
    wall_clock!("gettimeofday_ms", 1_000_000),
    wall_clock!("gettimeofday_us", 1_000),
    wall_clock!("gettimeofday_ns", 1),
];

/// Wall-clock time in a probe: time since boot plus the offset userspace
/// measured before load, divided into the unit.
fn realtime(cx: &mut dyn KernelCx, c: &Call, per: u128) -> Option<ir::Expr> {
    c.no_args(cx);
    let span = Some(c.span);
    let boot = c.value(ExprKind::Helper { func: HelperFn::KTIME_GET_BOOT_NS, part: Part::All }, Ty::Int);
    let ns = match cx.boot_to_real() {
        Some(g) => ir::Expr::binary(ir::BinOp::Add, boot, ir::Expr { kind: ExprKind::Global(g), ty: Ty::Int, span: None }, span),
        None => boot,
    };
    if per == 1 {
        return Some(ns);
    }
    Some(ir::Expr::binary(ir::BinOp::Div, ns, ir::Expr::constant(per as i64), span))
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

