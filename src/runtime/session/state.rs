//! Kernel-visible state shared with the interpreter: `.data/.bss` seeded from
//! the main context before load, read through libbpf's mapping, and tables
//! copied in and out around tick-N and trace_end.

use super::*;
use crate::runtime::output::Cell;

/// A live view of one internal data section (`.bss`, `.data`) through
/// libbpf's memory mapping of it.
pub(super) struct SectionView {
    pub(super) ptr: *mut u8,
    pub(super) len: usize,
}

impl SectionView {
    pub(super) fn read_u64(&self, offset: u32) -> u64 {
        let at = offset as usize;
        if at + 8 > self.len {
            return 0;
        }
        // SAFETY: in bounds of the mapping libbpf keeps for the object's
        // lifetime; volatile because the kernel writes it concurrently.
        unsafe { std::ptr::read_volatile(self.ptr.add(at).cast::<u64>()) }
    }
    pub(super) fn write_u64(&self, offset: u32, v: u64) {
        let at = offset as usize;
        if at + 8 <= self.len {
            // SAFETY: as in read_u64.
            unsafe { std::ptr::write_volatile(self.ptr.add(at).cast::<u64>(), v) }
        }
    }
    /// `len` bytes from `offset` (a string global), empty when out of range.
    pub(super) fn read_bytes(&self, offset: u32, len: u32) -> Vec<u8> {
        let (at, len) = (offset as usize, len as usize);
        if at + len > self.len {
            return Vec::new();
        }
        // SAFETY: as in read_u64, byte by byte.
        (0..len).map(|i| unsafe { std::ptr::read_volatile(self.ptr.add(at + i)) }).collect()
    }
    pub(super) fn write_bytes(&self, offset: u32, bytes: &[u8]) {
        let at = offset as usize;
        if at + bytes.len() <= self.len {
            for (i, b) in bytes.iter().enumerate() {
                // SAFETY: as in read_u64.
                unsafe { std::ptr::write_volatile(self.ptr.add(at + i), *b) }
            }
        }
    }
    /// A global's bytes as its type lays them out.
    pub(super) fn read_global(&self, layout: &GlobalLayout, ty: Ty) -> Vec<u8> {
        match ty {
            Ty::Comm | Ty::Str => self.read_bytes(layout.offset, ty.size()),
            _ => self.read_u64(layout.offset).to_le_bytes().to_vec(),
        }
    }
}

pub(super) fn section_of(name: &str) -> Option<Section> {
    if name.ends_with(".bss") {
        Some(Section::Bss)
    } else if name.ends_with(".data") {
        Some(Section::Data)
    } else {
        None
    }
}

/// The bytes a kernel global starts with: the main context's value of its
/// variable, or for synthetic globals what the options ask.
pub(super) fn initial_bytes(module: &Module, id: usize, interp: &Interp, opts: &Options) -> Result<Vec<u8>, Error> {
    let g = &module.globals[id];
    let is = |x: Option<ir::GlobalId>| x.is_some_and(|x| x.index() == id);
    let int = |v: i64| Ok(v.to_le_bytes().to_vec());
    if is(module.target_pid) {
        return int(opts.target_pid.map_or(0, i64::from));
    }
    if is(module.target_cpu) {
        return int(opts.target_cpu.map_or(0, |c| i64::from(c) + 1));
    }
    if is(module.self_pid) {
        return int(i64::from(std::process::id()));
    }
    if is(module.boot_to_real) {
        return int(boot_to_real_ns());
    }
    let Some(var) = &g.var else { return int(0) };
    let value = match interp.global(var) {
        None | Some(Value::Nil) => return Ok(vec![0; g.ty.size() as usize]),
        Some(v) => v,
    };
    encode(g.ty, &value).ok_or_else(|| {
        let what = if g.ty.is_string() {
            format!("a string of at most {} bytes", g.ty.size() - 1)
        } else {
            "a number".to_string()
        };
        Error {
            message: format!("variable `{var}` is {what} in a probe, but the main context set it to {}", describe(&value)),
            span: g.span,
            notes: Vec::new(),
        }
    })
}

/// A userspace value, for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("a string of {} bytes", s.len()),
        other => format!("a {}", other.type_name()),
    }
}

/// CLOCK_REALTIME − CLOCK_BOOTTIME, so boot-clock stamps taken in the
/// kernel become wall-clock times consistent with userspace. Taken once
/// per run: the probes' `gettimeofday_*()` (the `ktap_boot_to_real`
/// global) and the `-T` stamps of records use the same offset, so they
/// agree to the nanosecond; a wall clock stepped or slewed during the run
/// is not followed.
pub(super) fn boot_to_real_ns() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(measure_boot_to_real)
}

