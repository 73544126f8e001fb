//! A made-up kernel for tests: [`FakeKernel`] answers [`KernelFacts`] from
//! the events, syscalls, binaries and BTF facts it was built with, and
//! nothing else, so compiler tests need neither root nor tracefs. Never
//! touches the machine.

use crate::btf::read::ModuleBtf;
use super::{glob_match, BpfMap, BtfReader, DebugScope, MapRef, EventField, FileOffset, KernelFacts, PercpuAccess, SdtMarker, SdtMarkers, UserSymbols, NO_BTF};
use std::sync::Mutex;

/// One binary of the catalogue, with the names that resolve to it.
#[derive(Clone, Debug, Default)]
pub struct FakeBinary {
    pub path: String,
    /// Short names (`libapp`) that resolve to `path`.
    pub aliases: Vec<String>,
    /// Functions and their file offsets, in the order given.
    pub functions: Vec<(String, FileOffset)>,
    /// USDT markers, in note order.
    pub markers: Vec<SdtMarker>,
}

/// A catalogue built with [`FakeKernel::new`] and the builder methods.
/// It records the events whose format was read ([`FakeKernel::format_reads`]).
#[derive(Debug, Default)]
pub struct FakeKernel {
    events: Vec<(String, String, Vec<EventField>)>,
    syscalls: Vec<(String, u32)>,
    binaries: Vec<FakeBinary>,
    kernel_functions: Vec<String>,
    /// Set once any BTF fact was given: unknown per-CPU variables are then
    /// missing from the BTF rather than the BTF missing.
    btf: bool,
    comm_offset: Option<u32>,
    percpu: Vec<(String, PercpuAccess)>,
    /// A whole BTF blob (typed arguments, `curtask`, member chains).
    btf_blob: Option<Vec<u8>>,
    /// Modules' BTF, split on `btf_blob`.
    modules: Vec<ModuleBtf>,
    /// BTF tracepoint arguments the verifier holds as numbers.
    number_args: Vec<(String, u32)>,
    task_flags: Vec<(String, u32)>,
    format_reads: Mutex<Vec<String>>,
    /// Debug info of binaries: (path, function or `file:line`, scope).
    debug: Vec<(String, String, DebugScope)>,
    /// BPF maps, each with the path it is pinned at (if any).
    maps: Vec<(BpfMap, Option<String>)>,
}

impl FakeKernel {
    /// A kernel with no events, no binaries and no BTF.
    pub fn new() -> FakeKernel {
        FakeKernel::default()
    }

    /// Adds tracepoint `system:event` with its record layout. Add them
    /// sorted: [`KernelFacts::tracepoints`] answers in this order.
    pub fn event(mut self, system: &str, event: &str, fields: Vec<EventField>) -> FakeKernel {
        self.events.push((system.into(), event.into(), fields));
        self
    }

    pub fn syscall(mut self, name: &str, nr: u32) -> FakeKernel {
        self.syscalls.push((name.into(), nr));
        self
    }

    /// Debug info of the binary at `path`: `what` is a function's name
    /// or `file:line`.
    pub fn debug(mut self, path: &str, what: &str, scope: DebugScope) -> FakeKernel {
        self.debug.push((path.into(), what.into(), scope));
        self
    }

    fn find_debug(&self, path: &str, what: &str) -> Result<DebugScope, String> {
        if !self.debug.iter().any(|(p, _, _)| p == path) {
            return Err(format!("{path} has no debug info (looked in the binary only)"));
        }
        match self.debug.iter().find(|(p, w, _)| p == path && w == what) {
            Some((_, _, scope)) => Ok(scope.clone()),
            None => Err(format!("the debug info of {path} does not describe `{what}`")),
        }
    }

    /// Adds a BPF map, pinned at `path` when given.
    pub fn bpf_map(mut self, map: BpfMap, path: Option<&str>) -> FakeKernel {
        self.maps.push((map, path.map(String::from)));
        self
    }

    pub fn binary(mut self, binary: FakeBinary) -> FakeKernel {
        self.binaries.push(binary);
        self
    }

