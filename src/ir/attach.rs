//! Attach points and program kinds: where a probe attaches, as plain data
//! (exact names after glob expansion), and the one table of what each
//! program kind is to the backends (program name, ELF section, what its
//! context register points at). Pure data; never asks the kernel anything.
//!
//! Why an enum and not a trait object: the IR is the contract between the
//! frontend's providers, bpfgen and the runtime, so an attach point is
//! data every layer can clone, compare, validate and print in the
//! `--emit ir` dump, and the compiler checks that each kind answers every
//! question below. What a kind *does* lives with its provider: spec
//! syntax, glob expansion and argument meaning in
//! `frontend::providers::<kind>`, attaching in `runtime::attach::<kind>`.
//! This file holds only the data and the facts the pure backends need,
//! one arm per kind.

use crate::span::Span;

use super::FileOffset;

/// Where a probe attaches (exact names, after glob expansion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// A classic tracepoint: its program reads the event's format fields.
    Tracepoint { system: String, event: String },
    /// The same event as a raw tracepoint, for bodies that read no fields:
    /// much cheaper to attach and detach. A BPF cookie carries `probename`.
    RawTracepoint { system: String, event: String },
    /// A `syscalls:sys_enter_*`/`sys_exit_*` event for a body that reads no
    /// fields: rides the raw_syscalls tracepoint, filtered in the kernel by
    /// syscall number through the probe's filter map.
    Syscall { event: String, nr: u32, exit: bool },
    /// `profile-N`: a software cpu-clock perf event on every CPU.
    Profile { period_ns: u64, name: String },
    /// A uprobe or uretprobe at a file offset of a binary (a USDT marker
    /// too, with its semaphore as the uprobe reference counter).
    Uprobe(UprobePoint),
    /// A kprobe or kretprobe on a kernel function.
    Kprobe { symbol: String, ret: bool, spec: Span },
    /// A BTF-enabled raw tracepoint (`btf:EVENT`): its program's context
    /// is the tracepoint's typed arguments, and its target (the event's
    /// BTF) is fixed when it loads.
    TpBtf { event: String, spec: Span },
    /// A BPF trampoline on a kernel function (`fentry:FUNC`, `fexit:FUNC`
    /// with `ret`): its context is the function's typed arguments (and,
    /// at exit, its return value after them).
    Fentry { func: String, ret: bool, spec: Span },
    /// A BPF iterator (`iter:TARGET[(PARAM)]`): its program runs once per
    /// kernel object (and once more, with a NULL object, at the end) when
    /// its iterator is read; it prints into the reader's seq_file. Its
    /// context is the `bpf_iter_TARGET` function's typed arguments, its
    /// target fixed when it loads (section `iter/TARGET`).
    Iter { target: String, param: Option<IterParam>, spec: Span },
}

/// What an iterator link is limited to (`bpf_iter_link_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IterParam {
    /// One process (`iter:task(PID)`, `task_file`, `task_vma`): the
    /// link's `task.pid`.
    Pid { pid: u32, span: Span },
    /// The cgroups under a cgroup directory, itself first
    /// (`iter:cgroup(PATH)`: the link's `cgroup.cgroup_fd`, walked in
    /// pre-order); without a path, the root of the unified (v2)
    /// hierarchy, wherever this machine mounts it (found at attach).
    Cgroup { path: Option<String>, span: Span },
    /// The elements of one BPF map (`iter:bpf_map_elem(MAP)`: the link's
    /// `map.map_fd`), named by id or by its pinned path.
    Map { map: MapRef, span: Span },
}

/// How a script names a BPF map: its id, or the path it is pinned at on
/// bpffs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapRef {
    Id(u32),
    Path(String),
}

impl std::fmt::Display for MapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapRef::Id(id) => write!(f, "{id}"),
            MapRef::Path(p) => f.write_str(p),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobePoint {
    /// The resolved path of the binary.
    pub binary: String,
    /// The function, offset or USDT marker, as `probename` names it.
    pub name: String,
    pub offset: FileOffset,
    pub ret: bool,
    /// A USDT semaphore, counted up by the kernel while attached.
    pub ref_ctr: Option<FileOffset>,
    /// The spec it came from, for attach errors.
    pub spec: Span,
}

