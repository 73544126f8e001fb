//! The attach phase: the tables the main context filled and what each
//! program kind fills (syscall filters) reach the kernel first, then every
//! program is attached by its kind's attacher (`runtime::attach`), which
//! this file does not know, with a progress line when that is slow. Stops
//! early on Ctrl-C; one event of many that cannot be attached is reported,
//! not fatal.

use super::*;
use super::teardown::{raise_fd_limit, Links};
use crate::runtime::attach::{attacher, AttachCx};

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
    // What programs read from their first event on (syscall filters).
    fill_kinds(live.module, live.compiled, &live.obj)?;
    // Every classic tracepoint or perf event link holds a file descriptor:
    // a big wildcard needs many.
    raise_fd_limit();
    attach_all(live.module, live.compiled, &live.obj, interp, opts, stop, out)
}

fn attach_all(
    module: &Module,
    compiled: &Compiled,
    obj: &libbpf_rs::Object,
    interp: &Interp,
    opts: &Options,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Output,
) -> Result<Attached, Error> {
    let mut links: Vec<Link> = Vec::new();
    let mut slow_links = 0;
    let mut skipped = Vec::new();
    let mut fds_ran_out = false;
    // A line on stderr when attaching is slow, its count moving.
    let progress = out.attach_progress(compiled.programs.iter().map(|p| p.attach.len()).sum());
    // Iterators first, in script order: they run (or are pinned) before
    // any other probe is attached.
    let mut order: Vec<&crate::bpfgen::codegen::ProgramInfo> = compiled.programs.iter().collect();
    order.sort_by_key(|p| !p.kind.shape().seq_file);
    for info in order {
        // A probe nested in main-context code the main context did not run.
        let probe = module.probe(info.probe);
        if probe.nested && !interp.registered(probe.span.start) {
            continue;
        }
        let Some(prog) = obj.progs_mut().find(|p| p.name() == info.name.as_str()) else {
            return Err(Error::new(format!("program {} missing after load", info.name)));
        };
        let mut cx = AttachCx {
            module,
            info,
            target_pid: opts.target_pid,
            target_cpu: opts.target_cpu,
            pin: opts.pin.as_deref(),
            stop,
            links: &mut links,
            slow: 0,
            skipped: &mut skipped,
            fds_ran_out: false,
            out: &mut *out,
            progress: &progress,
        };
        let result = attacher(info.kind).attach(&mut cx, &prog);
        slow_links += cx.slow;
        fds_ran_out |= cx.fds_ran_out;
        result?;
        if stop.load(Ordering::Relaxed) {
            return Ok(Attached::Interrupted(Links { links, slow: slow_links }));
        }
    }
    drop(progress);
    if !skipped.is_empty() {
        out.notice(&Notice::NotAttached(&skipped));
    }
    if fds_ran_out {
        let (limit, hard) = crate::runtime::attach::fd_limits();
        out.notice(&Notice::FdLimit { limit, hard });
    }
    Ok(Attached::All(Links { links, slow: slow_links }))
}

/// Fills, once per program kind present, what its programs read from
/// their first event on (the syscall filters).
fn fill_kinds(module: &Module, compiled: &Compiled, obj: &libbpf_rs::Object) -> Result<(), Error> {
    let mut kinds: Vec<ir::ProgKind> = compiled.programs.iter().map(|p| p.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        attacher(kind).fill(module, obj, kind)?;
    }
    Ok(())
}
