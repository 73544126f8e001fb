//! The fetch-argument language of k/uprobes (`%di`, `+8(+0(%si))`, `$stack2`,
//! `$retval`, `@sym`, types `u8..s64`/`string`) and the operand language of
//! USDT notes (`-4@%eax`, `8@-8(%rbp)`, `4@$5`), parsed into one small AST
//! with spans. Pure text in, tree or diagnostic out: never does IO, never
//! panics, whatever the bytes.

use super::ast::Span;
use super::diag::Diagnostic;
use crate::ir::RegOffset;

/// Every register name either language accepts, with its `pt_regs` slot.
/// Sub-registers (`eax`, `r8d`, `ax`, `al`) read the low bits of the full
/// register; the value's type decides how many.
fn register(name: &str) -> Option<RegOffset> {
    let base = match name {
        "r8" | "r8d" | "r8w" | "r8b" => RegOffset::R8,
        "r9" | "r9d" | "r9w" | "r9b" => RegOffset::R9,
        "r10" | "r10d" | "r10w" | "r10b" => RegOffset::R10,
        "r11" | "r11d" | "r11w" | "r11b" => RegOffset::R11,
        "r12" | "r12d" | "r12w" | "r12b" => RegOffset::R12,
        "r13" | "r13d" | "r13w" | "r13b" => RegOffset::R13,
        "r14" | "r14d" | "r14w" | "r14b" => RegOffset::R14,
        "r15" | "r15d" | "r15w" | "r15b" => RegOffset::R15,
        "ax" | "rax" | "eax" | "al" => RegOffset::AX,
        "bx" | "rbx" | "ebx" | "bl" => RegOffset::BX,
        "cx" | "rcx" | "ecx" | "cl" => RegOffset::CX,
        "dx" | "rdx" | "edx" | "dl" => RegOffset::DX,
        "si" | "rsi" | "esi" | "sil" => RegOffset::SI,
        "di" | "rdi" | "edi" | "dil" => RegOffset::DI,
        "bp" | "rbp" | "ebp" | "bpl" => RegOffset::BP,
        "sp" | "rsp" | "esp" | "spl" => RegOffset::SP,
        "ip" | "rip" | "eip" => RegOffset::IP,
        _ => return None,
    };
    Some(base)
}

/// A parsed fetch location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    pub kind: FetchKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchKind {
    /// `%di`: a register at probe time.
    Reg(RegOffset),
    /// `$stack`: the stack pointer.
    StackPtr,
    /// `$stackN`: the N-th 8-byte word on the stack.
    StackWord(u32),
    /// `$retval`: the return value (`%ax`); return probes only.
    Retval,
    /// `+OFF(FETCH)` / `-OFF(FETCH)`: memory at the inner value plus OFF.
    Deref { offset: i64, base: Box<Fetch> },
    /// `@SYM[+|-OFF]`: memory at a kernel symbol (kernel probes only).
    Symbol { name: String, offset: i64 },
    /// `@0xADDR`: memory at an absolute kernel address.
    Addr(u64),
    /// `$5` in a USDT operand: a constant.
    Imm(i64),
}

/// The type a fetch argument is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchType {
    Int { bytes: u8, signed: bool },
    /// A NUL-terminated string at the fetched address.
    String,
}

impl FetchType {
    pub const U64: FetchType = FetchType::Int { bytes: 8, signed: false };
}

/// Parses a type name (`u32`, `s8`, `string`).
pub fn parse_type(text: &str, span: Span) -> Result<FetchType, Diagnostic> {
    let ty = match text {
        "u8" => FetchType::Int { bytes: 1, signed: false },
        "u16" => FetchType::Int { bytes: 2, signed: false },
        "u32" => FetchType::Int { bytes: 4, signed: false },
        "u64" => FetchType::Int { bytes: 8, signed: false },
        "s8" => FetchType::Int { bytes: 1, signed: true },
        "s16" => FetchType::Int { bytes: 2, signed: true },
        "s32" => FetchType::Int { bytes: 4, signed: true },
        "s64" => FetchType::Int { bytes: 8, signed: true },
        "string" => FetchType::String,
        _ => {
            return Err(Diagnostic::error(span, format!("unknown fetch type `{text}`"))
                .with_label("not a type")
                .with_note("types are u8, u16, u32, u64, s8, s16, s32, s64 and string"))
        }
    };
    Ok(ty)
}

