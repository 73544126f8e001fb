//! The IR: the contract between the frontend and the backends.
//!
//! A [`Module`] holds everything a script needs at run time, already split
//! by execution context (DESIGN.md, "Execution contexts"):
//!
//! * `globals` — kernel-visible variables with their section (`.data`,
//!   `.bss`), including the synthetic ones the runtime needs (the stop
//!   flag, loss counters); userspace initialises them after the main
//!   context ran and before the programs load.
//! * `maps` — BPF maps with kind and sizes (the event ring buffer).
//! * `probes` — one per `trace` body: where it attaches and a small
//!   structured program over typed expressions that bpfgen compiles.
//! * `sites` — every record that crosses the ring buffer (print, printf,
//!   exit), with the layout of its fields; the format strings stay here,
//!   in userspace.
//!
//! Userspace code (main, tick-N, trace_end, functions) is the resolved AST
//! itself and is run by `runtime::interp`; the IR names the kernel globals
//! that the interpreter must exchange with the kernel.
//!
//! Spans: every statement and expression keeps the span of the source it
//! came from; code the compiler synthesises has `span: None`.
//! This module never does IO; [`validate`] runs once and returns the facts
//! bpfgen takes ([`validate::ModuleInfo`]), after which bpfgen fails only
//! on target limits.

pub mod agg;
mod attach;
pub mod core;
pub mod print;
pub mod validate;
pub mod written;

pub use agg::{AggKind, TableValue};
pub use attach::{Attach, Context, IterParam, MapRef, ProgKind, ProgShape, UprobePoint, SYSCALL_RECORD_BYTES};

use crate::span::Span;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id_type!(/// Index into [`Module::globals`].
    GlobalId);
id_type!(/// Index into [`Module::maps`].
    MapId);
id_type!(/// Index into [`Module::sites`]; also the record tag on the wire.
    SiteId);
id_type!(/// Index into [`Module::probes`].
    ProbeId);
id_type!(/// A probe's local variable: index into [`Probe::locals`].
    LocalId);
id_type!(/// A block that `Leave` can jump out of (an inlined function).
    BlockId);

#[derive(Clone, Debug, Default)]
pub struct Module {
    pub globals: Vec<Global>,
    pub maps: Vec<Map>,
    pub probes: Vec<Probe>,
    pub sites: Vec<Site>,
    /// The ring buffer every record goes through.
    pub events: Option<MapId>,
    /// Synthetic globals the runtime reads and writes.
    pub stop_flag: Option<GlobalId>,
    pub lost_events: Option<GlobalId>,
    /// Counts map updates that failed (a full table).
    pub map_failures: Option<GlobalId>,
    /// Process to trace (`-p`, `-- CMD`), 0 for all; set before load.
    pub target_pid: Option<GlobalId>,
    /// CPU to trace (`-C`) plus one, 0 for all; set before load.
    pub target_cpu: Option<GlobalId>,
    /// The tracer's own process id, set before load: probes that print
    /// skip its events.
    pub self_pid: Option<GlobalId>,
    /// For each `tick-N` block, in program order: the top-level names its
    /// body mentions, so the runtime copies only those kernel variables in
    /// and out around it; `None` when it calls a user function (anything
    /// may be read then).
    pub tick_uses: Vec<Option<Vec<String>>>,
    /// The stack trace map, once a probe takes a stack.
    pub stacks: Option<MapId>,
    /// CLOCK_REALTIME minus CLOCK_BOOTTIME in ns, set before load.
    pub boot_to_real: Option<GlobalId>,
}

/// The static type of a kernel value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// 64-bit signed integer (booleans are 0/1 integers in the kernel).
    Int,
    /// The current task's command name: 16 bytes, NUL padded.
    Comm,
    /// A string read from memory (`user_string`, `kernel_string`): up to
    /// [`STR_LEN`] bytes with its NUL.
    Str,
    /// Which event fired (`probename`): an index into
    /// [`Module::probe_names`], named in userspace.
    ProbeName,
    /// A stack trace id in the stack map (low 32 bits) and, for user
    /// stacks, the process id (high 32 bits); symbolized in userspace.
    Stack { user: bool },
    /// `argstr`: which event fired, then this many bytes of its record,
    /// rendered in userspace with the event's format.
    ArgStr { start: u32, len: u32 },
}

/// Most frames `stack(skip, depth)` may ask to show (the depth travels in
/// 7 bits of the stack value).
pub const MAX_STACK_DEPTH: u8 = 127;

