//! Aggregating functions: `count()`, `sum(v)`, `avg(v)`, `min(v)`,
//! `max(v)`, `stats(v)`, `hist(v)` and `lhist(v, min, max, step)`. In a
//! probe, assigned to a table element (`t[k] = hist(v)`) they make the
//! table's entries aggregates of their kind (`ir::agg`), updated in the
//! kernel; assigned to a top-level variable (`lat = hist(v)`), the
//! variable. In userspace, `count`, `sum`, `avg`, `min` and `max` read a
//! number out of such an entry (`avg(t[k])`).

use super::{Call, Def, Form, Kernel, UserCx};
use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir::agg::lhist::MAX_BUCKETS;
use crate::ir::agg::Reading;
use crate::ir::AggKind;
use crate::runtime::interp::{Throw, Value};

pub(super) const DEFS: &[Def] = &[
    Def { namespace: None, name: "count", form: Form::Call, kernel: Some(Kernel::Aggregate(count)), user: Some(count_user) },
    Def { namespace: None, name: "sum", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Sum))), user: Some(sum_user) },
    Def { namespace: None, name: "avg", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Avg))), user: Some(avg_user) },
    Def { namespace: None, name: "min", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Min))), user: Some(number_user) },
    Def { namespace: None, name: "max", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Max))), user: Some(number_user) },
    Def { namespace: None, name: "stats", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Stats))), user: None },
    Def { namespace: None, name: "hist", form: Form::Call, kernel: Some(Kernel::Aggregate(|c| one_value(c, AggKind::Hist))), user: None },
    Def { namespace: None, name: "lhist", form: Form::Call, kernel: Some(Kernel::Aggregate(lhist)), user: None },
];

/// What an aggregating call makes: its kind and the value each update
/// folds in (`None`: the number 1, for `count()`).
pub type Made<'a> = (AggKind, Option<&'a ast::Expr>);

fn count<'a>(c: &Call<'a>) -> Result<Made<'a>, Diagnostic> {
    if !c.args.is_empty() {
        return Err(Diagnostic::error(c.span, "count() takes no arguments: it counts events").with_label("no arguments"));
    }
    Ok((AggKind::Count, None))
}

fn one_value<'a>(c: &Call<'a>, kind: AggKind) -> Result<Made<'a>, Diagnostic> {
    match c.args {
        [v] => Ok((kind, Some(v))),
        _ => Err(Diagnostic::error(c.span, format!("{}() takes one value, the number to aggregate", c.name)).with_label(format!("{} arguments", c.args.len()))),
    }
}

/// `lhist(v, min, max, step)`: the bounds and step are integer literals
/// (they shape the table's entries), `step > 0`, `min < max`, and at most
/// `MAX_BUCKETS` linear buckets.
fn lhist<'a>(c: &Call<'a>) -> Result<Made<'a>, Diagnostic> {
    let [v, min, max, step] = c.args else {
        return Err(Diagnostic::error(c.span, "lhist() takes a value, then the lowest bucket's start, the highest bucket's end and the bucket width: lhist(v, 0, 100, 10)").with_label(format!("{} arguments", c.args.len())));
    };
    let literal = |e: &ast::Expr, what: &str| match &e.kind {
        ast::ExprKind::Int(i) => Ok(*i),
        ast::ExprKind::Unary { op: ast::UnOp::Neg, operand } => match &operand.kind {
            ast::ExprKind::Int(i) => Ok(i.wrapping_neg()),
            _ => Err(Diagnostic::error(e.span, format!("lhist()'s {what} must be a number written in the script")).with_label("not a literal number")),
        },
        _ => Err(Diagnostic::error(e.span, format!("lhist()'s {what} must be a number written in the script")).with_label("not a literal number")),
    };
    let (lo, hi, width) = (literal(min, "minimum")?, literal(max, "maximum")?, literal(step, "step")?);
    if width <= 0 {
        return Err(Diagnostic::error(step.span, format!("lhist()'s step must be above zero, not {width}")).with_label("the bucket width"));
    }
    if lo >= hi {
        return Err(Diagnostic::error(c.span, format!("lhist()'s minimum ({lo}) must be below its maximum ({hi})")).with_secondary(min.span, "minimum").with_secondary(max.span, "maximum"));
    }
    let buckets = (i128::from(hi) - i128::from(lo) + i128::from(width) - 1) / i128::from(width);
    if buckets > MAX_BUCKETS {
        return Err(Diagnostic::error(step.span, format!("lhist() would have {buckets} buckets; at most {MAX_BUCKETS}: use a wider step")).with_label("too narrow"));
    }
    Ok((AggKind::Lhist { min: lo, max: hi, step: width }, Some(v)))
}

/// The aggregate argument (or a plain number: a `count`, `sum`, `min` or
/// `max` entry reads back as one, in a table; as a global it is an
/// aggregate holding one).
fn reading(cx: &UserCx, args: &[Value]) -> Result<Result<Reading, i64>, Throw> {
    match args.first() {
        Some(Value::Agg(r)) => match &*r.borrow() {
            Reading::Int(i) => Ok(Err(*i)),
            other => Ok(Ok(other.clone())),
        },
        Some(v @ Value::Int(_)) => Ok(Err(v.to_int().unwrap_or(0))),
        other => Err(cx.bad(1, "aggregate", other)),
    }
}

fn not_kept(cx: &UserCx, r: &Reading) -> Throw {
    let what = match r {
        Reading::Buckets(_) => "a histogram",
        _ => "this aggregate",
    };
    Throw::msg(format!("{}() of {what}: the kernel does not keep it", cx.name))
}

fn count_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    match reading(cx, args)? {
        Ok(r) => r.count().map(|n| Value::Int(n as i64)).ok_or_else(|| not_kept(cx, &r)),
        Err(n) => Ok(Value::Int(n)),
    }
}

fn sum_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    match reading(cx, args)? {
        Ok(r) => r.total().map(Value::Int).ok_or_else(|| not_kept(cx, &r)),
        Err(n) => Ok(Value::Int(n)),
    }
}

fn avg_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    match reading(cx, args)? {
        Ok(r) => r.mean().map(Value::Int).ok_or_else(|| not_kept(cx, &r)),
        Err(n) => Ok(Value::Int(n)),
    }
}

/// `min(t[k])`, `max(t[k])`: a `min`/`max` entry is its number.
fn number_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    match reading(cx, args)? {
        Ok(r) => Err(not_kept(cx, &r)),
        Err(n) => Ok(Value::Int(n)),
    }
}
