//! The `avg` aggregate (`t[k] = avg(v)`): how many values and their total
//! (two u64s), per-CPU copies added up, read as their mean. Description
//! only; never emits code.

use super::{le_u64, put_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Avg;

/// The layout `avg` and `stats` share: a count, then a total.
pub(super) const COUNT_TOTAL: &[Field] = &[Field { name: "count", offset: 0, size: 8 }, Field { name: "total", offset: 8, size: 8 }];

/// Adds another CPU's (count, total) into `into`.
pub(super) fn merge_count_total(into: &mut [u8], other: &[u8]) {
    put_u64(into, 0, le_u64(into, 0).wrapping_add(le_u64(other, 0)));
    put_u64(into, 8, le_u64(into, 8).wrapping_add(le_u64(other, 8)));
}

/// The (count, total) entry of a reading that has both.
pub(super) fn write_count_total(r: &Reading) -> Option<Vec<u8>> {
    let (count, total) = match r {
        Reading::Avg { count, total } | Reading::Stats { count, total } => (*count, *total),
        _ => return None,
    };
    let mut e = vec![0; 16];
    put_u64(&mut e, 0, count);
    put_u64(&mut e, 8, total as u64);
    Some(e)
}

impl Aggregate for Avg {
    fn name(&self) -> &'static str {
        "avg"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        COUNT_TOTAL.into()
    }
    fn per_cpu(&self) -> bool {
        true
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        merge_count_total(into, other);
    }
    fn read(&self, entry: &[u8]) -> Reading {
        Reading::Avg { count: le_u64(entry, 0), total: le_u64(entry, 8) as i64 }
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_count_total(r)
    }
    fn ir_op(&self) -> &'static str {
        "avg="
    }
    fn ir_value(&self) -> &'static str {
        "Avg"
    }
}