/// Most arguments `bpf_seq_printf` takes (kernel/bpf/helpers.c,
/// MAX_BPRINTF_VARARGS).
pub const SEQ_MAX_ARGS: usize = 12;

/// Bytes a kernel string holds, NUL included (bpftrace's default too).
pub const STR_LEN: u32 = 64;

/// What a tracepoint field holds, for rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Int,
    /// A fixed `char name[N]` array.
    CharArray,
    /// A `__data_loc char[]` string: a u32 of (length << 16 | offset).
    DataLoc,
    /// A fixed array of integers of `elem` bytes each (`unsigned long
    /// args[6]`), read an element at a time (`args.args[0]`).
    IntArray { elem: u8 },
    /// Any other array or struct.
    Other,
}

/// One field of a tracepoint's record, from its format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventField {
    /// The field's name; [`EventField::PROBE_IP`] first marks the fields of
    /// a uprobe, kprobe or USDT probe's `argstr` (its registers).
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
    /// `common_*` fields that every event has.
    pub common: bool,
    pub kind: FieldKind,
}

impl EventField {
    /// The name of the instruction pointer's field that starts the
    /// `argstr` fields of a probe on `struct pt_regs`.
    pub const PROBE_IP: &'static str = "__probe_ip";
}

impl Ty {
    /// Bytes the value occupies in a record or a global.
    pub fn size(self) -> u32 {
        match self {
            Ty::Int | Ty::ProbeName | Ty::Stack { .. } => 8,
            Ty::Comm => 16,
            Ty::Str => STR_LEN,
            Ty::ArgStr { len, .. } => 8 + len,
        }
    }

    pub fn is_string(self) -> bool {
        matches!(self, Ty::Comm | Ty::Str)
    }

    /// Whether a value of this type can be stored where `into` is kept
    /// (a task name fits in a string; strings are zero padded).
    pub fn fits(self, into: Ty) -> bool {
        self == into || (self == Ty::Comm && into == Ty::Str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Data,
    Bss,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Data => ".data",
            Section::Bss => ".bss",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Global {
    /// The ELF/BTF symbol name.
    pub name: String,
    /// The script variable it holds, if any (synthetic globals have none).
    pub var: Option<String>,
    pub ty: Ty,
    pub section: Section,
    pub span: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    RingBuf,
    /// An array indexed by a u32 (syscall filters).
    Array,
    /// Stack traces by id (`stack()`, `ustack()`).
    StackTrace,
    /// A table shared by all CPUs, updated atomically.
    Hash,
    /// A table of aggregates only ever updated in the kernel, of a kind
    /// that allows it: one copy per CPU, merged by the kind when userspace
    /// reads it.
    PercpuHash,
}

#[derive(Clone, Debug)]
pub struct Map {
    pub name: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// For maps that hold a script table: its variable and types.
    pub table: Option<TableInfo>,
    /// For a probe's syscall filter (an array indexed by syscall number
    /// holding probename id + 1, 0 = not traced): the probe and direction.
    pub syscall_filter: Option<(ProbeId, ProgKind)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    pub var: String,
    pub key: Ty,
    /// A scalar, or an aggregate when probes only update it with one kind
    /// (its map per-CPU if the kind allows it).
    pub value: TableValue,
    /// A global aggregate (`lat = hist(d)`): the variable is the entry at
    /// key 0, not a table.
    pub single: bool,
}

/// An offset in a file (not a virtual address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileOffset(pub u64);

/// Where probed memory is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrSpace {
    User,
    Kernel,
}

/// A value fetched at a k/uprobe, generated as BPF: registers are loads
/// from the `struct pt_regs` context, memory goes through
/// `bpf_probe_read_{user,kernel}`. `bytes`/`signed` give the final width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    pub loc: FetchLoc,
    pub bytes: u8,
    pub signed: bool,
}

/// Byte offset of a register in x86-64 `struct pt_regs`
/// (arch/x86/include/asm/ptrace.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegOffset(pub u16);

impl RegOffset {
    pub const R15: RegOffset = RegOffset(0);
    pub const R14: RegOffset = RegOffset(8);
    pub const R13: RegOffset = RegOffset(16);
    pub const R12: RegOffset = RegOffset(24);
    pub const BP: RegOffset = RegOffset(32);
    pub const BX: RegOffset = RegOffset(40);
    pub const R11: RegOffset = RegOffset(48);
    pub const R10: RegOffset = RegOffset(56);
    pub const R9: RegOffset = RegOffset(64);
    pub const R8: RegOffset = RegOffset(72);
    pub const AX: RegOffset = RegOffset(80);
    pub const CX: RegOffset = RegOffset(88);
    pub const DX: RegOffset = RegOffset(96);
    pub const SI: RegOffset = RegOffset(104);
    pub const DI: RegOffset = RegOffset(112);
    pub const IP: RegOffset = RegOffset(128);
    pub const SP: RegOffset = RegOffset(152);

