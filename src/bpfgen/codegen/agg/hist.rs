//! The `hist` aggregate's update code (`ir::agg::hist`): the bucket index
//! (0 negative, 1 zero, 2 + floor(log2 v) otherwise, found by halving in
//! six shifts, no loop), bounded for the verifier, then one more at that
//! bucket; starts from the empty entry.

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{AluOp, Insn, JmpOp, Reg};
use crate::ir::agg::hist::BUCKETS;

pub(super) struct Hist;

/// Adds one at bucket `r2` of `entry` (r2 is bounded here to `buckets - 1`
/// so the verifier sees the access in bounds). Uses r2, r4, r5.
pub(super) fn bump_bucket(g: &mut Gen, entry: Reg, buckets: u32, shared: bool) {
    let last = buckets as i32 - 1;
    let ok = g.asm.label();
    g.asm.jump(Insn::jmp_imm(JmpOp::Jle, Reg::R2, last, 0), ok);
    g.asm.emit(Insn::mov64_imm(Reg::R2, last));
    g.asm.bind(ok);
    g.asm.emit(Insn::alu64_imm(AluOp::Lsh, Reg::R2, 3));
    g.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R2, entry));
    g.asm.emit(Insn::mov64_imm(Reg::R4, 1));
    super::avg::add_at(g, Reg::R2, 0, Reg::R4, shared);
}

impl UpdateCode for Hist {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        let found = g.asm.label();
        g.asm.emit(Insn::mov64_reg(Reg::R3, value));
        g.asm.emit(Insn::mov64_imm(Reg::R2, 0));
        g.asm.jump(Insn::jmp_imm(JmpOp::Jslt, Reg::R3, 0, 0), found);
        g.asm.emit(Insn::mov64_imm(Reg::R2, 1));
        g.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0), found);
        g.asm.emit(Insn::mov64_imm(Reg::R2, 2));
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = g.asm.label();
            g.asm.emit(Insn::mov64_reg(Reg::R4, Reg::R3));
            g.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R4, shift));
            g.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R4, 0, 0), skip);
            g.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R4));
            g.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, shift));
            g.asm.bind(skip);
        }
        g.asm.bind(found);
        bump_bucket(g, entry, BUCKETS, shared);
    }
}