    /// Adds a traceable kernel function (add them sorted).
    pub fn kernel_function(mut self, name: &str) -> FakeKernel {
        self.kernel_functions.push(name.into());
        self
    }

    /// Gives the kernel a BTF in which `task_struct.comm` lies at `offset`.
    pub fn task_comm_offset(mut self, offset: u32) -> FakeKernel {
        self.btf = true;
        self.comm_offset = Some(offset);
        self
    }

    /// Gives the kernel a BTF in which `task_struct.member` is a one-bit
    /// field at bit `bit`.
    pub fn task_flag_bit(mut self, member: &str, bit: u32) -> FakeKernel {
        self.btf = true;
        self.task_flags.push((member.into(), bit));
        self
    }

    /// Gives the kernel a BTF with per-CPU integer variable `name`.
    pub fn percpu_var(mut self, name: &str, access: PercpuAccess) -> FakeKernel {
        self.btf = true;
        self.percpu.push((name.into(), access));
        self
    }

    /// Gives the kernel a whole BTF blob, read as the running kernel's is.
    pub fn btf(mut self, blob: Vec<u8>) -> FakeKernel {
        self.btf = true;
        self.btf_blob = Some(blob);
        self
    }

    /// Gives the kernel a module whose BTF (split on the blob of
    /// [`FakeKernel::btf`]) is `blob`.
    pub fn module_btf(mut self, name: &str, blob: Vec<u8>) -> FakeKernel {
        self.modules.push(ModuleBtf::new(name, blob));
        self
    }

    /// Makes argument `arg` of BTF tracepoint `event` one the verifier
    /// holds as a number (the other arguments are pointers it follows).
    pub fn btf_number_arg(mut self, event: &str, arg: u32) -> FakeKernel {
        self.number_args.push((event.into(), arg));
        self
    }

