//! `profile-N` (`ProgKind::Perf`): one software cpu-clock perf event per
//! online CPU (or the `-C` one), each sampling every N ns, with the
//! program attached to each; the link owns its event's descriptor, and
//! a descriptor is never left open when its attach fails.

use super::{AttachCx, Attacher};
use crate::ir::Attach;
use crate::runtime::session::Error;
use libbpf_rs::{libbpf_sys, PerfEventOpts, ProgramMut};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

pub struct Profile;

impl Attacher for Profile {
    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        let (module, info) = (cx.module, cx.info);
        let probe = module.probe(info.probe);
        for &i in &info.attach {
            let Attach::Profile { period_ns, name } = &probe.attach[i] else { continue };
            let cookie = cx.cookie(i);
            cx.progress.advance(1);
            let cpus = match cx.target_cpu {
                Some(c) => vec![c],
                None => online_cpus(),
            };
            for cpu in cpus {
                let fd = cpu_clock(cpu, *period_ns).map_err(|e| Error {
                    message: format!("cannot open a cpu-clock perf event on CPU {cpu} for {name}: {e}"),
                    span: Some(probe.span),
                    notes: Vec::new(),
                })?;
                let opts = PerfEventOpts { cookie, ..Default::default() };
                // The link owns the perf event from here on: libbpf
                // closes it when the link is destroyed.
                let raw = fd.into_raw_fd();
                match prog.attach_perf_event_with_opts(raw, opts) {
                    Ok(link) => cx.links.push(link),
                    Err(e) => {
                        // SAFETY: not attached, so still ours.
                        drop(unsafe { OwnedFd::from_raw_fd(raw) });
                        return Err(cx.error(format!("{name} on CPU {cpu}"), e));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The online CPUs, from /sys/devices/system/cpu/online (`0-3,5`).
pub fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse_cpu_list(text.trim())
}

pub fn parse_cpu_list(text: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<u32>().ok()),
        }
    }
    cpus
}

/// Opens a cpu-clock sampling event on `cpu`, every `period_ns`.
pub fn cpu_clock(cpu: u32, period_ns: u64) -> std::io::Result<OwnedFd> {
    // SAFETY: perf_event_attr is plain data; all-zero is a valid start.
    let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = libbpf_sys::PERF_TYPE_SOFTWARE;
    attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
    attr.config = u64::from(libbpf_sys::PERF_COUNT_SW_CPU_CLOCK);
    attr.__bindgen_anon_1.sample_period = period_ns;
    // SAFETY: a valid attr for this cpu, any process, no group.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const libbpf_sys::perf_event_attr,
            -1 as libc::pid_t,
            cpu as libc::c_int,
            -1 as libc::c_int,
            libbpf_sys::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::parse_cpu_list("0-3,5"), [0, 1, 2, 3, 5]);
        assert_eq!(super::parse_cpu_list("0"), [0]);
        assert!(super::parse_cpu_list("").is_empty());
    }
}
