//! Kernel facts: what the compiler may know of the running kernel and of
//! the binaries it probes (events and their record layouts, syscall
//! numbers, symbols, USDT markers, kernel functions, facts from the
//! kernel's BTF and the lazy reader over it), asked through one trait, [`KernelFacts`], and answered
//! in the plain data defined here. The runtime implements it for the live
//! system (`runtime::facts`); [`FakeKernel`] answers from a catalogue for
//! tests. Pure: never does IO, and depends on neither the frontend nor
//! the runtime.

mod fake;

pub use crate::ir::{EventField, FieldKind, FileOffset, PercpuAccess};
pub use fake::{sample_btf, sample_module_btf, FakeBinary, FakeKernel};
pub use crate::btf::read::{BtfReader, MemberDesc, TypeDesc};
pub use crate::btf::table::{TypeSource, TypeTable};
pub use crate::btf::TypeId;
pub use crate::ir::{MapRef, RegOffset};
use std::collections::HashMap;
use std::sync::Arc;

/// What lowering may ask of the kernel and of binaries. Every question
/// but the first four has a default answer: a source that knows no
/// binaries, no kernel functions or no BTF says so.
pub trait KernelFacts {
    /// Tracepoints whose system and event match the globs, sorted.
    fn tracepoints(&self, system: &str, event: &str) -> Result<Vec<(String, String)>, String>;
    /// The record layout of one tracepoint.
    fn format(&self, system: &str, event: &str) -> Result<Vec<EventField>, String>;
    /// Existing names close to `system:event`, best first (for suggestions).
    fn similar(&self, system: &str, event: &str) -> Vec<String>;
    /// The number of syscall `name` (`openat`), if known.
    fn syscall_nr(&self, name: &str) -> Option<u32>;
    /// The path a binary spec (`/bin/ls`, `libc`) names.
    fn resolve_binary(&self, _binary: &str) -> Result<String, String> {
        Err(NO_PROBES.into())
    }
    /// The functions of a binary whose names match `glob`.
    fn user_symbols(&self, _binary: &str, _glob: &str) -> Result<UserSymbols, String> {
        Err(NO_PROBES.into())
    }
    /// The USDT markers of a binary whose names match `glob`.
    fn sdt_markers(&self, _binary: &str, _glob: &str) -> Result<SdtMarkers, String> {
        Err(NO_PROBES.into())
    }
    /// Traceable kernel functions matching `glob`, sorted.
    fn kernel_functions(&self, _glob: &str) -> Result<Vec<String>, String> {
        Err(NO_PROBES.into())
    }
    /// The address of a kernel symbol (for `@sym` fetches).
    fn kernel_symbol(&self, _name: &str) -> Option<u64> {
        None
    }
    /// Byte offset of `comm` (a `char[16]`) in the running kernel's
    /// `struct task_struct`, from its BTF; None when unknown (probes then
    /// copy the name with a helper).
    fn task_comm_offset(&self) -> Option<u32> {
        None
    }
    /// The bit offset of the one-bit field `member` of the running
    /// kernel's `struct task_struct`, from its BTF, or why it is unknown.
    fn task_flag_bit(&self, _member: &str) -> Result<u32, String> {
        Err(NO_BTF.into())
    }
    /// How a probe reads the kernel per-CPU integer variable `name`, from
    /// the kernel's BTF, or why it cannot.
    fn percpu_var(&self, _name: &str) -> Result<PercpuAccess, String> {
        Err(NO_BTF.into())
    }
    /// The kernel's BTF (vmlinux), read lazily: typed arguments, `curtask`
    /// and member chains ask it their types; or why there is none.
    fn kernel_btf(&self) -> Result<BtfReader<'_>, String> {
        Err(NO_BTF.into())
    }
    /// Whether the verifier lets a program of BTF tracepoint `event`
    /// follow its argument `arg` (from 0, after the private data) as a
    /// pointer: it holds some as plain numbers (arguments that may carry
    /// an error or a special value: `info` of `signal_generate`), which
    /// only `bpf_probe_read_kernel` reads through. None when it cannot
    /// say (they are taken as pointers).
    fn btf_arg_is_pointer(&self, _event: &str, _arg: u32) -> Option<bool> {
        None
    }
    /// What the debug info (DWARF) of the binary at `path` says of
    /// function `func`: where to attach to read its parameters, their
    /// types and locations there, its return type; or why it cannot say
    /// (no debug info: where it was looked for).
    fn debug_function(&self, _path: &str, _func: &str) -> Result<DebugScope, String> {
        Err(NO_DEBUG.into())
    }
    /// What the debug info of the binary at `path` says of source line
    /// `line` of `file`: its first statement's address and the variables
    /// in scope there.
    fn debug_line(&self, _path: &str, _file: &str, _line: u32) -> Result<DebugScope, String> {
        Err(NO_DEBUG.into())
    }
    /// The BPF map a script names (`iter:bpf_map_elem(MAP)`): its sizes
    /// and, when it has BTF, its key and value types; or why there is
    /// none (no map with that id, a path that is no pinned map).
    fn bpf_map(&self, _map: &MapRef) -> Result<BpfMap, String> {
        Err(NO_MAPS.into())
    }
}