/// How a group of attach points runs: one BPF program per kind per probe
/// (programs are emitted in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProgKind {
    Tracepoint,
    RawTracepoint,
    SysEnter,
    SysExit,
    Perf,
    /// A `struct pt_regs` program attached as uprobes/uretprobes.
    Uprobe,
    /// The same for kprobes/kretprobes.
    Kprobe,
    /// A BTF-enabled raw tracepoint, one program per event.
    TpBtf,
    /// A kernel function's entry or exit trampoline, one program per
    /// function.
    Fentry,
    Fexit,
    /// A BPF iterator, one program per target.
    Iter,
}

/// The bytes of a classic syscall tracepoint's record that a program on
/// raw_syscalls rebuilds when its body reads fields: the common header
/// (zeros), `__syscall_nr` at 8, the six arguments (or `ret`) from 16.
pub const SYSCALL_RECORD_BYTES: u32 = 64;

/// What a program's context register (r1 at entry) points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// The event's record, laid out as its format file says (`CtxField`).
    Record,
    /// A raw tracepoint's arguments, as u64s.
    RawArgs,
    /// raw_syscalls' arguments: the program starts by looking the syscall
    /// number up in its probe's filter map (`Map::syscall_filter`).
    RawSyscalls { exit: bool },
    /// A perf event sample.
    PerfSample,
    /// The probed task's `struct pt_regs` (`Fetch` reads it).
    PtRegs,
    /// A BTF-typed function's arguments, as u64s the verifier knows the
    /// types of (`PathBase::Arg`).
    BtfArgs,
}

/// The facts bpfgen needs about one program kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgShape {
    /// Ends the program's name: `ktap_p{probe}_{suffix}`.
    pub suffix: &'static str,
    /// The ELF section, by libbpf's convention (it picks the program type).
    pub section: &'static str,
    pub context: Context,
    /// The kernel fixes the program's target when it loads (tp_btf,
    /// fentry, iter): one program per attach point, its section
    /// `SECTION/EVENT`, its `probename` a constant.
    pub per_point: bool,
    /// Its programs run when a reader reads them and print into its
    /// seq_file (`StmtKind::SeqPrint`; iterators).
    pub seq_file: bool,
}

impl ProgKind {
    /// The one table of per-kind facts for the backends.
    pub fn shape(self) -> ProgShape {
        let shape = |suffix, section, context| ProgShape { suffix, section, context, per_point: false, seq_file: false };
        match self {
            ProgKind::Tracepoint => shape("tp", "tracepoint", Context::Record),
            ProgKind::RawTracepoint => shape("raw", "raw_tp", Context::RawArgs),
            ProgKind::SysEnter => shape("sys_enter", "raw_tp", Context::RawSyscalls { exit: false }),
            ProgKind::SysExit => shape("sys_exit", "raw_tp", Context::RawSyscalls { exit: true }),
            ProgKind::Perf => shape("perf", "perf_event", Context::PerfSample),
            ProgKind::Uprobe => shape("uprobe", "uprobe", Context::PtRegs),
            ProgKind::Kprobe => shape("kprobe", "kprobe", Context::PtRegs),
            ProgKind::TpBtf => ProgShape { per_point: true, ..shape("btf", "tp_btf", Context::BtfArgs) },
            ProgKind::Fentry => ProgShape { per_point: true, ..shape("fentry", "fentry", Context::BtfArgs) },
            ProgKind::Fexit => ProgShape { per_point: true, ..shape("fexit", "fexit", Context::BtfArgs) },
            ProgKind::Iter => ProgShape { per_point: true, seq_file: true, ..shape("iter", "iter", Context::BtfArgs) },
        }
    }

    /// The program's name for probe number `probe` (`point`: the attach
    /// point of a per-point program).
    pub fn program_name(self, probe: super::ProbeId) -> String {
        format!("ktap_p{}_{}", probe.0, self.shape().suffix)
    }

    /// A per-point program's name and section for attach point `point`
    /// (index `i` in its probe).
    pub fn point_program(self, probe: super::ProbeId, i: usize, point: &Attach) -> (String, String) {
        let shape = self.shape();
        (format!("ktap_p{}_{}{i}", probe.0, shape.suffix), format!("{}/{}", shape.section, point.event()))
    }
}

