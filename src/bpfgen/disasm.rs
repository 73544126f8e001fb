//! Disassembler: renders instructions exactly as `llvm-objdump -d` (LLVM 14)
//! prints them in its mnemonic column, for golden files and debugging.
//! Pure text; never does IO, never panics on any bytes.

use std::fmt::Write as _;

use super::insn::{code, AluOp, Insn, JmpOp, Size};

/// One line per instruction, `{index:>4}: {text}`. The second slot of an
/// ld_imm64 gets no line of its own but still counts in the indexes.
pub fn disasm(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = &insns[i];
        let next = insns.get(i + 1);
        let _ = writeln!(out, "{i:>4}: {}", insn_text(insn, next));
        i += if insn.is_wide() && next.is_some() {
            2
        } else {
            1
        };
    }
    out
}

fn size_name(s: Size) -> &'static str {
    match s {
        Size::B => "u8",
        Size::H => "u16",
        Size::W => "u32",
        Size::DW => "u64",
    }
}

fn alu_sym(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => "= -",
        AluOp::Mod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn jmp_sym(op: JmpOp) -> &'static str {
    match op {
        JmpOp::Jeq => "==",
        JmpOp::Jgt => ">",
        JmpOp::Jge => ">=",
        JmpOp::Jset => "&",
        JmpOp::Jne => "!=",
        JmpOp::Jsgt => "s>",
        JmpOp::Jsge => "s>=",
        JmpOp::Jlt => "<",
        JmpOp::Jle => "<=",
        JmpOp::Jslt => "s<",
        JmpOp::Jsle => "s<=",
    }
}

/// `(r1 + 8)` / `(r10 - 8)`.
fn mem(reg: u8, off: i16) -> String {
    format!("({})", mem_bare(reg, off))
}

fn jump_off(off: i16) -> String {
    if off < 0 {
        format!("{off}")
    } else {
        format!("+{off}")
    }
}

/// What LLVM 14 prints for bytes it cannot decode.
const UNKNOWN: &str = "<unknown>";

/// True where this disassembler deliberately differs from LLVM 14's
/// `llvm-objdump -d`: instructions the kernel accepts but LLVM 14 cannot
/// decode (it prints `<unknown>`), and the 32-bit fetching atomic add,
/// which LLVM 14 misprints as the non-fetching one. Here they get the
/// spelling later LLVM releases use:
/// * BPF_MOD: `r1 %= r2`, `w1 %= 5`;
/// * BPF_JSET: `if r1 & r2 goto +1`, `if w1 & 5 goto +1`;
/// * BPF_ST | BPF_MEM: `*(u32 *)(r10 - 8) = 5`;
/// * 32-bit BPF_ADD | BPF_FETCH: `w2 = atomic_fetch_add((u32 *)(r1 + 0), w2)`.
pub fn differs_from_llvm14(insn: &Insn) -> bool {
    let class = insn.class();
    match class {
        code::CLASS_ALU | code::CLASS_ALU64 => insn.code & 0xf0 == AluOp::Mod.code(),
        code::CLASS_JMP | code::CLASS_JMP32 => insn.code & 0xf0 == JmpOp::Jset.code(),
        code::CLASS_ST => insn.code & 0xe0 == code::MODE_MEM,
        code::CLASS_STX => {
            insn.code & 0xe0 == code::MODE_ATOMIC
                && Size::from_code(insn.code) == Size::W
                && insn.imm == code::ATOMIC_ADD | code::ATOMIC_FETCH
        }
        _ => false,
    }
}

/// The text of one instruction; `next` is the following slot, used only by
/// ld_imm64.
pub fn insn_text(insn: &Insn, next: Option<&Insn>) -> String {
    let d = insn.dst.0;
    let s = insn.src.0;
    let mode = insn.code & 0xe0;
    let size = Size::from_code(insn.code);
    match insn.class() {
        code::CLASS_ALU64 | code::CLASS_ALU => alu_text(insn),
        code::CLASS_JMP | code::CLASS_JMP32 => jmp_text(insn),
        code::CLASS_LDX if mode == code::MODE_MEM => {
            format!("r{d} = *({} *){}", size_name(size), mem(s, insn.off))
        }
        code::CLASS_STX if mode == code::MODE_MEM => {
            format!("*({} *){} = r{s}", size_name(size), mem(d, insn.off))
        }
        code::CLASS_STX if mode == code::MODE_ATOMIC => atomic_text(insn, size),
        code::CLASS_ST if mode == code::MODE_MEM => {
            format!(
                "*({} *){} = {}",
                size_name(size),
                mem(d, insn.off),
                insn.imm
            )
        }
        code::CLASS_LD if insn.is_wide() => {
            // A missing second slot reads as zero, like a truncated object.
            let hi = next.map_or(0, |n| n.imm as u32 as u64);
            let value = ((hi << 32) | insn.imm as u32 as u64) as i64;
            match s {
                0 => format!("r{d} = {value} ll"),
                // LLVM 14 separates mnemonic and operands with a tab here;
                // a space keeps golden files tab-free.
                kind => format!("ld_pseudo r{d}, {kind}, {}", insn.imm),
            }
        }
        // Legacy packet access, BPF_LD | BPF_ABS / BPF_IND.
        code::CLASS_LD if size != Size::DW && mode == MODE_ABS => {
            format!("r0 = *({} *)skb[{}]", size_name(size), insn.imm)
        }
        code::CLASS_LD if size != Size::DW && mode == MODE_IND => {
            format!("r0 = *({} *)skb[r{s}]", size_name(size))
        }
        _ => UNKNOWN.to_owned(),
    }
}