    /// The System V argument registers, in order.
    pub const ARGS: [RegOffset; 6] = [Self::DI, Self::SI, Self::DX, Self::CX, Self::R8, Self::R9];
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchLoc {
    /// A register at probe time.
    Reg(RegOffset),
    Const(i64),
    /// The probed function's address (`bpf_get_func_ip`).
    FuncIp,
    /// `base + offset`, not dereferenced (a string's address).
    Offset { base: Box<FetchLoc>, offset: i64 },
    /// `bytes` of memory at `base + offset`.
    Mem { base: Box<FetchLoc>, offset: i64, bytes: u8, space: AddrSpace },
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub attach: Vec<Attach>,
    /// The non-common fields of each attach point's event (tracepoints;
    /// empty otherwise), for rendering `argstr`.
    pub formats: Vec<Vec<EventField>>,
    /// Types of the probe's local variables (each an 8-byte stack slot).
    pub locals: Vec<Ty>,
    pub body: Vec<Stmt>,
    pub span: Span,
    /// Written inside main-context code (an `if`, a loop): attached only
    /// when the main context ran the statement at `span`.
    pub nested: bool,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Option<Span>,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    If { cond: Expr, then: Vec<Stmt>, otherwise: Vec<Stmt> },
    GlobalStore { global: GlobalId, value: Expr },
    /// Send a record for `site` with these field values.
    Emit { site: SiteId, args: Vec<Expr> },
    /// Print into the seq_file of the iterator being read (iterator
    /// programs only; `bpf_seq_printf`): `format` is the kernel's format
    /// (kept in `.rodata`), with one conversion per argument, at most
    /// [`SEQ_MAX_ARGS`]; numbers are `%lld`-like, strings `%s`.
    SeqPrint { format: Vec<u8>, args: Vec<Expr> },
    /// Leave the program (returns 0).
    Return,
    /// Folds `value` into an aggregate of `kind` (`+=` is a sum): a table
    /// entry (a missing key starts empty; atomic unless the map is
    /// per-CPU) or a kernel global (atomic).
    AggUpdate { to: AggTarget, kind: AggKind, value: Expr },
    /// `table[key] = value`.
    MapStore { map: MapId, key: Expr, value: Expr },
    /// `table[key] = nil`.
    MapDelete { map: MapId, key: Expr },
    LocalSet { local: LocalId, value: Expr },
    /// `while (cond) { body; step }`, proven to run at most
    /// `max_iterations` times.
    Loop { cond: Expr, body: Vec<Stmt>, step: Vec<Stmt>, max_iterations: u32 },
    /// Leaves the innermost `Loop`.
    Break,
    /// A block (an inlined function body) that `Leave(id)` exits.
    Block { id: BlockId, body: Vec<Stmt> },
    Leave(BlockId),
}

/// Whether control never falls out of the end of `stmts`: its last
/// statement leaves (`Return`, `Break`, `Leave`), or is an `if` whose both
/// branches do, or a block that ends leaving elsewhere and that nothing
/// leaves. A loop may always run zero times. Code after such statements
/// is unreachable, and the verifier refuses unreachable instructions.
pub fn diverges(stmts: &[Stmt]) -> bool {
    stmts.last().is_some_and(Stmt::diverges)
}

impl Stmt {
    /// Whether control never reaches the statement after this one.
    pub fn diverges(&self) -> bool {
        match &self.kind {
            StmtKind::Return | StmtKind::Break | StmtKind::Leave(_) => true,
            StmtKind::If { then, otherwise, .. } => diverges(then) && diverges(otherwise),
            StmtKind::Block { id, body } => diverges(body) && !leaves(body, *id),
            _ => false,
        }
    }
}

/// Calls `f` on every statement of `body`, at any depth, in order (an
/// `if`, loop or block before what it holds).
pub fn each_stmt(body: &[Stmt], f: &mut dyn FnMut(&Stmt)) {
    for s in body {
        f(s);
        match &s.kind {
            StmtKind::If { then, otherwise, .. } => {
                each_stmt(then, f);
                each_stmt(otherwise, f);
            }
            StmtKind::Loop { body, step, .. } => {
                each_stmt(body, f);
                each_stmt(step, f);
            }
            StmtKind::Block { body, .. } => each_stmt(body, f),
            _ => {}
        }
    }
}

/// Whether some statement in `stmts` (at any depth) leaves block `id`.
fn leaves(stmts: &[Stmt], id: BlockId) -> bool {
    stmts.iter().any(|s| match &s.kind {
        StmtKind::Leave(to) => *to == id,
        StmtKind::If { then, otherwise, .. } => leaves(then, id) || leaves(otherwise, id),
        StmtKind::Loop { body, step, .. } => leaves(body, id) || leaves(step, id),
        StmtKind::Block { body, .. } => leaves(body, id),
        _ => false,
    })
}

/// What an [`StmtKind::AggUpdate`] updates.
#[derive(Clone, Debug)]
pub enum AggTarget {
    Entry { map: MapId, key: Expr },
    Global(GlobalId),
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Ty,
    pub span: Option<Span>,
}

/// A BPF helper function, by its number in the kernel's `enum bpf_func_id`
/// (include/uapi/linux/bpf.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HelperFn(pub u32);

impl HelperFn {
    pub const KTIME_GET_NS: HelperFn = HelperFn(5);
    pub const GET_SMP_PROCESSOR_ID: HelperFn = HelperFn(8);
    pub const GET_CURRENT_PID_TGID: HelperFn = HelperFn(14);
    pub const GET_CURRENT_UID_GID: HelperFn = HelperFn(15);
    /// Fills a 16-byte buffer with the task name (a [`Ty::Comm`] value).
    pub const GET_CURRENT_COMM: HelperFn = HelperFn(16);
    /// The current task's cgroup v2 id (its directory's inode number).
    pub const GET_CURRENT_CGROUP_ID: HelperFn = HelperFn(80);
    pub const KTIME_GET_BOOT_NS: HelperFn = HelperFn(125);
    /// The current task as a trusted BTF pointer.
    pub const GET_CURRENT_TASK_BTF: HelperFn = HelperFn(158);