    /// The events whose format was read so far, in order.
    pub fn format_reads(&self) -> Vec<String> {
        self.format_reads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find_binary(&self, spec: &str) -> Result<&FakeBinary, String> {
        self.binaries
            .iter()
            .find(|b| b.path == spec || b.aliases.iter().any(|a| a == spec))
            .ok_or_else(|| format!("cannot open {spec}: No such file or directory (os error 2)"))
    }
}

impl KernelFacts for FakeKernel {
    fn tracepoints(&self, system: &str, event: &str) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .events
            .iter()
            .filter(|(s, e, _)| glob_match(system, s) && glob_match(event, e))
            .map(|(s, e, _)| (s.clone(), e.clone()))
            .collect())
    }

    fn format(&self, system: &str, event: &str) -> Result<Vec<EventField>, String> {
        self.format_reads.lock().unwrap_or_else(|e| e.into_inner()).push(event.to_string());
        let found = self.events.iter().find(|(s, e, _)| s == system && e == event);
        found.map(|(_, _, fields)| fields.clone()).ok_or_else(|| format!("no event {system}:{event}"))
    }

    /// Events sharing the first 3 characters of the system and the first
    /// 5 of the event, in catalogue order.
    fn similar(&self, system: &str, event: &str) -> Vec<String> {
        let (sys, ev) = (system.get(..3).unwrap_or(system), event.get(..5).unwrap_or(event));
        self.events.iter().filter(|(s, e, _)| s.starts_with(sys) && e.starts_with(ev)).map(|(s, e, _)| format!("{s}:{e}")).collect()
    }

    fn syscall_nr(&self, name: &str) -> Option<u32> {
        self.syscalls.iter().find(|(n, _)| n == name).map(|(_, nr)| *nr)
    }

    fn resolve_binary(&self, binary: &str) -> Result<String, String> {
        self.find_binary(binary).map(|b| b.path.clone())
    }

    fn user_symbols(&self, binary: &str, glob: &str) -> Result<UserSymbols, String> {
        let b = self.find_binary(binary)?;
        let symbols = b.functions.iter().filter(|(n, _)| glob_match(glob, n)).cloned().collect();
        Ok(UserSymbols { path: b.path.clone(), symbols, stripped: false })
    }

    fn sdt_markers(&self, binary: &str, glob: &str) -> Result<SdtMarkers, String> {
        let b = self.find_binary(binary)?;
        let all = b.markers.iter().map(|m| format!("{}:{}", m.provider, m.name)).collect();
        // As the ELF reader does: by name, or by `provider:name`.
        let markers = b.markers.iter().filter(|m| glob_match(glob, &m.name) || glob_match(glob, &format!("{}:{}", m.provider, m.name))).cloned().collect();
        Ok(SdtMarkers { path: b.path.clone(), markers, all })
    }

    fn kernel_functions(&self, glob: &str) -> Result<Vec<String>, String> {
        Ok(self.kernel_functions.iter().filter(|f| glob_match(glob, f)).cloned().collect())
    }

    fn task_comm_offset(&self) -> Option<u32> {
        self.comm_offset
    }

    fn task_flag_bit(&self, member: &str) -> Result<u32, String> {
        if !self.btf {
            return Err(NO_BTF.into());
        }
        let found = self.task_flags.iter().find(|(m, _)| m == member);
        found.map(|(_, bit)| *bit).ok_or_else(|| format!("the kernel's BTF has no one-bit field `task_struct.{member}`"))
    }

    fn percpu_var(&self, name: &str) -> Result<PercpuAccess, String> {
        if !self.btf {
            return Err(NO_BTF.into());
        }
        let found = self.percpu.iter().find(|(n, _)| n == name);
        found.map(|(_, a)| a.clone()).ok_or_else(|| format!("the kernel's BTF has no per-CPU variable `{name}`"))
    }

    fn debug_function(&self, path: &str, func: &str) -> Result<DebugScope, String> {
        self.find_debug(path, func)
    }

    fn debug_line(&self, path: &str, file: &str, line: u32) -> Result<DebugScope, String> {
        self.find_debug(path, &format!("{file}:{line}"))
    }

    fn bpf_map(&self, map: &MapRef) -> Result<BpfMap, String> {
        let found = self.maps.iter().find(|(m, path)| match map {
            MapRef::Id(id) => m.id == *id,
            MapRef::Path(p) => path.as_deref() == Some(p.as_str()),
        });
        match (found, map) {
            (Some((m, _)), _) => Ok(m.clone()),
            (None, MapRef::Id(id)) => Err(format!("no BPF map has id {id}")),
            (None, MapRef::Path(p)) => Err(format!("{p} is not a pinned BPF map: No such file or directory")),
        }
    }

    fn btf_arg_is_pointer(&self, event: &str, arg: u32) -> Option<bool> {
        self.btf_blob.as_ref()?;
        Some(!self.number_args.iter().any(|(e, a)| e == event && *a == arg))
    }

    fn kernel_btf(&self) -> Result<BtfReader<'_>, String> {
        let blob = self.btf_blob.as_deref().ok_or(NO_BTF)?;
        Ok(BtfReader::new(blob).map_err(|e| e.to_string())?.with_modules(&self.modules))
    }
}

/// A small kernel BTF laid out like x86-64 6.18's for the members tests
/// read: `struct task_struct` (`__state`, `se.sum_exec_runtime`, `mm`,
/// `pid`, `tgid`, `real_parent`, `comm`, the bitfield `in_execve`), `struct mm_struct`
/// with its owner in an anonymous struct, `enum` and `char *` members,
/// the BTF tracepoints `sched_switch`, `sched_wakeup` and
/// `sched_wakeup_new` (of sched_wakeup's class: named by its probe stub)
/// (prototypes
/// and the named `__bpf_trace_*` functions), and `vfs_read` with a small
/// `struct file`.
pub fn sample_btf() -> Vec<u8> {
    sample_btf_builder().to_bytes()
}

