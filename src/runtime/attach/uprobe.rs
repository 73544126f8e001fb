//! Attaches uprobe programs (function entries, returns, file offsets and
//! USDT markers with their semaphores) through uprobe.multi links when the
//! kernel has them: links per binary and direction (256 offsets each at
//! most, so the attach progress moves), a BPF cookie per offset naming the
//! function, so a glob over thousands of functions attaches and detaches
//! in a few calls. On older kernels, one perf-event
//! uprobe per point. Either way the kernel removes the probes when their descriptors
//! close, so nothing outlives ktap, even when it is killed. Never writes
//! uprobe_events.

use super::{AttachCx, Attacher};
use crate::bpfgen::codegen::ProgramInfo;
use crate::ir::{Attach, Module, ProbeId, ProgKind};
use crate::runtime::output::{Notice, Output, Progress};
use crate::runtime::session::Error;
use libbpf_rs::{libbpf_sys, Link, OpenProgramMut, ProgramAttachType, ProgramMut, UprobeMultiOpts, UprobeOpts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub struct Uprobe;

impl Attacher for Uprobe {
    /// Uprobe programs with many attach points use uprobe.multi links.
    fn prepare(&self, prog: &mut OpenProgramMut<'_>, info: &ProgramInfo) {
        if wants_multi(info) {
            prog.set_attach_type(ProgramAttachType::TraceUprobeMulti);
        }
    }

    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        cx.slow += attach(prog, cx.module, cx.info.probe, &cx.info.attach, cx.target_pid, cx.stop, cx.links, cx.skipped, cx.out, cx.progress)?;
        Ok(())
    }
}

/// Whether the running kernel creates uprobe.multi links with process
/// (not thread) pid filtering; probed once, the way libbpf does: a trivial
/// program loaded for BPF_TRACE_UPROBE_MULTI, then links that must fail
/// with EBADF (path "/") and, with pid -1, with EINVAL.
pub fn multi_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(probe_multi)
}

fn probe_multi() -> bool {
    let insn = |code: u8| libbpf_sys::bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: libbpf_sys::bpf_insn::new_bitfield_1(0, 0),
        off: 0,
        imm: 0,
    };
    // r0 = 0; exit
    let insns = [insn(0xb7), insn(0x95)];
    let mut load = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as libbpf_sys::size_t,
        expected_attach_type: libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        ..Default::default()
    };
    // SAFETY: valid instructions, license and options for the call.
    let prog = unsafe {
        libbpf_sys::bpf_prog_load(libbpf_sys::BPF_PROG_TYPE_KPROBE, std::ptr::null(), c"GPL".as_ptr(), insns.as_ptr(), 2, &mut load)
    };
    if prog < 0 {
        return false;
    }
    let offset: std::os::raw::c_ulong = 0;
    let link = |pid: u32| {
        let mut opts = libbpf_sys::bpf_link_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as libbpf_sys::size_t,
            ..Default::default()
        };
        opts.__bindgen_anon_1.uprobe_multi.path = c"/".as_ptr();
        opts.__bindgen_anon_1.uprobe_multi.offsets = &offset;
        opts.__bindgen_anon_1.uprobe_multi.cnt = 1;
        opts.__bindgen_anon_1.uprobe_multi.pid = pid;
        // SAFETY: the options point at live locals; a descriptor returned
        // by mistake is closed at once.
        let fd = unsafe { libbpf_sys::bpf_link_create(prog, -1, libbpf_sys::BPF_TRACE_UPROBE_MULTI, &opts) };
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
        fd
    };
    let supported = link(0) == -libc::EBADF && link(u32::MAX) == -libc::EINVAL;
    // SAFETY: our own descriptor.
    unsafe { libc::close(prog) };
    supported
}

/// Whether `info`'s program is loaded for uprobe.multi links: any uprobe
/// program on a kernel that has them (libbpf does the same for USDT), so
/// one mechanism serves one function and thousands alike, unless
/// `KTAP_NO_UPROBE_MULTI` is set (to test or time the fallback).
pub fn wants_multi(info: &ProgramInfo) -> bool {
    info.kind == ProgKind::Uprobe
        && std::env::var_os("KTAP_NO_UPROBE_MULTI").is_none()
        && multi_supported()
}

/// Attaches a uprobe program at each of its probe's attach points; `pid`
/// limits the breakpoints to one process. Stops early when `stop` is set.
/// Returns how many perf-event links it made (slow to close); the note that
/// uprobes go one at a time goes to `out`.
#[expect(clippy::too_many_arguments, reason = "the attach loop's state, passed down as it is in session::attach")]
fn attach(
    prog: &ProgramMut<'_>,
    module: &Module,
    probe: ProbeId,
    points: &[usize],
    pid: Option<u32>,
    stop: &AtomicBool,
    links: &mut Vec<Link>,
    skipped: &mut Vec<String>,
    out: &mut dyn Output,
    progress: &Progress,
) -> Result<usize, Error> {
    let pid = pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(-1);
    let mut failed = Vec::new();
    let perf_links = if matches!(prog.attach_type(), ProgramAttachType::TraceUprobeMulti) {
        attach_multi(prog, module, probe, points, pid, stop, links, &mut failed, progress);
        0
    } else {
        if points.len() > 1 {
            out.notice(&Notice::UprobesOneAtATime { count: points.len(), disabled: multi_supported() });
        }
        attach_each(prog, module, probe, points, pid, stop, links, &mut failed, progress)
    };
    let p = module.probe(probe);
    for (i, e) in failed {
        let Attach::Uprobe(u) = &p.attach[i] else { continue };
        if p.attach.len() > 1 {
            skipped.push(format!("{}: {e:#}", p.attach[i].full_name()));
        } else {
            return Err(Error { message: format!("cannot attach to {}: {e}", p.attach[i].full_name()), span: Some(u.spec), notes: Vec::new() });
        }
    }
    Ok(perf_links)
}

