//! The ring buffer phase's machinery: records are handled in libbpf's
//! callback, straight from ring-buffer memory, into output; one that asks
//! for more than output (exit, print_hist, delete, an error) stops
//! consumption and waits for `drain`, which acts on it in order. Never
//! touches probes or links.

use super::*;
use libbpf_rs::{RingBuffer, RingBufferBuilder};
use std::time::{Duration, SystemTime};

/// What the callback could not do itself, waiting for `drain`.
type Pending<'l> = Rc<RefCell<Option<Result<Action<'l>, Error>>>>;

/// The event ring buffer (none when no probe sends records).
pub(super) struct Ring<'l> {
    rb: Option<RingBuffer<'l>>,
    pending: Pending<'l>,
}

impl<'l> Ring<'l> {
    /// Opens the module's ring buffer; each record goes to `out`, stamped
    /// with the time it arrived when `timestamps`.
    pub(super) fn open(live: &'l Live<'_>, out: &SharedOutput, timestamps: bool) -> Result<Ring<'l>, Error> {
        let pending: Pending<'l> = Rc::default();
        let Some(events) = live.module.events else { return Ok(Ring { rb: None, pending }) };
        let name = &live.module.map(events).name;
        let map = map_named(&live.obj, name).ok_or_else(|| Error::new("event ring buffer missing after load"))?;
        let mut b = RingBufferBuilder::new();
        let (module, dec) = (live.module, &live.dec);
        let waiting = pending.clone();
        let mut w = out.clone();
        b.add(&map, move |data: &[u8]| {
            let time = timestamps.then(SystemTime::now);
            match handle_record(module, dec, data, time, &mut w) {
                Ok(Action::Continue) => 0,
                other => {
                    *waiting.borrow_mut() = Some(other);
                    -1
                }
            }
        })
        .map_err(|e| Error::libbpf("cannot open the event ring buffer", e))?;
        let rb = b.build().map_err(|e| Error::libbpf("cannot open the event ring buffer", e))?;
        Ok(Ring { rb: Some(rb), pending })
    }

    /// Waits up to `timeout` for records, handling those that arrive.
    /// Records don't wake us (only exit() does): this sleeps until the next
    /// drain. EINTR from a signal is an ordinary wake-up.
    pub(super) fn wait(&self, timeout: Duration) {
        match &self.rb {
            Some(rb) => {
                let _ = rb.poll_raw(timeout);
            }
            None => std::thread::sleep(timeout.min(Duration::from_millis(20))),
        }
    }

    /// The next record that wants more than output, consuming the ring
    /// until one does; `None` once the ring is empty.
    fn next(&self) -> Result<Option<Action<'l>>, Error> {
        let waiting = self.pending.borrow_mut().take();
        if let Some(action) = waiting {
            return action.map(Some);
        }
        if let Some(rb) = &self.rb {
            let _ = rb.consume_raw();
        }
        let waiting = self.pending.borrow_mut().take();
        waiting.transpose()
    }

    /// Handles every record in the ring, in order. True when one was
    /// `exit()`: tracing is over, and what follows it is not shown.
    pub(super) fn drain(&self, live: &Live, interp: &mut Interp, out: &mut dyn Output) -> Result<bool, Error> {
        while let Some(action) = self.next()? {
            match action {
                Action::Continue => {}
                Action::Exit => {
                    let _ = out.flush();
                    return Ok(true);
                }
                Action::PrintHist { var, n, origin } => {
                    let table = match live.table_map(var) {
                        Some((map, map_ir)) => map_ir.table.as_ref().map(|info| read_table(&map, map_ir.kind, info, &live.dec)),
                        None => interp.global(var),
                    };
                    interp.flush();
                    if let Some(Value::Table(t)) = table {
                        let _ = out.hist(&origin, &t.borrow(), n);
                    }
                }
                Action::Delete { var } => match live.table_map(var) {
                    Some((map, _)) => {
                        for key in map.keys() {
                            let _ = map.delete(&key);
                        }
                    }
                    None => {
                        if let Some(Value::Table(t)) = interp.global(var) {
                            t.borrow_mut().clear();
                        }
                    }
                },
            }
        }
        let _ = out.flush();
        Ok(false)
    }
}
