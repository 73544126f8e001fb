//! The `sum` aggregate (`t[k] += v`, `n += v`): one 8-byte total, per-CPU
//! copies added up. Description only; never emits code.

use super::{le_u64, put_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Sum;

const LAYOUT: &[Field] = &[Field { name: "total", offset: 0, size: 8 }];

impl Aggregate for Sum {
    fn name(&self) -> &'static str {
        "sum"
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
        // `t[k] += 1` is how ktap counts.
        true
    }
    fn ir_op(&self) -> &'static str {
        "+="
    }
    fn ir_value(&self) -> &'static str {
        // Its entry is one Int: the dump shows it as one.
        "Int"
    }
}
