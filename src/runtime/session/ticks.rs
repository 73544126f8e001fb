//! The tracing phase: waits on the ring buffer, drains it, and runs the
//! `tick-N` bodies when due (the kernel globals and tables a tick names are
//! copied into the interpreter before it, and what it changed written back
//! after), and answers metrics scrapes, until Ctrl-C, `exit()`, or the end
//! of the `-- CMD` child or of the `-p PID` process. Stops nothing itself.

use super::*;
use super::ring::Ring;
use crate::ir::written::Written;
use crate::runtime::interp::TickId;
use std::time::{Duration, Instant};

/// How often the ring buffer is drained: the latency of printed output.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// The tick bodies and when each is due next.
struct Ticks {
    ticks: Vec<(u64, TickId)>,
    next: Vec<Instant>,
}

impl Ticks {
    fn start(interp: &Interp) -> Ticks {
        let ticks = interp.ticks();
        let start = Instant::now();
        let next = ticks.iter().map(|(ns, _)| start + Duration::from_nanos(*ns)).collect();
        Ticks { ticks, next }
    }

    /// How long until the next tick is due, if there are ticks.
    fn until_next(&self, now: Instant) -> Option<Duration> {
        self.next.iter().map(|t| t.saturating_duration_since(now)).min()
    }

    /// Runs the ticks that are due; the outcome of one that ended the script.
    fn run_due(&mut self, live: &Live, interp: &mut Interp, out: &mut dyn Output) -> Result<Option<Outcome>, Error> {
        let now = Instant::now();
        for (i, (period, id)) in self.ticks.iter().enumerate() {
            if now < self.next[i] {
                continue;
            }
            self.next[i] += Duration::from_nanos(*period);
            let before = sync_in(live, interp, live.module.tick_uses.get(id.0).and_then(|u| u.as_deref()));
            let result = interp.run_tick(*id).map_err(interp_error)?;
            sync_out(live, interp, &before, out);
            if result != Outcome::Done {
                return Ok(Some(result));
            }
        }
        Ok(None)
    }
}

/// Traces until something ends it; how it ended.
pub(super) fn trace(
    live: &Live,
    ring: &Ring,
    interp: &mut Interp,
    opts: &mut Options,
    written: &Written,
    stop: &AtomicBool,
    out: &mut dyn Output,
) -> Result<Outcome, Error> {
    let mut ticks = Ticks::start(interp);
    loop {
        if let Some(server) = &opts.metrics {
            // Scrapes read the maps now; probes are never waited for.
            server.serve_pending(&mut || super::dump::exposition(live, written));
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Outcome::Interrupted);
        }
        if opts.child.as_mut().is_some_and(|c| c.try_wait().is_some()) || opts.watched.as_ref().is_some_and(|w| w.exited()) {
            // The traced command or process ended: take what it produced, then stop.
            let exited = ring.drain(live, interp, out)?;
            return Ok(if exited { Outcome::Exit } else { Outcome::Done });
        }
        let timeout = ticks.until_next(Instant::now()).unwrap_or(DRAIN_INTERVAL).min(DRAIN_INTERVAL);
        ring.wait(timeout);
        if ring.drain(live, interp, out)? {
            return Ok(Outcome::Exit);
        }
        if let Some(ended) = ticks.run_due(live, interp, out)? {
            return Ok(ended);
        }
    }
}
