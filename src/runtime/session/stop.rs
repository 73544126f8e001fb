//! The end of tracing, before teardown: event delivery stops (a flag every
//! program checks) and what is in flight is drained; then the kernel's
//! globals and tables become the variables trace_end reads, trace_end runs
//! (without one, what probes wrote is printed), flame graphs are written,
//! and lost events and failed table updates are reported. Detaches nothing.

use super::*;
use super::ring::Ring;
use crate::ir::written::Written;
use crate::runtime::output::DumpBody;

/// Stops delivering events, then drains what is already in flight, unless
/// `exit()` ended tracing: records after it are not shown.
pub(super) fn stop(live: &Live, ring: &Ring, interp: &mut Interp, outcome: Outcome, out: &mut dyn Output) -> Result<(), Error> {
    live.stop_delivery();
    if outcome != Outcome::Exit {
        ring.drain(live, interp, out)?;
    }
    Ok(())
}

/// Runs trace_end on the kernel's final state and reports what was lost;
/// trace_end's outcome.
pub(super) fn finish(
    live: &Live,
    interp: &mut Interp,
    opts: &Options,
    written: &Written,
    stop: &AtomicBool,
    out: &mut dyn Output,
) -> Result<Outcome, Error> {
    sync_in(live, interp, None);
    flame_graphs(live, opts)?;
    let lost = live.counter(live.module.lost_events);
    let failures = live.counter(live.module.map_failures);
    // What the failed updates hit, read before trace_end can change it.
    let full = if failures > 0 { full_tables(live, written) } else { Vec::new() };
    // The Ctrl-C that ended tracing must not also cut trace_end short; a
    // second one does.
    stop.store(false, Ordering::SeqCst);
    let end = if interp.has_trace_end() {
        interp.run_trace_end().map_err(interp_error)?
    } else {
        print_written(live, written, out)?;
        Outcome::Done
    };
    interp.flush();
    let _ = out.flush();
    if lost > 0 {
        out.notice(&Notice::LostEvents(lost));
    }
    if failures > 0 {
        out.notice(&Notice::MapFailures { count: failures, full: &full });
    }
    Ok(end)
}

/// The tables probes write that are full now (every entry taken), each
/// with its size: where updates failed (a hash map refuses a new key only
/// when full, kernel/bpf/hashtab.c).
fn full_tables(live: &Live, written: &Written) -> Vec<(String, u32)> {
    let mut full = Vec::new();
    for &m in &written.tables {
        let map_ir = &live.module.maps[m.index()];
        let (Some(info), Some(map)) = (&map_ir.table, map_named(&live.obj, &map_ir.name)) else { continue };
        let size = map.max_entries();
        if map.keys().count() as u64 >= u64::from(size) {
            full.push((info.var.clone(), size));
        }
    }
    full
}

/// What probes wrote, name then contents, for a script without trace_end;
/// empty tables are left out.
fn print_written(live: &Live, written: &Written, out: &mut dyn Output) -> Result<(), Error> {
    for d in dump::dumps(live, written) {
        if matches!(&d.body, DumpBody::Table { entries, .. } if entries.is_empty()) {
            continue;
        }
        out.dump(&d).map_err(|e| Error::new(format!("cannot write output: {e}")))?;
    }
    Ok(())
}

/// Writes the stack tables as folded stacks and as a flame graph, as the
/// options ask.
fn flame_graphs(live: &Live, opts: &Options) -> Result<(), Error> {
    if opts.folded.is_none() && opts.flamegraph.is_none() {
        return Ok(());
    }
    let folded = dump::folded(live);
    let failed = |e: crate::runtime::flame::Error| Error::new(e.to_string());
    if let Some(path) = &opts.folded {
        folded.write_folded(path).map_err(failed)?;
    }
    if let Some(path) = &opts.flamegraph {
        folded.write_svg(path, &opts.flame_title).map_err(failed)?;
    }
    Ok(())
}
