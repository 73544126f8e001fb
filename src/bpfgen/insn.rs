//! BPF instruction encoding: one constructor per opcode family, 8-byte
//! little-endian encode/decode. Pure data; never does IO and never panics.
//!
//! Layout and opcode values follow the kernel's
//! Documentation/bpf/standardization/instruction-set.rst and
//! include/uapi/linux/bpf.h (`struct bpf_insn`: code, dst_reg:4, src_reg:4,
//! off:16, imm:32; the register byte holds dst in its low nibble on
//! little-endian hosts).

/// A BPF register, r0..r10. R10 is the read-only frame pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u8);

impl Reg {
    pub const R0: Reg = Reg(0);
    pub const R1: Reg = Reg(1);
    pub const R2: Reg = Reg(2);
    pub const R3: Reg = Reg(3);
    pub const R4: Reg = Reg(4);
    pub const R5: Reg = Reg(5);
    pub const R6: Reg = Reg(6);
    pub const R7: Reg = Reg(7);
    pub const R8: Reg = Reg(8);
    pub const R9: Reg = Reg(9);
    /// The frame pointer (read-only).
    pub const R10: Reg = Reg(10);
    /// The frame pointer under its conventional name.
    pub const FP: Reg = Reg(10);
}

/// Memory access width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    DW,
}

impl Size {
    /// Width in bytes.
    pub fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The BPF_SIZE bits of the opcode.
    pub fn code(self) -> u8 {
        match self {
            Size::W => code::SIZE_W,
            Size::H => code::SIZE_H,
            Size::B => code::SIZE_B,
            Size::DW => code::SIZE_DW,
        }
    }

    /// The size encoded in the BPF_SIZE bits of an opcode.
    pub fn from_code(opcode: u8) -> Size {
        match opcode & 0x18 {
            code::SIZE_W => Size::W,
            code::SIZE_H => Size::H,
            code::SIZE_B => Size::B,
            _ => Size::DW,
        }
    }
}

/// Arithmetic operations (the BPF_OP bits of ALU/ALU64 opcodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Or,
    And,
    Lsh,
    Rsh,
    /// Negation; the source operand is ignored (encoded as 0).
    Neg,
    Mod,
    Xor,
    Mov,
    Arsh,
}

impl AluOp {
    /// The BPF_OP bits.
    pub fn code(self) -> u8 {
        match self {
            AluOp::Add => 0x00,
            AluOp::Sub => 0x10,
            AluOp::Mul => 0x20,
            AluOp::Div => 0x30,
            AluOp::Or => 0x40,
            AluOp::And => 0x50,
            AluOp::Lsh => 0x60,
            AluOp::Rsh => 0x70,
            AluOp::Neg => 0x80,
            AluOp::Mod => 0x90,
            AluOp::Xor => 0xa0,
            AluOp::Mov => 0xb0,
            AluOp::Arsh => 0xc0,
        }
    }

    /// The operation for BPF_OP bits, if it is one of ours (0xd0 is BPF_END).
    pub fn from_code(opcode: u8) -> Option<AluOp> {
        Some(match opcode & 0xf0 {
            0x00 => AluOp::Add,
            0x10 => AluOp::Sub,
            0x20 => AluOp::Mul,
            0x30 => AluOp::Div,
            0x40 => AluOp::Or,
            0x50 => AluOp::And,
            0x60 => AluOp::Lsh,
            0x70 => AluOp::Rsh,
            0x80 => AluOp::Neg,
            0x90 => AluOp::Mod,
            0xa0 => AluOp::Xor,
            0xb0 => AluOp::Mov,
            0xc0 => AluOp::Arsh,
            _ => return None,
        })
    }
}

/// Conditional jump operations (the BPF_OP bits of JMP/JMP32 opcodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JmpOp {
    Jeq,
    Jgt,
    Jge,
    Jset,
    Jne,
    Jsgt,
    Jsge,
    Jlt,
    Jle,
    Jslt,
    Jsle,
}

impl JmpOp {
    /// The BPF_OP bits.
    pub fn code(self) -> u8 {
        match self {
            JmpOp::Jeq => 0x10,
            JmpOp::Jgt => 0x20,
            JmpOp::Jge => 0x30,
            JmpOp::Jset => 0x40,
            JmpOp::Jne => 0x50,
            JmpOp::Jsgt => 0x60,
            JmpOp::Jsge => 0x70,
            JmpOp::Jlt => 0xa0,
            JmpOp::Jle => 0xb0,
            JmpOp::Jslt => 0xc0,
            JmpOp::Jsle => 0xd0,
        }
    }

