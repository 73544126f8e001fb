//! Code generation: the kernel part of the IR to BPF programs in a
//! [`BpfObject`]. Expressions evaluate into the callee-saved registers
//! r7..r9 by nesting depth (deeper operands spill to stack slots), r6 holds
//! the context pointer, and every instruction keeps the span of the IR
//! node it came from, so a verifier rejection maps back to a source line.
//! Takes a validated module; fails only on target limits. No IO.

use super::elf::{BpfObject, GlobalSection, MapDef, Program, Reloc, RelocTarget};
use super::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::frontend::ast::Span;
use crate::ir::{self, BinOp, Builtin, Expr, ExprKind, MapKind, Module, ProgKind, Section, Stmt, StmtKind, Ty, UnOp};
use std::fmt;

mod fetch;

/// BPF helper ids (include/uapi/linux/bpf.h).
mod helper {
    pub const KTIME_GET_NS: i32 = 5;
    pub const GET_SMP_PROCESSOR_ID: i32 = 8;
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_UID_GID: i32 = 15;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const GET_ATTACH_COOKIE: i32 = 174;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const KTIME_GET_BOOT_NS: i32 = 125;
    pub const GET_STACKID: i32 = 27;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const GET_CURRENT_TASK_BTF: i32 = 158;
}

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_STACK_TRACE: u32 = 7;
const BPF_MAP_TYPE_RINGBUF: u32 = 27;
/// bpf_get_stackid flags.
const BPF_F_USER_STACK: i32 = 1 << 8;
/// Flags of bpf_ringbuf_submit.
const BPF_RB_NO_WAKEUP: i32 = 1;
const BPF_RB_FORCE_WAKEUP: i32 = 2;
/// Flags of bpf_map_update_elem.
const BPF_ANY: i32 = 0;
const BPF_NOEXIST: i32 = 1;
/// Offset of `orig_ax` in x86-64 `struct pt_regs`.
const PT_REGS_ORIG_AX: i32 = 15 * 8;
/// The BPF stack is 512 bytes (kernel/bpf/verifier.c, MAX_BPF_STACK).
const MAX_STACK: i32 = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A probe needs more than the 512-byte BPF stack.
    StackLimit { probe: usize },
    /// A jump spans more instructions than a 16-bit offset can reach.
    JumpTooFar { probe: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StackLimit { probe } => write!(f, "probe {probe} needs more than {MAX_STACK} bytes of BPF stack"),
            Error::JumpTooFar { probe } => write!(f, "probe {probe} is too long: a jump exceeds 32767 instructions"),
        }
    }
}

impl std::error::Error for Error {}

/// Where a global lives once libbpf has mapped its section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalLayout {
    pub section: Section,
    pub offset: u32,
}

/// A compiled program and what the runtime needs to report on it.
#[derive(Clone, Debug)]
pub struct ProgramInfo {
    pub name: String,
    pub probe: usize,
    pub kind: ProgKind,
    /// Indexes into the probe's attach points that this program serves.
    pub attach: Vec<usize>,
    /// Source span of each instruction slot (None: synthesised code).
    pub spans: Vec<Option<Span>>,
}

#[derive(Clone, Debug)]
pub struct Compiled {
    pub object: BpfObject,
    pub programs: Vec<ProgramInfo>,
    /// Indexed like `Module::globals`.
    pub globals: Vec<GlobalLayout>,
}

/// Each global takes 8 bytes, in declaration order within its section.
pub fn global_layout(m: &Module) -> Vec<GlobalLayout> {
    let (mut data, mut bss) = (0u32, 0u32);
    m.globals
        .iter()
        .map(|g| {
            let at = match g.section {
                Section::Data => &mut data,
                Section::Bss => &mut bss,
            };
            let offset = *at;
            *at += g.ty.size().next_multiple_of(8);
            GlobalLayout { section: g.section, offset }
        })
        .collect()
}

pub fn compile(m: &Module) -> Result<Compiled, Error> {
    let mut programs = Vec::new();
    let mut infos = Vec::new();
    for (i, probe) in m.probes.iter().enumerate() {
        let mut kinds: Vec<ProgKind> = probe.attach.iter().map(|a| a.kind()).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let (program, info) = compile_program(m, i, kind)?;
            programs.push(program);
            infos.push(info);
        }
    }
    let maps = m
        .maps
        .iter()
        .map(|map| MapDef {
            name: map.name.clone(),
            map_type: match map.kind {
                MapKind::RingBuf => BPF_MAP_TYPE_RINGBUF,
                MapKind::Array => BPF_MAP_TYPE_ARRAY,
                MapKind::StackTrace => BPF_MAP_TYPE_STACK_TRACE,
                MapKind::Hash => BPF_MAP_TYPE_HASH,
                MapKind::PercpuHash => BPF_MAP_TYPE_PERCPU_HASH,
            },
            key_size: map.key_size,
            value_size: map.value_size,
            max_entries: map.max_entries,
            flags: 0,
        })
        .collect();
    let globals = m
        .globals
        .iter()
        .map(|g| super::elf::Global {
            name: g.name.clone(),
            section: match g.section {
                Section::Data => GlobalSection::Data,
                Section::Bss => GlobalSection::Bss,
            },
            size: g.ty.size().next_multiple_of(8),
            init: match g.section {
                Section::Data => vec![0; g.ty.size().next_multiple_of(8) as usize],
                Section::Bss => Vec::new(),
            },
        })
        .collect();
    Ok(Compiled {
        object: BpfObject { license: "GPL".into(), programs, maps, globals },
        programs: infos,
        globals: global_layout(m),
    })
}

