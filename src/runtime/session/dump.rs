//! What probes wrote, read at one moment: tables and kernel globals as
//! `Dump`s (printed when a script without trace_end stops, served to each
//! metrics scrape) and stack tables as folded stacks (flame graphs).
//! Reads maps and sections; writes nothing to the kernel.

use super::*;
use crate::ir::written::Written;
use crate::runtime::flame::{self, Folded};
use crate::runtime::metrics;
use crate::runtime::output::{Cell, Dump, DumpBody};

/// The kernel globals, then the tables, that probes write, in the order
/// the script declares them.
pub(super) fn dumps(live: &Live, written: &Written) -> Vec<Dump> {
    let mut out = Vec::new();
    for &(g, kind) in &written.globals {
        let (global, layout) = (&live.module.globals[g.index()], &live.compiled.globals[g.index()]);
        let (Some(var), Some(view)) = (&global.var, live.global_view(layout)) else { continue };
        let raw = view.read_global(layout, global.ty);
        let desc = kind.map(|k| k.desc());
        out.push(Dump {
            name: var.clone(),
            kind: desc.as_ref().map(|d| d.name()),
            counter: desc.as_ref().is_some_and(|d| d.counts()),
            body: DumpBody::Global(Cell::Value(live.dec.value(global.ty, &raw))),
        });
    }
    for &m in &written.tables {
        let map_ir = &live.module.maps[m.index()];
        let Some(info) = &map_ir.table else { continue };
        let Some(map) = map_named(&live.obj, &map_ir.name) else { continue };
        let entries: Vec<(Value, Cell)> = read_entries(&map, map_ir.kind, info, &live.dec).into_iter().map(|(_, k, c)| (k, c)).collect();
        let desc = info.value.agg().map(|k| k.desc());
        let body = if info.single {
            // A global aggregate: its one entry.
            DumpBody::Global(Cell::Reading(decode::single_reading(info, entries)))
        } else {
            DumpBody::Table { stack_keys: matches!(info.key, Ty::Stack { .. }), entries }
        };
        out.push(Dump { name: info.var.clone(), kind: desc.as_ref().map(|d| d.name()), counter: desc.as_ref().is_some_and(|d| d.counts()), body });
    }
    out
}

/// The metrics exposition of what probes wrote, now.
pub(super) fn exposition(live: &Live, written: &Written) -> String {
    let counters = metrics::Counters { lost_events: live.counter(live.module.lost_events), map_failures: live.counter(live.module.map_failures) };
    metrics::exposition(&dumps(live, written), &counters)
}

/// Every stack table's entries as folded stacks (numbers of samples:
/// entries that are not positive numbers are left out).
pub(super) fn folded(live: &Live) -> Folded {
    let mut f = Folded::default();
    for map_ir in &live.module.maps {
        let Some(info) = &map_ir.table else { continue };
        let Ty::Stack { user } = info.key else { continue };
        let Some(map) = map_named(&live.obj, &map_ir.name) else { continue };
        for (raw, _, cell) in read_entries(&map, map_ir.kind, info, &live.dec) {
            let Some(count) = cell.as_int().and_then(|n| u64::try_from(n).ok()) else { continue };
            let id = raw.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
            let names: Vec<String> = match live.dec.stack_frames(id, user) {
                Some(frames) => frames.iter().map(|fr| flame::frame_name(fr, !user)).collect(),
                // A kernel stack sampled in user mode, or the reverse.
                None => vec![if user { "[no user stack]" } else { "[no kernel stack]" }.to_string()],
            };
            f.add(&names, count);
        }
    }
    f
}
