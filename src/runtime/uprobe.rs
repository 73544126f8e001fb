//! Attaches uprobe programs (function entries, returns, file offsets and
//! USDT markers with their semaphores) through libbpf's perf-event uprobes,
//! which the kernel removes when their file descriptors close, so nothing
//! outlives ktap, even when it is killed. Never writes uprobe_events.

use super::session::Error;
use crate::ir::{Attach, Module};
use libbpf_rs::{Link, ProgramMut, UprobeOpts};

/// Raises the open-file limit to its hard maximum: every attached uprobe
/// holds a descriptor, and `libc:*` is thousands of them.
pub fn raise_fd_limit(wanted: usize) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && (lim.rlim_cur as usize) < wanted + 256 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Attaches a uprobe program at each of its probe's attach points; `pid`
/// limits the breakpoints to one process.
pub fn attach(
    prog: &ProgramMut<'_>,
    module: &Module,
    probe: usize,
    points: &[usize],
    pid: Option<u32>,
    links: &mut Vec<Link>,
    skipped: &mut Vec<String>,
) -> Result<(), Error> {
    let p = &module.probes[probe];
    raise_fd_limit(links.len() + points.len());
    let pid = pid.and_then(|p| i32::try_from(p).ok()).unwrap_or(-1);
    for &i in points {
        let Attach::Uprobe(u) = &p.attach[i] else { continue };
        let opts = UprobeOpts {
            ref_ctr_offset: u.ref_ctr.map_or(0, |r| r.0 as usize),
            cookie: module.probe_name_id(probe, i),
            retprobe: u.ret,
            func_name: None,
            ..Default::default()
        };
        match prog.attach_uprobe_with_opts(pid, &u.binary, u.offset.0 as usize, opts) {
            Ok(link) => links.push(link),
            Err(e) if p.attach.len() > 1 => skipped.push(format!("{}: {e}", p.attach[i].full_name())),
            Err(e) => {
                return Err(Error { message: format!("cannot attach to {}: {e}", p.attach[i].full_name()), span: Some(u.spec), notes: Vec::new() })
            }
        }
    }
    Ok(())
}
