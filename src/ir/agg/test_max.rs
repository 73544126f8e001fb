//! A test-only aggregate kind (the maximum and the number of updates, 16
//! bytes, shared rather than per-CPU): shows that a kind is one file plus
//! a registry line. Never compiled outside tests.

use super::{le_u64, put_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct TestMax;

const LAYOUT: &[Field] = &[Field { name: "max", offset: 0, size: 8 }, Field { name: "updates", offset: 8, size: 8 }];

impl Aggregate for TestMax {
    fn name(&self) -> &'static str {
        "test_max"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        LAYOUT.into()
    }
    fn per_cpu(&self) -> bool {
        false
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        // An empty copy (no updates) has no maximum.
        let max = match (le_u64(into, 8), le_u64(other, 8)) {
            (_, 0) => le_u64(into, 0) as i64,
            (0, _) => le_u64(other, 0) as i64,
            _ => (le_u64(into, 0) as i64).max(le_u64(other, 0) as i64),
        };
        put_u64(into, 0, max as u64);
        put_u64(into, 8, le_u64(into, 8).wrapping_add(le_u64(other, 8)));
    }
    fn read(&self, entry: &[u8]) -> Reading {
        Reading::Int(le_u64(entry, 0) as i64)
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        let i = r.as_int()?;
        let mut e = vec![0; 16];
        put_u64(&mut e, 0, i as u64);
        put_u64(&mut e, 8, 1);
        Some(e)
    }
    fn ir_op(&self) -> &'static str {
        "max="
    }
    fn ir_value(&self) -> &'static str {
        "TestMax"
    }
}
