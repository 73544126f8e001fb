//! The `max` aggregate (`t[k] = max(v)`): the largest value seen, laid out
//! and merged like `min`. Description only; never emits code.

use super::min::{merge_extreme, write_extreme, VALUE_SEEN};
use super::{le_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Max;

impl Aggregate for Max {
    fn name(&self) -> &'static str {
        "max"
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
        merge_extreme(into, other, i64::max);
    }
    fn read(&self, entry: &[u8]) -> Reading {
        Reading::Int(le_u64(entry, 0) as i64)
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_extreme(r)
    }
    fn ir_op(&self) -> &'static str {
        "max="
    }
    fn ir_value(&self) -> &'static str {
        "Max"
    }
}
