//! The `min` aggregate's update code (`ir::agg::min`): the value replaces
//! the kept one when none was seen yet or it is smaller; the count of
//! values seen at +8 grows by one. The comparison is not atomic: a shared
//! entry (never the case for a table, whose map is per-CPU) may keep a
//! value another CPU raced past.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{Insn, JmpOp, Reg, Size};

pub(super) struct Min;

/// Keeps the value when nothing was seen or `keep_old` does not hold of
/// (kept, value); counts it.
pub(super) fn extreme(g: &mut Gen, entry: Reg, value: Reg, shared: bool, keep_old: JmpOp) {
    let store = g.asm.label();
    let keep = g.asm.label();
    g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 8));
    g.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R2, 0, 0), store);
    g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 0));
    g.asm.jump(Insn::jmp_reg(keep_old, Reg::R2, value, 0), keep);
    g.asm.bind(store);
    g.asm.emit(Insn::stx(Size::DW, entry, value, 0));
    g.asm.bind(keep);
    g.asm.emit(Insn::mov64_imm(Reg::R2, 1));
    super::avg::add_at(g, entry, 8, Reg::R2, shared);
}

impl UpdateCode for Min {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        extreme(g, entry, value, shared, JmpOp::Jsle);
    }
}
