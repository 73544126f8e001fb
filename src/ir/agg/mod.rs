//! Aggregate kinds: what a table entry (or kernel global) that probes only
//! update with an aggregating statement holds, described once per kind (one
//! file each) and found through [`AggKind`]. Pure description — layout,
//! per-CPU, merge, read back — never code generation and never IO
//! (bpfgen's `codegen/agg/` holds each kind's update code).

pub mod avg;
pub mod count;
pub mod hist;
pub mod lhist;
pub mod max;
pub mod min;
pub mod stats;
pub mod sum;
#[cfg(test)]
mod test_max;

use std::borrow::Cow;

use super::Ty;

/// An aggregate kind: the key both registries (this one and bpfgen's
/// update code) are looked up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggKind {
    /// `t[k] += v`, `n += v`, `t[k] = sum(v)`: a running total.
    Sum,
    /// `t[k] = count()`: events counted.
    Count,
    /// `t[k] = avg(v)`: the values' count and total, read as their mean.
    Avg,
    /// `t[k] = min(v)`, `t[k] = max(v)`: the extreme value seen.
    Min,
    Max,
    /// `t[k] = stats(v)`: count, average and total.
    Stats,
    /// `t[k] = hist(v)`: power-of-two buckets.
    Hist,
    /// `t[k] = lhist(v, min, max, step)`: linear buckets from `min` to
    /// `max` (checked by the frontend: `step > 0`, `min < max`), plus one
    /// below and one above.
    Lhist { min: i64, max: i64, step: i64 },
    /// A kind only unit tests see: the seam a new kind goes through.
    #[cfg(test)]
    TestMax,
}

impl AggKind {
    /// The registry: the kind's description (owned, so a kind with
    /// parameters — `lhist`'s bounds — can carry them into it).
    pub fn desc(self) -> Box<dyn Aggregate> {
        match self {
            AggKind::Sum => Box::new(sum::Sum),
            AggKind::Count => Box::new(count::Count),
            AggKind::Avg => Box::new(avg::Avg),
            AggKind::Min => Box::new(min::Min),
            AggKind::Max => Box::new(max::Max),
            AggKind::Stats => Box::new(stats::Stats),
            AggKind::Hist => Box::new(hist::Hist),
            AggKind::Lhist { min, max, step } => Box::new(lhist::Lhist { min, max, step }),
            #[cfg(test)]
            AggKind::TestMax => Box::new(test_max::TestMax),
        }
    }
}

/// One field of an aggregate entry as the map stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Bytes from the start of the entry.
    pub offset: u32,
    pub size: u32,
}

/// What userspace reads one (merged) entry back as, and what a userspace
/// write of an entry gives. Plain data: the runtime turns it into its own
/// values and renders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A number (`sum`, `count`, `min`, `max`).
    Int(i64),
    /// `avg`: how many values and their total; reads as their mean.
    Avg { count: u64, total: i64 },
    /// `stats`: how many values and their total (shown with the mean).
    Stats { count: u64, total: i64 },
    /// `hist`, `lhist`: the buckets from the lowest to the highest
    /// non-empty one (empty ones between kept), lowest first.
    Buckets(Vec<Bucket>),
}

/// One histogram bucket: the values `min <= v < max` (`None`: unbounded
/// on that side) and how many fell in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub count: u64,
}