    /// The conditional operation for BPF_OP bits (JA, CALL, EXIT give None).
    pub fn from_code(opcode: u8) -> Option<JmpOp> {
        Some(match opcode & 0xf0 {
            0x10 => JmpOp::Jeq,
            0x20 => JmpOp::Jgt,
            0x30 => JmpOp::Jge,
            0x40 => JmpOp::Jset,
            0x50 => JmpOp::Jne,
            0x60 => JmpOp::Jsgt,
            0x70 => JmpOp::Jsge,
            0xa0 => JmpOp::Jlt,
            0xb0 => JmpOp::Jle,
            0xc0 => JmpOp::Jslt,
            0xd0 => JmpOp::Jsle,
            _ => return None,
        })
    }

    /// The operation that jumps exactly when `self` does not; None for
    /// Jset, whose negation takes a branch around.
    pub fn negate(self) -> Option<JmpOp> {
        Some(match self {
            JmpOp::Jeq => JmpOp::Jne,
            JmpOp::Jne => JmpOp::Jeq,
            JmpOp::Jgt => JmpOp::Jle,
            JmpOp::Jle => JmpOp::Jgt,
            JmpOp::Jge => JmpOp::Jlt,
            JmpOp::Jlt => JmpOp::Jge,
            JmpOp::Jsgt => JmpOp::Jsle,
            JmpOp::Jsle => JmpOp::Jsgt,
            JmpOp::Jsge => JmpOp::Jslt,
            JmpOp::Jslt => JmpOp::Jsge,
            JmpOp::Jset => return None,
        })
    }

    /// The operation with its operands swapped (`a < b` is `b > a`).
    pub fn swap(self) -> JmpOp {
        match self {
            JmpOp::Jgt => JmpOp::Jlt,
            JmpOp::Jlt => JmpOp::Jgt,
            JmpOp::Jge => JmpOp::Jle,
            JmpOp::Jle => JmpOp::Jge,
            JmpOp::Jsgt => JmpOp::Jslt,
            JmpOp::Jslt => JmpOp::Jsgt,
            JmpOp::Jsge => JmpOp::Jsle,
            JmpOp::Jsle => JmpOp::Jsge,
            JmpOp::Jeq | JmpOp::Jne | JmpOp::Jset => self,
        }
    }
}

/// Raw opcode constants (include/uapi/linux/bpf_common.h, bpf.h).
pub mod code {
    // Instruction classes.
    pub const CLASS_LD: u8 = 0x00;
    pub const CLASS_LDX: u8 = 0x01;
    pub const CLASS_ST: u8 = 0x02;
    pub const CLASS_STX: u8 = 0x03;
    pub const CLASS_ALU: u8 = 0x04;
    pub const CLASS_JMP: u8 = 0x05;
    pub const CLASS_JMP32: u8 = 0x06;
    pub const CLASS_ALU64: u8 = 0x07;
    // Sizes.
    pub const SIZE_W: u8 = 0x00;
    pub const SIZE_H: u8 = 0x08;
    pub const SIZE_B: u8 = 0x10;
    pub const SIZE_DW: u8 = 0x18;
    // Modes.
    pub const MODE_IMM: u8 = 0x00;
    pub const MODE_MEM: u8 = 0x60;
    pub const MODE_ATOMIC: u8 = 0xc0;
    // Operand source.
    pub const SRC_K: u8 = 0x00;
    pub const SRC_X: u8 = 0x08;
    // Jump ops without a JmpOp.
    pub const OP_JA: u8 = 0x00;
    pub const OP_CALL: u8 = 0x80;
    pub const OP_EXIT: u8 = 0x90;
    // Atomic imm values.
    pub const ATOMIC_ADD: i32 = 0x00;
    pub const ATOMIC_FETCH: i32 = 0x01;
    // src_reg values of ld_imm64 and call.
    pub const PSEUDO_MAP_FD: u8 = 1;
    pub const PSEUDO_MAP_VALUE: u8 = 2;
    pub const PSEUDO_CALL: u8 = 1;
    /// ld_imm64 src_reg for a subprogram's address (callbacks).
    pub const PSEUDO_FUNC: u8 = 4;
    /// The opcode of the first slot of ld_imm64: BPF_LD | BPF_DW | BPF_IMM.
    pub const LD_IMM64: u8 = CLASS_LD | SIZE_DW | MODE_IMM;
}

