//! Code generation: the kernel part of the IR to BPF programs in a
//! [`BpfObject`]. Expressions evaluate into the callee-saved registers
//! r7..r9 by nesting depth (deeper operands spill), r6 holds the context
//! pointer, and every instruction keeps the span of the IR node it came
//! from, so a verifier rejection maps back to a source line. Locals,
//! strings and spills live on the stack within a budget and beyond it in
//! the program's per-CPU scratch space (`Loc`); strings move only through
//! `copy_str`. Takes a validated module; fails only on target limits
//! (stack, scratch, jump range, the verifier's walk). No IO.

use super::elf::{BpfObject, CoreReloc, GlobalSection, MapDef, Program, Reloc, RelocTarget};
use super::insn::{AluOp, Insn, JmpOp, Reg, Size};
use crate::span::Span;
use crate::ir::validate::{ModuleInfo, ProbeInfo};
use crate::ir::{self, BinOp, Expr, ExprKind, MapKind, Module, ProbeId, ProgKind, Section, Stmt, StmtKind, Ty, UnOp};
use std::fmt;

mod agg;
mod fetch;
mod load;

/// BPF helper ids (include/uapi/linux/bpf.h).
mod helper {
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    pub const GET_CURRENT_COMM: i32 = 16;
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const GET_ATTACH_COOKIE: i32 = 174;
    pub const PROBE_READ_KERNEL: i32 = 113;
    pub const PROBE_READ_USER: i32 = 112;
    pub const GET_STACKID: i32 = 27;
    pub const PROBE_READ_USER_STR: i32 = 114;
    pub const PROBE_READ_KERNEL_STR: i32 = 115;
    pub const RINGBUF_RESERVE: i32 = 131;
    pub const RINGBUF_SUBMIT: i32 = 132;
    pub const GET_CURRENT_TASK_BTF: i32 = 158;
    pub const SEQ_PRINTF: i32 = 126;
}

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
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
/// The record a program on raw_syscalls rebuilds ([`ir::SYSCALL_RECORD_BYTES`]).
const SYSCALL_RECORD_BYTES: i32 = ir::SYSCALL_RECORD_BYTES as i32;
/// The registers `syscall_record` copies from the syscall's `pt_regs`
/// (r10 at 7 * 8 to di at 14 * 8), and where each argument is among them:
/// x86-64 passes arguments in di, si, dx, r10, r8, r9.
const PT_REGS_ARGS_FROM: i32 = 7 * 8;
const PT_REGS_ARGS_BYTES: i32 = 8 * 8;
const SYSCALL_ARG_REGS: [i16; 6] = [14 - 7, 13 - 7, 12 - 7, 0, 9 - 7, 8 - 7];
/// The BPF stack is 512 bytes (kernel/bpf/verifier.c, MAX_BPF_STACK).
const MAX_STACK: i32 = 512;
/// Locals, strings and record arguments stay on the stack while it holds
/// at most this much; beyond, they go to the program's per-CPU scratch
/// space, leaving the rest of the stack to temporaries.
const STACK_BUDGET: i32 = 256;
/// Number-sized locals stay on the stack up to this much of it.
const SMALL_LOCALS_BUDGET: i32 = 384;
/// The per-CPU scratch value is one per-CPU allocation (the kernel's
/// limit for those is 32 KiB, PCPU_MIN_UNIT_SIZE).
const MAX_SCRATCH: i32 = 32 << 10;
/// Instructions the kernel verifier walks before it gives up
/// (BPF_COMPLEXITY_LIMIT_INSNS); it walks every iteration of a loop.
const VERIFIER_BUDGET: u64 = 1_000_000;
/// The map holding each program's scratch space (key: program index).
const SCRATCH_MAP: &str = "ktap_scratch";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A probe needs more than the 512-byte BPF stack.
    StackLimit { probe: ProbeId },
    /// A jump spans more instructions than a 16-bit offset can reach.
    JumpTooFar { probe: ProbeId },
    /// A probe needs more than the per-CPU scratch space can hold.
    ScratchLimit { probe: ProbeId, bytes: i32 },
    /// Unrolled, the loops at `span` would take the verifier past its
    /// budget of instructions to walk.
    TooComplex { probe: ProbeId, span: Option<Span>, estimate: u64 },
    /// The module's facts lack one its code needs: `compile` was given
    /// facts that `ir::validate` did not return for this module (a bug).
    Unvalidated { probe: ProbeId, fact: &'static str },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StackLimit { probe } => write!(f, "probe {} needs more than {MAX_STACK} bytes of BPF stack", probe.0),
            Error::JumpTooFar { probe } => write!(f, "probe {} is too long: a jump exceeds 32767 instructions", probe.0),
            Error::TooComplex { probe, estimate, .. } => write!(
                f,
                "probe {}'s loops run about {estimate} instructions in all, more than the {VERIFIER_BUDGET} the kernel verifier walks: lower their bounds",
                probe.0
            ),
            Error::ScratchLimit { probe, bytes } => {
                write!(f, "probe {} needs {bytes} bytes of scratch space, more than the {MAX_SCRATCH} a per-CPU value holds", probe.0)
            }
            Error::Unvalidated { probe, fact } => write!(f, "probe {} was not validated: its facts lack the {fact}", probe.0),
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
    pub probe: ProbeId,
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

/// Compiles a module `ir::validate` accepted, given the facts it returned.
pub fn compile(m: &Module, facts: &ModuleInfo) -> Result<Compiled, Error> {
    if facts.probes.len() != m.probes.len() {
        let probe = ProbeId(facts.probes.len().min(m.probes.len()) as u32);
        return Err(Error::Unvalidated { probe, fact: "probe's facts" });
    }
    let formats = seq_formats(m);
    let mut programs = Vec::new();
    let mut infos = Vec::new();
    let mut scratch = 0;
    for (i, probe_facts) in facts.probes.iter().enumerate() {
        let probe = ProbeId(i as u32);
        for &kind in &probe_facts.programs {
            // Kinds whose target is fixed at load get a program per point.
            let points: Vec<Option<usize>> = if kind.shape().per_point {
                m.probe(probe).attach.iter().enumerate().filter(|(_, a)| a.kind() == kind).map(|(i, _)| Some(i)).collect()
            } else {
                vec![None]
            };
            for point in points {
                let index = programs.len() as i32;
                let (program, info, used) = compile_program(m, probe_facts, &formats, probe, kind, point, index)?;
                scratch = scratch.max(used);
                programs.push(program);
                infos.push(info);
            }
        }
    }
    let mut maps: Vec<MapDef> = m
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
    if scratch > 0 {
        maps.push(MapDef {
            name: SCRATCH_MAP.into(),
            map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: scratch as u32,
            max_entries: programs.len() as u32,
            flags: 0,
        });
    }
    let mut globals: Vec<super::elf::Global> = m
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
    for (i, format) in formats.iter().enumerate() {
        let mut init = format.clone();
        init.push(0);
        init.resize(init.len().next_multiple_of(8), 0);
        globals.push(super::elf::Global { name: seq_format_name(i), section: GlobalSection::Rodata, size: init.len() as u32, init });
    }
    Ok(Compiled {
        object: BpfObject { license: "GPL".into(), programs, maps, globals, digest: None },
        programs: infos,
        globals: global_layout(m),
    })
}

/// One program: the probe's body behind the prologue its kind needs.
/// Compiles one program of a probe; also returns the scratch bytes it
/// uses. A program that needs scratch space is compiled twice: the first
/// pass decides the layout, the second knows where the scratch pointer
/// lives and fetches it first.
/// `point`: the one attach point of a per-point program.
fn compile_program(m: &Module, facts: &ProbeInfo, formats: &[Vec<u8>], probe: ProbeId, kind: ProgKind, point: Option<usize>, index: i32) -> Result<(Program, ProgramInfo, i32), Error> {
    let first = generate(m, facts, formats, probe, kind, point, index, None);
    if first.max_scratch == 0 {
        return finish_program(m, probe, kind, point, first);
    }
    let base = -(first.max_frame + 8);
    let second = generate(m, facts, formats, probe, kind, point, index, Some(base.max(-MAX_STACK) as i16));
    finish_program(m, probe, kind, point, second)
}

fn finish_program(m: &Module, probe: ProbeId, kind: ProgKind, point: Option<usize>, mut g: Gen) -> Result<(Program, ProgramInfo, i32), Error> {
    if let Some(fact) = g.missing {
        return Err(Error::Unvalidated { probe, fact });
    }
    let base = i32::from(g.scratch_base.is_some()) * 8;
    if g.max_frame + base > MAX_STACK {
        return Err(Error::StackLimit { probe });
    }
    if g.max_scratch > MAX_SCRATCH {
        return Err(Error::ScratchLimit { probe, bytes: g.max_scratch });
    }
    let estimate = (g.asm.insns.len() as u64).saturating_add(g.extra_walk);
    if estimate > VERIFIER_BUDGET {
        return Err(Error::TooComplex { probe, span: g.costliest.1, estimate });
    }
    let scratch = g.max_scratch;
    let (name, section, attach) = match point.and_then(|i| Some((i, m.probe(probe).attach.get(i)?))) {
        Some((i, at)) => {
            let (name, section) = kind.point_program(probe, i, at);
            (name, section, vec![i])
        }
        None => {
            let attach = m.probe(probe).attach.iter().enumerate().filter(|(_, a)| a.kind() == kind).map(|(i, _)| i).collect();
            (kind.program_name(probe), kind.shape().section.to_string(), attach)
        }
    };
    let core = std::mem::take(&mut g.asm.core);
    let (insns, spans, relocs) = g.asm.finish().ok_or(Error::JumpTooFar { probe })?;
    Ok((
        Program { name: name.clone(), section, insns, relocs, core },
        ProgramInfo { name, probe, kind, attach, spans },
        scratch,
    ))
}

/// One pass of code generation over a probe body. `scratch_base` is the
/// stack slot that holds the scratch pointer, when the program has one.
#[expect(clippy::too_many_arguments, reason = "one pass's inputs, passed through from compile_program")]
fn generate<'a>(m: &'a Module, facts: &'a ProbeInfo, formats: &'a [Vec<u8>], probe: ProbeId, kind: ProgKind, point: Option<usize>, index: i32, scratch_base: Option<i16>) -> Gen<'a> {
    let body = &m.probe(probe).body;
    let mut g = Gen {
        m,
        facts,
        formats,
        missing: None,
        asm: Asm::default(),
        frame: 0,
        max_frame: 0,
        scratch: 0,
        max_scratch: 0,
        scratch_base,
        loop_costs: Vec::new(),
        extra_walk: 0,
        costliest: (0, None),
        probe_name_slot: None,
        record: None,
        point_name: point.map(|i| m.probe_name_id(probe, i)),
        locals: Vec::new(),
        local_tys: &m.probe(probe).locals,
        loops: Vec::new(),
        blocks: std::collections::HashMap::new(),
        exit: Label(0),
        in_expr: 0,
    };
    let exit = g.asm.label();
    g.exit = exit;
    g.asm.emit(Insn::mov64_reg(Reg::R6, Reg::R1));
    if let Some(base) = scratch_base {
        // The program's own scratch value: programs that interrupt each
        // other on a CPU never share one.
        g.asm.emit(Insn::mov64_imm(Reg::R1, index));
        g.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, base));
        g.asm.load_addr(Reg::R1, RelocTarget::Map(SCRATCH_MAP.into()));
        g.asm.emit(Insn::mov64_reg(Reg::R2, Reg::R10));
        g.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R2, i32::from(base)));
        g.asm.emit(Insn::call_helper(helper::MAP_LOOKUP_ELEM));
        g.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), exit);
        g.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R0, base));
    }
    // Locals live in fixed places; those on the stack are zeroed so the
    // verifier sees them written. Loop counters go first and always on the
    // stack (the verifier follows a bound only through the stack): one
    // slot per loop depth, shared by the loops at that depth (they never
    // run at the same time). Then numbers, then strings.
    let tys = &m.probe(probe).locals;
    let counters: Vec<(usize, usize)> = facts.loop_counters.iter().map(|&(l, depth)| (l.index(), depth)).collect();
    g.locals = vec![Loc::Stack(0); tys.len()];
    let depths = counters.iter().map(|&(_, depth)| depth + 1).max().unwrap_or(0);
    let depth_slots: Vec<i16> = (0..depths).map(|_| g.slot()).collect();
    for &(local, depth) in &counters {
        g.locals[local] = Loc::Stack(depth_slots[depth]);
    }
    let mut order: Vec<usize> = (0..tys.len()).filter(|i| !counters.iter().any(|&(c, _)| c == *i)).collect();
    order.sort_by_key(|&i| tys[i].is_string());
    for i in order {
        let bytes = tys[i].size().next_multiple_of(8) as i32;
        g.locals[i] = if bytes == 8 && g.frame + bytes <= SMALL_LOCALS_BUDGET { Loc::Stack(g.slot()) } else { g.alloc(bytes) };
    }
    let mut zero: Vec<(i16, u32)> = g
        .locals
        .iter()
        .zip(&m.probe(probe).locals)
        .filter_map(|(loc, ty)| match loc {
            // Strings are always written whole before they are read.
            Loc::Stack(at) if !ty.is_string() => Some((*at, ty.size().div_ceil(8))),
            _ => None,
        })
        .collect();
    zero.sort_by_key(|&(at, _)| std::cmp::Reverse(at));
    zero.dedup();
    if !zero.is_empty() {
        g.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        for (at, words) in zero {
            for w in 0..words as i16 {
                g.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, at + 8 * w));
            }
        }
    }
    if let ir::Context::RawSyscalls { exit: leaving } = kind.shape().context {
        if let (Some(nr), true) = (g.syscall_prologue(kind, leaving, exit), g.facts.reads_record) {
            g.syscall_record(leaving, nr, exit);
        }
    }
    g.stmts(body, exit);
    g.asm.bind(exit);
    g.asm.emit(Insn::mov64_imm(Reg::R0, 0));
    g.asm.emit(Insn::exit());
    g
}

