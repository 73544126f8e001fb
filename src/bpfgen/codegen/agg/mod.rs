//! Aggregate updates: the generic part (find or insert a table entry,
//! address a global) and, through [`code`], each kind's own update code
//! (one file per kind, described in `ir::agg`). Emits instructions only;
//! never decides per-CPU (the map's kind says it) and never does IO.

mod avg;
mod count;
mod hist;
mod lhist;
mod max;
mod min;
mod stats;
mod sum;
#[cfg(test)]
mod test_max;

use super::{helper, Dst, Gen, Loc, BPF_NOEXIST};
use crate::bpfgen::insn::{Insn, JmpOp, Reg, Size};
use crate::ir::{AggKind, AggTarget, Expr, MapKind};
use crate::span::Span;

/// A kind's update code.
pub(super) trait UpdateCode: Sync {
    /// The entry a table's first update with the value (an 8-byte slot)
    /// inserts, if the kind builds one (a sum inserts the value itself);
    /// `None`: insert the empty entry (all zero) and update it like any.
    fn first_entry(&self, g: &mut Gen, value: Loc) -> Option<Loc>;
    /// Folds the value in `value` into the entry `entry` points at.
    /// `shared`: other CPUs update the same entry at once (atomics needed).
    /// May use r2–r5; `entry` and `value` are never among them.
    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool);
}

/// The registry: a kind's update code (owned, like its description, so a
/// kind can carry parameters).
fn code(kind: AggKind) -> Box<dyn UpdateCode> {
    match kind {
        AggKind::Sum => Box::new(sum::Sum),
        AggKind::Count => Box::new(count::Count),
        AggKind::Avg => Box::new(avg::Avg),
        AggKind::Min => Box::new(min::Min),
        AggKind::Max => Box::new(max::Max),
        AggKind::Stats => Box::new(stats::Stats),
        AggKind::Hist => Box::new(hist::Hist),
        AggKind::Lhist { min, max, step } => Box::new(lhist::Lhist(crate::ir::agg::lhist::Lhist { min, max, step })),
        #[cfg(test)]
        AggKind::TestMax => Box::new(test_max::TestMax),
    }
}

impl Gen<'_> {
    /// An aggregate update. A table entry is updated in place when its key
    /// exists, else inserted (and if another CPU inserted first, updated
    /// in the winner's entry); per-CPU maps own their entry, shared ones
    /// and globals are updated atomically.
    pub(super) fn agg_update(&mut self, to: &AggTarget, kind: AggKind, value: &Expr, span: Option<Span>) {
        let code = code(kind);
        let code = code.as_ref();
        let (map, key) = match to {
            AggTarget::Global(global) => {
                let r = self.expr(value, 0);
                self.asm.span = span;
                self.asm.load_addr(Reg::R1, self.global_target(*global));
                code.update(self, Reg::R1, r, true);
                return;
            }
            AggTarget::Entry { map, key } => (*map, key),
        };
        let k = self.key_loc(map, key);
        let r = self.expr(value, 0);
        let v = self.alloc(8);
        self.asm.span = span;
        self.store(Size::DW, v, r);
        let shared = self.m.map(map).kind != MapKind::PercpuHash;
        let found = self.asm.label();
        let end = self.asm.label();
        let fail = self.asm.label();
        self.map_call(map, k, helper::MAP_LOOKUP_ELEM);
        self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), found);
        match code.first_entry(self, v) {
            Some(first) => {
                self.map_update(map, k, first, BPF_NOEXIST);
                self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), end);
            }
            None => {
                // Whoever inserts first, the entry is there to update
                // (a full map fails the lookup below).
                let empty = self.alloc(kind.desc().size().next_multiple_of(8) as i32);
                self.zero_words(Dst::Loc(empty), 0, kind.desc().size().div_ceil(8));
                self.map_update(map, k, empty, BPF_NOEXIST);
            }
        }
        // Lost the race to insert, or inserted an empty entry: update the
        // entry in the map.
        self.map_call(map, k, helper::MAP_LOOKUP_ELEM);
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), fail);
        self.asm.bind(found);
        self.load(Size::DW, Reg::R1, v);
        code.update(self, Reg::R0, Reg::R1, shared);
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(fail);
        self.count_failure();
        self.asm.bind(end);
    }
}
