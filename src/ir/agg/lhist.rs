//! The `lhist` aggregate (`t[k] = lhist(v, min, max, step)`): a u64 count
//! per linear bucket `[min + i*step, min + (i+1)*step)` (the last one ends
//! at `max`), one for values below `min` first and one for values from
//! `max` up last; per-CPU copies added up. Description only; never emits
//! code. The frontend checks `step > 0`, `min < max` and the bucket count.

use super::hist::{count_fields, merge_counts, read_counts, write_counts};
use super::{Aggregate, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Lhist {
    pub min: i64,
    pub max: i64,
    pub step: i64,
}

/// The most linear buckets one `lhist` may have.
pub const MAX_BUCKETS: i128 = 1000;

impl Lhist {
    /// Linear buckets between `min` and `max`.
    pub fn linear(&self) -> u32 {
        let span = i128::from(self.max) - i128::from(self.min);
        let step = i128::from(self.step.max(1));
        u32::try_from(((span + step - 1) / step).clamp(1, MAX_BUCKETS)).unwrap_or(1)
    }

    /// Every bucket: below, the linear ones, from `max` up.
    pub fn buckets(&self) -> u32 {
        self.linear() + 2
    }

    /// The bucket a value falls in.
    pub fn index(&self, v: i64) -> u32 {
        if v < self.min {
            0
        } else if v >= self.max {
            self.linear() + 1
        } else {
            let i = (i128::from(v) - i128::from(self.min)) / i128::from(self.step.max(1));
            u32::try_from(i).unwrap_or(0).min(self.linear() - 1) + 1
        }
    }

    fn bounds(&self, i: u32) -> (Option<i64>, Option<i64>) {
        let n = self.linear();
        let at = |j: u32| i64::try_from(i128::from(self.min) + i128::from(j) * i128::from(self.step)).unwrap_or(self.max).min(self.max);
        match i {
            0 => (None, Some(self.min)),
            _ if i > n => (Some(self.max), None),
            _ => (Some(at(i - 1)), Some(at(i))),
        }
    }
}

impl Aggregate for Lhist {
    fn name(&self) -> &'static str {
        "lhist"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        count_fields(self.buckets())
    }
    fn per_cpu(&self) -> bool {
        true
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        merge_counts(into, other, self.buckets());
    }
    fn read(&self, entry: &[u8]) -> Reading {
        read_counts(entry, self.buckets(), |i| self.bounds(i))
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_counts(r, self.buckets(), |v| self.index(v))
    }
    fn ir_op(&self) -> &'static str {
        "lhist="
    }
    fn ir_value(&self) -> &'static str {
        "Lhist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::agg::{put_u64, Bucket};

    #[test]
    fn linear_buckets_with_under_and_overflow() {
        let l = Lhist { min: 0, max: 100, step: 30 };
        assert_eq!(l.linear(), 4);
        assert_eq!(l.index(-1), 0);
        assert_eq!(l.index(0), 1);
        assert_eq!(l.index(29), 1);
        assert_eq!(l.index(30), 2);
        assert_eq!(l.index(99), 4);
        assert_eq!(l.index(100), 5);
        assert_eq!(l.bounds(4), (Some(90), Some(100)));
        let mut e = vec![0u8; l.buckets() as usize * 8];
        put_u64(&mut e, 0, 1);
        put_u64(&mut e, 5 * 8, 2);
        let Reading::Buckets(b) = l.read(&e) else { panic!("buckets") };
        assert_eq!(b.len(), 6);
        assert_eq!(b[0], Bucket { min: None, max: Some(0), count: 1 });
        assert_eq!(b[5], Bucket { min: Some(100), max: None, count: 2 });
    }
}
