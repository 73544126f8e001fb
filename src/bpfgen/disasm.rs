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
    if off < 0 {
        format!("(r{reg} - {})", -(off as i32))
    } else {
        format!("(r{reg} + {off})")
    }
}

fn jump_off(off: i16) -> String {
    if off < 0 {
        format!("{off}")
    } else {
        format!("+{off}")
    }
}

fn unknown(insn: &Insn) -> String {
    format!("<unknown opcode 0x{:02x}>", insn.code)
}

/// The text of one instruction; `next` is the following slot, used only by
/// ld_imm64.
pub fn insn_text(insn: &Insn, next: Option<&Insn>) -> String {
    let d = insn.dst.0;
    let s = insn.src.0;
    match insn.class() {
        code::CLASS_ALU64 | code::CLASS_ALU => alu_text(insn),
        code::CLASS_JMP | code::CLASS_JMP32 => jmp_text(insn),
        code::CLASS_LDX => {
            if insn.code & 0xe0 != code::MODE_MEM {
                return unknown(insn);
            }
            let size = Size::from_code(insn.code);
            format!("r{d} = *({} *){}", size_name(size), mem(s, insn.off))
        }
        code::CLASS_STX => {
            let size = Size::from_code(insn.code);
            match insn.code & 0xe0 {
                code::MODE_MEM => {
                    format!("*({} *){} = r{s}", size_name(size), mem(d, insn.off))
                }
                code::MODE_ATOMIC => atomic_text(insn, size),
                _ => unknown(insn),
            }
        }
        code::CLASS_ST => {
            if insn.code & 0xe0 != code::MODE_MEM {
                return unknown(insn);
            }
            let size = Size::from_code(insn.code);
            format!(
                "*({} *){} = {}",
                size_name(size),
                mem(d, insn.off),
                insn.imm
            )
        }
        code::CLASS_LD => {
            if !insn.is_wide() {
                return unknown(insn);
            }
            let hi = next.map_or(0, |n| n.imm);
            let value = (insn.imm as u32 as u64) | ((hi as u32 as u64) << 32);
            match s {
                0 => format!("r{d} = {} ll", value as i64),
                kind => format!("r{d} = ld_pseudo {kind} {}", insn.imm),
            }
        }
        _ => unknown(insn),
    }
}

fn alu_text(insn: &Insn) -> String {
    let is64 = insn.class() == code::CLASS_ALU64;
    let r = if is64 { 'r' } else { 'w' };
    let d = insn.dst.0;
    let s = insn.src.0;
    let Some(op) = AluOp::from_code(insn.code) else {
        return unknown(insn);
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
        code::OP_CALL if is64 => format!("call {}", insn.imm),
        code::OP_EXIT if is64 => "exit".to_owned(),
        _ => {
            let Some(op) = JmpOp::from_code(insn.code) else {
                return unknown(insn);
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
    let r = if size == Size::DW { 'r' } else { 'w' };
    let m = mem(d, insn.off);
    let sz = size_name(size);
    match insn.imm {
        code::ATOMIC_ADD => format!("lock *({sz} *){m} += {r}{s}"),
        x if x == code::ATOMIC_ADD | code::ATOMIC_FETCH => {
            format!("{r}{s} = atomic_fetch_add(({sz} *){m}, {r}{s})")
        }
        _ => unknown(insn),
    }
}