/// The offset, measured: the boot clock read between two reads of the
/// wall clock, three times, the narrowest window winning (a preemption
/// between two reads would otherwise skew it by its length).
fn measure_boot_to_real() -> i64 {
    let now = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid timespec to fill.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    let sample = || {
        let before = now(libc::CLOCK_REALTIME);
        let boot = now(libc::CLOCK_BOOTTIME);
        let after = now(libc::CLOCK_REALTIME);
        (after - before, before + (after - before) / 2 - boot)
    };
    (0..3).map(|_| sample()).min_by_key(|&(window, _)| window).map_or(0, |(_, offset)| offset)
}

/// The object's map of this name.
pub(super) fn map_named<'o>(obj: &'o libbpf_rs::Object, name: &str) -> Option<libbpf_rs::Map<'o>> {
    obj.maps().find(|m| m.name().to_string_lossy() == name)
}

pub(super) fn section_view<'v>(views: &'v [(Section, SectionView)], layout: &GlobalLayout) -> Option<&'v SectionView> {
    views.iter().find(|(s, _)| *s == layout.section).map(|(_, v)| v)
}

/// A table's keys as the kernel stores them and as userspace sees them,
/// with the value userspace saw.
pub(super) type TableKeys = Vec<(Vec<u8>, Value, Value)>;

/// What userspace saw of the kernel state before running a tick body.
pub(super) struct Snapshot {
    /// Per global: its bytes as the kernel had them.
    pub(super) globals: Vec<(usize, Vec<u8>)>,
    /// Per table map: its keys (raw) and their userspace values.
    pub(super) tables: Vec<(usize, TableKeys)>,
}

/// Copies kernel globals and tables into the interpreter's variables.
pub(super) fn sync_in(live: &Live, interp: &mut Interp, only: Option<&[String]>) -> Snapshot {
    let (module, compiled, obj, views, dec) = (live.module, live.compiled, &live.obj, &live.views, &live.dec);
    let wanted = |var: &str| only.is_none_or(|names| names.iter().any(|n| n == var));
    let mut snap = Snapshot { globals: Vec::new(), tables: Vec::new() };
    for (i, (g, layout)) in module.globals.iter().zip(&compiled.globals).enumerate() {
        if g.var.as_deref().is_some_and(|v| !wanted(v)) {
            continue;
        }
        if let (Some(var), Some(view)) = (&g.var, section_view(views, layout)) {
            let raw = view.read_global(layout, g.ty);
            interp.set_global(var, dec.value(g.ty, &raw));
            snap.globals.push((i, raw));
        }
    }
    for (i, map_ir) in module.maps.iter().enumerate() {
        let Some(info) = &map_ir.table else { continue };
        if !wanted(&info.var) {
            continue;
        }
        if let Some(map) = map_named(obj, &map_ir.name) {
            let (table, keys) = read_table_with_keys(&map, map_ir.kind, info, dec);
            if info.single {
                // A global aggregate: the variable is the entry itself.
                let entries = keys.iter().map(|(_, k, v)| (k.clone(), Cell::Value(v.clone())));
                interp.set_global(&info.var, Value::agg(single_reading(info, entries)));
            } else {
                interp.set_global(&info.var, table);
            }
            snap.tables.push((i, keys));
        }
    }
    snap
}