/// The `.rodata` global holding seq_file format number `i`.
fn seq_format_name(i: usize) -> String {
    format!("ktap_fmt{i}")
}

/// Every distinct seq_file format of the module, in the order probes
/// hold them.
fn seq_formats(m: &Module) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for p in &m.probes {
        ir::each_stmt(&p.body, &mut |s| {
            if let StmtKind::SeqPrint { format, .. } = &s.kind {
                if !out.contains(format) {
                    out.push(format.clone());
                }
            }
        });
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

/// A loop being generated: where its code starts, and what loops nested
/// in it emitted and cost.
struct LoopCost {
    start: usize,
    nested_emitted: u64,
    nested_walk: u64,
}

/// Whether a load is the task name's two direct loads (no CO-RE record).
fn is_task_comm(path: &ir::Path) -> bool {
    path.base == ir::PathBase::CurrentTask && path.derefs.is_empty() && path.core.is_empty() && path.size == 16
}

/// Whether a load is a per-CPU variable's walk (`ir::PercpuAccess`):
/// pointers from the task, then a copy from past the anchor's type.
fn is_percpu_walk(path: &ir::Path) -> bool {
    path.base == ir::PathBase::CurrentTask && path.via == ir::Via::ProbeRead && path.core.is_empty()
}

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
    /// CO-RE field records on the instructions holding their offsets.
    core: Vec<CoreReloc>,
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
    /// What validation learned about this probe.
    facts: &'a ProbeInfo,
    /// The module's seq_file formats, each a `.rodata` global
    /// ([`seq_format_name`]).
    formats: &'a [Vec<u8>],
    /// A fact the code needed and `facts` lacked (never, once validated).
    missing: Option<&'static str>,
    asm: Asm,
    /// Bytes of stack in use below r10, and the most ever used.
    frame: i32,
    max_frame: i32,
    /// Bytes of scratch space in use, and the most ever used.
    scratch: i32,
    max_scratch: i32,
    /// The stack slot holding the scratch pointer (second pass only).
    scratch_base: Option<i16>,
    /// Loops being generated, innermost last, for the verifier's walk.
    loop_costs: Vec<LoopCost>,
    /// What the verifier walks beyond the program's length: the extra
    /// iterations of outermost loops, and the costliest loop's span.
    extra_walk: u64,
    costliest: (u64, Option<Span>),
    /// Where the syscall prologue left the probename id.
    probe_name_slot: Option<i16>,
    /// Where the syscall prologue rebuilt the classic record (the body
    /// reads its fields), which `CtxField` and `argstr` then read.
    record: Option<i16>,
    /// A per-point program's probename id.
    point_name: Option<u64>,
    /// Where each local lives, and its type.
    locals: Vec<Loc>,
    local_tys: &'a [Ty],
    /// End labels of the loops around the current statement.
    loops: Vec<Label>,
    /// End labels of the blocks `Leave` may exit.
    blocks: std::collections::HashMap<ir::BlockId, Label>,
    /// The program's epilogue.
    exit: Label,
    /// How many expressions (inlined calls' values) the current statement
    /// runs inside: a `Return` there leaves through a jump the verifier's
    /// check of the control flow sees fall through (never taken: r10 is
    /// never 0), as the rest of the expression follows it.
    in_expr: u32,
}

