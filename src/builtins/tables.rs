//! Tables: `pairs`, `sort_pairs`, `delete` and `table.new`. In a probe,
//! `delete(t)` is a record userspace acts on in order; the rest walk or
//! build tables in userspace.

use std::cell::RefCell;
use std::rc::Rc;

use super::{BuiltinId, Call, Def, Form, Kernel, KernelCx, UserCx};
use crate::ir::{self, SiteKind};
use crate::runtime::interp::{Table, Throw, Value};

/// Largest preallocation `table.new` honours (entries).
const MAX_PREALLOC: i64 = 1 << 20;

pub(super) const DEFS: &[Def] = &[
    Def {
        namespace: None,
        name: "pairs",
        form: Form::Call,
        kernel: None,
        user: Some(|cx, args| {
            cx.table(args, 0)?;
            Ok(args[0].clone())
        }),
    },
    Def { namespace: None, name: "sort_pairs", form: Form::Call, kernel: None, user: Some(sort_pairs) },
    Def { namespace: None, name: "delete", form: Form::Call, kernel: Some(Kernel::Action(delete_probe)), user: Some(delete_user) },
    Def { namespace: Some("table"), name: "new", form: Form::Call, kernel: None, user: Some(table_new) },
];

/// Whether `b` is the table constructor `table.new(narr, nrec)`, whose
/// integer arguments size a table.
pub fn is_constructor(b: BuiltinId) -> bool {
    let d = b.def();
    d.namespace == Some("table") && d.name == "new"
}

fn delete_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Stmt> {
    let var = super::output::table_arg(cx, c)?;
    if c.args.len() > 1 {
        cx.unsupported(c.span, "delete(t, key) (use t[key] = nil)");
        return None;
    }
    let site = cx.site(SiteKind::Delete { var }, Vec::new(), Vec::new(), c.span);
    Some(ir::Stmt { kind: ir::StmtKind::Emit { site, args: Vec::new() }, span: Some(c.span) })
}

fn delete_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    // A global aggregate (`lat = hist(d)` in probes) is emptied in place.
    if let (Some(Value::Agg(r)), None) = (args.first(), args.get(1)) {
        let empty = r.borrow().emptied();
        *r.borrow_mut() = empty;
        return Ok(Value::Nil);
    }
    let t = cx.table(args, 0)?;
    match args.get(1) {
        Some(key) => t.borrow_mut().remove(key),
        None => t.borrow_mut().clear(),
    }
    Ok(Value::Nil)
}

fn table_new(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let mut cap = 0i64;
    for (i, v) in args.iter().take(2).enumerate() {
        if !v.is_nil() {
            cap = cap.saturating_add(cx.int(args, i)?.clamp(0, MAX_PREALLOC));
        }
    }
    let cap = usize::try_from(cap.min(MAX_PREALLOC)).unwrap_or(0);
    Ok(Value::Table(Rc::new(RefCell::new(Table::with_capacity(cap)))))
}

/// `sort_pairs(t)`: a copy of `t` to walk with `for (k, v in ...)` in
/// order of value, largest first (as `print_hist` shows it); numbers
/// before other values, ties in the table's order.
fn sort_pairs(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let t = cx.table(args, 0)?;
    if let Some(other) = args.get(1).filter(|v| !v.is_nil()) {
        return Err(Throw::msg(format!("sort_pairs takes one table and sorts it by value, largest first (got a {} as its second argument)", other.type_name())));
    }
    let mut entries: Vec<(Value, Value)> = t.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by(|(_, a), (_, b)| match (a, b) {
        (Value::Int(a), Value::Int(b)) => b.cmp(a),
        (Value::Int(_), _) => std::cmp::Ordering::Less,
        (_, Value::Int(_)) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    });
    let mut sorted = Table::with_capacity(entries.len());
    for (k, v) in entries {
        sorted.set(k, v);
    }
    Ok(Value::Table(Rc::new(RefCell::new(sorted))))
}
