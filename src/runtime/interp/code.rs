//! The interpreter's compiled form: register-machine instructions and the
//! function prototypes that hold them. Plain data: built by `compile`, run
//! by `vm`; nothing here executes or inspects values.

use crate::span::Span;

use super::builtins::Builtin;
use super::value::Value;

/// A register: a slot of the current call frame (locals and temporaries).
pub type Reg = u16;
/// A cell slot of the current frame: a local captured by a closure.
pub type CellIdx = u16;
/// An index into the current closure's captured cells.
pub type UpIdx = u16;
/// An index into the prototype's constants.
pub type ConstIdx = u32;
/// An index into the interpreter's global vector.
pub type GlobalIdx = u32;
/// A jump, relative to the instruction after the jump.
pub type Offset = i32;

/// Comparison of a fused compare-and-jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped: `a < b` is `b > a`.
    pub fn swapped(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
        }
    }
}

/// Arithmetic operators sharing one instruction shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// One instruction. Registers are relative to the frame base; jumps are
/// relative to the following instruction. Every instruction that can fail
/// has the span of its source expression in `Proto::spans`.
#[derive(Clone, Copy, Debug)]
pub enum Insn {
    Move {
        dst: Reg,
        src: Reg,
    },
    LoadNil {
        dst: Reg,
    },
    LoadBool {
        dst: Reg,
        val: bool,
    },
    LoadInt {
        dst: Reg,
        val: i32,
    },
    LoadK {
        dst: Reg,
        k: ConstIdx,
    },
    GetGlobal {
        dst: Reg,
        g: GlobalIdx,
    },
    SetGlobal {
        g: GlobalIdx,
        src: Reg,
    },
    GetUpval {
        dst: Reg,
        u: UpIdx,
    },
    SetUpval {
        u: UpIdx,
        src: Reg,
    },
    /// Gives cell `c` a fresh variable holding nil.
    NewCell {
        c: CellIdx,
    },
    GetCell {
        dst: Reg,
        c: CellIdx,
    },
    SetCell {
        c: CellIdx,
        src: Reg,
    },
    NewTable {
        dst: Reg,
        cap: u16,
    },
    /// `dst = t[k]`.
    GetIndex {
        dst: Reg,
        t: Reg,
        k: Reg,
    },
    /// `dst = t[K[k]]`.
    GetField {
        dst: Reg,
        t: Reg,
        k: ConstIdx,
    },
    /// `t[k] = v`.
    SetIndex {
        t: Reg,
        k: Reg,
        v: Reg,
    },
    SetField {
        t: Reg,
        k: ConstIdx,
        v: Reg,
    },
    /// `t[k] += v`, a missing key counting as 0.
    IncIndex {
        t: Reg,
        k: Reg,
        v: Reg,
    },
    IncField {
        t: Reg,
        k: ConstIdx,
        v: Reg,
    },
    Arith {
        op: ArithOp,
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = a + imm`.
    AddI {
        dst: Reg,
        a: Reg,
        imm: i32,
    },
    /// `dst = a + b` where a nil `a` counts as 0 (`x += b`).
    Inc {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `G[g] += v`, nil counting as 0.
    IncGlobal {
        g: GlobalIdx,
        v: Reg,
    },
    Neg {
        dst: Reg,
        src: Reg,
    },
    Not {
        dst: Reg,
        src: Reg,
    },
    Concat {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = (a op b) == want`.
    Cmp {
        op: CmpOp,
        want: bool,
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Jmp {
        off: Offset,
    },
    /// Jumps when the truthiness of `src` is `want`.
    Test {
        src: Reg,
        want: bool,
        off: Offset,
    },
    /// Jumps when `(a op b) == want`.
    JmpCmp {
        op: CmpOp,
        want: bool,
        a: Reg,
        b: Reg,
        off: Offset,
    },
    /// Jumps when `(a op imm) == want`. `flip` records that the source
    /// had the constant on the left (for the order of error messages).
    JmpCmpI {
        op: CmpOp,
        want: bool,
        flip: bool,
        a: Reg,
        imm: i16,
        off: Offset,
    },
    /// Calls the function in `base` with `nargs` arguments after it; the
    /// result replaces the function.
    Call {
        base: Reg,
        nargs: u16,
    },
    TailCall {
        base: Reg,
        nargs: u16,
    },
    /// Calls a builtin directly; arguments at `base..base+nargs`, result in `base`.
    CallBuiltin {
        b: Builtin,
        base: Reg,
        nargs: u16,
    },
    Return {
        src: Reg,
    },
    Return0,
    /// The main context ran the probe statement starting at byte `at` of
    /// the script: its probe is attached (`Vm::registered`).
    Register {
        at: u32,
    },
    Closure {
        dst: Reg,
        proto: u32,
    },
    /// Numeric for: `base` start/index, `base+1` limit (then the remaining
    /// count), `base+2` step, `base+3` the visible variable. Jumps past the
    /// loop when it runs zero times.
    ForPrep {
        base: Reg,
        off: Offset,
    },
    ForLoop {
        base: Reg,
        off: Offset,
    },
    /// Table traversal: `base` the table, `base+1` the position, `base+2`
    /// and `base+3` key and value. Prep checks and jumps to the `IterNext`.
    IterPrep {
        base: Reg,
        off: Offset,
    },
    IterNext {
        base: Reg,
        off: Offset,
    },
    /// Raises a fixed error (a statement the interpreter cannot run).
    Fail {
        k: ConstIdx,
    },
}

/// Where a closure's captured variable comes from when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpvalSource {
    /// A cell of the enclosing frame.
    Cell(CellIdx),
    /// A captured variable of the enclosing closure.
    Upval(UpIdx),
}

/// A compiled function.
#[derive(Debug, Default)]
pub struct Proto {
    pub name: String,
    pub code: Vec<Insn>,
    /// Source span of each instruction, in parallel with `code`.
    pub spans: Vec<Span>,
    /// What the table or function operand of an instruction is called in
    /// the source (`global 'f'`, `field 'x'`), by instruction index in
    /// increasing order; used to name the culprit in error messages.
    pub notes: Vec<(u32, Box<str>)>,
    pub consts: Vec<Value>,
    pub protos: Vec<std::rc::Rc<Proto>>,
    pub upvals: Vec<UpvalSource>,
    pub nparams: u16,
    /// Registers the frame needs.
    pub nregs: u16,
    /// Cells the frame needs.
    pub ncells: u16,
}

impl Proto {
    /// The note recorded for the instruction at `pc`, if any.
    pub fn note(&self, pc: usize) -> Option<&str> {
        let pc = u32::try_from(pc).ok()?;
        let i = self.notes.binary_search_by_key(&pc, |n| n.0).ok()?;
        Some(&self.notes[i].1)
    }

    /// A text listing of this function and the ones nested in it, one
    /// instruction per line (for `--emit`-style debugging and tests).
    pub fn dump(&self) -> String {
        let mut out = String::new();
        self.dump_into(&mut out);
        out
    }

    fn dump_into(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "function {} (params {}, regs {}, cells {}, upvals {:?})",
            self.name, self.nparams, self.nregs, self.ncells, self.upvals
        );
        for (i, insn) in self.code.iter().enumerate() {
            let _ = writeln!(out, "  {i:4}  {insn:?}");
        }
        for (i, k) in self.consts.iter().enumerate() {
            let _ = writeln!(out, "  K{i} = {k:?}");
        }
        for p in &self.protos {
            p.dump_into(out);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn insn_is_small() {
        assert!(std::mem::size_of::<super::Insn>() <= 12);
    }
}