/// One perf-event uprobe per point; failures go to `failed`.
#[allow(clippy::too_many_arguments)]
fn attach_each(
    prog: &ProgramMut<'_>,
    module: &Module,
    probe: ProbeId,
    points: &[usize],
    pid: i32,
    stop: &AtomicBool,
    links: &mut Vec<Link>,
    failed: &mut Vec<(usize, String)>,
    progress: &Progress,
) -> usize {
    let p = module.probe(probe);
    let mut made = 0;
    for &i in points {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        progress.advance(1);
        let Attach::Uprobe(u) = &p.attach[i] else { continue };
        let opts = UprobeOpts {
            ref_ctr_offset: u.ref_ctr.map_or(0, |r| r.0 as usize),
            cookie: module.probe_name_id(probe, i),
            retprobe: u.ret,
            func_name: None,
            ..Default::default()
        };
        match prog.attach_uprobe_with_opts(pid, &u.binary, u.offset.0 as usize, opts) {
            Ok(link) => {
                links.push(link);
                made += 1;
            }
            Err(e) => failed.push((i, format!("{e:#}"))),
        }
    }
    made
}

/// One attach point of a multi link.
#[derive(Clone, Copy)]
struct Point {
    /// Index into the probe's attach points.
    index: usize,
    offset: usize,
    ref_ctr: usize,
    cookie: u64,
}

/// Offsets per uprobe.multi link: the kernel registers them one by one
/// (~0.7 ms each here), so a big glob is cut into links of this many, and
/// the progress line moves between them.
const MULTI_LINK_POINTS: usize = 256;

/// uprobe.multi links per binary and direction (entry or return), of at
/// most [`MULTI_LINK_POINTS`] offsets each.
#[allow(clippy::too_many_arguments)]
fn attach_multi(
    prog: &ProgramMut<'_>,
    module: &Module,
    probe: ProbeId,
    points: &[usize],
    pid: i32,
    stop: &AtomicBool,
    links: &mut Vec<Link>,
    failed: &mut Vec<(usize, String)>,
    progress: &Progress,
) {
    let p = module.probe(probe);
    let mut groups: Vec<((&str, bool), Vec<Point>)> = Vec::new();
    for &i in points {
        let Attach::Uprobe(u) = &p.attach[i] else { continue };
        let point = Point {
            index: i,
            offset: u.offset.0 as usize,
            ref_ctr: u.ref_ctr.map_or(0, |r| r.0 as usize),
            cookie: module.probe_name_id(probe, i),
        };
        let key = (u.binary.as_str(), u.ret);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(point),
            None => groups.push((key, vec![point])),
        }
    }
    for ((binary, ret), group) in &groups {
        for chunk in group.chunks(MULTI_LINK_POINTS) {
            attach_split(prog, binary, *ret, pid, chunk, stop, links, failed);
            progress.advance(chunk.len());
        }
    }
}

/// Attaches `points` as one link; when the kernel refuses it for a reason
/// one offset can cause (an instruction it cannot probe, say), attaches
/// each half the same way, so only the offending points are left out.
#[allow(clippy::too_many_arguments)]
fn attach_split(
    prog: &ProgramMut<'_>,
    binary: &str,
    ret: bool,
    pid: i32,
    points: &[Point],
    stop: &AtomicBool,
    links: &mut Vec<Link>,
    failed: &mut Vec<(usize, String)>,
) {
    if points.is_empty() || stop.load(Ordering::Relaxed) {
        return;
    }
    let opts = UprobeMultiOpts {
        offsets: points.iter().map(|p| p.offset).collect(),
        ref_ctr_offsets: if points.iter().any(|p| p.ref_ctr != 0) { points.iter().map(|p| p.ref_ctr).collect() } else { Vec::new() },
        cookies: points.iter().map(|p| p.cookie).collect(),
        retprobe: ret,
        ..Default::default()
    };
    match prog.attach_uprobe_multi_with_opts(pid, binary, "", opts) {
        Ok(link) => links.push(link),
        Err(e) if points.len() > 1 && point_specific(&e) => {
            let (a, b) = points.split_at(points.len() / 2);
            attach_split(prog, binary, ret, pid, a, stop, links, failed);
            attach_split(prog, binary, ret, pid, b, stop, links, failed);
        }
        Err(e) => failed.extend(points.iter().map(|p| (p.index, format!("{e:#}")))),
    }
}

/// Whether a refused link may be the fault of some of its offsets rather
/// than of the whole request (permissions, limits, a vanished process).
fn point_specific(e: &libbpf_rs::Error) -> bool {
    let global = [libc::EPERM, libc::EACCES, libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::ESRCH, libc::EBADF, libc::ENOENT, libc::E2BIG];
    !os_error(e).is_some_and(|code| global.contains(&code))
}

/// The errno behind a libbpf error, which libbpf-rs keeps only in its
/// message ("... (os error 95)").
fn os_error(e: &libbpf_rs::Error) -> Option<i32> {
    let text = format!("{e:#}");
    let at = text.rfind("(os error ")?;
    text[at + "(os error ".len()..].split(')').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_read_from_the_message() {
        let e = libbpf_rs::Error::from_raw_os_error(libc::EOPNOTSUPP);
        assert_eq!(os_error(&e), Some(libc::EOPNOTSUPP));
        assert!(point_specific(&e));
        let e = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(os_error(&e), Some(libc::EPERM));
        assert!(!point_specific(&e));
    }
}
