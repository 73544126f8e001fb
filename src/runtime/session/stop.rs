//! The end of tracing, before teardown: event delivery stops (a flag every
//! program checks) and what is in flight is drained; then the kernel's
//! globals and tables become the variables trace_end reads, trace_end runs,
//! and lost events and failed table updates are reported. Detaches nothing.

use super::*;
use super::ring::Ring;

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
pub(super) fn finish(live: &Live, interp: &mut Interp, stop: &AtomicBool, out: &mut dyn Output) -> Result<Outcome, Error> {
    sync_in(live, interp, None);
    let lost = live.counter(live.module.lost_events);
    let failures = live.counter(live.module.map_failures);
    // The Ctrl-C that ended tracing must not also cut trace_end short; a
    // second one does.
    stop.store(false, Ordering::SeqCst);
    let end = if interp.has_trace_end() { interp.run_trace_end().map_err(interp_error)? } else { Outcome::Done };
    interp.flush();
    let _ = out.flush();
    if lost > 0 {
        out.notice(&Notice::LostEvents(lost));
    }
    if failures > 0 {
        out.notice(&Notice::MapFailures(failures));
    }
    Ok(end)
}