/// One 8-byte BPF instruction slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: Reg,
    pub src: Reg,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The 8 bytes of this slot, little-endian. Register numbers above 15
    /// are truncated to their low nibble.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst.0 & 0x0f) | ((self.src.0 & 0x0f) << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The instruction in 8 little-endian bytes. Total: any bytes decode.
    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: Reg(b[1] & 0x0f),
            src: Reg(b[1] >> 4),
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Decodes a byte string made of whole 8-byte slots; trailing bytes
    /// that do not fill a slot are ignored.
    pub fn decode_all(bytes: &[u8]) -> Vec<Insn> {
        bytes
            .chunks_exact(8)
            .map(|c| Insn::decode([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    }

    /// Encodes a sequence of slots back to back.
    pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.encode()).collect()
    }

    /// The instruction class (low three bits of the opcode).
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// `dst op= imm` on 64 bits.
    pub fn alu64_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(
            code::CLASS_ALU64 | op.code() | code::SRC_K,
            dst,
            Reg(0),
            0,
            imm,
        )
    }

    /// `dst op= src` on 64 bits. For Neg the source is ignored and encoded 0.
    pub fn alu64_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        if op == AluOp::Neg {
            return Insn::alu64_imm(AluOp::Neg, dst, 0);
        }
        Insn::new(code::CLASS_ALU64 | op.code() | code::SRC_X, dst, src, 0, 0)
    }

    /// `dst op= imm` on the low 32 bits (upper half zeroed).
    pub fn alu32_imm(op: AluOp, dst: Reg, imm: i32) -> Insn {
        Insn::new(
            code::CLASS_ALU | op.code() | code::SRC_K,
            dst,
            Reg(0),
            0,
            imm,
        )
    }

    /// `dst op= src` on the low 32 bits. For Neg the source is ignored.
    pub fn alu32_reg(op: AluOp, dst: Reg, src: Reg) -> Insn {
        if op == AluOp::Neg {
            return Insn::alu32_imm(AluOp::Neg, dst, 0);
        }
        Insn::new(code::CLASS_ALU | op.code() | code::SRC_X, dst, src, 0, 0)
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(AluOp::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(AluOp::Mov, dst, src)
    }

    /// `wdst = imm` (upper half zeroed).
    pub fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu32_imm(AluOp::Mov, dst, imm)
    }

    /// `wdst = wsrc` (upper half zeroed).
    pub fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu32_reg(AluOp::Mov, dst, src)
    }

    /// `dst = value` as the two-slot BPF_LD | BPF_DW | BPF_IMM.
    pub fn ld_imm64(dst: Reg, value: u64) -> [Insn; 2] {
        let lo = value as u32 as i32;
        let hi = (value >> 32) as u32 as i32;
        Insn::ld_pseudo(dst, 0, lo, hi)
    }

    /// ld_imm64 with src_reg = kind (1 = BPF_PSEUDO_MAP_FD,
    /// 2 = BPF_PSEUDO_MAP_VALUE, ...), the first slot's imm and the second
    /// slot's imm as given.
    pub fn ld_pseudo(dst: Reg, kind: u8, imm: i32, next_imm: i32) -> [Insn; 2] {
        [
            Insn::new(code::LD_IMM64, dst, Reg(kind), 0, imm),
            Insn::new(0, Reg(0), Reg(0), 0, next_imm),
        ]
    }

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            code::CLASS_LDX | size.code() | code::MODE_MEM,
            dst,
            src,
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            code::CLASS_STX | size.code() | code::MODE_MEM,
            dst,
            src,
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(
            code::CLASS_ST | size.code() | code::MODE_MEM,
            dst,
            Reg(0),
            off,
            imm,
        )
    }

    /// `lock *(size *)(dst + off) += src`; with `fetch`, src receives the
    /// old value. Only W and DW exist in the kernel; other sizes are
    /// encoded as given and left to the verifier to refuse.
    pub fn atomic_add(size: Size, dst: Reg, src: Reg, off: i16, fetch: bool) -> Insn {
        let imm = if fetch {
            code::ATOMIC_ADD | code::ATOMIC_FETCH
        } else {
            code::ATOMIC_ADD
        };
        Insn::new(
            code::CLASS_STX | size.code() | code::MODE_ATOMIC,
            dst,
            src,
            off,
            imm,
        )
    }

    /// `if dst op imm goto +off` (64-bit compare).
    pub fn jmp_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(
            code::CLASS_JMP | op.code() | code::SRC_K,
            dst,
            Reg(0),
            off,
            imm,
        )
    }

    /// `if dst op src goto +off` (64-bit compare).
    pub fn jmp_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(code::CLASS_JMP | op.code() | code::SRC_X, dst, src, off, 0)
    }

    /// `if wdst op imm goto +off` (32-bit compare).
    pub fn jmp32_imm(op: JmpOp, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(
            code::CLASS_JMP32 | op.code() | code::SRC_K,
            dst,
            Reg(0),
            off,
            imm,
        )
    }

    /// `if wdst op wsrc goto +off` (32-bit compare).
    pub fn jmp32_reg(op: JmpOp, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            code::CLASS_JMP32 | op.code() | code::SRC_X,
            dst,
            src,
            off,
            0,
        )
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn::new(code::CLASS_JMP | code::OP_JA, Reg(0), Reg(0), off, 0)
    }

    /// Call kernel helper number `id`.
    pub fn call_helper(id: i32) -> Insn {
        Insn::new(code::CLASS_JMP | code::OP_CALL, Reg(0), Reg(0), 0, id)
    }

    /// BPF-to-BPF call, `rel` slots relative to the next instruction.
    pub fn call_local(rel: i32) -> Insn {
        Insn::new(
            code::CLASS_JMP | code::OP_CALL,
            Reg(0),
            Reg(code::PSEUDO_CALL),
            0,
            rel,
        )
    }

    /// Return r0.
    pub fn exit() -> Insn {
        Insn::new(code::CLASS_JMP | code::OP_EXIT, Reg(0), Reg(0), 0, 0)
    }

    /// True for the first slot of a two-slot ld_imm64.
    pub fn is_wide(&self) -> bool {
        self.code == code::LD_IMM64
    }

    /// The 64-bit value of a wide load given its second slot.
    pub fn wide_value(&self, next: &Insn) -> u64 {
        (self.imm as u32 as u64) | ((next.imm as u32 as u64) << 32)
    }

    /// True for jumps with an offset target (JA and conditionals, JMP or
    /// JMP32); false for call and exit.
    pub fn is_branch(&self) -> bool {
        let class = self.class();
        if class != code::CLASS_JMP && class != code::CLASS_JMP32 {
            return false;
        }
        let op = self.code & 0xf0;
        op != code::OP_CALL && op != code::OP_EXIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALU: [AluOp; 13] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
    ];
    const JMP: [JmpOp; 11] = [
        JmpOp::Jeq,
        JmpOp::Jgt,
        JmpOp::Jge,
        JmpOp::Jset,
        JmpOp::Jne,
        JmpOp::Jsgt,
        JmpOp::Jsge,
        JmpOp::Jlt,
        JmpOp::Jle,
        JmpOp::Jslt,
        JmpOp::Jsle,
    ];
    const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

    fn roundtrip(i: Insn) {
        assert_eq!(Insn::decode(i.encode()), i, "{i:?}");
    }

    fn all_constructed() -> Vec<Insn> {
        let mut v = Vec::new();
        for op in ALU {
            v.push(Insn::alu64_imm(op, Reg::R3, -7));
            v.push(Insn::alu64_reg(op, Reg::R9, Reg::R10));
            v.push(Insn::alu32_imm(op, Reg::R0, i32::MIN));
            v.push(Insn::alu32_reg(op, Reg::R1, Reg::R2));
        }
        for op in JMP {
            v.push(Insn::jmp_imm(op, Reg::R1, i32::MAX, -1));
            v.push(Insn::jmp_reg(op, Reg::R8, Reg::R7, i16::MAX));
            v.push(Insn::jmp32_imm(op, Reg::R1, 5, i16::MIN));
            v.push(Insn::jmp32_reg(op, Reg::R2, Reg::R3, 4));
        }
        for s in SIZES {
            v.push(Insn::ldx(s, Reg::R0, Reg::R1, -8));
            v.push(Insn::stx(s, Reg::R10, Reg::R1, -512));
            v.push(Insn::st_imm(s, Reg::R10, -16, -1));
        }
        for fetch in [false, true] {
            v.push(Insn::atomic_add(Size::W, Reg::R1, Reg::R2, 4, fetch));
            v.push(Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, fetch));
        }
        v.push(Insn::mov64_imm(Reg::R1, 5));
        v.push(Insn::mov64_reg(Reg::R1, Reg::R6));
        v.push(Insn::mov32_imm(Reg::R1, -5));
        v.push(Insn::mov32_reg(Reg::R1, Reg::R6));
        v.extend(Insn::ld_imm64(Reg::R1, u64::MAX));
        v.extend(Insn::ld_pseudo(Reg::R1, 1, 3, 0));
        v.push(Insn::ja(-2));
        v.push(Insn::call_helper(14));
        v.push(Insn::call_local(-1));
        v.push(Insn::exit());
        v
    }

    #[test]
    fn every_constructor_roundtrips() {
        for i in all_constructed() {
            roundtrip(i);
        }
        let all = all_constructed();
        assert_eq!(Insn::decode_all(&Insn::encode_all(&all)), all);
    }

    #[test]
    fn known_encodings() {
        // Values checked against include/uapi/linux/bpf.h opcode arithmetic.
        assert_eq!(
            Insn::mov64_imm(Reg::R1, 5).encode(),
            [0xb7, 0x01, 0, 0, 5, 0, 0, 0]
        );
        assert_eq!(
            Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R2).encode(),
            [0x0f, 0x21, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::mov32_reg(Reg::R1, Reg::R2).encode(),
            [0xbc, 0x21, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::stx(Size::DW, Reg::R10, Reg::R1, -8).encode(),
            [0x7b, 0x1a, 0xf8, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::ldx(Size::W, Reg::R0, Reg::R1, 8).encode(),
            [0x61, 0x10, 8, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::st_imm(Size::W, Reg::R10, -4, 7).encode(),
            [0x62, 0x0a, 0xfc, 0xff, 7, 0, 0, 0]
        );
        assert_eq!(
            Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, false).encode(),
            [0xdb, 0x21, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            Insn::atomic_add(Size::W, Reg::R1, Reg::R2, 0, true).encode(),
            [0xc3, 0x21, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            Insn::jmp_imm(JmpOp::Jne, Reg::R1, 5, 3).encode(),
            [0x55, 0x01, 3, 0, 5, 0, 0, 0]
        );
        assert_eq!(
            Insn::jmp_reg(JmpOp::Jsgt, Reg::R1, Reg::R2, -2).encode(),
            [0x6d, 0x21, 0xfe, 0xff, 0, 0, 0, 0]
        );
        assert_eq!(Insn::ja(-2).encode(), [0x05, 0, 0xfe, 0xff, 0, 0, 0, 0]);
        assert_eq!(Insn::call_helper(14).encode(), [0x85, 0, 0, 0, 14, 0, 0, 0]);
        assert_eq!(
            Insn::call_local(-1).encode(),
            [0x85, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Insn::alu64_reg(AluOp::Neg, Reg::R3, Reg::R4).encode(),
            [0x87, 0x03, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn ld_imm64_values() {
        let [a, b] = Insn::ld_imm64(Reg::R1, u64::MAX);
        assert_eq!(a.encode(), [0x18, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(b.encode(), [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(a.is_wide() && !b.is_wide());
        assert_eq!(a.wide_value(&b), u64::MAX);
        // -1 as a two's complement u64 is the same bit pattern.
        let [c, d] = Insn::ld_imm64(Reg::R2, (-1i64) as u64);
        assert_eq!((c.imm, d.imm), (-1, -1));
        let v = 0x1234_5678_9abc_def0u64;
        let [e, f] = Insn::ld_imm64(Reg::R3, v);
        assert_eq!(e.imm as u32, 0x9abc_def0);
        assert_eq!(f.imm as u32, 0x1234_5678);
        assert_eq!(e.wide_value(&f), v);
        assert_eq!(e.encode()[4..], [0xf0, 0xde, 0xbc, 0x9a]);
        assert_eq!(f.encode()[4..], [0x78, 0x56, 0x34, 0x12]);
        let [g, h] = Insn::ld_imm64(Reg::R0, 1u64 << 63);
        assert_eq!((g.imm, h.imm), (0, i32::MIN));
        let [p, q] = Insn::ld_pseudo(Reg::R1, code::PSEUDO_MAP_VALUE, 7, 16);
        assert_eq!(p.encode(), [0x18, 0x21, 0, 0, 7, 0, 0, 0]);
        assert_eq!(q.encode(), [0, 0, 0, 0, 16, 0, 0, 0]);
    }

    #[test]
    fn decode_is_total_and_stable() {
        for b0 in 0..=255u8 {
            let bytes = [b0, 0xfa, 0x80, 0x00, 1, 2, 3, 4];
            assert_eq!(Insn::decode(bytes).encode(), bytes);
        }
    }

    #[test]
    fn op_codes_roundtrip() {
        for op in ALU {
            assert_eq!(AluOp::from_code(op.code()), Some(op));
        }
        for op in JMP {
            assert_eq!(JmpOp::from_code(op.code()), Some(op));
            assert_eq!(op.swap().swap(), op);
            match op.negate() {
                Some(n) => {
                    assert_eq!(n.negate(), Some(op));
                    assert_ne!(n, op);
                }
                None => assert_eq!(op, JmpOp::Jset),
            }
        }
        for s in SIZES {
            assert_eq!(Size::from_code(s.code()), s);
        }
        assert_eq!(Size::DW.bytes(), 8);
    }
}
