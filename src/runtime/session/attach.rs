//! The attach phase: the tables the main context filled and the syscall
//! filters reach the kernel first, then every program is attached to the
//! events it serves, the cheapest way each provider allows (tracepoints,
//! raw tracepoints with cookies, raw_syscalls, perf events, uprobes,
//! kprobes), with a progress line when that is slow. Stops early on
//! Ctrl-C; one event of many that cannot be attached is reported, not
//! fatal.

use super::*;
use super::teardown::{raise_fd_limit, Links};

/// What attaching produced.
pub(super) enum Attached {
    All(Links),
    /// Ctrl-C arrived while attaching: these must be detached again.
    Interrupted(Links),
}

/// Fills what probes read from the first event on, then attaches.
pub(super) fn attach(live: &Live, interp: &Interp, opts: &Options, stop: &Arc<AtomicBool>, out: &mut dyn Output) -> Result<Attached, Error> {
    // Tables the main context filled reach the kernel before any probe runs.
    fill_tables(live.module, &live.obj, interp)?;
    // Syscall filters: number -> probename id + 1.
    fill_syscall_filters(live.module, &live.obj)?;
    // Every classic tracepoint or perf event link holds a file descriptor:
    // a big wildcard needs many.
    raise_fd_limit();
    attach_all(live.module, live.compiled, &live.obj, opts, stop, out)
}

fn attach_all(
    module: &Module,
    compiled: &Compiled,
    obj: &libbpf_rs::Object,
    opts: &Options,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Output,
) -> Result<Attached, Error> {
    let mut links: Vec<Link> = Vec::new();
    let mut slow_links = 0;
    let mut skipped = Vec::new();
    let progress = out.attach_progress(compiled.programs.iter().map(|p| p.attach.len()).sum());
    for info in &compiled.programs {
        let Some(prog) = obj.progs_mut().find(|p| p.name() == info.name.as_str()) else {
            return Err(Error::new(format!("program {} missing after load", info.name)));
        };
        let probe = module.probe(info.probe);
        let attach_error = |what: String, e: libbpf_rs::Error| Error {
            message: format!("cannot attach to {what}: {e}"),
            span: Some(probe.span),
            notes: if e.kind() == libbpf_rs::ErrorKind::Other && e.to_string().contains("Too many open files") {
                vec!["each attached event holds a file descriptor: raise the limit (`ulimit -n`) or trace fewer events".into()]
            } else {
                Vec::new()
            },
        };
        match info.kind {
            ir::ProgKind::Perf => {
                for &i in &info.attach {
                    let ir::Attach::Profile { period_ns, name } = &probe.attach[i] else { continue };
                    let cookie = module.probe_name_id(info.probe, i);
                    let cpus = match opts.target_cpu {
                        Some(c) => vec![c],
                        None => crate::runtime::perf::online_cpus(),
                    };
                    progress.advance(1);
                    for cpu in cpus {
                        let fd = crate::runtime::perf::cpu_clock(cpu, *period_ns).map_err(|e| Error {
                            message: format!("cannot open a cpu-clock perf event on CPU {cpu} for {name}: {e}"),
                            span: Some(probe.span),
                            notes: Vec::new(),
                        })?;
                        let opts = libbpf_rs::PerfEventOpts { cookie, ..Default::default() };
                        // The link owns the perf event from here on: libbpf
                        // closes it when the link is destroyed.
                        let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
                        match prog.attach_perf_event_with_opts(raw, opts) {
                            Ok(link) => links.push(link),
                            Err(e) => {
                                // SAFETY: not attached, so still ours.
                                drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
                                return Err(attach_error(format!("{name} on CPU {cpu}"), e));
                            }
                        }
                    }
                }
            }
            ir::ProgKind::Uprobe => {
                slow_links += crate::runtime::uprobe::attach(&prog, module, info.probe, &info.attach, opts.target_pid, stop, &mut links, &mut skipped, out, &progress)?;
            }
            ir::ProgKind::Kprobe => {
                crate::runtime::kprobe::attach(&prog, module, info.probe, &info.attach, stop, &mut links, &mut skipped)?;
                progress.advance(info.attach.len());
            }
            ir::ProgKind::SysEnter | ir::ProgKind::SysExit => {
                let tp = if info.kind == ir::ProgKind::SysEnter { "sys_enter" } else { "sys_exit" };
                let link = prog.attach_raw_tracepoint(tp).map_err(|e| attach_error(format!("raw_syscalls:{tp}"), e))?;
                links.push(link);
                progress.advance(info.attach.len());
            }
            ir::ProgKind::Tracepoint | ir::ProgKind::RawTracepoint => {
                for &i in &info.attach {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let cookie = module.probe_name_id(info.probe, i);
                    progress.advance(1);
                    let result = match &probe.attach[i] {
                        ir::Attach::Tracepoint { system, event } => {
                            slow_links += 1;
                            let opts = libbpf_rs::TracepointOpts { cookie, ..Default::default() };
                            prog.attach_tracepoint_with_opts(libbpf_rs::TracepointCategory::Custom(system.clone()), event, opts)
                        }
                        ir::Attach::RawTracepoint { event, .. } => {
                            let opts = libbpf_rs::RawTracepointOpts { cookie, ..Default::default() };
                            prog.attach_raw_tracepoint_with_opts(event, opts)
                        }
                        ir::Attach::Syscall { .. } | ir::Attach::Profile { .. } | ir::Attach::Uprobe(_) | ir::Attach::Kprobe { .. } => continue,
                    };
                    match result {
                        Ok(link) => links.push(link),
                        // One event of many that cannot be attached is
                        // reported, not fatal.
                        Err(e) if probe.attach.len() > 1 => skipped.push(format!("{}: {e}", probe.attach[i].full_name())),
                        Err(e) => return Err(attach_error(probe.attach[i].full_name(), e)),
                    }
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Attached::Interrupted(Links { links, slow: slow_links }));
        }
    }
    drop(progress);
    if !skipped.is_empty() {
        out.notice(&Notice::NotAttached(&skipped));
    }
    Ok(Attached::All(Links { links, slow: slow_links }))
}
