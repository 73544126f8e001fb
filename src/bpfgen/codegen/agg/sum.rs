//! The `sum` aggregate's update code: an atomic add to a shared total, a
//! load-add-store to a CPU's own copy. Never decides the layout (`ir::agg::sum`).

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{AluOp, Insn, Reg, Size};

pub(super) struct Sum;

impl UpdateCode for Sum {
    fn first_entry(&self, _: &mut Gen, value: Loc) -> Option<Loc> {
        Some(value)
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        if shared {
            g.asm.emit(Insn::atomic_add(Size::DW, entry, value, 0, false));
        } else {
            g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 0));
            g.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R2, value));
            g.asm.emit(Insn::stx(Size::DW, entry, Reg::R2, 0));
        }
    }
}