/// One program: the probe's body behind the prologue its kind needs.
fn compile_program(m: &Module, probe: usize, kind: ProgKind) -> Result<(Program, ProgramInfo), Error> {
    let body = &m.probes[probe].body;
    let attach: Vec<usize> =
        m.probes[probe].attach.iter().enumerate().filter(|(_, a)| a.kind() == kind).map(|(i, _)| i).collect();
    let (name, section) = match kind {
        ProgKind::Tracepoint => (format!("ktap_p{probe}_tp"), "tracepoint"),
        ProgKind::RawTracepoint => (format!("ktap_p{probe}_raw"), "raw_tp"),
        ProgKind::SysEnter => (format!("ktap_p{probe}_sys_enter"), "raw_tp"),
        ProgKind::SysExit => (format!("ktap_p{probe}_sys_exit"), "raw_tp"),
        ProgKind::Perf => (format!("ktap_p{probe}_perf"), "perf_event"),
        ProgKind::Uprobe => (format!("ktap_p{probe}_uprobe"), "uprobe"),
        ProgKind::Kprobe => (format!("ktap_p{probe}_kprobe"), "kprobe"),
    };
    let mut g = Gen {
        m,
        asm: Asm::default(),
        frame: 0,
        max_frame: 0,
        probe_name_slot: None,
        locals: Vec::new(),
        loops: Vec::new(),
        blocks: std::collections::HashMap::new(),
        exit: Label(0),
    };
    let exit = g.asm.label();
    g.exit = exit;
    g.asm.emit(Insn::mov64_reg(Reg::R6, Reg::R1));
    // Locals live in fixed slots, zeroed so the verifier sees them written.
    for _ in &m.probes[probe].locals {
        let slot = g.slot();
        g.locals.push(slot);
    }
    if !g.locals.is_empty() {
        g.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        for &slot in &g.locals {
            g.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, slot));
        }
    }
    if matches!(kind, ProgKind::SysEnter | ProgKind::SysExit) {
        g.syscall_prologue(probe, kind, exit);
    }
    g.stmts(body, exit);
    g.asm.bind(exit);
    g.asm.emit(Insn::mov64_imm(Reg::R0, 0));
    g.asm.emit(Insn::exit());
    if g.max_frame > MAX_STACK {
        return Err(Error::StackLimit { probe });
    }
    let (insns, spans, relocs) = g.asm.finish().ok_or(Error::JumpTooFar { probe })?;
    Ok((
        Program { name: name.clone(), section: section.to_string(), insns, relocs },
        ProgramInfo { name, probe, kind, attach, spans },
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// Instructions, the span of each slot, and the relocations.
type Assembled = (Vec<Insn>, Vec<Option<Span>>, Vec<Reloc>);

/// An instruction list with symbolic jump targets and a span per slot.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    spans: Vec<Option<Span>>,
    relocs: Vec<Reloc>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
    span: Option<Span>,
}

impl Asm {
    fn emit(&mut self, insn: Insn) {
        self.insns.push(insn);
        self.spans.push(self.span);
    }
    fn emit_wide(&mut self, pair: [Insn; 2]) {
        self.emit(pair[0]);
        self.emit(pair[1]);
    }
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }
    /// Emits a jump whose offset is patched to reach `l`.
    fn jump(&mut self, insn: Insn, l: Label) {
        self.fixups.push((self.insns.len(), l));
        self.emit(insn);
    }
    /// Loads the address of a map or global (an ld_imm64 relocated by libbpf).
    fn load_addr(&mut self, dst: Reg, target: RelocTarget) {
        self.relocs.push(Reloc { insn: self.insns.len(), target });
        self.emit_wide(Insn::ld_imm64(dst, 0));
    }
    fn finish(mut self) -> Option<Assembled> {
        for (at, l) in std::mem::take(&mut self.fixups) {
            let target = self.labels[l.0]?;
            let off = i16::try_from(target as i64 - at as i64 - 1).ok()?;
            self.insns[at].off = off;
        }
        Some((self.insns, self.spans, self.relocs))
    }
}

struct Gen<'a> {
    m: &'a Module,
    asm: Asm,
    /// Bytes of stack in use below r10, and the most ever used.
    frame: i32,
    max_frame: i32,
    /// Where the syscall prologue left the probename id.
    probe_name_slot: Option<i16>,
    /// Stack slot of each local.
    locals: Vec<i16>,
    /// End labels of the loops around the current statement.
    loops: Vec<Label>,
    /// End labels of the blocks `Leave` may exit.
    blocks: std::collections::HashMap<ir::BlockId, Label>,
    /// The program's epilogue.
    exit: Label,
}

/// Result register for an expression at nesting depth `d`.
fn temp(d: usize) -> Reg {
    [Reg::R7, Reg::R8, Reg::R9][d.min(2)]
}

