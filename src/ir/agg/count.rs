//! The `count` aggregate (`t[k] = count()`): one 8-byte count of events,
//! per-CPU copies added up. Description only; never emits code.

use super::{le_u64, put_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Count;

const LAYOUT: &[Field] = &[Field { name: "count", offset: 0, size: 8 }];

impl Aggregate for Count {
    fn name(&self) -> &'static str {
        "count"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        LAYOUT.into()
    }
    fn per_cpu(&self) -> bool {
        true
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        put_u64(into, 0, le_u64(into, 0).wrapping_add(le_u64(other, 0)));
    }
    fn read(&self, entry: &[u8]) -> Reading {
        Reading::Int(le_u64(entry, 0) as i64)
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        r.as_int().map(|i| i.to_le_bytes().to_vec())
    }
    fn counts(&self) -> bool {
        true
    }
    fn ir_op(&self) -> &'static str {
        "count="
    }
    fn ir_value(&self) -> &'static str {
        "Count"
    }
}
