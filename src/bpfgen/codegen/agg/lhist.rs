//! The `lhist` aggregate's update code (`ir::agg::lhist`): bucket 0 below
//! `min`, the last from `max` up, else 1 + (v - min) / step (an unsigned
//! division: v - min is not negative there); then one more at that bucket
//! (`codegen::agg::hist`'s bump). Starts from the empty entry.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{AluOp, Insn, JmpOp, Reg};
use crate::ir::agg::lhist;

pub(super) struct Lhist(pub lhist::Lhist);

impl UpdateCode for Lhist {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        let l = &self.0;
        let found = g.asm.label();
        g.asm.emit(Insn::mov64_reg(Reg::R3, value));
        g.asm.emit_wide(Insn::ld_imm64(Reg::R4, l.min as u64));
        g.asm.emit(Insn::mov64_imm(Reg::R2, 0));
        g.asm.jump(Insn::jmp_reg(JmpOp::Jslt, Reg::R3, Reg::R4, 0), found);
        g.asm.emit_wide(Insn::ld_imm64(Reg::R4, l.max as u64));
        g.asm.emit(Insn::mov64_imm(Reg::R2, l.linear() as i32 + 1));
        g.asm.jump(Insn::jmp_reg(JmpOp::Jsge, Reg::R3, Reg::R4, 0), found);
        g.asm.emit_wide(Insn::ld_imm64(Reg::R4, l.min as u64));
        g.asm.emit(Insn::alu64_reg(AluOp::Sub, Reg::R3, Reg::R4));
        g.asm.emit_wide(Insn::ld_imm64(Reg::R4, l.step as u64));
        g.asm.emit(Insn::alu64_reg(AluOp::Div, Reg::R3, Reg::R4));
        g.asm.emit(Insn::mov64_reg(Reg::R2, Reg::R3));
        g.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, 1));
        g.asm.bind(found);
        bump(g, entry, l.buckets(), shared);
    }
}

fn bump(g: &mut Gen, entry: Reg, buckets: u32, shared: bool) {
    super::hist::bump_bucket(g, entry, buckets, shared);
}
