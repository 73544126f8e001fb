//! The test-only `test_max` kind's update code (`ir::agg::test_max`):
//! keeps the larger value and counts updates, starting from the empty
//! entry. Not atomic for the maximum; never compiled outside tests.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{Insn, JmpOp, Reg, Size};

pub(super) struct TestMax;

impl UpdateCode for TestMax {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, _shared: bool) {
        let store = g.asm.label();
        let keep = g.asm.label();
        // No update yet: any value is the maximum.
        g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 8));
        g.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R2, 0, 0), store);
        g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 0));
        g.asm.jump(Insn::jmp_reg(JmpOp::Jsge, Reg::R2, value, 0), keep);
        g.asm.bind(store);
        g.asm.emit(Insn::stx(Size::DW, entry, value, 0));
        g.asm.bind(keep);
        g.asm.emit(Insn::mov64_imm(Reg::R2, 1));
        g.asm.emit(Insn::atomic_add(Size::DW, entry, Reg::R2, 8, false));
    }
}