impl Gen<'_> {
    fn slot(&mut self) -> i16 {
        self.frame += 8;
        self.max_frame = self.max_frame.max(self.frame);
        // Offsets beyond the limit are reported by `compile`; clamp so the
        // instruction stays encodable until then.
        -(self.frame.min(MAX_STACK) as i16)
    }

    /// For programs riding raw_syscalls: find the syscall number, look it up
    /// in the probe's filter map, leave unless traced, and keep the
    /// probename id in a stack slot.
    fn syscall_prologue(&mut self, probe: usize, kind: ProgKind, exit: Label) {
        let Some(map) = self.m.maps.iter().position(|mp| mp.syscall_filter == Some((probe, kind))) else { return };
        let map_name = self.m.maps[map].name.clone();
        let nr_slot = self.slot();
        if kind == ProgKind::SysEnter {
            // raw_syscalls:sys_enter(struct pt_regs *regs, long id)
            self.asm.emit(Insn::ldx(Size::DW, Reg::R2, Reg::R6, 8));
        } else {
            // raw_syscalls:sys_exit(struct pt_regs *regs, long ret): the
            // number is regs->orig_ax (arch/x86/include/asm/ptrace.h).
            self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R6, 0));
            self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, PT_REGS_ORIG_AX));
            self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
            self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(nr_slot)));
            self.asm.emit(Insn::mov64_imm(Reg::R2, 8));
            self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL));
            self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), exit);
            self.asm.emit(Insn::ldx(Size::DW, Reg::R2, Reg::R10, nr_slot));
        }
        let entries = self.m.maps[map].max_entries as i32;
        self.asm.jump(Insn::jmp_imm(JmpOp::Jge, Reg::R2, entries, 0), exit);
        self.asm.emit(Insn::stx(Size::W, Reg::R10, Reg::R2, nr_slot));
        self.asm.load_addr(Reg::R1, RelocTarget::Map(map_name));
        self.asm.emit(Insn::mov64_reg(Reg::R2, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, i32::from(nr_slot)));
        self.asm.emit(Insn::call_helper(helper::MAP_LOOKUP_ELEM));
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), exit);
        self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R0, 0));
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R1, 0, 0), exit);
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, -1));
        let slot = self.slot();
        self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, slot));
        self.probe_name_slot = Some(slot);
    }

    fn global_target(&self, g: ir::GlobalId) -> RelocTarget {
        RelocTarget::Global(self.m.global(g).name.clone())
    }

    fn stmts(&mut self, stmts: &[Stmt], exit: Label) {
        for s in stmts {
            let saved = self.frame;
            self.stmt(s, exit);
            self.frame = saved;
        }
    }

    fn stmt(&mut self, s: &Stmt, exit: Label) {
        self.asm.span = s.span;
        match &s.kind {
            StmtKind::If { cond, then, otherwise }
                if otherwise.is_empty() && matches!(then.as_slice(), [Stmt { kind: StmtKind::Return, .. }]) =>
            {
                self.branch_if(cond, exit);
            }
            StmtKind::If { cond, then, otherwise } => {
                let els = self.asm.label();
                let end = self.asm.label();
                self.branch_unless(cond, els);
                self.asm.span = s.span;
                self.stmts(then, exit);
                if otherwise.is_empty() {
                    self.asm.bind(els);
                } else {
                    self.asm.jump(Insn::ja(0), end);
                    self.asm.bind(els);
                    self.stmts(otherwise, exit);
                }
                self.asm.bind(end);
            }
            StmtKind::GlobalAdd { global, value } => {
                let r = self.expr(value, 0);
                self.asm.span = s.span;
                self.asm.load_addr(Reg::R1, self.global_target(*global));
                self.asm.emit(Insn::atomic_add(Size::DW, Reg::R1, r, 0, false));
            }
            StmtKind::GlobalStore { global, value } => {
                let r = self.expr(value, 0);
                self.asm.span = s.span;
                self.asm.load_addr(Reg::R1, self.global_target(*global));
                self.asm.emit(Insn::stx(Size::DW, Reg::R1, r, 0));
            }
            StmtKind::Return => self.asm.jump(Insn::ja(0), exit),
            StmtKind::Emit { site, args } => self.emit_record(*site, args, s.span),
            StmtKind::MapAdd { map, key, value } => self.map_add(*map, key, value, s.span),
            StmtKind::MapStore { map, key, value } => {
                let k = self.key_slot(key);
                let v = if matches!(value.ty, Ty::Comm | Ty::Str) {
                    self.string_slot_sized(value, self.m.map(*map).value_size)
                } else {
                    let r = self.expr(value, 0);
                    let v = self.slot();
                    self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, v));
                    v
                };
                self.asm.span = s.span;
                self.map_update(*map, k, v, BPF_ANY);
                let done = self.asm.label();
                self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), done);
                self.count_failure();
                self.asm.bind(done);
            }
            StmtKind::MapDelete { map, key } => {
                let k = self.key_slot(key);
                self.asm.span = s.span;
                self.map_call(*map, k, helper::MAP_DELETE_ELEM);
            }
            StmtKind::LocalSet { local, value } => {
                let r = self.expr(value, 0);
                self.asm.span = s.span;
                self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, self.locals[local.index()]));
            }
            StmtKind::Loop { cond, body, step, .. } => {
                let top = self.asm.label();
                let end = self.asm.label();
                self.asm.bind(top);
                self.branch_unless(cond, end);
                self.loops.push(end);
                self.stmts(body, exit);
                self.loops.pop();
                self.stmts(step, exit);
                self.asm.span = s.span;
                self.asm.jump(Insn::ja(0), top);
                self.asm.bind(end);
            }
            StmtKind::Break => {
                if let Some(&end) = self.loops.last() {
                    self.asm.jump(Insn::ja(0), end);
                }
            }
            StmtKind::Block { id, body } => {
                let end = self.asm.label();
                self.blocks.insert(*id, end);
                // `break` inside an inlined function never leaves it.
                let loops = std::mem::take(&mut self.loops);
                self.stmts(body, exit);
                self.loops = loops;
                self.asm.bind(end);
            }
            StmtKind::Leave(id) => {
                if let Some(&end) = self.blocks.get(id) {
                    self.asm.jump(Insn::ja(0), end);
                }
            }
        }
    }

    fn map_target(&self, map: ir::MapId) -> RelocTarget {
        RelocTarget::Map(self.m.map(map).name.clone())
    }

    /// Writes a string value (`Comm` or `Str`) into fresh, zero-padded
    /// stack memory and returns its offset.
    fn string_slot(&mut self, value: &Expr) -> i16 {
        self.string_slot_sized(value, value.ty.size())
    }

    /// Writes a string value into `size` fresh stack bytes, zero padded
    /// (the bytes after the NUL are part of a key or a table value).
    fn string_slot_sized(&mut self, value: &Expr, size: u32) -> i16 {
        let words = size.div_ceil(8);
        let mut at = 0;
        for _ in 0..words {
            at = self.slot();
        }
        self.asm.span = value.span.or(self.asm.span);
        if value.ty == Ty::Comm && size == Ty::Comm.size() {
            // strscpy_pad fills all 16 bytes.
            self.comm_into_stack(at);
            return at;
        }
        // Where the string comes from, evaluated before the zeroing.
        let src = match &value.kind {
            ExprKind::ReadStr { ptr, user } => Some((self.expr(ptr, 0), *user)),
            _ if value.ty == Ty::Comm => None,
            // A string-valued table element: its address, 0 if missing.
            _ => Some((self.expr(value, 0), false)),
        };
        self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        for w in 0..words as i16 {
            self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, at + 8 * w));
        }
        match src {
            Some((p, user)) => {
                self.asm.emit(Insn::mov64_reg(Reg::R3, p));
                self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(at)));
                self.asm.emit(Insn::mov64_imm(Reg::R2, value.ty.size().min(size) as i32));
                self.asm.emit(Insn::call_helper(if user { helper::PROBE_READ_USER_STR } else { helper::PROBE_READ_KERNEL_STR }));
            }
            None => self.comm_into_stack(at),
        }
        at
    }

    fn comm_into_stack(&mut self, at: i16) {
        self.comm_into(Reg::R10, at);
    }

    /// Writes the current task's 16-byte command name at `base + off`
    /// (the stack or a ring-buffer record). Where the module knows the
    /// kernel's `task_struct.comm`, two 8-byte loads from the task
    /// (`bpf_get_current_task_btf` gives a pointer the verifier lets us
    /// read through) replace `bpf_get_current_comm`, which copies with
    /// strscpy_pad; the kernel keeps comm NUL-padded itself
    /// (`__set_task_comm`), so the bytes are the same.
    fn comm_into(&mut self, base: Reg, off: i16) {
        let direct = self.m.task_comm_offset.and_then(|c| i16::try_from(c).ok()).filter(|c| c.checked_add(8).is_some());
        match direct {
            Some(comm) => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_TASK_BTF));
                for w in [0, 8] {
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R0, comm + w));
                    self.asm.emit(Insn::stx(Size::DW, base, Reg::R1, off + w));
                }
            }
            None => {
                self.asm.emit(Insn::mov64_reg(Reg::R1, base));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(off)));
                self.asm.emit(Insn::mov64_imm(Reg::R2, Ty::Comm.size() as i32));
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_COMM));
            }
        }
    }

    /// Evaluates a key into fresh stack memory and returns its offset.
    fn key_slot(&mut self, key: &Expr) -> i16 {
        match key.ty {
            Ty::Comm | Ty::Str => self.string_slot(key),
            Ty::Int | Ty::ProbeName | Ty::Stack { .. } | Ty::ArgStr { .. } => {
                let r = self.expr(key, 0);
                let at = self.slot();
                self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, at));
                at
            }
        }
    }

    /// `r0 = helper(map, fp + key)`.
    fn map_call(&mut self, map: ir::MapId, key: i16, helper: i32) {
        self.asm.load_addr(Reg::R1, self.map_target(map));
        self.asm.emit(Insn::mov64_reg(Reg::R2, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, i32::from(key)));
        self.asm.emit(Insn::call_helper(helper));
    }

    /// `r0 = bpf_map_update_elem(map, fp + key, fp + value, flags)`.
    fn map_update(&mut self, map: ir::MapId, key: i16, value: i16, flags: i32) {
        self.asm.load_addr(Reg::R1, self.map_target(map));
        self.asm.emit(Insn::mov64_reg(Reg::R2, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, i32::from(key)));
        self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, i32::from(value)));
        self.asm.emit(Insn::mov64_imm(Reg::R4, flags));
        self.asm.emit(Insn::call_helper(helper::MAP_UPDATE_ELEM));
    }

    fn count_failure(&mut self) {
        if let Some(g) = self.m.map_failures {
            self.asm.load_addr(Reg::R1, self.global_target(g));
            self.asm.emit(Insn::mov64_imm(Reg::R2, 1));
            self.asm.emit(Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, false));
        }
    }

    /// `table[key] += value`: add in place when the key exists, else insert
    /// (and if another CPU inserted first, add to its entry). Shared tables
    /// add atomically; per-CPU ones own their entry.
    fn map_add(&mut self, map: ir::MapId, key: &Expr, value: &Expr, span: Option<Span>) {
        let k = self.key_slot(key);
        let r = self.expr(value, 0);
        let v = self.slot();
        self.asm.span = span;
        self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, v));
        let percpu = self.m.map(map).kind == MapKind::PercpuHash;
        let found = self.asm.label();
        let end = self.asm.label();
        let fail = self.asm.label();
        self.map_call(map, k, helper::MAP_LOOKUP_ELEM);
        self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), found);
        self.map_update(map, k, v, BPF_NOEXIST);
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), end);
        // Lost the race to insert: add to the winner's entry.
        self.map_call(map, k, helper::MAP_LOOKUP_ELEM);
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), fail);
        self.asm.bind(found);
        self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, v));
        if percpu {
            self.asm.emit(Insn::ldx(Size::DW, Reg::R2, Reg::R0, 0));
            self.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R1));
            self.asm.emit(Insn::stx(Size::DW, Reg::R0, Reg::R2, 0));
        } else {
            self.asm.emit(Insn::atomic_add(Size::DW, Reg::R0, Reg::R1, 0, false));
        }
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(fail);
        self.count_failure();
        self.asm.bind(end);
    }

    /// Reserves a ring-buffer record, fills it and submits it; a full ring
    /// buffer increments the lost-events counter instead.
    fn emit_record(&mut self, site_id: ir::SiteId, args: &[Expr], span: Option<Span>) {
        let site = self.m.site(site_id);
        let (offsets, size) = site.layout();
        // Integer fields are computed first, into stack slots.
        let mut slots = Vec::new();
        for arg in args {
            // (For a Str field this is the address to read from.)
            if arg.ty != Ty::Comm {
                let r = self.expr(arg, 0);
                let slot = self.slot();
                self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, slot));
                slots.push(Some(slot));
            } else {
                slots.push(None);
            }
        }
        self.asm.span = span;
        let Some(events) = self.m.events else { return };
        let map_name = self.m.map(events).name.clone();
        self.asm.load_addr(Reg::R1, RelocTarget::Map(map_name));
        self.asm.emit(Insn::mov64_imm(Reg::R2, size as i32));
        self.asm.emit(Insn::mov64_imm(Reg::R3, 0));
        self.asm.emit(Insn::call_helper(helper::RINGBUF_RESERVE));
        let got = self.asm.label();
        let end = self.asm.label();
        self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), got);
        if let Some(lost) = self.m.lost_events {
            self.asm.load_addr(Reg::R1, self.global_target(lost));
            self.asm.emit(Insn::mov64_imm(Reg::R2, 1));
            self.asm.emit(Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, false));
        }
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(got);
        self.asm.emit(Insn::mov64_reg(Reg::R9, Reg::R0));
        // (A register store rather than BPF_ST: older disassemblers lack it.)
        self.asm.emit(Insn::mov64_imm(Reg::R1, site_id.0 as i32));
        self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, 0));
        for ((arg, slot), off) in args.iter().zip(&slots).zip(&offsets) {
            let off = *off as i16;
            match (arg.ty, slot) {
                (Ty::Int | Ty::ProbeName | Ty::Stack { .. }, Some(slot)) => {
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, *slot));
                    self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off));
                }
                (Ty::ArgStr { len, .. }, Some(slot)) => {
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, *slot));
                    self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off));
                    let ExprKind::ArgStr { offset } = arg.kind else { continue };
                    // Copied with probe_read: the window may reach past the
                    // record's fixed part (into its dynamic strings), which
                    // direct context loads may not (the kernel refuses to
                    // attach a program whose context reads exceed the event).
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R9));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(off) + 8));
                    self.asm.emit(Insn::mov64_imm(Reg::R2, len as i32));
                    self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R6));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, offset as i32));
                    self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL));
                }
                (Ty::Str, Some(slot)) => {
                    // From user or kernel memory, or from a table value.
                    let user = matches!(arg.kind, ExprKind::ReadStr { user: true, .. });
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R9));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(off)));
                    self.asm.emit(Insn::mov64_imm(Reg::R2, Ty::Str.size() as i32));
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R10, *slot));
                    self.asm.emit(Insn::call_helper(if user { helper::PROBE_READ_USER_STR } else { helper::PROBE_READ_KERNEL_STR }));
                }
                (Ty::Comm, _) => self.comm_into(Reg::R9, off),
                (Ty::Int | Ty::ProbeName | Ty::Stack { .. } | Ty::ArgStr { .. } | Ty::Str, None) => {}
            }
        }
        // Records don't wake the reader, which drains on a short timer: one
        // wake-up per event would cost the traced process microseconds.
        // Only the records that end tracing wake it at once.
        let flags = if site.kind == ir::SiteKind::Exit { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
        self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R9));
        self.asm.emit(Insn::mov64_imm(Reg::R2, flags));
        self.asm.emit(Insn::call_helper(helper::RINGBUF_SUBMIT));
        self.asm.bind(end);
    }

    /// Evaluates an integer expression into `temp(d)` and returns it.
    fn expr(&mut self, e: &Expr, d: usize) -> Reg {
        let dst = temp(d);
        let saved_span = self.asm.span;
        if e.span.is_some() {
            self.asm.span = e.span;
        }
        match &e.kind {
            ExprKind::Const(v) => {
                if let Ok(small) = i32::try_from(*v) {
                    self.asm.emit(Insn::mov64_imm(dst, small));
                } else {
                    self.asm.emit_wide(Insn::ld_imm64(dst, *v as u64));
                }
            }
            ExprKind::Builtin(b) => self.builtin(*b, dst),
            ExprKind::PercpuVar { access, .. } => {
                // r3 = this CPU's anchor: pointers loaded from the task.
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_TASK_BTF));
                let mut base = Reg::R0;
                for &off in &access.chain {
                    let off = match i16::try_from(off) {
                        Ok(off) => off,
                        Err(_) => {
                            self.asm.emit(Insn::alu64_imm(AluOp::Add, base, off as i32));
                            0
                        }
                    };
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R3, base, off));
                    base = Reg::R3;
                }
                // Validated to fit.
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, access.delta as i32));
                // Copied out (the address is past the anchor's type, where
                // direct loads may not go); a failed read leaves zeros.
                let saved = self.frame;
                let slot = self.slot();
                self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(slot)));
                self.asm.emit(Insn::mov64_imm(Reg::R2, i32::from(access.size)));
                self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL));
                let size = match access.size {
                    1 => Size::B,
                    2 => Size::H,
                    4 => Size::W,
                    _ => Size::DW,
                };
                self.asm.emit(Insn::ldx(size, dst, Reg::R10, slot));
                self.frame = saved;
            }
            ExprKind::Fetch(f) => self.fetch(f, dst),
            ExprKind::Global(g) => {
                self.asm.load_addr(Reg::R1, self.global_target(*g));
                self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R1, 0));
            }
            ExprKind::CtxField { offset, size, signed } => {
                let sz = match size {
                    1 => Size::B,
                    2 => Size::H,
                    4 => Size::W,
                    _ => Size::DW,
                };
                if *offset < 8 {
                    // The common header is not directly readable from a
                    // tracepoint context (kernel/trace/bpf_trace.c,
                    // tp_prog_is_valid_access): copy it out instead.
                    let saved = self.frame;
                    let slot = self.slot();
                    self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
                    self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, slot));
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(slot)));
                    self.asm.emit(Insn::mov64_imm(Reg::R2, *size as i32));
                    self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R6));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, *offset as i32));
                    self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL));
                    self.asm.emit(Insn::ldx(sz, dst, Reg::R10, slot));
                    self.frame = saved;
                } else {
                    self.asm.emit(Insn::ldx(sz, dst, Reg::R6, *offset as i16));
                }
                if *signed && *size < 8 {
                    let shift = 64 - 8 * *size as i32;
                    self.asm.emit(Insn::alu64_imm(AluOp::Lsh, dst, shift));
                    self.asm.emit(Insn::alu64_imm(AluOp::Arsh, dst, shift));
                }
            }
            // In expression position argstr yields the event's id; the
            // record copy happens in `emit_record`.
            ExprKind::ProbeName | ExprKind::ArgStr { .. } => match self.probe_name_slot {
                Some(slot) => self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R10, slot)),
                None => {
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R6));
                    self.asm.emit(Insn::call_helper(helper::GET_ATTACH_COOKIE));
                    self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
                }
            },
            ExprKind::Stack { user } => {
                if let Some(stacks) = self.m.stacks {
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R6));
                    self.asm.load_addr(Reg::R2, RelocTarget::Map(self.m.map(stacks).name.clone()));
                    self.asm.emit(Insn::mov64_imm(Reg::R3, if *user { BPF_F_USER_STACK } else { 0 }));
                    self.asm.emit(Insn::call_helper(helper::GET_STACKID));
                    // Keep the id's 32 bits (negative: no stack) ...
                    self.asm.emit(Insn::alu32_reg(AluOp::Mov, dst, Reg::R0));
                    if *user {
                        // ... and the process in the high half.
                        self.asm.emit(Insn::call_helper(helper::GET_CURRENT_PID_TGID));
                        self.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
                        self.asm.emit(Insn::alu64_imm(AluOp::Lsh, Reg::R0, 32));
                        self.asm.emit(Insn::alu64_reg(AluOp::Or, dst, Reg::R0));
                    }
                }
            }
            ExprKind::Local(l) => self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R10, self.locals[l.index()])),
            // In expression position a string read yields its address; the
            // copy happens where the string goes (record, key, compare).
            ExprKind::ReadStr { ptr, .. } => {
                let r = self.expr(ptr, d);
                if r != dst {
                    self.asm.emit(Insn::mov64_reg(dst, r));
                }
            }
            ExprKind::StrEq { value, literal } => {
                let saved = self.frame;
                // The copy evaluates the address at depth 0.
                let at = self.keeping_temps(d, |g| g.string_slot(value));
                let mut padded = literal.clone();
                padded.resize((literal.len() + 1).next_multiple_of(8), 0);
                let differ = self.asm.label();
                let end = self.asm.label();
                for (w, chunk) in padded.chunks(8).enumerate() {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, at + 8 * w as i16));
                    self.asm.emit_wide(Insn::ld_imm64(Reg::R2, word));
                    self.asm.jump(Insn::jmp_reg(JmpOp::Jne, Reg::R1, Reg::R2, 0), differ);
                }
                self.asm.emit(Insn::mov64_imm(dst, 1));
                self.asm.jump(Insn::ja(0), end);
                self.asm.bind(differ);
                self.asm.emit(Insn::mov64_imm(dst, 0));
                self.asm.bind(end);
                self.frame = saved;
            }
            ExprKind::Seq { body, result } => {
                // Statements reuse r7..r9.
                let saved = self.frame;
                let exit = self.exit;
                self.keeping_temps(d, |g| g.stmts(body, exit));
                self.frame = saved;
                self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R10, self.locals[result.index()]));
            }
            ExprKind::MapGet { map, key } | ExprKind::MapHas { map, key } => {
                let has = matches!(e.kind, ExprKind::MapHas { .. });
                let saved = self.frame;
                let k = self.key_slot(key);
                self.map_call(*map, k, helper::MAP_LOOKUP_ELEM);
                let missing = self.asm.label();
                let end = self.asm.label();
                self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), missing);
                if has {
                    self.asm.emit(Insn::mov64_imm(dst, 1));
                } else if e.ty == Ty::Str {
                    // A string value is used where it lies.
                    self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
                } else {
                    self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R0, 0));
                }
                self.asm.jump(Insn::ja(0), end);
                self.asm.bind(missing);
                self.asm.emit(Insn::mov64_imm(dst, 0));
                self.asm.bind(end);
                self.frame = saved;
            }
            ExprKind::Unary { op, operand } => {
                let r = self.expr(operand, d);
                match op {
                    UnOp::Neg => self.asm.emit(Insn::alu64_imm(AluOp::Neg, r, 0)),
                    UnOp::Not => self.bool_from_jump(Insn::jmp_imm(JmpOp::Jeq, r, 0, 0), r),
                }
            }
            ExprKind::Binary { op: op @ (BinOp::And | BinOp::Or), lhs, rhs } => {
                let r = self.expr(lhs, d);
                let short = self.asm.label();
                let end = self.asm.label();
                // And: a false operand decides; Or: a true one does.
                let decide = if *op == BinOp::And { JmpOp::Jeq } else { JmpOp::Jne };
                self.asm.jump(Insn::jmp_imm(decide, r, 0, 0), short);
                let r2 = self.expr(rhs, d);
                self.asm.jump(Insn::jmp_imm(decide, r2, 0, 0), short);
                self.asm.emit(Insn::mov64_imm(dst, i32::from(*op == BinOp::And)));
                self.asm.jump(Insn::ja(0), end);
                self.asm.bind(short);
                self.asm.emit(Insn::mov64_imm(dst, i32::from(*op == BinOp::Or)));
                self.asm.bind(end);
            }
            ExprKind::Binary { op: op @ (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::BitAnd), lhs, rhs }
                if matches!(rhs.kind, ExprKind::Const(v) if i32::try_from(v).is_ok()) =>
            {
                let l = self.expr(lhs, d);
                let imm = match rhs.kind {
                    ExprKind::Const(v) => v as i32,
                    _ => 0,
                };
                let alu = match op {
                    BinOp::Add => AluOp::Add,
                    BinOp::Sub => AluOp::Sub,
                    BinOp::Mul => AluOp::Mul,
                    _ => AluOp::And,
                };
                self.asm.emit(Insn::alu64_imm(alu, l, imm));
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs, d);
                let (l, r) = if d < 2 {
                    (l, self.expr(rhs, d + 1))
                } else {
                    // Out of temporaries: spill the left operand.
                    let slot = self.slot();
                    self.asm.emit(Insn::stx(Size::DW, Reg::R10, l, slot));
                    let r = self.expr(rhs, d);
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, slot));
                    (Reg::R1, r)
                };
                self.binary(*op, l, r);
                if l != dst {
                    self.asm.emit(Insn::mov64_reg(dst, l));
                }
            }
        }
        self.asm.span = saved_span;
        dst
    }

    /// Jumps to `target` when `cond` is false, without materialising
    /// booleans for comparisons, `!`, `&&` and `||`.
    fn branch_unless(&mut self, cond: &Expr, target: Label) {
        let saved_span = self.asm.span;
        if cond.span.is_some() {
            self.asm.span = cond.span;
        }
        match &cond.kind {
            ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                self.branch_unless(lhs, target);
                self.branch_unless(rhs, target);
            }
            ExprKind::Binary { op: BinOp::Or, lhs, rhs } => {
                let take = self.asm.label();
                self.branch_if(lhs, take);
                self.branch_unless(rhs, target);
                self.asm.bind(take);
            }
            ExprKind::Unary { op: UnOp::Not, operand } => self.branch_if(operand, target),
            ExprKind::Binary { op, lhs, rhs } if compare_op(*op).is_some() => {
                let j = compare_op(*op).map_or(JmpOp::Jeq, negate);
                self.compare_jump(j, lhs, rhs, target);
            }
            _ => {
                let r = self.expr(cond, 0);
                self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, r, 0, 0), target);
            }
        }
        self.asm.span = saved_span;
    }

    /// Jumps to `target` when `cond` is true.
    fn branch_if(&mut self, cond: &Expr, target: Label) {
        let saved_span = self.asm.span;
        if cond.span.is_some() {
            self.asm.span = cond.span;
        }
        match &cond.kind {
            ExprKind::Binary { op: BinOp::Or, lhs, rhs } => {
                self.branch_if(lhs, target);
                self.branch_if(rhs, target);
            }
            ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                let skip = self.asm.label();
                self.branch_unless(lhs, skip);
                self.branch_if(rhs, target);
                self.asm.bind(skip);
            }
            ExprKind::Unary { op: UnOp::Not, operand } => self.branch_unless(operand, target),
            ExprKind::Binary { op, lhs, rhs } if compare_op(*op).is_some() => {
                let j = compare_op(*op).unwrap_or(JmpOp::Jne);
                self.compare_jump(j, lhs, rhs, target);
            }
            _ => {
                let r = self.expr(cond, 0);
                self.asm.jump(Insn::jmp_imm(JmpOp::Jne, r, 0, 0), target);
            }
        }
        self.asm.span = saved_span;
    }

    /// `if lhs J rhs goto target`, with an immediate when rhs is a small
    /// constant.
    fn compare_jump(&mut self, j: JmpOp, lhs: &Expr, rhs: &Expr, target: Label) {
        let l = self.expr(lhs, 0);
        if let ExprKind::Const(v) = rhs.kind {
            if let Ok(imm) = i32::try_from(v) {
                self.asm.jump(Insn::jmp_imm(j, l, imm, 0), target);
                return;
            }
        }
        let r = self.expr(rhs, 1);
        self.asm.jump(Insn::jmp_reg(j, l, r, 0), target);
    }

    /// Runs `f` with the enclosing operands (temporaries below depth `d`)
    /// saved to the stack around it, for code that reuses r7..r9.
    fn keeping_temps<T>(&mut self, d: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let live: Vec<(Reg, i16)> = (0..d.min(3)).map(|i| (temp(i), self.slot())).collect();
        for &(r, slot) in &live {
            self.asm.emit(Insn::stx(Size::DW, Reg::R10, r, slot));
        }
        let result = f(self);
        for &(r, slot) in &live {
            self.asm.emit(Insn::ldx(Size::DW, r, Reg::R10, slot));
        }
        result
    }

    fn binary(&mut self, op: BinOp, l: Reg, r: Reg) {
        let alu = |op| Insn::alu64_reg(op, l, r);
        match op {
            BinOp::Add => self.asm.emit(alu(AluOp::Add)),
            BinOp::Sub => self.asm.emit(alu(AluOp::Sub)),
            BinOp::Mul => self.asm.emit(alu(AluOp::Mul)),
            BinOp::BitAnd => self.asm.emit(alu(AluOp::And)),
            BinOp::Div | BinOp::Mod => {
                // Signed division and modulo (BPF ISA v4: off = 1).
                let mut insn = alu(if op == BinOp::Div { AluOp::Div } else { AluOp::Mod });
                insn.off = 1;
                self.asm.emit(insn);
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let j = compare_op(op).unwrap_or(JmpOp::Jeq);
                self.bool_from_jump(Insn::jmp_reg(j, l, r, 0), l);
            }
            // `expr` short-circuits these; with both operands already at
            // hand the result is still well defined.
            BinOp::And | BinOp::Or => {
                let decided = self.asm.label();
                let end = self.asm.label();
                let (on, result) = if op == BinOp::And { (JmpOp::Jeq, 0) } else { (JmpOp::Jne, 1) };
                self.asm.jump(Insn::jmp_imm(on, l, 0, 0), decided);
                self.asm.jump(Insn::jmp_imm(on, r, 0, 0), decided);
                self.asm.emit(Insn::mov64_imm(l, 1 - result));
                self.asm.jump(Insn::ja(0), end);
                self.asm.bind(decided);
                self.asm.emit(Insn::mov64_imm(l, result));
                self.asm.bind(end);
            }
        }
    }

    /// `dst = (jump taken) ? 1 : 0`, where `jump` reads its operands before
    /// `dst` is written.
    fn bool_from_jump(&mut self, jump: Insn, dst: Reg) {
        let yes = self.asm.label();
        let end = self.asm.label();
        self.asm.jump(jump, yes);
        self.asm.emit(Insn::mov64_imm(dst, 0));
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(yes);
        self.asm.emit(Insn::mov64_imm(dst, 1));
        self.asm.bind(end);
    }

    fn builtin(&mut self, b: Builtin, dst: Reg) {
        match b {
            Builtin::Pid => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_PID_TGID));
                self.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
                self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
            }
            Builtin::Tid => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_PID_TGID));
                self.asm.emit(Insn::alu32_reg(AluOp::Mov, dst, Reg::R0));
            }
            Builtin::Uid => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_UID_GID));
                self.asm.emit(Insn::alu32_reg(AluOp::Mov, dst, Reg::R0));
            }
            Builtin::Cpu => {
                self.asm.emit(Insn::call_helper(helper::GET_SMP_PROCESSOR_ID));
                self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
            }
            Builtin::RealtimeNs => {
                self.asm.emit(Insn::call_helper(helper::KTIME_GET_BOOT_NS));
                match self.m.boot_to_real {
                    Some(g) => {
                        self.asm.load_addr(Reg::R1, self.global_target(g));
                        self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R1, 0));
                        self.asm.emit(Insn::alu64_reg(AluOp::Add, dst, Reg::R0));
                    }
                    None => self.asm.emit(Insn::mov64_reg(dst, Reg::R0)),
                }
            }
            Builtin::KtimeNs => {
                self.asm.emit(Insn::call_helper(helper::KTIME_GET_NS));
                self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
            }
            // A string never reaches integer evaluation (validated).
            Builtin::Execname => self.asm.emit(Insn::mov64_imm(dst, 0)),
        }
    }
}

/// The signed conditional jump of a comparison.
fn compare_op(op: BinOp) -> Option<JmpOp> {
    Some(match op {
        BinOp::Eq => JmpOp::Jeq,
        BinOp::Ne => JmpOp::Jne,
        BinOp::Lt => JmpOp::Jslt,
        BinOp::Le => JmpOp::Jsle,
        BinOp::Gt => JmpOp::Jsgt,
        BinOp::Ge => JmpOp::Jsge,
        _ => return None,
    })
}

/// The jump taken exactly when `j` is not.
fn negate(j: JmpOp) -> JmpOp {
    match j {
        JmpOp::Jeq => JmpOp::Jne,
        JmpOp::Jne => JmpOp::Jeq,
        JmpOp::Jslt => JmpOp::Jsge,
        JmpOp::Jsge => JmpOp::Jslt,
        JmpOp::Jsle => JmpOp::Jsgt,
        JmpOp::Jsgt => JmpOp::Jsle,
        JmpOp::Jlt => JmpOp::Jge,
        JmpOp::Jge => JmpOp::Jlt,
        JmpOp::Jle => JmpOp::Jgt,
        JmpOp::Jgt => JmpOp::Jle,
        JmpOp::Jset => JmpOp::Jset,
    }
}
