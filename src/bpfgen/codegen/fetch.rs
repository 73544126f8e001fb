//! Code generation for k/uprobe fetch arguments: registers are loads at a
//! fixed offset from the unmodified `struct pt_regs *` context (r6), memory
//! reads go through `bpf_probe_read_user`/`_kernel` into a stack slot.
//! Fetched strings are `ReadStr` of the fetched address, copied where they
//! go like any kernel string. No IO.

use super::{helper, Gen};
use crate::bpfgen::insn::{AluOp, Insn, Reg, Size};
use crate::ir::{AddrSpace, Fetch, FetchLoc};

/// bpf_get_func_ip (include/uapi/linux/bpf.h).
const GET_FUNC_IP: i32 = 173;
const PROBE_READ_USER: i32 = 112;

fn size_of(bytes: u8) -> Size {
    match bytes {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    }
}

impl Gen<'_> {
    /// Evaluates a fetch into `dst`, narrowed and extended to its type.
    pub(super) fn fetch(&mut self, f: &Fetch, dst: Reg) {
        self.fetch_loc(&f.loc, dst);
        // A memory read of the final width already zero-extends.
        let loaded_narrow = matches!(f.loc, FetchLoc::Mem { bytes, .. } if bytes == f.bytes);
        if f.bytes < 8 && (f.signed || !loaded_narrow) {
            let shift = 64 - 8 * i32::from(f.bytes);
            self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, shift));
            self.asm.emit(Insn::alu64_imm(if f.signed { AluOp::Arsh } else { AluOp::Rsh }, dst, shift));
        }
    }

    fn fetch_loc(&mut self, loc: &FetchLoc, dst: Reg) {
        match loc {
            FetchLoc::Reg(r) => self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R6, r.0 as i16)),
            FetchLoc::Const(v) => match i32::try_from(*v) {
                Ok(small) => self.asm.emit(Insn::mov64_imm(dst, small)),
                Err(_) => self.asm.emit_wide(Insn::ld_imm64(dst, *v as u64)),
            },
            FetchLoc::FuncIp => {
                self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R6));
                self.asm.emit(Insn::call_helper(GET_FUNC_IP));
                self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
            }
            FetchLoc::Offset { base, offset } => {
                self.fetch_loc(base, dst);
                self.add_offset(dst, *offset);
            }
            FetchLoc::Mem { base, offset, bytes, space } => {
                self.fetch_loc(base, dst);
                let slot = self.slot();
                self.asm.emit(Insn::mov64_reg(Reg::R3, dst));
                self.add_offset(Reg::R3, *offset);
                self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(slot)));
                self.asm.emit(Insn::mov64_imm(Reg::R2, i32::from(*bytes)));
                // Both helpers zero the destination when the read faults.
                let read = match space {
                    AddrSpace::User => PROBE_READ_USER,
                    AddrSpace::Kernel => helper::PROBE_READ_KERNEL,
                };
                self.asm.emit(Insn::call_helper(read));
                self.asm.emit(Insn::ldx(size_of(*bytes), dst, Reg::R10, slot));
            }
        }
    }

    fn add_offset(&mut self, r: Reg, offset: i64) {
        if offset == 0 {
            return;
        }
        match i32::try_from(offset) {
            Ok(imm) => self.asm.emit(Insn::alu64_imm(AluOp::Add, r, imm)),
            Err(_) => {
                self.asm.emit_wide(Insn::ld_imm64(Reg::R2, offset as u64));
                self.asm.emit(Insn::alu64_reg(AluOp::Add, r, Reg::R2));
            }
        }
    }
}
