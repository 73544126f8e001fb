//! Code generation for typed loads along a path (`ir::Path`): from the
//! current task (`bpf_get_current_task_btf`) or a BTF-typed context
//! argument, through the pointers of `derefs` (each checked against NULL:
//! a NULL on the way reads as 0), to an integer at the final offset or the
//! address itself. Every offset that came from the kernel's BTF sits in
//! the immediate or offset of one instruction, recorded for a CO-RE
//! relocation. Loads are direct: the verifier knows these pointers' BTF
//! types. No IO; the per-CPU walk of `in_interrupt()` is not here.

use super::{helper, Gen, Label};
use crate::bpfgen::core::{FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_LSHIFT_U64, FIELD_RSHIFT_U64};
use crate::bpfgen::elf::CoreReloc;
use crate::bpfgen::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::ir::{Path, PathBase, Via};

fn size_of(bytes: u8) -> Size {
    match bytes {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    }
}

impl Gen<'_> {
    /// Records the CO-RE field of `step`, if any, on the next instruction.
    fn core_here(&mut self, path: &Path, step: usize) {
        self.core_kind_here(path, step, FIELD_BYTE_OFFSET);
    }

    /// Records the CO-RE field of `step`, if any, as a relocation of
    /// `kind` on the next instruction.
    fn core_kind_here(&mut self, path: &Path, step: usize, kind: u32) {
        if let Some(field) = path.core.iter().find(|c| c.step as usize == step) {
            self.asm.core.push(CoreReloc { insn: self.asm.insns.len(), field: field.clone(), kind });
        }
    }

    fn has_core(path: &Path, step: usize) -> bool {
        path.core.iter().any(|c| c.step as usize == step)
    }

    /// `dst = size bytes at r3` through `bpf_probe_read_kernel` (or
    /// `_user`) into a stack slot (zeros when the read fails). With
    /// `sized`, the length is the loading kernel's: the record of that
    /// path's step moves it (`FIELD_BYTE_SIZE`), and all 8 bytes of the
    /// zeroed slot are read back.
    fn probe_read_at_r3(&mut self, size: u8, dst: Reg, via: Via, sized: Option<(&Path, usize)>) {
        let saved = self.frame;
        let slot = self.slot();
        self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, slot));
        self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(slot)));
        if let Some((path, step)) = sized {
            self.core_kind_here(path, step, FIELD_BYTE_SIZE);
        }
        self.asm.emit(Insn::mov64_imm(Reg::R2, i32::from(size)));
        self.asm.emit(Insn::call_helper(if via == Via::ProbeReadUser { helper::PROBE_READ_USER } else { helper::PROBE_READ_KERNEL }));
        let back = if sized.is_some() { Size::DW } else { size_of(size) };
        self.asm.emit(Insn::ldx(back, dst, Reg::R10, slot));
        self.frame = saved;
    }

    /// `r3 = [r3 + off]` (8 bytes), or through an add when `off` does
    /// not fit an instruction's offset; read with a helper when the
    /// pointer is not one the verifier knows.
    fn load_ptr(&mut self, path: &Path, step: usize, off: u32) {
        if path.via != Via::Direct {
            if off != 0 || Self::has_core(path, step) {
                self.core_here(path, step);
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, off as i32));
            }
            self.probe_read_at_r3(8, Reg::R3, path.via, None);
            return;
        }
        match i16::try_from(off) {
            Ok(o) => {
                self.core_here(path, step);
                self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R3, o));
            }
            Err(_) => {
                self.core_here(path, step);
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, off as i32));
                self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R3, 0));
            }
        }
    }

    /// `dst` = the word holding a bitfield that carries CO-RE records, at
    /// `offset` from r3, as wide as the loading kernel's layout makes it:
    /// its size is an immediate the loader rewrites (`FIELD_BYTE_SIZE`),
    /// and a load of each width follows (the verifier walks only the one
    /// the size picks); read with a helper, the size is the helper's
    /// length into a zeroed 8-byte slot.
    fn bitfield_word(&mut self, path: &Path, last: usize, offset: i32, dst: Reg) {
        let bytes = i32::from(path.size);
        if path.via != Via::Direct {
            self.core_here(path, last);
            self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, offset));
            self.probe_read_at_r3(path.size, dst, path.via, Some((path, last)));
            return;
        }
        let done: Label = self.asm.label();
        self.core_kind_here(path, last, FIELD_BYTE_SIZE);
        self.asm.emit(Insn::mov64_imm(dst, bytes));
        for width in [1u8, 2, 4, 8] {
            let next: Label = self.asm.label();
            if width < 8 {
                self.asm.jump(Insn::jmp_imm(JmpOp::Jne, dst, i32::from(width), 0), next);
            }
            self.core_here(path, last);
            self.asm.emit(Insn::ldx(size_of(width), dst, Reg::R3, offset as i16));
            if width < 8 {
                self.asm.jump(Insn::ja(0), done);
            }
            self.asm.bind(next);
        }
        self.asm.bind(done);
    }

    /// Evaluates `path` into `dst`: the integer it reads (extended as its
    /// sign says), or the address when its size is 0; 0 past a NULL.
    pub(super) fn typed_load(&mut self, path: &Path, dst: Reg) {
        let null: Label = self.asm.label();
        let end: Label = self.asm.label();
        let mut steps = path.derefs.iter().enumerate();
        match path.base {
            PathBase::CurrentTask => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_TASK_BTF));
                self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R0));
            }
            PathBase::Reg(r) => {
                if path.derefs.is_empty() && path.size > 0 {
                    // The register itself, cut to its type.
                    self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R6, r.0 as i16));
                    if path.size < 8 {
                        let shift = 64 - 8 * i32::from(path.size);
                        self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, shift));
                        self.asm.emit(Insn::alu64_imm(if path.signed { AluOp::Arsh } else { AluOp::Rsh }, dst, shift));
                    }
                    return;
                }
                // The first step reads the register itself (validated: at
                // offset 0 of its slot).
                self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R6, r.0 as i16));
                steps.next();
            }
            PathBase::Arg(n) => {
                let slot = (8 * n.min(11)) as i16;
                if path.derefs.is_empty() {
                    // The argument itself: its slot is a u64 (validated:
                    // offset 0); narrower values are cut from it.
                    self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R6, slot));
                    if path.size > 0 && path.size < 8 {
                        let shift = 64 - 8 * i32::from(path.size);
                        self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, shift));
                        self.asm.emit(Insn::alu64_imm(if path.signed { AluOp::Arsh } else { AluOp::Rsh }, dst, shift));
                    }
                    return;
                }
                // The first deref reads the pointer in the slot (validated:
                // at offset 0).
                self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R6, slot));
                steps.next();
            }
        }
        for (step, &off) in steps {
            self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0), null);
            self.load_ptr(path, step, off);
        }
        let last = path.derefs.len();
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0), null);
        let offset = path.offset as i32;
        let bitfield_record = path.bits.is_some()
            && path.core.iter().any(|c| c.step as usize == last && c.members.last().is_some_and(|m| m.bitfield.is_some()));
        if bitfield_record && (path.via != Via::Direct || i16::try_from(offset).is_ok()) {
            self.bitfield_word(path, last, offset, dst);
        } else if path.via != Via::Direct {
            if offset != 0 || Self::has_core(path, last) {
                self.core_here(path, last);
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, offset));
            }
            if path.size == 0 {
                self.asm.emit(Insn::mov64_reg(dst, Reg::R3));
            } else {
                self.probe_read_at_r3(path.size, dst, path.via, None);
            }
        } else if path.size == 0 || i16::try_from(offset).is_err() {
            if offset != 0 || Self::has_core(path, last) {
                self.core_here(path, last);
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, offset));
            }
            if path.size == 0 {
                self.asm.emit(Insn::mov64_reg(dst, Reg::R3));
            } else {
                self.asm.emit(Insn::ldx(size_of(path.size), dst, Reg::R3, 0));
            }
        } else {
            self.core_here(path, last);
            self.asm.emit(Insn::ldx(size_of(path.size), dst, Reg::R3, offset as i16));
        }
        if let Some(bits) = path.bits {
            // The bitfield's top bit to bit 63, then its lowest to bit 0;
            // a record moves both to the loading kernel's layout.
            let (left, right) = bits.shifts();
            if bitfield_record {
                self.core_kind_here(path, last, FIELD_LSHIFT_U64);
            }
            self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, left));
            if bitfield_record {
                self.core_kind_here(path, last, FIELD_RSHIFT_U64);
            }
            self.asm.emit(Insn::alu64_imm(if path.signed { AluOp::Arsh } else { AluOp::Rsh }, dst, right));
        } else if path.signed && path.size > 0 && path.size < 8 {
            let shift = 64 - 8 * i32::from(path.size);
            self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, shift));
            self.asm.emit(Insn::alu64_imm(AluOp::Arsh, dst, shift));
        }
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(null);
        self.asm.emit(Insn::mov64_imm(dst, 0));
        self.asm.bind(end);
    }
}
