//! The kernel facts of the running system: [`RunningKernel`] answers
//! [`KernelFacts`] from tracefs (opened the first time a script names an
//! event), ELF files (user probes), kallsyms, the kernel's BTF (mapped
//! the first time a probe needs a fact from it) and BPF maps (`bpfmap`). Reads only: never
//! attaches anything.

use super::elfsyms;
use super::kbtf::KernelBtf;
use super::attach::kprobe;
use super::tracefs::Tracefs;
use crate::facts::{BtfReader, EventField, KernelFacts, PercpuAccess, SdtMarkers, UserSymbols};
use std::cell::OnceCell;

/// tracefs and the kernel's BTF, each opened on first use.
#[derive(Default)]
pub struct RunningKernel {
    tracefs: OnceCell<Result<Tracefs, String>>,
    btf: OnceCell<Result<KernelBtf, String>>,
    /// A BTF file to type scripts against instead of the kernel's.
    btf_file: Option<std::path::PathBuf>,
    /// What the verifier said of each tracepoint argument asked of it.
    btf_args: std::cell::RefCell<std::collections::HashMap<(String, u32), Option<bool>>>,
}

impl RunningKernel {
    pub fn new() -> RunningKernel {
        RunningKernel::default()
    }

    /// tracefs, opened (or mounted) now if no question has needed it yet.
    pub fn tracefs(&self) -> Result<&Tracefs, String> {
        self.tracefs.get_or_init(|| Tracefs::open().map_err(|e| e.message)).as_ref().map_err(Clone::clone)
    }

    /// Types scripts against the BTF in `path` instead of the running
    /// kernel's (`--btf`): the object's CO-RE records fit it to the
    /// running kernel when it loads.
    pub fn with_btf_file(mut self, path: std::path::PathBuf) -> RunningKernel {
        self.btf_file = Some(path);
        self
    }

    /// The verifier's answer for [`KernelFacts::btf_arg_is_pointer`].
    fn ask_btf_arg(&self, event: &str, arg: u32) -> Option<bool> {
        let r = self.kernel_btf().ok()?;
        let typedef = r.find(crate::btf::Kind::TYPEDEF, &format!("{}{event}", crate::facts::BTF_TRACE_PREFIX)).ok()??;
        // Module events attach through their module's BTF: not asked.
        if r.module_of(typedef).is_some() {
            return None;
        }
        super::attach::tp_btf::arg_is_pointer(typedef.0, arg)
    }

    /// Unmaps the kernel's BTF (not needed past compilation); a later
    /// question maps it again.
    pub fn release_btf(&mut self) {
        self.btf.take();
    }

    fn btf(&self) -> Result<&KernelBtf, String> {
        let open = || match &self.btf_file {
            Some(path) => KernelBtf::open_path(path),
            None => KernelBtf::open(),
        };
        self.btf.get_or_init(open).as_ref().map_err(Clone::clone)
    }
}

impl KernelFacts for RunningKernel {
    fn tracepoints(&self, system: &str, event: &str) -> Result<Vec<(String, String)>, String> {
        self.tracefs()?.tracepoints(system, event)
    }
    fn format(&self, system: &str, event: &str) -> Result<Vec<EventField>, String> {
        self.tracefs()?.format(system, event)
    }
    fn similar(&self, system: &str, event: &str) -> Vec<String> {
        self.tracefs().map(|t| t.similar(system, event)).unwrap_or_default()
    }
    fn syscall_nr(&self, name: &str) -> Option<u32> {
        self.tracefs().ok()?.syscall_nr(name)
    }
    fn resolve_binary(&self, binary: &str) -> Result<String, String> {
        elfsyms::resolve_binary(binary).map(|p| p.to_string_lossy().into_owned())
    }
    fn user_symbols(&self, binary: &str, glob: &str) -> Result<UserSymbols, String> {
        elfsyms::functions(binary, glob)
    }
    fn sdt_markers(&self, binary: &str, glob: &str) -> Result<SdtMarkers, String> {
        elfsyms::sdt_markers(binary, glob)
    }
    fn kernel_functions(&self, glob: &str) -> Result<Vec<String>, String> {
        kprobe::functions(self.tracefs().ok().map(|t| t.root()), glob)
    }
    fn kernel_symbol(&self, name: &str) -> Option<u64> {
        kprobe::symbol_address(name)
    }
    fn task_comm_offset(&self) -> Option<u32> {
        self.btf().ok()?.reader().ok()?.task_comm_offset().ok()
    }
    fn task_flag_bit(&self, member: &str) -> Result<u32, String> {
        self.btf()?.reader()?.one_bit_member("task_struct", member).map_err(|e| e.to_string())
    }
    fn percpu_var(&self, name: &str) -> Result<PercpuAccess, String> {
        self.btf()?.reader()?.percpu_access(name).map_err(|e| e.to_string())
    }
    fn kernel_btf(&self) -> Result<BtfReader<'_>, String> {
        self.btf()?.reader()
    }
    fn btf_arg_is_pointer(&self, event: &str, arg: u32) -> Option<bool> {
        // Another BTF (`--btf`) describes another kernel: ask nothing.
        if self.btf_file.is_some() {
            return None;
        }
        let key = (event.to_string(), arg);
        if let Some(known) = self.btf_args.borrow().get(&key) {
            return *known;
        }
        let answer = self.ask_btf_arg(event, arg);
        self.btf_args.borrow_mut().insert(key, answer);
        answer
    }
    fn debug_function(&self, path: &str, func: &str) -> Result<crate::facts::DebugScope, String> {
        super::dwarf::function(path, func)
    }
    fn bpf_map(&self, map: &crate::facts::MapRef) -> Result<crate::facts::BpfMap, String> {
        super::bpfmap::bpf_map(map)
    }
    fn debug_line(&self, path: &str, file: &str, line: u32) -> Result<crate::facts::DebugScope, String> {
        super::dwarf::line(path, file, line)
    }
}