impl Reading {
    /// The number, if it is one (an average's mean, rounded toward zero).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reading::Int(i) => Some(*i),
            Reading::Avg { count, total } => Some(mean(*count, *total)),
            Reading::Stats { .. } | Reading::Buckets(_) => None,
        }
    }

    /// The same kind of reading with nothing aggregated (`delete(lat)`).
    pub fn emptied(&self) -> Reading {
        match self {
            Reading::Int(_) => Reading::Int(0),
            Reading::Avg { .. } => Reading::Avg { count: 0, total: 0 },
            Reading::Stats { .. } => Reading::Stats { count: 0, total: 0 },
            Reading::Buckets(_) => Reading::Buckets(Vec::new()),
        }
    }

    /// How many values it holds, when it knows (`count(t[k])`).
    pub fn count(&self) -> Option<u64> {
        match self {
            Reading::Int(_) => None,
            Reading::Avg { count, .. } | Reading::Stats { count, .. } => Some(*count),
            Reading::Buckets(b) => Some(b.iter().map(|b| b.count).sum()),
        }
    }

    /// The values' total, when it knows (`sum(t[k])`).
    pub fn total(&self) -> Option<i64> {
        match self {
            Reading::Avg { total, .. } | Reading::Stats { total, .. } => Some(*total),
            Reading::Int(_) | Reading::Buckets(_) => None,
        }
    }

    /// The values' mean, when it knows (`avg(t[k])`).
    pub fn mean(&self) -> Option<i64> {
        match self {
            Reading::Avg { count, total } | Reading::Stats { count, total } => Some(mean(*count, *total)),
            Reading::Int(_) | Reading::Buckets(_) => None,
        }
    }
}

/// `total / count`, 0 for no values.
pub fn mean(count: u64, total: i64) -> i64 {
    match i64::try_from(count) {
        Ok(n) if n > 0 => total / n,
        _ => 0,
    }
}

/// An aggregate kind's description: everything about it but its update
/// code. Implementations never panic on any bytes: a short entry reads
/// as if zero-padded.
pub trait Aggregate: Sync {
    /// The kind's name in messages.
    fn name(&self) -> &'static str;
    /// The type of the value one update folds in.
    fn input(&self) -> Ty;
    /// The entry's fields, in order, 8-byte aligned.
    fn layout(&self) -> Cow<'static, [Field]>;
    /// Whether probes may each update their own CPU's copy (merged when
    /// userspace reads): the map is then per-CPU.
    fn per_cpu(&self) -> bool;
    /// Folds `other` (another CPU's copy of the same entry) into `into`.
    fn merge(&self, into: &mut [u8], other: &[u8]);
    /// The entry as userspace sees it.
    fn read(&self, entry: &[u8]) -> Reading;
    /// The entry a userspace write of `r` stores, `None` when `r` is not a
    /// value of this kind.
    fn write(&self, r: &Reading) -> Option<Vec<u8>>;
    /// Whether entries count something (a `sum` of events): exported as
    /// counters rather than gauges (`--metrics`).
    fn counts(&self) -> bool {
        false
    }
    /// The update's operator in `--emit ir` (`+=`).
    fn ir_op(&self) -> &'static str;
    /// The entry in `--emit ir`'s map lines.
    fn ir_value(&self) -> &'static str;
}

impl dyn Aggregate {
    /// Bytes in one entry.
    pub fn size(&self) -> u32 {
        self.layout().iter().map(|f| f.offset + f.size).max().unwrap_or(0)
    }

    /// The entry with nothing aggregated yet (all zero bytes): what a
    /// userspace write leaves in the other CPUs' copies.
    pub fn empty(&self) -> Vec<u8> {
        vec![0; self.size() as usize]
    }

    /// Merges every CPU's copy of one entry and reads the result.
    pub fn read_cpus<'a>(&self, copies: impl IntoIterator<Item = &'a [u8]>) -> Reading {
        let mut acc: Option<Vec<u8>> = None;
        for c in copies {
            match &mut acc {
                None => {
                    let mut first = self.empty();
                    let n = first.len().min(c.len());
                    first[..n].copy_from_slice(&c[..n]);
                    acc = Some(first);
                }
                Some(into) => self.merge(into, c),
            }
        }
        self.read(&acc.unwrap_or_else(|| self.empty()))
    }
}

/// The little-endian u64 at `off` (zero-padded when `bytes` is short).
pub fn le_u64(bytes: &[u8], off: u32) -> u64 {
    let mut b = [0u8; 8];
    let tail = bytes.get(off as usize..).unwrap_or(&[]);
    let n = tail.len().min(8);
    b[..n].copy_from_slice(&tail[..n]);
    u64::from_le_bytes(b)
}