    /// The helper's name without its `bpf_` prefix, for dumps.
    pub fn name(self) -> String {
        match self.0 {
            5 => "ktime_get_ns".into(),
            8 => "get_smp_processor_id".into(),
            14 => "get_current_pid_tgid".into(),
            15 => "get_current_uid_gid".into(),
            16 => "get_current_comm".into(),
            80 => "get_current_cgroup_id".into(),
            125 => "ktime_get_boot_ns".into(),
            158 => "get_current_task_btf".into(),
            n => format!("helper#{n}"),
        }
    }
}

/// Which part of a helper's 64-bit result is the value: helpers such as
/// `get_current_pid_tgid` pack two 32-bit numbers into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    All,
    /// The upper 32 bits, zero-extended.
    High32,
    /// The lower 32 bits, zero-extended.
    Low32,
}

/// A typed read along a path of kernel memory: start at `base`, load the
/// pointer at each offset of `derefs` in turn, then read `size` bytes at
/// `offset` from the last address (an integer, or a 16-byte task name
/// when the expression is a [`Ty::Comm`]).
#[derive(Clone, Debug, PartialEq, Eq)]
///
/// `size` 0 reads nothing: the value is the address itself (a typed
/// pointer such as `curtask`, or where a string starts). A string
/// ([`Ty::Comm`], [`Ty::Str`]) read along a path other than the task
/// name's is copied from that address with `bpf_probe_read_kernel_str`,
/// at most `size` bytes. A NULL pointer on the way reads as 0 (an empty
/// string).
pub struct Path {
    pub base: PathBase,
    pub derefs: Vec<u32>,
    pub offset: i64,
    pub size: u8,
    pub via: Via,
    /// Sign-extend the integer read.
    pub signed: bool,
    /// The offsets that came from the kernel's BTF, with the members they
    /// name (CO-RE relocations in the object).
    pub core: Vec<core::CoreField>,
    /// A bitfield: the value is these bits of the word read.
    pub bits: Option<Bits>,
}

impl Path {
    /// A read from `base` with no CO-RE records (facts the compiler
    /// computed itself).
    pub fn plain(base: PathBase, derefs: Vec<u32>, offset: i64, size: u8, via: Via) -> Path {
        Path { base, derefs, offset, size, via, signed: false, core: Vec::new(), bits: None }
    }
}

/// `width` bits from bit `shift` (from the least significant) of the word
/// a [`Path`] reads: shifted left to the top of 64 bits, then right to
/// the bottom (arithmetically when the path is signed), so a CO-RE record
/// can move both shifts to another kernel's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bits {
    pub shift: u8,
    pub width: u8,
}

