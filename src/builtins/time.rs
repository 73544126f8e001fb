//! Clocks: `gettimeofday_s/ms/us/ns()` (wall clock) and `ktime_ns()`
//! (nanoseconds since boot, the kernel's monotonic clock) in probes and in
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
    Def {
        namespace: None,
        name: "ktime_ns",
        form: Form::Call,
        kernel: Some(Kernel::Value {
            ty: Ty::Int,
            lower: |cx, c| {
                c.no_args(cx);
                Some(c.value(ExprKind::Helper { func: HelperFn::KTIME_GET_NS, part: Part::All }, Ty::Int))
            },
        }),
        user: Some(|_, _| Ok(Value::Int(monotonic_ns()))),
    },
];

/// CLOCK_MONOTONIC in nanoseconds: the clock `bpf_ktime_get_ns` reads, so
/// values from probes and from userspace compare.
fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

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

