//! `kdebug.*`: probes registered by a call in the main context
//! (`kdebug.tracepoint("sched_switch", function () { ... })`). Lowering
//! turns them into probes; in userspace they do nothing.

use super::{Def, Form, Kernel, KernelCx, Call};
use crate::ir::{self, ExprKind, Ty};
use crate::runtime::interp::Value;

/// The namespace of probe registrations.
pub const PROBE_NAMESPACE: &str = "kdebug";

const fn register(name: &'static str) -> Def {
    Def { namespace: Some(PROBE_NAMESPACE), name, form: Form::Call, kernel: None, user: Some(|_, _| Ok(Value::Nil)) }
}

pub(super) const DEFS: &[Def] = &[
    // Which event fired: an id named in userspace.
    Def { namespace: None, name: "probename", form: Form::Name, kernel: Some(Kernel::Value { ty: Ty::ProbeName, lower: probename }), user: None },
    // In an iterator: whether this is its last run, with no object (the
    // run is skipped unless the body reads this).
    Def { namespace: None, name: "iter_end", form: Form::Name, kernel: Some(Kernel::Value { ty: Ty::Int, lower: iter_end }), user: None },
    register("kprobe"),
    register("kretprobe"),
    register("uprobe"),
    register("uretprobe"),
    register("tracepoint"),
    register("probe_by_id"),
    register("probe_end"),
    register("trace_by_id"),
    register("trace_end"),
];

fn iter_end(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    cx.iter_end(c.span)
}

fn probename(_: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    Some(c.value(ExprKind::ProbeName, Ty::ProbeName))
}