/// Parses the text of a fetch argument's location; `start` is its offset
/// in the script, so every diagnostic points inside it.
pub fn parse_fetch(text: &str, start: u32) -> Result<Fetch, Diagnostic> {
    let mut p = Parser { text, at: 0, start };
    let f = p.fetch()?;
    if p.at < text.len() {
        return Err(p.error(p.at, text.len(), "unexpected text after the fetch location", "not part of the location"));
    }
    Ok(f)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    start: u32,
}

impl Parser<'_> {
    /// Bytes `from..to` of the text, at least one byte wide, always inside
    /// it (an empty text: the empty span where it would be).
    fn span(&self, from: usize, to: usize) -> Span {
        if self.text.is_empty() {
            return Span { start: self.start, end: self.start };
        }
        let from = from.min(self.text.len().saturating_sub(1));
        Span { start: self.start + from as u32, end: self.start + to.clamp(from + 1, self.text.len().max(from + 1)) as u32 }
    }

    fn error(&self, from: usize, to: usize, msg: &str, label: &str) -> Diagnostic {
        Diagnostic::error(self.span(from, to), msg).with_label(label).with_note(FETCH_FORMS)
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    /// Consumes `[A-Za-z0-9_]*`.
    fn word(&mut self) -> &str {
        let rest = self.rest();
        let n = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let w = &self.text[self.at..self.at + n];
        self.at += n;
        w
    }

    fn fetch(&mut self) -> Result<Fetch, Diagnostic> {
        let from = self.at;
        let Some(c) = self.rest().chars().next() else {
            return Err(self.error(from, from + 1, "missing fetch location", "expected e.g. %di, $stack, +4($stack)"));
        };
        let kind = match c {
            '%' => {
                self.at += 1;
                let name = self.word().to_string();
                match register(&name) {
                    Some(r) => FetchKind::Reg(r),
                    None => {
                        let msg = format!("unknown register `%{name}`");
                        return Err(Diagnostic::error(self.span(from, self.at), msg)
                            .with_label("not an x86-64 register")
                            .with_note("registers are %di %si %dx %cx %r8 %r9 %ax %bx %bp %sp %ip %r10..%r15 (or %rdi, %eax... spellings)"));
                    }
                }
            }
            '$' => {
                self.at += 1;
                let name = self.word().to_string();
                if name == "stack" {
                    FetchKind::StackPtr
                } else if name == "retval" {
                    FetchKind::Retval
                } else if let Some(n) = name.strip_prefix("stack").and_then(|n| n.parse::<u32>().ok()) {
                    FetchKind::StackWord(n)
                } else {
                    return Err(self.error(from, self.at, &format!("unknown fetch variable `${name}`"), "expected $stack, $stackN or $retval"));
                }
            }
            '@' => {
                self.at += 1;
                let w_from = self.at;
                let name = self.word().to_string();
                if name.is_empty() {
                    return Err(self.error(from, from + 1, "missing address or symbol after '@'", "expected @SYMBOL or @0xADDR"));
                }
                if name.starts_with(|c: char| c.is_ascii_digit()) {
                    match parse_int(&name) {
                        Some(a) => FetchKind::Addr(a as u64),
                        None => return Err(self.error(w_from, self.at, &format!("malformed address `{name}`"), "expected a number")),
                    }
                } else {
                    let offset = match self.rest().chars().next() {
                        Some('+' | '-') => {
                            let o_from = self.at;
                            let neg = self.rest().starts_with('-');
                            self.at += 1;
                            let n = self.word().to_string();
                            let Some(v) = parse_int(&n) else {
                                return Err(self.error(o_from, self.at, "malformed symbol offset", "expected a number"));
                            };
                            if neg { v.wrapping_neg() } else { v }
                        }
                        _ => 0,
                    };
                    FetchKind::Symbol { name, offset }
                }
            }
            '+' | '-' | '0'..='9' => {
                let neg = c == '-';
                if c == '+' || c == '-' {
                    self.at += 1;
                }
                let n_from = self.at;
                let n = self.word().to_string();
                let Some(v) = parse_int(&n) else {
                    return Err(self.error(n_from, self.at.max(n_from + 1), "malformed offset", "expected a number like 8 or 0x10"));
                };
                let offset = if neg { v.wrapping_neg() } else { v };
                if !self.rest().starts_with('(') {
                    return Err(self.error(from, self.at, "an offset needs a location in parentheses", "expected e.g. +8(%di)"));
                }
                let open = self.at;
                self.at += 1;
                let base = self.fetch()?;
                if !self.rest().starts_with(')') {
                    return Err(self.error(open, self.at.max(open + 1), "unclosed '(' in fetch location", "this '(' is not closed"));
                }
                self.at += 1;
                FetchKind::Deref { offset, base: Box::new(base) }
            }
            _ => {
                let ch_end = from + c.len_utf8();
                return Err(self.error(from, ch_end, &format!("malformed fetch location '{}'", self.rest()), "expected %REG, $stack, $retval, @SYM or +OFF(...)"));
            }
        };
        Ok(Fetch { kind, span: self.span(from, self.at) })
    }
}

