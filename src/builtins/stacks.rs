//! Stack traces: `stack()` and `ustack()` in probes, kept as stack-map ids
//! and symbolized in userspace.

use super::{Call, Def, Form, Kernel, KernelCx};
use crate::ir::{self, ExprKind, Ty};

pub(super) const DEFS: &[Def] = &[
    Def { namespace: None, name: "stack", form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Stack { user: false }, lower: |cx, c| stack(cx, c, false) }), user: None },
    Def { namespace: None, name: "ustack", form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Stack { user: true }, lower: |cx, c| stack(cx, c, true) }), user: None },
];

fn stack(cx: &mut dyn KernelCx, c: &Call, user: bool) -> Option<ir::Expr> {
    c.no_args(cx);
    cx.stack_map();
    Some(c.value(ExprKind::Stack { user }, Ty::Stack { user }))
}