/// The BTF of a module `fakenet` on [`sample_btf`], as the kernel gives
/// it (split BTF): `struct fakenet_dev` (its owner a vmlinux
/// `task_struct *`, its ring a `struct fakenet_ring *` of its own, a
/// signed 5-bit `prio`), the
/// BTF tracepoint `fakenet_xmit(struct fakenet_dev *dev, unsigned int
/// nbytes)` and `int fakenet_open(struct fakenet_dev *dev, int flags)`.
pub fn sample_module_btf() -> Vec<u8> {
    use crate::btf::write::BtfMember;
    use crate::btf::{FuncLinkage, Kind, TypeId};
    let m = |name: &str, ty: TypeId, byte: u32| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 };
    let mut b = sample_btf_builder();
    let base = b.to_bytes();
    let mark = b.split_mark();
    let kernel = BtfReader::new(&base).expect("the sample parses");
    let find = |kind, name| kernel.find(kind, name).ok().flatten().unwrap_or(TypeId::VOID);
    let (int, uint, ch, task) = (find(Kind::INT, "int"), find(Kind::INT, "unsigned int"), find(Kind::INT, "char"), find(Kind::STRUCT, "task_struct"));
    let ring = b.add_struct("fakenet_ring", 8, &[m("head", uint, 0), m("tail", uint, 4)]);
    let ring_ptr = b.add_ptr(ring);
    let task_ptr = b.add_ptr(task);
    let name = b.add_array(ch, int, 16);
    let prio = BtfMember { bit_offset: 40 * 8 + 1, ..m("prio", int, 0) };
    let dev = b.add_struct("fakenet_dev", 48, &[m("ifindex", int, 0), m("owner", task_ptr, 8), m("name", name, 16), m("ring", ring_ptr, 32), prio]);
    b.set_member_bits(dev, 4, 5);
    let dev_ptr = b.add_ptr(dev);
    let void_ptr = b.add_ptr(TypeId::VOID);
    let xmit = b.add_func_proto(TypeId::VOID, &[("__data", void_ptr), ("dev", dev_ptr), ("nbytes", uint)]);
    let xmit_ptr = b.add_ptr(xmit);
    b.add_typedef("btf_trace_fakenet_xmit", xmit_ptr);
    b.add_func("__bpf_trace_fakenet_xmit", xmit, FuncLinkage::Static);
    let open = b.add_func_proto(int, &[("dev", dev_ptr), ("flags", int)]);
    b.add_func("fakenet_open", open, FuncLinkage::Global);
    b.split_bytes(mark)
}

