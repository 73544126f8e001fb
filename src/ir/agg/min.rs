//! The `min` aggregate (`t[k] = min(v)`): the smallest value seen and how
//! many were seen (a CPU's copy without any has no minimum), per-CPU.
//! Description only; never emits code.

use super::{le_u64, put_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Min;

/// The layout `min` and `max` share: the value kept, then how many values.
pub(super) const VALUE_SEEN: &[Field] = &[Field { name: "value", offset: 0, size: 8 }, Field { name: "seen", offset: 8, size: 8 }];

/// Merges (value, seen) copies keeping `pick` of the two values; a copy
/// that saw nothing has no value.
pub(super) fn merge_extreme(into: &mut [u8], other: &[u8], pick: fn(i64, i64) -> i64) {
    let value = match (le_u64(into, 8), le_u64(other, 8)) {
        (_, 0) => le_u64(into, 0) as i64,
        (0, _) => le_u64(other, 0) as i64,
        _ => pick(le_u64(into, 0) as i64, le_u64(other, 0) as i64),
    };
    put_u64(into, 0, value as u64);
    put_u64(into, 8, le_u64(into, 8).wrapping_add(le_u64(other, 8)));
}

/// The entry a userspace write of the number `r` stores (seen once).
pub(super) fn write_extreme(r: &Reading) -> Option<Vec<u8>> {
    let i = r.as_int()?;
    let mut e = vec![0; 16];
    put_u64(&mut e, 0, i as u64);
    put_u64(&mut e, 8, 1);
    Some(e)
}

impl Aggregate for Min {
    fn name(&self) -> &'static str {
        "min"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        VALUE_SEEN.into()
    }
    fn per_cpu(&self) -> bool {
        true
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        merge_extreme(into, other, i64::min);
    }
    fn read(&self, entry: &[u8]) -> Reading {
        Reading::Int(le_u64(entry, 0) as i64)
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_extreme(r)
    }
    fn ir_op(&self) -> &'static str {
        "min="
    }
    fn ir_value(&self) -> &'static str {
        "Min"
    }
}
