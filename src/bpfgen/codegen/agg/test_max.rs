//! The test-only `test_max` kind's update code (`ir::agg::test_max`):
//! keeps the larger value and counts updates. Not atomic for the maximum;
//! never compiled outside tests.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{Insn, JmpOp, Reg, Size};

pub(super) struct TestMax;

impl UpdateCode for TestMax {
    fn first_entry(&self, g: &mut Gen, value: Loc) -> Loc {
        let entry = g.alloc(16);
        g.load(Size::DW, Reg::R3, value);
        g.store(Size::DW, entry, Reg::R3);
        g.asm.emit(Insn::mov64_imm(Reg::R3, 1));
        g.store(Size::DW, entry.at(8), Reg::R3);
        entry
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, _shared: bool) {
        let keep = g.asm.label();
        g.asm.emit(Insn::ldx(Size::DW, Reg::R2, entry, 0));
        g.asm.jump(Insn::jmp_reg(JmpOp::Jsge, Reg::R2, value, 0), keep);
        g.asm.emit(Insn::stx(Size::DW, entry, value, 0));
        g.asm.bind(keep);
        g.asm.emit(Insn::mov64_imm(Reg::R2, 1));
        g.asm.emit(Insn::atomic_add(Size::DW, entry, Reg::R2, 8, false));
    }
}