/// Result register for an expression at nesting depth `d`.
fn temp(d: usize) -> Reg {
    [Reg::R7, Reg::R8, Reg::R9][d.min(2)]
}

/// Where a value lives: a stack offset, or an offset into the program's
/// per-CPU scratch space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Stack(i16),
    Scratch(i16),
}

impl Loc {
    fn at(self, off: i16) -> Loc {
        match self {
            Loc::Stack(a) => Loc::Stack(a + off),
            Loc::Scratch(a) => Loc::Scratch(a + off),
        }
    }
}

/// Where a string is copied to.
#[derive(Clone, Copy, Debug)]
enum Dst {
    Loc(Loc),
    /// Into the ring-buffer record r9 points at.
    Record(i16),
    Global(ir::GlobalId),
}

impl Gen<'_> {
    fn slot(&mut self) -> i16 {
        self.frame += 8;
        self.max_frame = self.max_frame.max(self.frame);
        // Offsets beyond the limit are reported by `compile`; clamp so the
        // instruction stays encodable until then.
        -(self.frame.min(MAX_STACK) as i16)
    }

    /// A word for a spilled temporary: on the stack while it has room
    /// (leaving a word for the scratch pointer), else in scratch space.
    /// Nested calls and deep expressions may spill without bound.
    fn spill_slot(&mut self) -> Loc {
        if self.frame + 16 <= MAX_STACK {
            Loc::Stack(self.slot())
        } else {
            self.alloc(8)
        }
    }

    /// `bytes` (a multiple of 8) for a local, a string or a record
    /// argument: on the stack within its budget, else in scratch space.
    fn alloc(&mut self, bytes: i32) -> Loc {
        if self.frame + bytes <= STACK_BUDGET {
            self.frame += bytes;
            self.max_frame = self.max_frame.max(self.frame);
            return Loc::Stack(-(self.frame as i16));
        }
        let at = self.scratch;
        self.scratch += bytes;
        self.max_scratch = self.max_scratch.max(self.scratch);
        // Beyond the limit (reported by `compile`) any offset will do, as
        // long as offsets within the allocation stay encodable.
        Loc::Scratch(if self.scratch > MAX_SCRATCH { 0 } else { at as i16 })
    }

    /// What `release` returns to: the stack and scratch in use now.
    fn mark(&self) -> (i32, i32) {
        (self.frame, self.scratch)
    }

    fn release(&mut self, mark: (i32, i32)) {
        (self.frame, self.scratch) = mark;
    }

    /// Notes a fact the code needed that validation did not give; the
    /// program then fails as unvalidated.
    fn lacks(&mut self, fact: &'static str) {
        self.missing.get_or_insert(fact);
    }

    /// `dst = scratch pointer` (from its stack slot).
    fn scratch_ptr(&mut self, dst: Reg) {
        // The first pass only measures: any offset will do there.
        let base = self.scratch_base.unwrap_or(-8);
        self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R10, base));
    }

    /// `dst = &loc`.
    fn addr(&mut self, dst: Reg, loc: Loc) {
        match loc {
            Loc::Stack(at) => {
                self.asm.emit(Insn::mov64_reg(dst, Reg::R10));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, dst, i32::from(at)));
            }
            Loc::Scratch(at) => {
                self.scratch_ptr(dst);
                if at != 0 {
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, dst, i32::from(at)));
                }
            }
        }
    }

    /// `dst = *(size *)loc`.
    fn load(&mut self, size: Size, dst: Reg, loc: Loc) {
        match loc {
            Loc::Stack(at) => self.asm.emit(Insn::ldx(size, dst, Reg::R10, at)),
            Loc::Scratch(at) => {
                self.scratch_ptr(dst);
                self.asm.emit(Insn::ldx(size, dst, dst, at));
            }
        }
    }

    /// `*(size *)loc = src` (may use r1 or r2 for the address).
    fn store(&mut self, size: Size, loc: Loc, src: Reg) {
        match loc {
            Loc::Stack(at) => self.asm.emit(Insn::stx(size, Reg::R10, src, at)),
            Loc::Scratch(at) => {
                let base = if src == Reg::R1 { Reg::R2 } else { Reg::R1 };
                self.scratch_ptr(base);
                self.asm.emit(Insn::stx(size, base, src, at));
            }
        }
    }

    /// For programs riding raw_syscalls: find the syscall number, look it up
    /// in the probe's filter map, leave unless traced, and keep the
    /// probename id in a stack slot. Returns the slot holding the syscall
    /// number (a word).
    fn syscall_prologue(&mut self, kind: ProgKind, leaving: bool, exit: Label) -> Option<i16> {
        let Some(map) = self.facts.syscall_filter(kind) else {
            self.lacks("syscall filter map");
            return None;
        };
        let map_name = self.m.map(map).name.clone();
        let nr_slot = self.slot();
        if !leaving {
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
        let entries = self.m.map(map).max_entries as i32;
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
        Some(nr_slot)
    }

    /// For programs riding raw_syscalls whose body reads event fields:
    /// rebuilds the classic tracepoint's record on the stack, laid out as
    /// its format says: `__syscall_nr` at 8, then the six argument
    /// registers (one read of the task's `pt_regs`) or, leaving, `ret`.
    fn syscall_record(&mut self, leaving: bool, nr: i16, exit: Label) {
        self.frame += SYSCALL_RECORD_BYTES;
        self.max_frame = self.max_frame.max(self.frame);
        let rec = -(self.frame.min(MAX_STACK) as i16);
        self.record = Some(rec);
        // The header, the number's word, and what no argument fills.
        self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        for w in 0..(SYSCALL_RECORD_BYTES / 8) as i16 {
            if w < 2 || (leaving && w > 2) {
                self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, rec + 8 * w));
            }
        }
        self.asm.emit(Insn::ldx(Size::W, Reg::R1, Reg::R10, nr));
        self.asm.emit(Insn::stx(Size::W, Reg::R10, Reg::R1, rec + 8));
        if leaving {
            // raw_syscalls:sys_exit(struct pt_regs *regs, long ret)
            self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R6, 8));
            self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, rec + 16));
            return;
        }
        let saved = self.mark();
        self.frame += PT_REGS_ARGS_BYTES;
        self.max_frame = self.max_frame.max(self.frame);
        let regs = -(self.frame.min(MAX_STACK) as i16);
        self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R10));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(regs)));
        self.asm.emit(Insn::mov64_imm(Reg::R2, PT_REGS_ARGS_BYTES));
        self.asm.emit(Insn::ldx(Size::DW, Reg::R3, Reg::R6, 0));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, PT_REGS_ARGS_FROM));
        self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL));
        self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), exit);
        for (i, reg) in SYSCALL_ARG_REGS.iter().enumerate() {
            self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, regs + 8 * reg));
            self.asm.emit(Insn::stx(Size::DW, Reg::R10, Reg::R1, rec + 16 + 8 * i as i16));
        }
        self.release(saved);
    }

    fn global_target(&self, g: ir::GlobalId) -> RelocTarget {
        RelocTarget::Global(self.m.global(g).name.clone())
    }

    fn stmts(&mut self, stmts: &[Stmt], exit: Label) {
        for s in stmts {
            let saved = self.mark();
            self.stmt(s, exit);
            self.release(saved);
            // What follows would be unreachable, which the verifier
            // refuses (lowering drops it with a warning already).
            if s.diverges() {
                break;
            }
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
                    if !ir::diverges(then) {
                        self.asm.jump(Insn::ja(0), end);
                    }
                    self.asm.bind(els);
                    self.stmts(otherwise, exit);
                }
                self.asm.bind(end);
            }
            StmtKind::GlobalStore { global, value } if value.ty.is_string() => {
                let size = self.m.global(*global).ty.size();
                self.copy_str(value, Dst::Global(*global), size);
            }
            StmtKind::GlobalStore { global, value } => {
                let r = self.expr(value, 0);
                self.asm.span = s.span;
                self.asm.load_addr(Reg::R1, self.global_target(*global));
                self.asm.emit(Insn::stx(Size::DW, Reg::R1, r, 0));
            }
            StmtKind::Return if self.in_expr > 0 => self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R10, 0, 0), exit),
            StmtKind::Return => self.asm.jump(Insn::ja(0), exit),
            StmtKind::Emit { site, args } => self.emit_record(*site, args, s.span),
            StmtKind::SeqPrint { format, args } => self.seq_print(format, args, s.span),
            StmtKind::AggUpdate { to, kind, value } => self.agg_update(to, *kind, value, s.span),
            StmtKind::MapStore { map, key, value } => {
                let k = self.key_loc(*map, key);
                let v = if value.ty.is_string() {
                    self.string_loc(value, self.m.map(*map).value_size)
                } else {
                    let r = self.expr(value, 0);
                    let v = self.alloc(8);
                    self.store(Size::DW, v, r);
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
                let k = self.key_loc(*map, key);
                self.asm.span = s.span;
                self.map_call(*map, k, helper::MAP_DELETE_ELEM);
            }
            StmtKind::LocalSet { local, value } => {
                let loc = self.locals[local.index()];
                if value.ty.is_string() {
                    let size = self.local_size(*local);
                    self.copy_str(value, Dst::Loc(loc), size);
                } else {
                    let r = self.expr(value, 0);
                    self.asm.span = s.span;
                    self.store(Size::DW, loc, r);
                }
            }
            StmtKind::Loop { cond, body, step, max_iterations } => {
                self.loop_costs.push(LoopCost { start: self.asm.insns.len(), nested_emitted: 0, nested_walk: 0 });
                let top = self.asm.label();
                let end = self.asm.label();
                self.asm.bind(top);
                self.branch_unless(cond, end);
                self.loops.push(end);
                self.stmts(body, exit);
                self.loops.pop();
                // A body that always leaves never reaches the step.
                if !ir::diverges(body) {
                    self.stmts(step, exit);
                    self.asm.span = s.span;
                    self.asm.jump(Insn::ja(0), top);
                }
                self.asm.bind(end);
                self.count_loop(*max_iterations, s.span);
            }
            StmtKind::Break => match self.loops.last() {
                Some(&end) => self.asm.jump(Insn::ja(0), end),
                None => self.lacks("loop around a break"),
            },
            StmtKind::Block { id, body } => {
                let end = self.asm.label();
                self.blocks.insert(*id, end);
                // `break` inside an inlined function never leaves it.
                let loops = std::mem::take(&mut self.loops);
                self.stmts(body, exit);
                self.loops = loops;
                self.asm.bind(end);
            }
            StmtKind::Leave(id) => match self.blocks.get(id) {
                Some(&end) => self.asm.jump(Insn::ja(0), end),
                None => self.lacks("block a leave exits"),
            },
        }
    }

    /// Adds a finished loop to the estimate of what the verifier walks:
    /// each iteration's own code plus what nested loops walk, times the
    /// trips (and the final check).
    fn count_loop(&mut self, trips: u32, span: Option<Span>) {
        let Some(cost) = self.loop_costs.pop() else { return };
        let emitted = (self.asm.insns.len() - cost.start) as u64;
        let per_trip = emitted.saturating_sub(cost.nested_emitted).saturating_add(cost.nested_walk);
        let walk = per_trip.saturating_mul(u64::from(trips) + 1);
        if walk > self.costliest.0 {
            self.costliest = (walk, span);
        }
        match self.loop_costs.last_mut() {
            Some(outer) => {
                outer.nested_emitted += emitted;
                outer.nested_walk = outer.nested_walk.saturating_add(walk);
            }
            None => self.extra_walk = self.extra_walk.saturating_add(walk.saturating_sub(emitted)),
        }
    }

    fn map_target(&self, map: ir::MapId) -> RelocTarget {
        RelocTarget::Map(self.m.map(map).name.clone())
    }

    /// The bytes a local holds.
    fn local_size(&self, l: ir::LocalId) -> u32 {
        self.local_tys.get(l.index()).map_or(8, |t| t.size())
    }

    /// Copies a string value into `size` fresh bytes (stack or scratch),
    /// zero padded: the bytes after the NUL are part of a key or a value.
    fn string_loc(&mut self, value: &Expr, size: u32) -> Loc {
        let at = self.alloc(size.next_multiple_of(8) as i32);
        self.copy_str(value, Dst::Loc(at), size);
        at
    }

    /// `dst = &destination + off`.
    fn dst_addr(&mut self, dst: Reg, to: Dst, off: i16) {
        match to {
            Dst::Loc(loc) => self.addr(dst, loc.at(off)),
            Dst::Record(at) => {
                self.asm.emit(Insn::mov64_reg(dst, Reg::R9));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, dst, i32::from(at + off)));
            }
            Dst::Global(g) => {
                self.asm.load_addr(dst, self.global_target(g));
                if off != 0 {
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, dst, i32::from(off)));
                }
            }
        }
    }

    /// A base register and offset that address the destination, for
    /// stores with no call in between (uses r2 when it must).
    fn dst_base(&mut self, to: Dst) -> (Reg, i16) {
        match to {
            Dst::Loc(Loc::Stack(at)) => (Reg::R10, at),
            Dst::Record(at) => (Reg::R9, at),
            Dst::Loc(Loc::Scratch(at)) => {
                self.scratch_ptr(Reg::R2);
                (Reg::R2, at)
            }
            Dst::Global(_) => {
                self.dst_addr(Reg::R2, to, 0);
                (Reg::R2, 0)
            }
        }
    }

    /// Writes the current task's 16-byte command name at `to`. Where the
    /// module knows the kernel's `task_struct.comm`, two 8-byte loads from
    /// the task (`bpf_get_current_task_btf` gives a pointer the verifier
    /// lets us read through) replace `bpf_get_current_comm`, which copies
    /// with strscpy_pad; the kernel keeps comm NUL-padded itself
    /// (`__set_task_comm`), so the bytes are the same.
    fn comm_into(&mut self, to: Dst, direct: Option<i16>) {
        match direct {
            Some(comm) => {
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_TASK_BTF));
                // (The destination's base uses r2 at most: r0 survives.)
                let (base, at) = self.dst_base(to);
                for w in [0, 8] {
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R0, comm + w));
                    self.asm.emit(Insn::stx(Size::DW, base, Reg::R1, at + w));
                }
            }
            None => {
                // strscpy_pad fills all 16 bytes.
                self.dst_addr(Reg::R1, to, 0);
                self.asm.emit(Insn::mov64_imm(Reg::R2, Ty::Comm.size() as i32));
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_COMM));
            }
        }
    }

    /// Zeroes words `from..words` of the destination.
    fn zero_words(&mut self, to: Dst, from: u32, words: u32) {
        if from >= words {
            return;
        }
        let (base, at) = self.dst_base(to);
        self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        for w in from..words {
            self.asm.emit(Insn::stx(Size::DW, base, Reg::R1, at + 8 * w as i16));
        }
    }

    /// Writes the string `value` into `size` bytes at `to`, zero padded,
    /// with its NUL inside: from the task, from memory through a helper,
    /// from a literal, or word by word from a local, a global or a table
    /// value (an empty string when the key is missing).
    fn copy_str(&mut self, value: &Expr, to: Dst, size: u32) {
        let words = size.div_ceil(8);
        self.asm.span = value.span.or(self.asm.span);
        match &value.kind {
            ExprKind::Load(path) if value.ty == Ty::Comm && is_task_comm(path) => {
                // Validated: a direct read at a 16-bit offset.
                self.comm_into(to, i16::try_from(path.offset).ok());
                self.zero_words(to, Ty::Comm.size() / 8, words);
            }
            ExprKind::Load(path) => {
                // A string at an address along a path (0 past a NULL: the
                // read fails and leaves zeros).
                let p = temp(0);
                let at = ir::Path { size: 0, ..path.clone() };
                self.typed_load(&at, p);
                self.zero_words(to, 0, words);
                self.asm.emit(Insn::mov64_reg(Reg::R3, p));
                self.dst_addr(Reg::R1, to, 0);
                let len = u32::from(path.size).min(value.ty.size()).min(size).max(1);
                self.asm.emit(Insn::mov64_imm(Reg::R2, len as i32));
                let user = path.via == ir::Via::ProbeReadUser;
                self.asm.emit(Insn::call_helper(if user { helper::PROBE_READ_USER_STR } else { helper::PROBE_READ_KERNEL_STR }));
            }
            ExprKind::Helper { .. } if value.ty == Ty::Comm => {
                self.comm_into(to, None);
                self.zero_words(to, Ty::Comm.size() / 8, words);
            }
            ExprKind::ReadStr { ptr, user } => {
                let p = self.expr(ptr, 0);
                self.zero_words(to, 0, words);
                self.asm.emit(Insn::mov64_reg(Reg::R3, p));
                self.dst_addr(Reg::R1, to, 0);
                self.asm.emit(Insn::mov64_imm(Reg::R2, value.ty.size().min(size) as i32));
                self.asm.emit(Insn::call_helper(if *user { helper::PROBE_READ_USER_STR } else { helper::PROBE_READ_KERNEL_STR }));
            }
            ExprKind::StrConst(bytes) => {
                let mut padded = bytes.clone();
                padded.truncate(size as usize - 1);
                padded.resize(words as usize * 8, 0);
                let (base, at) = self.dst_base(to);
                for (w, chunk) in padded.chunks(8).enumerate() {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    match i32::try_from(word as i64) {
                        Ok(small) => self.asm.emit(Insn::mov64_imm(Reg::R1, small)),
                        Err(_) => self.asm.emit_wide(Insn::ld_imm64(Reg::R1, word)),
                    }
                    self.asm.emit(Insn::stx(Size::DW, base, Reg::R1, at + 8 * w as i16));
                }
            }
            _ => {
                // Memory of a known size: a local, a global, a table value.
                let src_words = value.ty.size().div_ceil(8);
                let (src, src_at) = match &value.kind {
                    ExprKind::Local(l) => match self.locals[l.index()] {
                        Loc::Stack(at) => (Reg::R10, at),
                        Loc::Scratch(at) => {
                            self.scratch_ptr(Reg::R3);
                            (Reg::R3, at)
                        }
                    },
                    ExprKind::Global(g) => {
                        self.asm.load_addr(Reg::R3, self.global_target(*g));
                        (Reg::R3, 0)
                    }
                    // A table value: its address, 0 when the key is missing.
                    _ => (self.expr(value, 0), 0),
                };
                let missing = self.asm.label();
                let end = self.asm.label();
                let may_miss = !matches!(value.kind, ExprKind::Local(_) | ExprKind::Global(_));
                if may_miss {
                    self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, src, 0, 0), missing);
                }
                let (base, at) = self.dst_base(to);
                for w in 0..src_words.min(words) as i16 {
                    self.asm.emit(Insn::ldx(Size::DW, Reg::R1, src, src_at + 8 * w));
                    self.asm.emit(Insn::stx(Size::DW, base, Reg::R1, at + 8 * w));
                }
                if size < value.ty.size() {
                    // Cut short: the last byte is the NUL.
                    self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
                    self.asm.emit(Insn::stx(Size::B, base, Reg::R1, at + size as i16 - 1));
                }
                self.zero_words(to, src_words, words);
                if may_miss {
                    self.asm.jump(Insn::ja(0), end);
                    self.asm.bind(missing);
                    self.zero_words(to, 0, words);
                    self.asm.bind(end);
                }
            }
        }
    }

    /// `lhs .. rhs` into fresh memory: a `Str`, cut to its 63 bytes. The
    /// first string is read in with its length, the second read in after
    /// it; the buffer has room for a whole second string at any length of
    /// the first, so the verifier can check the read without relating the
    /// offset to the size.
    fn concat_loc(&mut self, lhs: &Expr, rhs: &Expr) -> Loc {
        let len = Ty::Str.size();
        let a = self.string_loc(lhs, len);
        let b = self.string_loc(rhs, len);
        let buf = self.alloc(2 * len as i32);
        self.zero_words(Dst::Loc(buf), 0, 2 * len / 8);
        self.addr(Reg::R1, buf);
        self.asm.emit(Insn::mov64_imm(Reg::R2, len as i32));
        self.addr(Reg::R3, a);
        self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL_STR));
        // r0 = bytes read with the NUL (negative on failure): the second
        // string starts on that NUL, at offset r0 - 1 in [0, len - 1].
        self.asm.emit(Insn::jmp_imm(JmpOp::Jsgt, Reg::R0, 0, 1));
        self.asm.emit(Insn::mov64_imm(Reg::R0, 1));
        self.asm.emit(Insn::alu64_imm(AluOp::Sub, Reg::R0, 1));
        self.asm.emit(Insn::alu64_imm(AluOp::And, Reg::R0, len as i32 - 1));
        self.addr(Reg::R1, buf);
        self.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R1, Reg::R0));
        self.asm.emit(Insn::mov64_imm(Reg::R2, len as i32));
        self.addr(Reg::R3, b);
        self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL_STR));
        // Cut to the string's size: its last byte is the NUL.
        self.asm.emit(Insn::mov64_imm(Reg::R1, 0));
        self.store(Size::B, buf.at(len as i16 - 1), Reg::R1);
        buf
    }

    /// A number's decimal text into fresh memory (a `Str`), in straight
    /// code the verifier walks once: the 20 digits of its magnitude
    /// (unsigned division, so -2^63 too) right-aligned in a zeroed area,
    /// counted without branches (`(t | -t) >> 63` is 1 for t != 0), then
    /// the significant ones copied to the front behind a '-' when negative.
    fn int_text_loc(&mut self, value: &Expr) -> Loc {
        const DIGITS: i16 = 20;
        let len = Ty::Str.size() as i16;
        let r = self.expr(value, 0);
        self.asm.emit(Insn::mov64_reg(Reg::R3, r));
        // The text, then the digits area and its NUL.
        let buf = self.alloc(i32::from(len) + 24);
        self.zero_words(Dst::Loc(buf), 0, (len as u32 + 24) / 8);
        self.addr(Reg::R5, buf);
        // r4: negative; r3: the magnitude.
        self.asm.emit(Insn::mov64_imm(Reg::R4, 0));
        let positive = self.asm.label();
        self.asm.jump(Insn::jmp_imm(JmpOp::Jsge, Reg::R3, 0, 0), positive);
        self.asm.emit(Insn::alu64_imm(AluOp::Neg, Reg::R3, 0));
        self.asm.emit(Insn::mov64_imm(Reg::R4, 1));
        self.asm.bind(positive);
        // r2: how many digits (at least one).
        self.asm.emit(Insn::mov64_imm(Reg::R2, 1));
        for k in 0..DIGITS {
            self.asm.emit(Insn::mov64_reg(Reg::R0, Reg::R3));
            self.asm.emit(Insn::alu64_imm(AluOp::Mod, Reg::R0, 10));
            self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R0, i32::from(b'0')));
            self.asm.emit(Insn::stx(Size::B, Reg::R5, Reg::R0, len + DIGITS - 1 - k));
            self.asm.emit(Insn::alu64_imm(AluOp::Div, Reg::R3, 10));
            if k < DIGITS - 1 {
                self.asm.emit(Insn::mov64_reg(Reg::R0, Reg::R3));
                self.asm.emit(Insn::alu64_imm(AluOp::Neg, Reg::R0, 0));
                self.asm.emit(Insn::alu64_reg(AluOp::Or, Reg::R0, Reg::R3));
                self.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 63));
                self.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R2, Reg::R0));
            }
        }
        // r3: the first significant digit.
        // (The verifier takes a variable offset added, not subtracted.)
        self.asm.emit(Insn::mov64_imm(Reg::R0, i32::from(len + DIGITS)));
        self.asm.emit(Insn::alu64_reg(AluOp::Sub, Reg::R0, Reg::R2));
        self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R5));
        self.asm.emit(Insn::alu64_reg(AluOp::Add, Reg::R3, Reg::R0));
        self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R5));
        let unsigned = self.asm.label();
        self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R4, 0, 0), unsigned);
        self.asm.emit(Insn::mov64_imm(Reg::R0, i32::from(b'-')));
        self.asm.emit(Insn::stx(Size::B, Reg::R5, Reg::R0, 0));
        self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, 1));
        self.asm.bind(unsigned);
        self.asm.emit(Insn::mov64_imm(Reg::R2, i32::from(DIGITS) + 1));
        self.asm.emit(Insn::call_helper(helper::PROBE_READ_KERNEL_STR));
        buf
    }

    /// Evaluates a key into fresh memory laid out as the map's keys.
    fn key_loc(&mut self, map: ir::MapId, key: &Expr) -> Loc {
        if key.ty.is_string() {
            return self.string_loc(key, self.m.map(map).key_size);
        }
        let r = self.expr(key, 0);
        let at = self.alloc(8);
        self.store(Size::DW, at, r);
        at
    }

    /// `r0 = helper(map, &key)`.
    fn map_call(&mut self, map: ir::MapId, key: Loc, helper: i32) {
        self.asm.load_addr(Reg::R1, self.map_target(map));
        self.addr(Reg::R2, key);
        self.asm.emit(Insn::call_helper(helper));
    }

    /// `r0 = bpf_map_update_elem(map, &key, &value, flags)`.
    fn map_update(&mut self, map: ir::MapId, key: Loc, value: Loc, flags: i32) {
        self.asm.load_addr(Reg::R1, self.map_target(map));
        self.addr(Reg::R2, key);
        self.addr(Reg::R3, value);
        self.asm.emit(Insn::mov64_imm(Reg::R4, flags));
        self.asm.emit(Insn::call_helper(helper::MAP_UPDATE_ELEM));
    }

    fn count_failure(&mut self) {
        match self.facts.map_failures {
            Some(g) => {
                self.asm.load_addr(Reg::R1, self.global_target(g));
                self.asm.emit(Insn::mov64_imm(Reg::R2, 1));
                self.asm.emit(Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, false));
            }
            None => self.lacks("counter of failed updates"),
        }
    }

    /// Reserves a ring-buffer record, fills it and submits it; a full ring
    /// buffer increments the lost-events counter instead.
    /// `bpf_seq_printf(meta->seq, format, data, 8 * n)`: the arguments
    /// are an array of u64s (numbers, and the address of each string,
    /// copied first), the format a `.rodata` string (the helper wants a
    /// constant string in a frozen read-only map).
    fn seq_print(&mut self, format: &[u8], args: &[Expr], span: Option<Span>) {
        let Some(at) = self.formats.iter().position(|f| f == format) else { return self.lacks("seq_file format") };
        let data = (!args.is_empty()).then(|| self.alloc(8 * args.len() as i32));
        for (i, arg) in args.iter().enumerate() {
            let slot = data.map(|d| d.at(8 * i as i16));
            let Some(slot) = slot else { break };
            if arg.ty.is_string() {
                let s = self.string_loc(arg, arg.ty.size());
                self.addr(Reg::R3, s);
                self.store(Size::DW, slot, Reg::R3);
            } else {
                let r = self.expr(arg, 0);
                self.store(Size::DW, slot, r);
            }
        }
        self.asm.span = span;
        // The context's first argument is `struct bpf_iter_meta *meta`,
        // whose first member is the seq_file (include/linux/bpf.h).
        self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R6, 0));
        self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R1, 0));
        self.asm.load_addr(Reg::R2, RelocTarget::Global(seq_format_name(at)));
        self.asm.emit(Insn::mov64_imm(Reg::R3, format.len() as i32 + 1));
        match data {
            Some(d) => self.addr(Reg::R4, d),
            None => self.asm.emit(Insn::mov64_imm(Reg::R4, 0)),
        }
        self.asm.emit(Insn::mov64_imm(Reg::R5, 8 * args.len() as i32));
        self.asm.emit(Insn::call_helper(helper::SEQ_PRINTF));
    }

    fn emit_record(&mut self, site_id: ir::SiteId, args: &[Expr], span: Option<Span>) {
        let site = self.m.site(site_id);
        let (offsets, size) = site.layout();
        // Values are computed first, in order (r7..r9 are free for that
        // until r9 holds the record); strings from memory keep their
        // address. A string global or table value before a call is copied
        // first: the call may change it.
        let mut slots = Vec::new();
        let mut copies = Vec::new();
        for (i, arg) in args.iter().enumerate() {
            let mutable = matches!(arg.kind, ExprKind::Global(_) | ExprKind::MapGet { .. });
            if arg.ty.is_string() && mutable && args[i + 1..].iter().any(has_call) {
                copies.push(Some(self.string_loc(arg, arg.ty.size())));
                slots.push(None);
            } else if needs_evaluation(arg) {
                let r = self.expr(arg, 0);
                let slot = self.alloc(8);
                self.store(Size::DW, slot, r);
                slots.push(Some(slot));
                copies.push(None);
            } else {
                slots.push(None);
                copies.push(None);
            }
        }
        self.asm.span = span;
        let Some(events) = self.facts.ring_buffer else { return self.lacks("ring buffer") };
        let map_name = self.m.map(events).name.clone();
        self.asm.load_addr(Reg::R1, RelocTarget::Map(map_name));
        self.asm.emit(Insn::mov64_imm(Reg::R2, size as i32));
        self.asm.emit(Insn::mov64_imm(Reg::R3, 0));
        self.asm.emit(Insn::call_helper(helper::RINGBUF_RESERVE));
        let got = self.asm.label();
        let end = self.asm.label();
        self.asm.jump(Insn::jmp_imm(JmpOp::Jne, Reg::R0, 0, 0), got);
        match self.facts.lost_events {
            Some(lost) => {
                self.asm.load_addr(Reg::R1, self.global_target(lost));
                self.asm.emit(Insn::mov64_imm(Reg::R2, 1));
                self.asm.emit(Insn::atomic_add(Size::DW, Reg::R1, Reg::R2, 0, false));
            }
            None => self.lacks("counter of lost records"),
        }
        self.asm.jump(Insn::ja(0), end);
        self.asm.bind(got);
        self.asm.emit(Insn::mov64_reg(Reg::R9, Reg::R0));
        // (A register store rather than BPF_ST: older disassemblers lack it.)
        self.asm.emit(Insn::mov64_imm(Reg::R1, site_id.0 as i32));
        self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, 0));
        for (((arg, slot), copy), off) in args.iter().zip(&slots).zip(&copies).zip(&offsets) {
            let off = *off as i16;
            if let Some(at) = copy {
                for w in 0..arg.ty.size().div_ceil(8) as i16 {
                    self.load(Size::DW, Reg::R1, at.at(8 * w));
                    self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off + 8 * w));
                }
                continue;
            }
            match (arg.ty, slot) {
                (Ty::Int | Ty::ProbeName | Ty::Stack { .. }, Some(slot)) => {
                    self.load(Size::DW, Reg::R1, *slot);
                    self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off));
                }
                (Ty::ArgStr { len, .. }, Some(slot)) => {
                    self.load(Size::DW, Reg::R1, *slot);
                    self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off));
                    let ExprKind::ArgStr { offset } = arg.kind else { continue };
                    if let Some(rec) = self.record {
                        // From the record a raw_syscalls program rebuilt.
                        for w in 0..(len / 8) as i16 {
                            self.asm.emit(Insn::ldx(Size::DW, Reg::R1, Reg::R10, rec + offset as i16 + 8 * w));
                            self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R1, off + 8 + 8 * w));
                        }
                        continue;
                    }
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
                (Ty::Comm | Ty::Str, Some(slot)) => {
                    // From user or kernel memory, or from a table value.
                    let user = matches!(arg.kind, ExprKind::ReadStr { user: true, .. });
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R9));
                    self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R1, i32::from(off)));
                    self.asm.emit(Insn::mov64_imm(Reg::R2, arg.ty.size() as i32));
                    self.load(Size::DW, Reg::R3, *slot);
                    self.asm.emit(Insn::call_helper(if user { helper::PROBE_READ_USER_STR } else { helper::PROBE_READ_KERNEL_STR }));
                }
                (Ty::Comm | Ty::Str, None) => self.copy_str(arg, Dst::Record(off), arg.ty.size()),
                (Ty::Int | Ty::ProbeName | Ty::Stack { .. } | Ty::ArgStr { .. }, None) => {}
            }
        }
        if let Some(at) = site.stamp_offset() {
            self.asm.emit(Insn::call_helper(ir::HelperFn::KTIME_GET_BOOT_NS.0 as i32));
            self.asm.emit(Insn::stx(Size::DW, Reg::R9, Reg::R0, at as i16));
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
            ExprKind::Helper { func, part } => self.helper_value(*func, *part, dst),
            // A task name never reaches integer evaluation (validated).
            ExprKind::Load(_) if e.ty == Ty::Comm => self.asm.emit(Insn::mov64_imm(dst, 0)),
            ExprKind::Load(path) if !is_percpu_walk(path) => self.typed_load(path, dst),
            ExprKind::Load(access) => {
                // r3 = this CPU's anchor: pointers loaded from the task.
                self.asm.emit(Insn::call_helper(helper::GET_CURRENT_TASK_BTF));
                let mut base = Reg::R0;
                if access.derefs.is_empty() {
                    // A read from the task itself.
                    self.asm.emit(Insn::mov64_reg(Reg::R3, Reg::R0));
                }
                for &off in &access.derefs {
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
                self.asm.emit(Insn::alu64_imm(AluOp::Add, Reg::R3, access.offset as i32));
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
            // A string global yields its address.
            ExprKind::Global(g) if e.ty.is_string() => self.asm.load_addr(dst, self.global_target(*g)),
            ExprKind::Global(g) => {
                self.asm.load_addr(Reg::R1, self.global_target(*g));
                self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R1, 0));
            }
            ExprKind::CtxAddr { .. } if self.record.is_some() => self.lacks("a string field in a syscall record"),
            ExprKind::CtxAddr { offset, data_loc: false } => {
                self.asm.emit(Insn::mov64_reg(dst, Reg::R6));
                self.asm.emit(Insn::alu64_imm(AluOp::Add, dst, *offset as i32));
            }
            ExprKind::CtxAddr { offset, data_loc: true } => {
                // (length << 16 | offset), the offset from the record's start.
                self.asm.emit(Insn::ldx(Size::W, dst, Reg::R6, *offset as i16));
                self.asm.emit(Insn::alu64_imm(AluOp::And, dst, 0xffff));
                self.asm.emit(Insn::alu64_reg(AluOp::Add, dst, Reg::R6));
            }
            ExprKind::CtxField { offset, size, signed } => {
                let sz = match size {
                    1 => Size::B,
                    2 => Size::H,
                    4 => Size::W,
                    _ => Size::DW,
                };
                if let Some(rec) = self.record {
                    // The record a raw_syscalls program rebuilt.
                    self.asm.emit(Insn::ldx(sz, dst, Reg::R10, rec + *offset as i16));
                } else if *offset < 8 {
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
                None if self.point_name.is_some() => self.asm.emit(Insn::mov64_imm(dst, self.point_name.unwrap_or(0) as i32)),
                None => {
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R6));
                    self.asm.emit(Insn::call_helper(helper::GET_ATTACH_COOKIE));
                    self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
                }
            },
            ExprKind::Stack { user, skip, depth } => match self.facts.stack_map {
                Some(stacks) => {
                    self.asm.emit(Insn::mov64_reg(Reg::R1, Reg::R6));
                    self.asm.load_addr(Reg::R2, RelocTarget::Map(self.m.map(stacks).name.clone()));
                    // The skip count sits in the flags' low byte.
                    self.asm.emit(Insn::mov64_imm(Reg::R3, if *user { BPF_F_USER_STACK } else { 0 } | i32::from(*skip)));
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
                    if *depth > 0 {
                        // ... and the frames to show in the top byte.
                        self.asm.emit(Insn::mov64_imm(Reg::R0, i32::from(*depth)));
                        self.asm.emit(Insn::alu64_imm(AluOp::Lsh, Reg::R0, 56));
                        self.asm.emit(Insn::alu64_reg(AluOp::Or, dst, Reg::R0));
                    }
                }
                None => self.lacks("stack map"),
            },
            ExprKind::Local(l) if e.ty.is_string() => self.addr(dst, self.locals[l.index()]),
            ExprKind::Local(l) => self.load(Size::DW, dst, self.locals[l.index()]),
            // A joined string is built in fresh memory (kept to the end of
            // the statement) and yields its address.
            ExprKind::StrConcat { lhs, rhs } => {
                let at = self.keeping_temps(d, |g| g.concat_loc(lhs, rhs));
                self.addr(dst, at);
            }
            // So is a number's text.
            ExprKind::IntText(value) => {
                let at = self.keeping_temps(d, |g| g.int_text_loc(value));
                self.addr(dst, at);
            }
            // Strings are copied where they go (`copy_str`); in expression
            // position a literal has no address and yields 0.
            ExprKind::StrConst(_) => self.asm.emit(Insn::mov64_imm(dst, 0)),
            ExprKind::StrCmp { lhs, rhs } => {
                let saved = self.mark();
                let size = lhs.ty.size().max(rhs.ty.size());
                let (a, b) = self.keeping_temps(d, |g| (g.string_loc(lhs, size), g.string_loc(rhs, size)));
                self.asm.emit(Insn::mov64_imm(Reg::R3, 0));
                for w in 0..size.div_ceil(8) as i16 {
                    self.load(Size::DW, Reg::R1, a.at(8 * w));
                    self.load(Size::DW, Reg::R2, b.at(8 * w));
                    self.differ_into_r3();
                }
                self.bool_from_jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0), dst);
                self.release(saved);
            }
            // In expression position a string read yields its address; the
            // copy happens where the string goes (record, key, compare).
            ExprKind::ReadStr { ptr, .. } => {
                let r = self.expr(ptr, d);
                if r != dst {
                    self.asm.emit(Insn::mov64_reg(dst, r));
                }
            }
            ExprKind::StrEq { value, literal } => {
                let saved = self.mark();
                // The copy evaluates the address at depth 0.
                let at = self.keeping_temps(d, |g| g.string_loc(value, value.ty.size()));
                let mut padded = literal.clone();
                padded.resize((literal.len() + 1).next_multiple_of(8), 0);
                self.asm.emit(Insn::mov64_imm(Reg::R3, 0));
                for (w, chunk) in padded.chunks(8).enumerate() {
                    let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                    self.load(Size::DW, Reg::R1, at.at(8 * w as i16));
                    self.asm.emit_wide(Insn::ld_imm64(Reg::R2, word));
                    self.differ_into_r3();
                }
                self.bool_from_jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R3, 0, 0), dst);
                self.release(saved);
            }
            ExprKind::Seq { body, result } => {
                // Statements reuse r7..r9.
                let saved = self.mark();
                let exit = self.exit;
                self.in_expr += 1;
                self.keeping_temps(d, |g| g.stmts(body, exit));
                self.in_expr -= 1;
                self.release(saved);
                // A string result yields its address, like a string local.
                if e.ty.is_string() {
                    self.addr(dst, self.locals[result.index()]);
                } else {
                    self.load(Size::DW, dst, self.locals[result.index()]);
                }
            }
            ExprKind::MapGet { map, key } | ExprKind::MapHas { map, key } => {
                let has = matches!(e.kind, ExprKind::MapHas { .. });
                let saved = self.mark();
                // The key is evaluated from depth 0: keep the operands
                // the enclosing expression holds in r7..r9.
                let k = self.keeping_temps(d, |g| g.key_loc(*map, key));
                self.map_call(*map, k, helper::MAP_LOOKUP_ELEM);
                let missing = self.asm.label();
                let end = self.asm.label();
                self.asm.jump(Insn::jmp_imm(JmpOp::Jeq, Reg::R0, 0, 0), missing);
                if has {
                    self.asm.emit(Insn::mov64_imm(dst, 1));
                } else if e.ty.is_string() {
                    // A string value is used where it lies.
                    self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
                } else {
                    self.asm.emit(Insn::ldx(Size::DW, dst, Reg::R0, 0));
                }
                self.asm.jump(Insn::ja(0), end);
                self.asm.bind(missing);
                self.asm.emit(Insn::mov64_imm(dst, 0));
                self.asm.bind(end);
                self.release(saved);
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
                    // Out of temporaries: spill the left operand (its
                    // slot is free again once the operation is done).
                    let saved = self.mark();
                    let slot = self.spill_slot();
                    self.store(Size::DW, slot, l);
                    let r = self.expr(rhs, d);
                    self.load(Size::DW, Reg::R1, slot);
                    self.release(saved);
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
    /// saved around it (see `spill_slot`), for code that reuses r7..r9.
    fn keeping_temps<T>(&mut self, d: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let live: Vec<(Reg, Loc)> = (0..d.min(3)).map(|i| (temp(i), self.spill_slot())).collect();
        for &(r, slot) in &live {
            self.store(Size::DW, slot, r);
        }
        let result = f(self);
        for &(r, slot) in &live {
            self.load(Size::DW, r, slot);
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

    /// `r3 |= r1 ^ r2`: string words compare without a branch each, so a
    /// comparison adds one path, not one per word, for the verifier to walk
    /// (inside an unrolled loop those multiply).
    fn differ_into_r3(&mut self) {
        self.asm.emit(Insn::alu64_reg(AluOp::Xor, Reg::R1, Reg::R2));
        self.asm.emit(Insn::alu64_reg(AluOp::Or, Reg::R3, Reg::R1));
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

    /// A helper called without arguments, and the part of its result kept.
    fn helper_value(&mut self, func: ir::HelperFn, part: ir::Part, dst: Reg) {
        if func == ir::HelperFn::GET_CURRENT_COMM {
            // A string never reaches integer evaluation (validated).
            self.asm.emit(Insn::mov64_imm(dst, 0));
            return;
        }
        self.asm.emit(Insn::call_helper(func.0 as i32));
        match part {
            ir::Part::All => self.asm.emit(Insn::mov64_reg(dst, Reg::R0)),
            ir::Part::High32 => {
                self.asm.emit(Insn::alu64_imm(AluOp::Rsh, Reg::R0, 32));
                self.asm.emit(Insn::mov64_reg(dst, Reg::R0));
            }
            ir::Part::Low32 => self.asm.emit(Insn::alu32_reg(AluOp::Mov, dst, Reg::R0)),
        }
    }
}

/// The expressions `e` is computed from (an inlined call's statements
/// aside).
fn operands(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Unary { operand, .. } => vec![operand],
        ExprKind::Binary { lhs, rhs, .. } | ExprKind::StrCmp { lhs, rhs } | ExprKind::StrConcat { lhs, rhs } => vec![lhs, rhs],
        ExprKind::MapGet { key, .. } | ExprKind::MapHas { key, .. } => vec![key],
        ExprKind::IntText(value) => vec![value],
        ExprKind::ReadStr { ptr, .. } => vec![ptr],
        ExprKind::StrEq { value, .. } => vec![value],
        ExprKind::Seq { .. }
        | ExprKind::Const(_)
        | ExprKind::Helper { .. }
        | ExprKind::Load(_)
        | ExprKind::Global(_)
        | ExprKind::CtxField { .. }
        | ExprKind::CtxAddr { .. }
        | ExprKind::ProbeName
        | ExprKind::Local(_)
        | ExprKind::StrConst(_)
        | ExprKind::Stack { .. }
        | ExprKind::ArgStr { .. }
        | ExprKind::Fetch(_) => Vec::new(),
    }
}

/// Whether computing `e` runs an inlined call (which may set globals and
/// tables).
fn has_call(e: &Expr) -> bool {
    matches!(e.kind, ExprKind::Seq { .. }) || operands(e).into_iter().any(has_call)
}

/// Whether a record argument is evaluated before the record is reserved
/// (r9 holds the record after that, and evaluation may use r7..r9):
/// numbers, and strings reached through an address (memory reads, table
/// values, function results); the task name, literals, locals and
/// globals are copied straight into the record.
fn needs_evaluation(arg: &Expr) -> bool {
    !arg.ty.is_string()
        || !matches!(arg.kind, ExprKind::Helper { .. } | ExprKind::Load(_) | ExprKind::StrConst(_) | ExprKind::Local(_) | ExprKind::Global(_))
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
