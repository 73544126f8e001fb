//! What probes write and send: the tables and kernel globals a module's
//! probe bodies store into or update (and the aggregate kind of a global
//! only ever updated by one), and the record sites each probe emits. Pure:
//! a walk of the IR, no IO, no decisions about printing.

use super::{AggKind, AggTarget, GlobalId, MapId, Module, Probe, SiteId, Stmt, StmtKind};

/// The tables and globals probes write, each once, in module order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub tables: Vec<MapId>,
    /// Each global with the aggregate kind probes fold into it when that
    /// is all they do (`n += v`: a sum); `None` when some probe stores
    /// into it or kinds differ.
    pub globals: Vec<(GlobalId, Option<AggKind>)>,
}

impl Written {
    /// Whether probes write the table held in `map`.
    pub fn table(&self, map: MapId) -> bool {
        self.tables.contains(&map)
    }
}

/// Walks every probe body of `module`.
pub fn written(module: &Module) -> Written {
    let mut w = Written::default();
    for p in &module.probes {
        walk(&p.body, &mut w);
    }
    w.tables.sort_by_key(|m| m.index());
    w.globals.sort_by_key(|(g, _)| g.index());
    w
}

fn global(w: &mut Written, g: GlobalId, agg: Option<AggKind>) {
    match w.globals.iter_mut().find(|(x, _)| *x == g) {
        Some((_, kind)) if *kind != agg => *kind = None,
        Some(_) => {}
        None => w.globals.push((g, agg)),
    }
}

fn table(w: &mut Written, m: MapId) {
    if !w.tables.contains(&m) {
        w.tables.push(m);
    }
}

fn walk(body: &[Stmt], w: &mut Written) {
    for s in body {
        match &s.kind {
            StmtKind::If { then, otherwise, .. } => {
                walk(then, w);
                walk(otherwise, w);
            }
            StmtKind::GlobalStore { global: g, .. } => global(w, *g, None),
            StmtKind::AggUpdate { to: AggTarget::Global(g), kind, .. } => global(w, *g, Some(*kind)),
            StmtKind::AggUpdate { to: AggTarget::Entry { map, .. }, .. }
            | StmtKind::MapStore { map, .. }
            | StmtKind::MapDelete { map, .. } => table(w, *map),
            StmtKind::Loop { body, step, .. } => {
                walk(body, w);
                walk(step, w);
            }
            StmtKind::Block { body, .. } => walk(body, w),
            StmtKind::Emit { .. } | StmtKind::SeqPrint { .. } | StmtKind::Return | StmtKind::LocalSet { .. } | StmtKind::Break | StmtKind::Leave(_) => {}
        }
    }
}

/// The record sites `probe` emits (print, printf...), each once.
pub fn sites(probe: &Probe) -> Vec<SiteId> {
    let mut found = Vec::new();
    super::each_stmt(&probe.body, &mut |s| {
        if let StmtKind::Emit { site, .. } = &s.kind {
            if !found.contains(site) {
                found.push(*site);
            }
        }
    });
    found
}