/// Stores `v` little-endian at `off` (what fits of it).
pub fn put_u64(bytes: &mut [u8], off: u32, v: u64) {
    let tail = bytes.get_mut(off as usize..).unwrap_or(&mut []);
    let n = tail.len().min(8);
    tail[..n].copy_from_slice(&v.to_le_bytes()[..n]);
}

/// How a table's entries are kept: a plain value of a kernel type, or an
/// aggregate of a kind (a table probes only update with that kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableValue {
    Scalar(Ty),
    Agg(AggKind),
}

impl TableValue {
    /// Bytes in one map value.
    pub fn size(self) -> u32 {
        match self {
            TableValue::Scalar(ty) => ty.size(),
            TableValue::Agg(kind) => kind.desc().size(),
        }
    }

    /// The type kernel code deals in: a scalar's own, an aggregate's input.
    pub fn ty(self) -> Ty {
        match self {
            TableValue::Scalar(ty) => ty,
            TableValue::Agg(kind) => kind.desc().input(),
        }
    }

    /// Whether the map keeps one copy per CPU (an aggregate whose kind
    /// allows it).
    pub fn per_cpu(self) -> bool {
        matches!(self, TableValue::Agg(kind) if kind.desc().per_cpu())
    }

    /// The aggregate kind, if it is one.
    pub fn agg(self) -> Option<AggKind> {
        match self {
            TableValue::Agg(kind) => Some(kind),
            TableValue::Scalar(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn sum_merges_per_cpu_copies_by_adding_with_wraparound() {
        let d = AggKind::Sum.desc();
        assert_eq!(d.size(), 8);
        let copies = [entry(&[5]), entry(&[(-2i64) as u64]), entry(&[u64::MAX])];
        assert_eq!(d.read_cpus(copies.iter().map(Vec::as_slice)), Reading::Int(2));
        assert_eq!(d.read_cpus(std::iter::empty()), Reading::Int(0));
        assert_eq!(d.write(&Reading::Int(-7)), Some(entry(&[(-7i64) as u64])));
    }

    #[test]
    fn short_entries_read_as_zero_padded() {
        let d = AggKind::Sum.desc();
        assert_eq!(d.read(&[3]), Reading::Int(3));
        assert_eq!(d.read(&[]), Reading::Int(0));
        assert_eq!(d.read_cpus([&[1u8][..], &[][..]]), Reading::Int(1));
    }

    /// A second kind with its own layout and merge goes through the same
    /// generic code: sizes, per-CPU choice and merged reads come from its
    /// file and the registry line alone.
    #[test]
    fn a_second_kind_is_one_file_and_a_registry_line() {
        let v = TableValue::Agg(AggKind::TestMax);
        assert_eq!(v.size(), 16);
        assert_eq!(v.ty(), Ty::Int);
        assert!(!v.per_cpu(), "the test kind keeps one shared copy");
        assert!(TableValue::Agg(AggKind::Sum).per_cpu());
        assert!(!TableValue::Scalar(Ty::Int).per_cpu());
        let d = AggKind::TestMax.desc();
        // (max, updates) per CPU: the maximum of the maxima, the sum of the counts.
        let copies = [entry(&[4, 2]), entry(&[9, 1]), entry(&[(-1i64) as u64, 5])];
        assert_eq!(d.read_cpus(copies.iter().map(Vec::as_slice)), Reading::Int(9));
        // A CPU's empty copy (no updates) has no maximum to give.
        let negative = [entry(&[0, 0]), entry(&[(-3i64) as u64, 1]), entry(&[0, 0])];
        assert_eq!(d.read_cpus(negative.iter().map(Vec::as_slice)), Reading::Int(-3));
        assert_eq!(d.write(&Reading::Int(-3)), Some(entry(&[(-3i64) as u64, 1])));
        let mut into = entry(&[4, 2]);
        d.merge(&mut into, &entry(&[9, 1]));
        assert_eq!(into, entry(&[9, 3]));
    }
}