/// Writes back what a tick body changed: globals it assigned, and keys it
/// removed from tables (`delete(t)` after `print_hist(t)`). Updates that
/// the kernel makes in between may be lost; deletions never resurrect.
pub(super) fn sync_out(live: &Live, interp: &Interp, before: &Snapshot, out: &mut dyn Output) {
    let (module, compiled, obj, views) = (live.module, live.compiled, &live.obj, &live.views);
    for (i, old) in &before.globals {
        let (g, layout) = (&module.globals[*i], &compiled.globals[*i]);
        let Some(var) = &g.var else { continue };
        let (Some(now), Some(view)) = (interp.global(var), section_view(views, layout)) else { continue };
        match encode(g.ty, &now) {
            Some(bytes) if &bytes != old => view.write_bytes(layout.offset, &bytes),
            Some(_) => {}
            None => out.notice(&Notice::TickRetyped {
                var,
                given: &describe(&now),
                kept: if g.ty.is_string() { "strings" } else { "numbers" },
            }),
        }
    }
    for (i, keys) in &before.tables {
        let map_ir = &module.maps[*i];
        let Some(info) = &map_ir.table else { continue };
        if info.single {
            sync_out_single(obj, map_ir, info, interp, keys, out);
            continue;
        }
        let Some(Value::Table(t)) = interp.global(&info.var) else { continue };
        let Some(map) = map_named(obj, &map_ir.name) else { continue };
        let t = t.borrow();
        let mut changed = Vec::new();
        let mut kept = 0;
        for (raw, key, old) in keys {
            let now = t.get(key);
            if now.is_nil() {
                let _ = map.delete(raw);
                continue;
            }
            kept += 1;
            if now != *old {
                changed.push((key.clone(), now));
            }
        }
        // Keys the tick added, if any (the common tick only reads and
        // deletes: nothing to look for then).
        if t.len() > kept {
            let known: std::collections::HashSet<&[u8]> = keys.iter().map(|(raw, ..)| raw.as_slice()).collect();
            for (k, v) in t.iter() {
                if encode(info.key, k).is_none_or(|raw| !known.contains(raw.as_slice())) {
                    changed.push((k.clone(), v.clone()));
                }
            }
        }
        for (k, v) in changed {
            if let Err(message) = store(&map, map_ir.kind, info, &k, &v) {
                out.notice(&Notice::TableWriteBack(&message));
            }
        }
    }
}

/// Writes back a global aggregate a tick changed: emptied (`delete(lat)`)
/// removes its entry, another reading is stored.
fn sync_out_single(obj: &libbpf_rs::Object, map_ir: &ir::Map, info: &ir::TableInfo, interp: &Interp, keys: &TableKeys, out: &mut dyn Output) {
    let Some(Value::Agg(now)) = interp.global(&info.var) else { return };
    let now = now.borrow().clone();
    let old = single_reading(info, keys.iter().map(|(_, k, v)| (k.clone(), Cell::Value(v.clone()))));
    if now == old {
        return;
    }
    let Some(map) = map_named(obj, &map_ir.name) else { return };
    if now == now.emptied() {
        if let Some(raw) = encode(info.key, &Value::Int(0)) {
            let _ = map.delete(&raw);
        }
    } else if let Err(message) = store(&map, map_ir.kind, info, &Value::Int(0), &Value::agg(now)) {
        out.notice(&Notice::TableWriteBack(&message));
    }
}

/// Writes one userspace entry into a table's map (a per-CPU value goes to
/// the first CPU, an empty entry on the others, so merging gives the
/// value).
fn store(map: &libbpf_rs::Map<'_>, kind: ir::MapKind, info: &ir::TableInfo, k: &Value, v: &Value) -> Result<(), String> {
    let (Some(key), Some(value)) = (encode(info.key, k), encode_entry(info.value, v)) else {
        return Err(format!(
            "table `{}` holds {} -> {} in userspace, but probes use it as {} -> {}",
            info.var,
            describe(k),
            describe(v),
            ty_text(info.key),
            ty_text(info.value.ty())
        ));
    };
    let r = if kind == ir::MapKind::PercpuHash {
        let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1);
        let empty = info.value.agg().map_or_else(|| vec![0u8; value.len()], |agg| agg.desc().empty());
        let mut per_cpu = vec![empty; ncpus];
        per_cpu[0] = value;
        map.update_percpu(&key, &per_cpu, libbpf_rs::MapFlags::ANY)
    } else {
        map.update(&key, &value, libbpf_rs::MapFlags::ANY)
    };
    r.map_err(|e| format!("cannot update table `{}`: {e}", info.var))
}

/// A kernel type, for messages.
fn ty_text(ty: Ty) -> &'static str {
    match ty {
        Ty::Int => "numbers",
        Ty::Comm | Ty::Str => "strings",
        Ty::ProbeName => "probe names",
        Ty::Stack { .. } => "stacks",
        Ty::ArgStr { .. } => "argstr",
    }
}

/// Copies the tables the main context filled into their maps, before any
/// probe runs.
pub(super) fn fill_tables(module: &Module, obj: &libbpf_rs::Object, interp: &Interp) -> Result<(), Error> {
    for map_ir in &module.maps {
        let Some(info) = &map_ir.table else { continue };
        let Some(Value::Table(t)) = interp.global(&info.var).filter(|_| !info.single) else { continue };
        let Some(map) = map_named(obj, &map_ir.name) else { continue };
        for (k, v) in t.borrow().iter() {
            store(&map, map_ir.kind, info, k, v).map_err(Error::new)?;
        }
    }
    Ok(())
}