/// The default answer of [`KernelFacts::bpf_map`].
pub const NO_MAPS: &str = "BPF maps are not available from this event source";

/// A BPF map of the running system, as `bpf_map_get_info_by_fd` and its
/// BTF describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfMap {
    pub id: u32,
    pub name: String,
    /// Its kind as the kernel names it (`hash`, `percpu_array`...).
    pub kind: String,
    pub key_size: u32,
    pub value_size: u32,
    /// Its key and value types, when the map has BTF.
    pub types: Option<MapTypes>,
}

/// A map's key and value types, ids into `table` (the map's BTF,
/// converted: the types the key and value reach).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapTypes {
    pub key: TypeId,
    pub value: TypeId,
    pub table: Arc<TypeTable>,
}

/// The default answer of the debug-info questions.
pub const NO_DEBUG: &str = "debug info is not available from this event source";

/// Where a variable of a user binary lives at the probed address, from
/// its DWARF location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarLoc {
    /// In a register (`DW_OP_reg5`).
    Reg(RegOffset),
    /// In memory, at a register's value plus an offset (`DW_OP_breg7`,
    /// and `DW_OP_fbreg` against the frame base and the CFA there).
    Mem { base: RegOffset, offset: i64 },
    /// Optimised out at this address.
    OptimizedOut,
    /// A location ktap cannot turn into BPF: what it is.
    Untranslatable(String),
}

/// A parameter or local of a user function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugVar {
    pub name: String,
    pub ty: TypeId,
    pub loc: VarLoc,
    /// A parameter (else a local).
    pub param: bool,
}

/// What a user binary's debug info says at one probed place: a
/// function's entry (after its prologue when its parameters live in the
/// frame) or a source line's first statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugScope {
    /// The file the DWARF was read from (the binary or its debug file).
    pub debug_file: String,
    /// The function holding the place.
    pub function: String,
    /// The file offset to attach at to read `vars`.
    pub offset: FileOffset,
    /// The place's address (for listings).
    pub address: u64,
    /// Parameters, then the locals in scope (inner scopes last).
    pub vars: Vec<DebugVar>,
    /// The function's return type (`TypeId::VOID` for none).
    pub ret: TypeId,
    /// The types `vars` and `ret` name.
    pub types: Arc<TypeTable>,
}

/// The BTF typedef prefix of a BTF-enabled tracepoint's prototype
/// (`btf_trace_sched_switch`, include/trace/bpf_probe.h).
pub const BTF_TRACE_PREFIX: &str = "btf_trace_";

/// The BTF function prefix of a tracepoint class's BPF entry
/// (`__bpf_trace_sched_switch`): its prototype names the parameters that
/// the `btf_trace_*` typedef's leaves unnamed.
pub const BPF_TRACE_FUNC: &str = "__bpf_trace_";

/// The prototypes of BTF tracepoints, with their parameters' names where
/// the BTF has them: from `__probestub_EVENT`, the empty function every
/// tracepoint has for probes to attach to (kernels since 6.4), which
/// names the parameters of an event defined from another's class too
/// (DEFINE_EVENT: `sched_wakeup`); else from `__bpf_trace_EVENT`, which
/// exists for an event that is its own class (TRACE_EVENT); else the
/// unnamed `btf_trace_EVENT` typedef's. The stub comes first: a name
/// vmlinux lacks costs a whole walk and then the modules' BTF. (Matching an event to a class by
/// its parameter types names some wrongly: classes share types.)
pub struct TracepointProtos<'r, 'a> {
    reader: &'r BtfReader<'a>,
    /// Events asked so far: past a few, one walk indexes them all.
    asked: u32,
    /// Probe stubs, class functions and typedefs by name (the event or
    /// class).
    index: Option<[HashMap<String, TypeId>; 3]>,
}

/// The BTF function prefix of a tracepoint's probe stub
/// (`__probestub_sched_wakeup`, include/linux/tracepoint.h).
const PROBE_STUB: &str = "__probestub_";

/// Events [`TracepointProtos`] looks up by name before it indexes them
/// all (a lookup walks the BTF until the name; an index, all of it).
const LOOKUPS_BEFORE_INDEX: u32 = 4;

impl<'r, 'a> TracepointProtos<'r, 'a> {
    pub fn new(reader: &'r BtfReader<'a>) -> TracepointProtos<'r, 'a> {
        TracepointProtos { reader, asked: 0, index: None }
    }

