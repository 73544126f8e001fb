//! Strings: reading them from memory in probes (`user_string`,
//! `kernel_string`), a number's decimal text in probes too (`tostring`),
//! and converting values in userspace (`tostring`, `tonumber`, `len`).

use super::{Call, Def, Form, Kernel, KernelCx};
use crate::frontend::diag::Diagnostic;
use crate::ir::{self, ExprKind, Ty};
use crate::runtime::format;
use crate::runtime::interp::Value;

const fn read_str(name: &'static str, lower: super::LowerValue) -> Def {
    Def { namespace: None, name, form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Str, lower }), user: None }
}

const fn user(name: &'static str, f: super::UserFn) -> Def {
    Def { namespace: None, name, form: Form::Call, kernel: None, user: Some(f) }
}

pub(super) const DEFS: &[Def] = &[
    read_str("user_string", |cx, c| read(cx, c, true)),
    read_str("kernel_string", |cx, c| read(cx, c, false)),
    Def {
        namespace: None,
        name: "tostring",
        form: Form::Call,
        kernel: Some(Kernel::Value { ty: Ty::Str, lower: tostring_probe }),
        user: Some(|_, args| Ok(Value::str(format::value_text(args.first().unwrap_or(&Value::Nil))))),
    },
    user("tonumber", |_, args| Ok(args.first().and_then(Value::to_int).map_or(Value::Nil, Value::Int))),
    user("len", |cx, args| match args.first() {
        Some(Value::Table(t)) => Ok(Value::Int(t.borrow().len() as i64)),
        Some(Value::Str(s)) => Ok(Value::Int(s.len() as i64)),
        other => Err(cx.bad(1, "table or string", other)),
    }),
];

/// In a probe: a number's decimal text; a string is itself.
fn tostring_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    let [v] = c.args else {
        cx.diag(Diagnostic::error(c.span, format!("{}() takes one argument", c.name)));
        return None;
    };
    let v = cx.lower(v)?;
    match v.ty {
        Ty::Int => Some(c.value(ExprKind::IntText(Box::new(v)), Ty::Str)),
        // (A task name fits where a string goes.)
        Ty::Str | Ty::Comm => Some(v),
        _ => {
            cx.unsupported(c.span, "the text of this value");
            None
        }
    }
}

/// A NUL-terminated string at an address, from user or kernel memory.
fn read(cx: &mut dyn KernelCx, c: &Call, user: bool) -> Option<ir::Expr> {
    let [ptr] = c.args else {
        cx.diag(Diagnostic::error(c.span, format!("{}() takes one argument: an address", c.name)));
        return None;
    };
    let ptr = cx.lower_number(ptr)?;
    Some(c.value(ExprKind::ReadStr { ptr: Box::new(ptr), user }, Ty::Str))
}