const FETCH_FORMS: &str = "fetch locations: %REG, $stack, $stackN, $retval, +OFF(FETCH), -OFF(FETCH), @SYM, @0xADDR";

/// Decimal, `0x` hex or `0` octal (as strtol with base 0).
fn parse_int(s: &str) -> Option<i64> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u64>().ok()?
    };
    Some(v as i64)
}

/// One operand of a USDT note (`-4@%eax`, `8@-8(%rbp)`, `4@$5`): its type
/// and location. Errors are plain text: the note is not in the script.
pub fn parse_sdt_arg(text: &str) -> Result<(FetchType, Fetch), String> {
    let span = Span::default();
    let (size, operand) = match text.split_once('@') {
        Some((s, o)) => (s.parse::<i32>().map_err(|_| format!("bad operand size in `{text}`"))?, o),
        // Very old notes have no size: assume a 64-bit value.
        None => (8, text),
    };
    let ty = match size.unsigned_abs() {
        1 | 2 | 4 | 8 => FetchType::Int { bytes: size.unsigned_abs() as u8, signed: size < 0 },
        _ => return Err(format!("unsupported operand size {size} in `{text}`")),
    };
    let reg = |name: &str| register(name.trim_start_matches('%')).ok_or_else(|| format!("unsupported register in `{text}`"));
    let fetch = |kind| Fetch { kind, span };
    if let Some(imm) = operand.strip_prefix('$') {
        let neg = imm.starts_with('-');
        let v = parse_int(imm.trim_start_matches('-')).ok_or_else(|| format!("bad constant in `{text}`"))?;
        return Ok((ty, fetch(FetchKind::Imm(if neg { v.wrapping_neg() } else { v }))));
    }
    if operand.starts_with('%') {
        return Ok((ty, fetch(FetchKind::Reg(reg(operand)?))));
    }
    // DISP(%reg) or (%reg); no index registers, no symbolic displacements.
    let Some((disp, inner)) = operand.split_once('(') else {
        return Err(format!("unsupported operand `{text}`"));
    };
    let inner = inner.strip_suffix(')').ok_or_else(|| format!("unsupported operand `{text}`"))?;
    if inner.contains(',') {
        return Err(format!("indexed addressing is not supported yet (`{text}`)"));
    }
    let offset = if disp.is_empty() {
        0
    } else {
        let neg = disp.starts_with('-');
        let v = parse_int(disp.trim_start_matches(['-', '+'])).ok_or_else(|| format!("symbolic operand `{text}` is not supported yet"))?;
        if neg { v.wrapping_neg() } else { v }
    };
    let base = reg(inner)?;
    if base == RegOffset::IP {
        return Err(format!("%rip-relative operand `{text}` is not supported yet"));
    }
    Ok((ty, fetch(FetchKind::Deref { offset, base: Box::new(fetch(FetchKind::Reg(base))) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_nesting() {
        let f = parse_fetch("%di", 10).expect("parses");
        assert_eq!(f.kind, FetchKind::Reg(RegOffset::DI));
        assert_eq!(f.span, Span::new(10, 13));
        assert_eq!(parse_fetch("%rdi", 0).expect("parses").kind, FetchKind::Reg(RegOffset::DI));
        let f = parse_fetch("+8(+0(%si))", 0).expect("parses");
        let FetchKind::Deref { offset: 8, base } = f.kind else { panic!("{f:?}") };
        let FetchKind::Deref { offset: 0, base: inner } = base.kind else { panic!("{base:?}") };
        assert_eq!(inner.kind, FetchKind::Reg(RegOffset::SI));
        assert_eq!(inner.span, Span::new(6, 9));
        assert_eq!(parse_fetch("-0x10(%bp)", 0).expect("parses").kind, FetchKind::Deref { offset: -16, base: Box::new(Fetch { kind: FetchKind::Reg(RegOffset::BP), span: Span::new(6, 9) }) });
        assert_eq!(parse_fetch("$stack3", 0).expect("parses").kind, FetchKind::StackWord(3));
        assert_eq!(parse_fetch("$stack", 0).expect("parses").kind, FetchKind::StackPtr);
        assert_eq!(parse_fetch("@jiffies+8", 0).expect("parses").kind, FetchKind::Symbol { name: "jiffies".into(), offset: 8 });
        assert_eq!(parse_fetch("@0xffff0000", 0).expect("parses").kind, FetchKind::Addr(0xffff0000));
    }

    #[test]
    fn errors_point_inside_the_text() {
        for (bad, span) in [("%xyz", (100, 104)), ("+8(%di", (102, 106)), ("8", (100, 101)), ("$foo", (100, 104)), ("%di)", (103, 104)), ("&x", (100, 101)), ("+(%di)", (101, 102))] {
            let d = parse_fetch(bad, 100).expect_err(bad);
            assert_eq!((d.span.start, d.span.end), span, "{bad}: {d:?}");
        }
        assert!(parse_fetch("%xyz", 0).expect_err("bad").message.contains("unknown register `%xyz`"));
        assert!(parse_type("u128", Span::default()).is_err());
        assert_eq!(parse_type("s32", Span::default()), Ok(FetchType::Int { bytes: 4, signed: true }));
    }

    #[test]
    fn sdt_operands() {
        let (ty, f) = parse_sdt_arg("-4@%eax").expect("parses");
        assert_eq!(ty, FetchType::Int { bytes: 4, signed: true });
        assert_eq!(f.kind, FetchKind::Reg(RegOffset::AX));
        let (ty, f) = parse_sdt_arg("8@-8(%rbp)").expect("parses");
        assert_eq!(ty, FetchType::U64);
        assert!(matches!(f.kind, FetchKind::Deref { offset: -8, .. }));
        assert_eq!(parse_sdt_arg("4@$5").expect("parses").1.kind, FetchKind::Imm(5));
        assert_eq!(parse_sdt_arg("-4@$-1").expect("parses").1.kind, FetchKind::Imm(-1));
        assert_eq!(parse_sdt_arg("8@(%r12)").expect("parses").1.kind, FetchKind::Deref { offset: 0, base: Box::new(Fetch { kind: FetchKind::Reg(RegOffset::R12), span: Span::default() }) });
        assert!(parse_sdt_arg("8@foo(%rip)").is_err());
        assert!(parse_sdt_arg("8@-8(%rbp,%rax,8)").is_err());
        assert!(parse_sdt_arg("3@%eax").is_err());
    }
}
