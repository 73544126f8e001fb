//! A made-up kernel for tests: [`FakeKernel`] answers [`KernelFacts`] from
//! the events, syscalls, binaries and BTF facts it was built with, and
//! nothing else, so compiler tests need neither root nor tracefs. Never
//! touches the machine.

use super::{glob_match, EventField, FileOffset, KernelFacts, PercpuAccess, SdtMarker, SdtMarkers, UserSymbols, NO_BTF};
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
    task_flags: Vec<(String, u32)>,
    format_reads: Mutex<Vec<String>>,
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
        let markers = b.markers.iter().filter(|m| glob_match(glob, &m.name)).cloned().collect();
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
}