impl Attach {
    pub fn kind(&self) -> ProgKind {
        match self {
            Attach::Tracepoint { .. } => ProgKind::Tracepoint,
            Attach::RawTracepoint { .. } => ProgKind::RawTracepoint,
            Attach::Syscall { exit: false, .. } => ProgKind::SysEnter,
            Attach::Syscall { exit: true, .. } => ProgKind::SysExit,
            Attach::Profile { .. } => ProgKind::Perf,
            Attach::Uprobe(_) => ProgKind::Uprobe,
            Attach::Kprobe { .. } => ProgKind::Kprobe,
            Attach::TpBtf { .. } => ProgKind::TpBtf,
            Attach::Fentry { ret: false, .. } => ProgKind::Fentry,
            Attach::Fentry { ret: true, .. } => ProgKind::Fexit,
            Attach::Iter { .. } => ProgKind::Iter,
        }
    }

    /// The event name `probename` gives.
    pub fn event(&self) -> &str {
        match self {
            Attach::Tracepoint { event, .. } | Attach::RawTracepoint { event, .. } | Attach::Syscall { event, .. } => event,
            Attach::Profile { name, .. } => name,
            Attach::Uprobe(u) => &u.name,
            Attach::Kprobe { symbol, .. } => symbol,
            Attach::TpBtf { event, .. } => event,
            Attach::Fentry { func, .. } => func,
            Attach::Iter { target, .. } => target,
        }
    }

    /// `system:event` as the user would write it.
    pub fn full_name(&self) -> String {
        match self {
            Attach::Tracepoint { system, event } | Attach::RawTracepoint { system, event } => format!("{system}:{event}"),
            Attach::Syscall { event, .. } => format!("syscalls:{event}"),
            Attach::Profile { name, .. } => name.clone(),
            Attach::Uprobe(u) => format!("probe:{}:{}{}", u.binary, u.name, if u.ret { "%return" } else { "" }),
            Attach::Kprobe { symbol, ret, .. } => format!("probe:{symbol}{}", if *ret { "%return" } else { "" }),
            Attach::TpBtf { event, .. } => format!("btf:{event}"),
            Attach::Fentry { func, ret, .. } => format!("{}:{func}", if *ret { "fexit" } else { "fentry" }),
            Attach::Iter { target, param, .. } => format!("iter:{target}{}", IterParam::suffix(param)),
        }
    }

    /// The point as the `--emit ir` dump shows it.
    pub fn describe(&self) -> String {
        match self {
            Attach::Tracepoint { system, event } => format!("tracepoint {system}:{event}"),
            Attach::RawTracepoint { system, event } => format!("raw_tp {system}:{event}"),
            Attach::Syscall { event, nr, .. } => format!("syscall {event} (nr {nr})"),
            Attach::Profile { period_ns, .. } => format!("profile every {period_ns} ns"),
            Attach::Uprobe(u) => {
                let sema = u.ref_ctr.map(|r| format!(" semaphore {:#x}", r.0)).unwrap_or_default();
                format!("{} {}:{} @{:#x}{sema}", if u.ret { "uretprobe" } else { "uprobe" }, u.binary, u.name, u.offset.0)
            }
            Attach::Kprobe { symbol, ret, .. } => format!("{} {symbol}", if *ret { "kretprobe" } else { "kprobe" }),
            Attach::TpBtf { event, .. } => format!("tp_btf {event}"),
            Attach::Fentry { func, ret, .. } => format!("{} {func}", if *ret { "fexit" } else { "fentry" }),
            Attach::Iter { target, param, .. } => format!("iter {target}{}", IterParam::suffix(param)),
        }
    }
}

impl IterParam {
    /// `(PARAM)` as the spec writes it, or nothing.
    pub fn suffix(param: &Option<IterParam>) -> String {
        match param {
            Some(IterParam::Pid { pid, .. }) => format!("({pid})"),
            Some(IterParam::Cgroup { path: Some(path), .. }) => format!("({path})"),
            Some(IterParam::Cgroup { path: None, .. }) => String::new(),
            Some(IterParam::Map { map, .. }) => format!("({map})"),
            None => String::new(),
        }
    }
}