    /// The probe stub, the class function and the typedef named for
    /// `event`, each when the BTF has it (a later one only when no earlier
    /// one is found, without the index).
    fn lookup(&mut self, event: &str) -> [Option<TypeId>; 3] {
        let r = self.reader;
        self.asked += 1;
        if self.index.is_none() && self.asked > LOOKUPS_BEFORE_INDEX {
            // The first of a name, as `find` answers.
            let index = |kind, prefix| {
                let mut map = HashMap::new();
                for (name, id) in r.ids_with_prefix(kind, prefix).unwrap_or_default() {
                    map.entry(name).or_insert(id);
                }
                map
            };
            use crate::btf::Kind;
            self.index = Some([index(Kind::FUNC, PROBE_STUB), index(Kind::FUNC, BPF_TRACE_FUNC), index(Kind::TYPEDEF, BTF_TRACE_PREFIX)]);
        }
        if let Some(index) = &self.index {
            return index.each_ref().map(|m| m.get(event).copied());
        }
        let mut found = [None; 3];
        let names = [(crate::btf::Kind::FUNC, PROBE_STUB), (crate::btf::Kind::FUNC, BPF_TRACE_FUNC), (crate::btf::Kind::TYPEDEF, BTF_TRACE_PREFIX)];
        for (slot, (kind, prefix)) in found.iter_mut().zip(names) {
            *slot = r.find(kind, &format!("{prefix}{event}")).ok().flatten();
            if slot.is_some() {
                break;
            }
        }
        found
    }

    /// The prototype (a FUNC or the typedef) of BTF tracepoint `event`;
    /// None when the BTF has no such tracepoint.
    pub fn proto(&mut self, event: &str) -> Option<TypeId> {
        let [stub, func, typedef] = self.lookup(event);
        stub.or(func).or(typedef)
    }
}

/// The BTF function prefix of a BPF iterator target (`bpf_iter_task`,
/// include/linux/bpf.h: DEFINE_BPF_ITER_FUNC): its parameters after
/// `meta` are the iterator context's fields.
pub const BPF_ITER_PREFIX: &str = "bpf_iter_";

/// The iterator targets the kernel's BTF describes (`task`, `tcp`...),
/// sorted: those with both a function `bpf_iter_TARGET` and a context
/// struct `bpf_iter__TARGET` (the open-coded iterator kfuncs share the
/// function prefix, `bpf_iter_get_info` too, but have no context). Two
/// whole walks of the BTF: for listings and errors only.
pub fn iter_targets(reader: &BtfReader<'_>) -> Result<Vec<String>, crate::btf::read::Error> {
    let contexts = reader.names_with_prefix(crate::btf::Kind::STRUCT, ITER_CONTEXT_PREFIX)?;
    let mut out = reader.names_with_prefix(crate::btf::Kind::FUNC, BPF_ITER_PREFIX)?;
    out.retain(|f| contexts.contains(f));
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether `target` is an iterator target of the kernel's BTF (as
/// [`iter_targets`] says, by two name lookups).
pub fn is_iter_target(reader: &BtfReader<'_>, target: &str) -> Result<bool, crate::btf::read::Error> {
    Ok(reader.find(crate::btf::Kind::FUNC, &format!("{BPF_ITER_PREFIX}{target}"))?.is_some()
        && reader.find(crate::btf::Kind::STRUCT, &format!("{ITER_CONTEXT_PREFIX}{target}"))?.is_some())
}

/// The BTF struct prefix of an iterator's context (`struct bpf_iter__task`).
const ITER_CONTEXT_PREFIX: &str = "bpf_iter__";

/// The default answer of [`KernelFacts`] for dynamic probes: sources that
/// know no binaries say so.
pub const NO_PROBES: &str = "dynamic probes are not available from this event source";

/// The default answer of [`KernelFacts::percpu_var`].
pub const NO_BTF: &str = "the kernel's BTF is not available";

/// A binary's functions matching a glob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSymbols {
    /// The binary's resolved path (`libc` becomes `/lib/.../libc.so.6`).
    pub path: String,
    /// Sorted by name; each symbol once.
    pub symbols: Vec<(String, FileOffset)>,
    /// The binary has no `.symtab`: only exported functions are visible.
    pub stripped: bool,
}

/// One USDT marker from a binary's `.note.stapsdt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdtMarker {
    pub provider: String,
    pub name: String,
    pub offset: FileOffset,
    pub semaphore: Option<FileOffset>,
    /// The operand spec as written in the note (`-4@%eax 8@-8(%rbp)`).
    pub args: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdtMarkers {
    pub path: String,
    /// Markers matching the glob, in note order.
    pub markers: Vec<SdtMarker>,
    /// `provider:name` of every marker, for suggestions.
    pub all: Vec<String>,
}

/// Shell-style glob match with `*` and `?`, as event, symbol and marker
/// specs use it.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("sys_enter_*", "sys_enter_openat"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*open*", "sys_enter_openat"));
        assert!(!glob_match("sys_exit_*", "sys_enter_openat"));
        assert!(glob_match("s?s", "sys"));
        assert!(!glob_match("sys", "sysx"));
    }
}