fn sample_btf_builder() -> crate::btf::write::BtfBuilder {
    use crate::btf::write::{BtfBuilder, BtfMember};
    use crate::btf::{FuncLinkage, TypeId};
    let m = |name: &str, ty: TypeId, byte: u32| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 };
    let mut b = BtfBuilder::new();
    let int = b.add_int("int", 4, true);
    let uint = b.add_int("unsigned int", 4, false);
    let ch = b.add_int("char", 1, true);
    let u64t = b.add_int("long long unsigned int", 8, false);
    let boolean = b.add_int("_Bool", 1, false);
    let pid_t = b.add_typedef("pid_t", int);
    let comm = b.add_array(ch, int, 16);
    let char_ptr = b.add_ptr(ch);
    let se = b.add_struct("sched_entity", 256, &[m("on_rq", uint, 64), m("exec_start", u64t, 72), m("sum_exec_runtime", u64t, 80)]);
    let policy = b.add_enum("sched_policy", &[("SCHED_NORMAL", 0), ("SCHED_FIFO", 1)]);
    // mm_struct's owner points forward to the task's pointer type: the
    // anonymous struct, mm_struct, its pointer, task_struct, then it.
    let task_ptr_id = TypeId(b.type_count() as u32 + 5);
    let mm_owner = b.add_struct("", 8, &[m("owner", task_ptr_id, 0)]);
    let mm = b.add_struct("mm_struct", 1400, &[m("mm_count", int, 0), m("", mm_owner, 1304)]);
    let mm_ptr = b.add_ptr(mm);
    let task_members = [
        m("__state", uint, 24),
        m("se", se, 128),
        m("policy", policy, 1000),
        m("mm", mm_ptr, 1136),
        m("pid", pid_t, 1264),
        m("tgid", pid_t, 1268),
        m("real_parent", task_ptr_id, 1280),
        m("comm", comm, 1752),
        m("name_ptr", char_ptr, 1776),
        BtfMember { bit_offset: 1192 * 8 + 3, ..m("in_execve", uint, 0) },
    ];
    let t = b.add_struct("task_struct", 14400, &task_members);
    b.set_member_bits(t, task_members.len() - 1, 1);
    let tp = b.add_ptr(t);
    let void_ptr = b.add_ptr(TypeId::VOID);
    let switch = [("", void_ptr), ("", boolean), ("", tp), ("", tp), ("", uint)];
    let proto = b.add_func_proto(TypeId::VOID, &switch);
    let proto_ptr = b.add_ptr(proto);
    b.add_typedef("btf_trace_sched_switch", proto_ptr);
    let named = [("__data", void_ptr), ("preempt", boolean), ("prev", tp), ("next", tp), ("prev_state", uint)];
    let named = b.add_func_proto(TypeId::VOID, &named);
    b.add_func("__bpf_trace_sched_switch", named, FuncLinkage::Static);
    let wakeup = b.add_func_proto(TypeId::VOID, &[("__data", void_ptr), ("p", tp)]);
    let wakeup_ptr = b.add_ptr(wakeup);
    b.add_typedef("btf_trace_sched_wakeup", wakeup_ptr);
    b.add_func("__bpf_trace_sched_wakeup", wakeup, FuncLinkage::Static);
    // An event of sched_wakeup's class: its typedef, unnamed, and its
    // probe stub, which names the parameters.
    let unnamed = b.add_func_proto(TypeId::VOID, &[("", void_ptr), ("", tp)]);
    let unnamed_ptr = b.add_ptr(unnamed);
    b.add_typedef("btf_trace_sched_wakeup_new", unnamed_ptr);
    b.add_func("__probestub_sched_wakeup_new", wakeup, FuncLinkage::Global);
    // ssize_t vfs_read(struct file *file, char *buf, size_t count, loff_t *pos)
    let long = b.add_int("long int", 8, true);
    let ulong = b.add_int("long unsigned int", 8, false);
    let file = b.add_struct("file", 256, &[m("f_mode", uint, 20), m("f_pos", long, 64), m("f_owner_pid", pid_t, 96)]);
    let file_ptr = b.add_ptr(file);
    let loff_ptr = b.add_ptr(long);
    let read = b.add_func_proto(long, &[("file", file_ptr), ("buf", char_ptr), ("count", ulong), ("pos", loff_ptr)]);
    b.add_func("vfs_read", read, FuncLinkage::Global);
    // Three iterator targets: the meta every iterator gets, the context
    // structs, and the `bpf_iter_TARGET` functions that name its fields.
    let seq = b.add_struct("seq_file", 120, &[m("size", ulong, 8)]);
    let seq_ptr = b.add_ptr(seq);
    let meta = b.add_struct("bpf_iter_meta", 24, &[m("seq", seq_ptr, 0), m("session_id", u64t, 8), m("seq_num", u64t, 16)]);
    let meta_ptr = b.add_ptr(meta);
    b.add_struct("bpf_iter__task", 16, &[m("meta", meta_ptr, 0), m("task", tp, 8)]);
    let iter_task = b.add_func_proto(int, &[("meta", meta_ptr), ("task", tp)]);
    b.add_func("bpf_iter_task", iter_task, FuncLinkage::Global);
    b.add_struct("bpf_iter__task_file", 32, &[m("meta", meta_ptr, 0), m("task", tp, 8), m("fd", uint, 16), m("file", file_ptr, 24)]);
    let iter_file = b.add_func_proto(int, &[("meta", meta_ptr), ("task", tp), ("fd", uint), ("file", file_ptr)]);
    b.add_func("bpf_iter_task_file", iter_file, FuncLinkage::Global);
    // The target walking one map's elements: the map, then untyped key
    // and value pointers (the map's own types give them theirs).
    let bpf_map = b.add_struct("bpf_map", 96, &[m("id", uint, 64), m("name", comm, 72)]);
    let map_ptr = b.add_ptr(bpf_map);
    let void_ptr = b.add_ptr(TypeId::VOID);
    b.add_struct("bpf_iter__bpf_map_elem", 32, &[m("meta", meta_ptr, 0), m("map", map_ptr, 8), m("key", void_ptr, 16), m("value", void_ptr, 24)]);
    let iter_elem = b.add_func_proto(int, &[("meta", meta_ptr), ("map", map_ptr), ("key", void_ptr), ("value", void_ptr)]);
    b.add_func("bpf_iter_bpf_map_elem", iter_elem, FuncLinkage::Global);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::{Kind, TypeId};
    use crate::facts::{MemberDesc, TypeDesc};

    #[test]
    fn the_sample_btf_answers_typed_questions() {
        let k = FakeKernel::new().btf(sample_btf());
        let r = k.kernel_btf().expect("a BTF");
        let task = r.find(Kind::STRUCT, "task_struct").expect("walk").expect("task_struct");
        let Ok(TypeDesc::Composite { union: false, name, size: 14400, members }) = r.describe(task) else { panic!("not a struct") };
        assert_eq!(name, "task_struct");
        let pid = members.iter().find(|m| m.name == "pid").expect("pid");
        assert_eq!((pid.bit_offset, pid.bits), (1264 * 8, 0));
        // Typedefs are followed; C spells the type as declared.
        assert_eq!(r.describe(pid.ty), Ok(TypeDesc::Int { size: 4, signed: true }));
        assert_eq!(r.type_name(pid.ty), "pid_t");
        let parent = members.iter().find(|m| m.name == "real_parent").expect("real_parent");
        assert_eq!(r.type_name(parent.ty), "struct task_struct *");
        assert_eq!(r.describe(parent.ty), Ok(TypeDesc::Ptr { to: task, tag: None }));
        let comm = members.iter().find(|m| m.name == "comm").expect("comm");
        assert_eq!(r.type_name(comm.ty), "char[16]");
        let func = r.find(Kind::FUNC, "__bpf_trace_sched_switch").expect("walk").expect("func");
        let names: Vec<String> = r.params(func).expect("params").into_iter().map(|(n, t)| format!("{n}: {}", r.type_name(t))).collect();
        assert_eq!(names, ["__data: void *", "preempt: _Bool", "prev: struct task_struct *", "next: struct task_struct *", "prev_state: unsigned int"]);
        assert_eq!(r.names_with_prefix(Kind::TYPEDEF, "btf_trace_"), Ok(vec!["sched_switch".to_string(), "sched_wakeup".to_string(), "sched_wakeup_new".to_string()]));
        assert_eq!(r.find(Kind::STRUCT, "nope"), Ok(None));
        // The anonymous struct holding mm_struct's owner.
        let mm = r.find(Kind::STRUCT, "mm_struct").expect("walk").expect("mm_struct");
        let Ok(TypeDesc::Composite { members, .. }) = r.describe(mm) else { panic!("not a struct") };
        let anon: &MemberDesc = members.iter().find(|m| m.name.is_empty()).expect("anonymous member");
        assert!(matches!(r.describe(anon.ty), Ok(TypeDesc::Composite { ref name, .. }) if name.is_empty()));
        assert_eq!(r.describe(TypeId::VOID), Ok(TypeDesc::Void));
    }

    #[test]
    fn tracepoint_prototypes_name_their_parameters_where_the_btf_does() {
        use crate::facts::TracepointProtos;
        let k = FakeKernel::new().btf(sample_btf());
        let r = k.kernel_btf().expect("a BTF");
        let named = |protos: &mut TracepointProtos<'_, '_>, event: &str| -> Vec<String> {
            let proto = protos.proto(event).expect("a prototype");
            r.params(proto).expect("params").into_iter().map(|(n, _)| n).collect()
        };
        // Looked up one by one, then (past four) from one index: the same.
        let mut protos = TracepointProtos::new(&r);
        for _ in 0..2 {
            assert_eq!(named(&mut protos, "sched_switch"), ["__data", "preempt", "prev", "next", "prev_state"]);
            assert_eq!(named(&mut protos, "sched_wakeup_new"), ["__data", "p"]);
            assert_eq!(protos.proto("no_such_event"), None);
        }
    }

    #[test]
    fn no_blob_no_btf() {
        assert_eq!(FakeKernel::new().kernel_btf().err().as_deref(), Some(NO_BTF));
    }
}
