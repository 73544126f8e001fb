//! The `avg` aggregate's update code (`ir::agg::avg`): one more value at
//! +0, the value added to the total at +8, starting from the empty entry;
//! atomic adds when shared, load-add-stores on a CPU's own copy.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{AluOp, Insn, Reg, Size};

pub(super) struct Avg;

/// `*(u64 *)(entry + off) += src` (`src` is not kept when not shared).
pub(super) fn add_at(g: &mut Gen, entry: Reg, off: i16, src: Reg, shared: bool) {
    if shared {
        g.asm.emit(Insn::atomic_add(Size::DW, entry, src, off, false));
    } else {
        g.asm.emit(Insn::ldx(Size::DW, Reg::R5, entry, off));
        g.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R5, src));
        g.asm.emit(Insn::stx(Size::DW, entry, Reg::R5, off));
    }
}

impl UpdateCode for Avg {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        g.asm.emit(Insn::mov64_imm(Reg::R2, 1));
        add_at(g, entry, 0, Reg::R2, shared);
        add_at(g, entry, 8, value, shared);
    }
}
