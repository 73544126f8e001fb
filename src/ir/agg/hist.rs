//! The `hist` aggregate (`t[k] = hist(v)`): a u64 count per power-of-two
//! bucket — negative values, zero, then `[2^j, 2^(j+1))` — per-CPU copies
//! added up, read back as the buckets from the lowest to the highest
//! non-empty one. Description only; never emits code.

use super::{le_u64, put_u64, Aggregate, Bucket, Field, Reading};
use crate::ir::Ty;
use std::borrow::Cow;

pub struct Hist;

/// Negative values, zero, and one per power of two up to 2^62.
pub const BUCKETS: u32 = 65;

/// The bucket a value falls in.
pub fn index(v: i64) -> u32 {
    match v {
        ..0 => 0,
        0 => 1,
        _ => 2 + (63 - v.leading_zeros()),
    }
}

/// The values bucket `i` holds.
fn bounds(i: u32) -> (Option<i64>, Option<i64>) {
    match i {
        0 => (None, Some(0)),
        1 => (Some(0), Some(1)),
        _ => {
            let j = i - 2;
            (1i64.checked_shl(j), if j >= 62 { None } else { Some(1i64 << (j + 1)) })
        }
    }
}

/// `n` u64 counts, one a field.
pub(super) fn count_fields(n: u32) -> Cow<'static, [Field]> {
    (0..n).map(|i| Field { name: "bucket", offset: i * 8, size: 8 }).collect::<Vec<_>>().into()
}

/// Adds every count of `other` into `into`.
pub(super) fn merge_counts(into: &mut [u8], other: &[u8], n: u32) {
    for i in 0..n {
        put_u64(into, i * 8, le_u64(into, i * 8).wrapping_add(le_u64(other, i * 8)));
    }
}

/// The buckets of `n` counts from the lowest to the highest non-empty one.
pub(super) fn read_counts(entry: &[u8], n: u32, bounds: impl Fn(u32) -> (Option<i64>, Option<i64>)) -> Reading {
    let counts: Vec<u64> = (0..n).map(|i| le_u64(entry, i * 8)).collect();
    let (Some(lo), Some(hi)) = (counts.iter().position(|&c| c != 0), counts.iter().rposition(|&c| c != 0)) else {
        return Reading::Buckets(Vec::new());
    };
    Reading::Buckets(
        (lo..=hi)
            .map(|i| {
                let (min, max) = bounds(i as u32);
                Bucket { min, max, count: counts[i] }
            })
            .collect(),
    )
}

/// The entry holding buckets read back (each at the index of its lower
/// bound); `None` if `r` holds no buckets.
pub(super) fn write_counts(r: &Reading, n: u32, index: impl Fn(i64) -> u32) -> Option<Vec<u8>> {
    let Reading::Buckets(buckets) = r else { return None };
    let mut e = vec![0; n as usize * 8];
    for b in buckets {
        let i = index(b.min.unwrap_or(i64::MIN)).min(n - 1);
        let was = le_u64(&e, i * 8);
        put_u64(&mut e, i * 8, was.wrapping_add(b.count));
    }
    Some(e)
}

impl Aggregate for Hist {
    fn name(&self) -> &'static str {
        "hist"
    }
    fn input(&self) -> Ty {
        Ty::Int
    }
    fn layout(&self) -> Cow<'static, [Field]> {
        count_fields(BUCKETS)
    }
    fn per_cpu(&self) -> bool {
        true
    }
    fn merge(&self, into: &mut [u8], other: &[u8]) {
        merge_counts(into, other, BUCKETS);
    }
    fn read(&self, entry: &[u8]) -> Reading {
        read_counts(entry, BUCKETS, bounds)
    }
    fn write(&self, r: &Reading) -> Option<Vec<u8>> {
        write_counts(r, BUCKETS, index)
    }
    fn ir_op(&self) -> &'static str {
        "hist="
    }
    fn ir_value(&self) -> &'static str {
        "Hist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_negative_zero_and_powers_of_two() {
        assert_eq!(index(-5), 0);
        assert_eq!(index(i64::MIN), 0);
        assert_eq!(index(0), 1);
        assert_eq!(index(1), 2);
        assert_eq!(index(2), 3);
        assert_eq!(index(3), 3);
        assert_eq!(index(4), 4);
        assert_eq!(index(1023), 11);
        assert_eq!(index(1024), 12);
        assert_eq!(index(i64::MAX), BUCKETS - 1);
        for v in [-1i64, 0, 1, 2, 3, 7, 8, 1000, 1 << 40, i64::MAX] {
            let (lo, hi) = bounds(index(v));
            assert!(lo.is_none_or(|lo| lo <= v) && hi.is_none_or(|hi| v < hi), "{v} in {lo:?}..{hi:?}");
        }
    }

    #[test]
    fn reads_merged_copies_from_the_lowest_to_the_highest_bucket() {
        let d = Hist;
        let mut a = vec![0u8; BUCKETS as usize * 8];
        let mut b = a.clone();
        put_u64(&mut a, index(1) * 8, 2);
        put_u64(&mut b, index(5) * 8, 3);
        put_u64(&mut b, index(1) * 8, 1);
        d.merge(&mut a, &b);
        let r = d.read(&a);
        let want = vec![
            Bucket { min: Some(1), max: Some(2), count: 3 },
            Bucket { min: Some(2), max: Some(4), count: 0 },
            Bucket { min: Some(4), max: Some(8), count: 3 },
        ];
        assert_eq!(r, Reading::Buckets(want));
        assert_eq!(d.write(&r).map(|e| d.read(&e)), Some(r));
        assert_eq!(d.read(&[]), Reading::Buckets(Vec::new()));
    }
}