impl Bits {
    /// The left shift, then the right one.
    pub fn shifts(self) -> (i32, i32) {
        (64 - i32::from(self.shift) - i32::from(self.width), 64 - i32::from(self.width))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathBase {
    /// The current `struct task_struct` (`bpf_get_current_task_btf`).
    CurrentTask,
    /// Argument N of a BTF-typed context (tp_btf): a u64 slot holding a
    /// typed value.
    Arg(u32),
    /// A register of the probed task's `struct pt_regs` (a kprobe's
    /// argument, typed from the function's BTF prototype): a plain
    /// number to the verifier, so what it points to is read with
    /// `bpf_probe_read_kernel` (`Via::ProbeRead`).
    Reg(RegOffset),
}

/// How the final read is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Loads the verifier allows from a trusted BTF pointer.
    Direct,
    /// `bpf_probe_read_kernel` into the stack (a failed read gives 0).
    ProbeRead,
    /// `bpf_probe_read_user` (strings `bpf_probe_read_user_str`): a user
    /// binary's memory, typed from its DWARF.
    ProbeReadUser,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Short-circuit logical and/or over integers (0 is false).
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Const(i64),
    /// A BPF helper called without arguments: the part of its result kept
    /// (an integer), or the buffer it fills (a [`Ty::Comm`]).
    Helper { func: HelperFn, part: Part },
    /// A read along a path from a base (the current task, a typed
    /// context argument).
    Load(Path),
    Global(GlobalId),
    /// The address of the tracepoint record at `offset` (a `char[N]`
    /// field), or with `data_loc` where the `__data_loc` word at `offset`
    /// says its string lies (its low 16 bits, from the record's start):
    /// only ever the pointer of a kernel [`ExprKind::ReadStr`].
    CtxAddr { offset: u32, data_loc: bool },
    /// A field of the tracepoint record at a fixed offset from the context.
    CtxField { offset: u32, size: u32, signed: bool },
    Unary { op: UnOp, operand: Box<Expr> },
    Binary { op: BinOp, lhs: Box<Expr>, rhs: Box<Expr> },
    /// `table[key]`, 0 when the key is missing.
    MapGet { map: MapId, key: Box<Expr> },
    /// `table[key] != nil`, as 0/1.
    MapHas { map: MapId, key: Box<Expr> },
    /// The event that fired (a [`Ty::ProbeName`]).
    ProbeName,
    Local(LocalId),
    /// `user_string(ptr)` / `kernel_string(ptr)` (a [`Ty::Str`]).
    ReadStr { ptr: Box<Expr>, user: bool },
    /// A string (`Comm` or `Str`) equals a literal, as 0/1.
    StrEq { value: Box<Expr>, literal: Vec<u8> },
    /// Two strings are equal, as 0/1.
    StrCmp { lhs: Box<Expr>, rhs: Box<Expr> },
    /// A string literal (a `Comm` when it fits in 16 bytes, else a `Str`).
    StrConst(Vec<u8>),
    /// `lhs .. rhs`: two strings joined (a `Str`, cut at its length).
    StrConcat { lhs: Box<Expr>, rhs: Box<Expr> },
    /// A number's decimal text (a `Str`): `-12` for -12, as ktap prints it.
    IntText(Box<Expr>),
    /// Runs `body` (an inlined call), then yields the local `result`.
    Seq { body: Vec<Stmt>, result: LocalId },
    /// The current kernel or user stack (a [`Ty::Stack`]).
    Stack {
        user: bool,
        /// Frames skipped from the innermost (`bpf_get_stackid`'s skip).
        skip: u8,
        /// Frames shown, at most [`MAX_STACK_DEPTH`]; 0: all the map keeps.
        /// Carried in the value's top byte, so stacks cut differently are
        /// different keys.
        depth: u8,
    },
    /// `argstr`: the record bytes from `offset` (a [`Ty::ArgStr`]).
    ArgStr { offset: u32 },
    /// A k/uprobe fetch argument (k/uprobe programs only).
    Fetch(Fetch),
}

/// How a probe reaches the current CPU's copy of a kernel per-CPU
/// variable, as the running kernel's BTF lays it out: follow pointers
/// from the current task to this CPU's copy of another per-CPU variable
/// (the anchor), then step to the variable in the same per-CPU area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PercpuAccess {
    /// Byte offsets of the pointers loaded in turn, starting from the
    /// current task (`bpf_get_current_task_btf`).
    pub chain: Vec<u32>,
    /// Bytes from the anchor to the variable.
    pub delta: i64,
    /// Bytes of its integer type: 1, 2, 4 or 8.
    pub size: u8,
}

