//! Attaching programs: one module per program kind behind one trait
//! ([`Attacher`]), found through one registry ([`attacher`]), so the
//! session's attach phase dispatches without knowing the kinds. Each
//! module owns everything its kind needs from the kernel: how libbpf
//! loads the program, the maps it fills before the first event, and the
//! links it makes. Links are pushed as they are made, so whatever was
//! attached when an error or Ctrl-C comes is detached by the caller.
//! Nothing here detaches, prints (notices go through `Output`) or outlives
//! the session: every link is owned by the caller's list.
//!
//! Adding a kind: one module here, one line in [`attacher`] (and its
//! `ir::ProgKind` with its facts in `ir/attach.rs`).

use super::output::Output;
use super::session::Error;
use crate::bpfgen::codegen::ProgramInfo;
use crate::ir::{Module, ProgKind};
use libbpf_rs::{Link, OpenProgramMut, ProgramMut};
use std::sync::atomic::{AtomicBool, Ordering};

pub mod fentry;
pub mod iter;
pub mod kprobe;
pub mod profile;
pub mod raw_syscalls;
pub mod raw_tracepoint;
pub mod tp_btf;
pub mod tracepoint;
pub mod uprobe;

/// The registry: the attacher of each program kind.
pub fn attacher(kind: ProgKind) -> &'static dyn Attacher {
    match kind {
        ProgKind::Tracepoint => &tracepoint::Tracepoint,
        ProgKind::RawTracepoint => &raw_tracepoint::RawTracepoint,
        ProgKind::SysEnter | ProgKind::SysExit => &raw_syscalls::RawSyscalls,
        ProgKind::Perf => &profile::Profile,
        ProgKind::Uprobe => &uprobe::Uprobe,
        ProgKind::Kprobe => &kprobe::Kprobe,
        ProgKind::TpBtf => &tp_btf::TpBtf,
        ProgKind::Fentry | ProgKind::Fexit => &fentry::Fentry,
        ProgKind::Iter => &iter::Iter,
    }
}

/// How one program kind reaches the kernel.
pub trait Attacher: Sync {
    /// Before load: how libbpf should load `info`'s program (its attach
    /// type, say). Most kinds keep what the section name says.
    fn prepare(&self, _prog: &mut OpenProgramMut<'_>, _info: &ProgramInfo) {}

    /// After load, before anything is attached: fills the maps programs
    /// of `kind` read from their first event on.
    fn fill(&self, _module: &Module, _obj: &libbpf_rs::Object, _kind: ProgKind) -> Result<(), Error> {
        Ok(())
    }

    /// Why the kernel may refuse to load this program of this kind (its
    /// attach points: `points`), added to a load error (fentry on kernels
    /// without trampolines).
    fn refused(&self, _points: &[&crate::ir::Attach]) -> Option<&'static str> {
        None
    }

    /// Attaches one loaded program at its attach points (`cx.points`).
    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error>;
}

/// What one program's attach sees and where its links go.
pub struct AttachCx<'a> {
    pub module: &'a Module,
    pub info: &'a ProgramInfo,
    /// `-p`/`-- CMD`: the process to trace.
    pub target_pid: Option<u32>,
    /// `-C`: the CPU to trace.
    pub target_cpu: Option<u32>,
    /// `--pin DIR`: iterators are pinned there instead of run.
    pub pin: Option<&'a std::path::Path>,
    /// Set on Ctrl-C: stop attaching.
    pub stop: &'a AtomicBool,
    pub links: &'a mut Vec<Link>,
    /// Links that are slow to close (classic tracepoints, perf-event
    /// uprobes), counted for teardown.
    pub slow: usize,
    /// Points of many that could not be attached, reported, not fatal.
    pub skipped: &'a mut Vec<String>,
    /// Whether a point failed for want of a file descriptor (the
    /// open-file limit).
    pub fds_ran_out: bool,
    pub out: &'a mut dyn Output,
    /// Counts the points attached, for the progress line.
    pub progress: &'a crate::runtime::output::Progress,
}

impl AttachCx<'_> {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn probe(&self) -> &crate::ir::Probe {
        self.module.probe(self.info.probe)
    }

    /// The BPF cookie of attach point `i`: its probename id.
    pub fn cookie(&self, i: usize) -> u64 {
        self.module.probe_name_id(self.info.probe, i)
    }

    /// A link for attach point `i`, or the reason it failed: one point of
    /// many that cannot be attached is reported, not fatal.
    pub fn point_result(&mut self, i: usize, result: Result<Link, libbpf_rs::Error>) -> Result<(), Error> {
        self.progress.advance(1);
        match result {
            Ok(link) => self.links.push(link),
            Err(e) if self.probe().attach.len() > 1 => {
                self.fds_ran_out |= out_of_fds(&e);
                self.skipped.push(format!("{}: {e:#}", self.probe().attach[i].full_name()));
            }
            Err(e) => return Err(self.error(self.probe().attach[i].full_name(), e)),
        }
        Ok(())
    }

    /// "cannot attach to WHAT", at the probe, with a hint when it ran out
    /// of file descriptors.
    pub fn error(&self, what: String, e: libbpf_rs::Error) -> Error {
        Error {
            message: format!("cannot attach to {what}: {e:#}"),
            span: Some(self.probe().span),
            notes: if out_of_fds(&e) { vec![fd_limit_advice()] } else { Vec::new() },
        }
    }
}

/// Whether an attach failed because the process or the system has no
/// file descriptor left (EMFILE, ENFILE). libbpf-rs keeps the OS error
/// inside its own error type, out of reach of `source()`: its text, as
/// the standard library writes it, is what the chain shows.
pub fn out_of_fds(e: &libbpf_rs::Error) -> bool {
    let chain = format!("{e:#}");
    [libc::EMFILE, libc::ENFILE].iter().any(|&n| chain.contains(&std::io::Error::from_raw_os_error(n).to_string()))
}

/// The open-file limit: (soft, hard).
pub fn fd_limits() -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        (lim.rlim_cur, lim.rlim_max)
    } else {
        (0, 0)
    }
}

/// What to do when attaching ran out of file descriptors.
pub fn fd_limit_advice() -> String {
    let (limit, hard) = fd_limits();
    crate::runtime::output::Notice::FdLimit { limit, hard }.message()
}
