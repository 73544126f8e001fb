//! The `stats` aggregate (`t[k] = stats(v)`): count and total like `avg`
//! (the same layout), shown as count, average and total. Description
//! only; never emits code.

use super::avg::{merge_count_total, write_count_total, COUNT_TOTAL};
use super::{le_u64, Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Stats;

impl Aggregate for Stats {
    fn name(&self) -> &'static str {
        "stats"
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
        Reading::Stats { count: le_u64(entry, 0), total: le_u64(entry, 8) as i64 }
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_count_total(r)
    }
    fn ir_op(&self) -> &'static str {
        "stats="
    }
    fn ir_value(&self) -> &'static str {
        "Stats"
    }
}