/// What userspace does with a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// `print(a, b, ...)`.
    Print,
    /// `printf(fmt, ...)`, the format kept here.
    Printf { format: Vec<u8> },
    /// `exit()` from a probe.
    Exit,
    /// `print_hist(t[, n])` from a probe: done in userspace, in order.
    PrintHist { var: String, n: usize },
    /// `delete(t)` from a probe: done in userspace, in order.
    Delete { var: String },
}

/// One record type crossing the ring buffer: `u64 site id` then the
/// fields, each 8-byte aligned.
#[derive(Clone, Debug)]
pub struct Site {
    pub kind: SiteKind,
    /// Types of the values the kernel sends, in argument order.
    pub fields: Vec<Ty>,
    /// Literal arguments, known in userspace and never sent: each with its
    /// position in the full argument list.
    pub consts: Vec<(usize, SiteConst)>,
    pub span: Span,
    /// The record ends with the event's CLOCK_BOOTTIME in ns (`-T`: lines
    /// show when the event happened, not when userspace read it).
    pub stamped: bool,
}

/// A literal argument of print/printf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteConst {
    Nil,
    Bool(bool),
    Int(i64),
    Str(Vec<u8>),
}

impl Site {
    /// Byte offset of each field in the record, and the record size.
    pub fn layout(&self) -> (Vec<u32>, u32) {
        let mut offsets = Vec::with_capacity(self.fields.len());
        let mut at = 8;
        for ty in &self.fields {
            offsets.push(at);
            at += ty.size().next_multiple_of(8);
        }
        (offsets, if self.stamped { at + 8 } else { at })
    }

    /// Where a stamped record keeps the event's boot-clock time.
    pub fn stamp_offset(&self) -> Option<u32> {
        self.stamped.then(|| self.layout().1 - 8)
    }
}

impl Expr {
    /// A constant the compiler made up (no span).
    pub fn constant(v: i64) -> Expr {
        Expr { kind: ExprKind::Const(v), ty: Ty::Int, span: None }
    }

    /// An integer operation.
    pub fn binary(op: BinOp, lhs: Expr, rhs: Expr, span: Option<Span>) -> Expr {
        Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, ty: Ty::Int, span }
    }
}

impl Module {
    pub fn global(&self, id: GlobalId) -> &Global {
        &self.globals[id.index()]
    }
    pub fn site(&self, id: SiteId) -> &Site {
        &self.sites[id.index()]
    }
    pub fn map(&self, id: MapId) -> &Map {
        &self.maps[id.index()]
    }
    pub fn probe(&self, id: ProbeId) -> &Probe {
        &self.probes[id.index()]
    }

    /// The id `probename` has for each attach point: attach points are
    /// numbered across all probes in order.
    pub fn probe_name_id(&self, probe: ProbeId, attach: usize) -> u64 {
        let before: usize = self.probes[..probe.index()].iter().map(|p| p.attach.len()).sum();
        (before + attach) as u64
    }

    /// The event format of every attach point, indexed by `probe_name_id`.
    pub fn probe_formats(&self) -> Vec<&[EventField]> {
        self.probes
            .iter()
            .flat_map(|p| (0..p.attach.len()).map(move |i| p.formats.get(i).map_or(&[][..], Vec::as_slice)))
            .collect()
    }

    /// The name of every attach point, indexed by `probe_name_id`.
    pub fn probe_names(&self) -> Vec<String> {
        self.probes
            .iter()
            .flat_map(|p| p.attach.iter())
            .map(|a| a.event().to_string())
            .collect()
    }
}