const MODE_ABS: u8 = 0x20;
const MODE_IND: u8 = 0x40;
/// BPF_END: byte swaps, `r1 = le16 r1` / `r1 = be32 r1`.
const OP_END: u8 = 0xd0;

fn alu_text(insn: &Insn) -> String {
    let is64 = insn.class() == code::CLASS_ALU64;
    let r = if is64 { 'r' } else { 'w' };
    let d = insn.dst.0;
    let s = insn.src.0;
    if insn.code & 0xf0 == OP_END {
        // Only the ALU-class form exists in LLVM 14 (ALU64 is cpu v4 bswap).
        if is64 || !matches!(insn.imm, 16 | 32 | 64) {
            return UNKNOWN.to_owned();
        }
        let order = if insn.code & code::SRC_X != 0 {
            "be"
        } else {
            "le"
        };
        return format!("r{d} = {order}{} r{d}", insn.imm);
    }
    let Some(op) = AluOp::from_code(insn.code) else {
        return UNKNOWN.to_owned();
    };
    if op == AluOp::Neg {
        return format!("{r}{d} = -{r}{d}");
    }
    let sym = alu_sym(op);
    if insn.code & code::SRC_X != 0 {
        format!("{r}{d} {sym} {r}{s}")
    } else {
        format!("{r}{d} {sym} {}", insn.imm)
    }
}

fn jmp_text(insn: &Insn) -> String {
    let is64 = insn.class() == code::CLASS_JMP;
    let r = if is64 { 'r' } else { 'w' };
    let d = insn.dst.0;
    let s = insn.src.0;
    match insn.code & 0xf0 {
        code::OP_JA if is64 => format!("goto {}", jump_off(insn.off)),
        // LLVM 14 takes callx's register from imm.
        code::OP_CALL if is64 && insn.code & code::SRC_X != 0 => format!("callx r{}", insn.imm),
        code::OP_CALL if is64 => format!("call {}", insn.imm),
        code::OP_EXIT if is64 => "exit".to_owned(),
        _ => {
            let Some(op) = JmpOp::from_code(insn.code) else {
                return UNKNOWN.to_owned();
            };
            let rhs = if insn.code & code::SRC_X != 0 {
                format!("{r}{s}")
            } else {
                format!("{}", insn.imm)
            };
            format!(
                "if {r}{d} {} {rhs} goto {}",
                jmp_sym(op),
                jump_off(insn.off)
            )
        }
    }
}

fn atomic_text(insn: &Insn, size: Size) -> String {
    let d = insn.dst.0;
    let s = insn.src.0;
    let m = mem(d, insn.off);
    match (size, insn.imm) {
        // LLVM 14 prints the 32-bit add with an r source register.
        (Size::W, 0x00) => format!("lock *(u32 *){m} += r{s}"),
        (Size::W, 0x01) => format!("w{s} = atomic_fetch_add((u32 *){m}, w{s})"),
        (Size::DW, 0x00) => format!("lock *(u64 *){m} += r{s}"),
        (Size::DW, 0x40) => format!("lock *(u64 *){m} |= r{s}"),
        (Size::DW, 0x50) => format!("lock *(u64 *){m} &= r{s}"),
        (Size::DW, 0xa0) => format!("lock *(u64 *){m} ^= r{s}"),
        (Size::DW, 0x01) => format!("r{s} = atomic_fetch_add((u64 *){m}, r{s})"),
        (Size::DW, 0x41) => format!("r{s} = atomic_fetch_or((u64 *){m}, r{s})"),
        (Size::DW, 0x51) => format!("r{s} = atomic_fetch_and((u64 *){m}, r{s})"),
        (Size::DW, 0xa1) => format!("r{s} = atomic_fetch_xor((u64 *){m}, r{s})"),
        // BPF_XCHG and BPF_CMPXCHG; LLVM prints the offset without parens.
        (Size::DW, 0xe1) => format!("r{s} = xchg_64({}, r{s})", mem_bare(d, insn.off)),
        (Size::DW, 0xf1) => format!("r0 = cmpxchg_64({}, r0, r{s})", mem_bare(d, insn.off)),
        _ => UNKNOWN.to_owned(),
    }
}

/// `r1 + 8` / `r1 - 8` without parentheses.
fn mem_bare(reg: u8, off: i16) -> String {
    if off < 0 {
        format!("r{reg} - {}", -(off as i32))
    } else {
        format!("r{reg} + {off}")
    }
}
