//! From kernel bytes to userspace values and back: ring-buffer records
//! into output or actions, table keys and values into interpreter values
//! (event names, argstr, symbolized stacks), main-context values into map
//! entries.

use super::*;
use crate::ir::agg::{Reading, TableValue};
use crate::runtime::output::Cell;

/// Turns kernel values (record fields, table keys) into userspace values:
/// names events, renders argstr, symbolizes stacks.
pub(super) struct Decoder<'m> {
    pub(super) names: Vec<String>,
    pub(super) formats: Vec<&'m [ir::EventField]>,
    pub(super) stacks: Option<libbpf_rs::MapHandle>,
    pub(super) symbols: RefCell<crate::runtime::symbols::Symbols>,
    /// Field offsets of each site's records, computed once (per site id).
    pub(super) layouts: Vec<Vec<u32>>,
}

impl Decoder<'_> {
    pub(super) fn value(&self, ty: Ty, bytes: &[u8]) -> Value {
        let int = |b: &[u8]| b.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        match ty {
            Ty::Int => Value::Int(int(bytes) as i64),
            Ty::Comm | Ty::Str => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                Value::str(&bytes[..end])
            }
            Ty::ProbeName => match self.names.get(int(bytes) as usize) {
                Some(name) => Value::str(name.as_bytes()),
                None => Value::Int(int(bytes) as i64),
            },
            Ty::ArgStr { start, .. } => {
                let id = int(bytes) as usize;
                let (Some(name), Some(fields)) = (self.names.get(id), self.formats.get(id)) else { return Value::str("?") };
                Value::str(crate::runtime::argstr::render(name, fields, start, bytes.get(8..).unwrap_or(&[])))
            }
            Ty::Stack { user } => Value::str(self.stack(int(bytes), user)),
        }
    }

    /// Renders a stack id (with the process in the high half for user
    /// stacks) as one frame a line.
    pub(super) fn stack(&self, v: u64, user: bool) -> String {
        match self.stack_ips(v, user) {
            Some((pid, ips)) => self.symbols.borrow_mut().render(pid, &ips).trim_end_matches('\n').to_string(),
            // No stack was taken (e.g. a kernel stack sampled in user mode).
            None => "[no stack]".to_string(),
        }
    }

    /// The frames of a stack id, innermost first; `None` when no stack was
    /// taken.
    pub(super) fn stack_frames(&self, v: u64, user: bool) -> Option<Vec<crate::runtime::symbols::Frame>> {
        let (pid, ips) = self.stack_ips(v, user)?;
        Some(self.symbols.borrow_mut().frames(pid, &ips))
    }

    /// The process (0: the kernel) and addresses of a stack id.
    fn stack_ips(&self, v: u64, user: bool) -> Option<(u32, Vec<u64>)> {
        // id | pid << 32 (user stacks) | frames to show << 56 (0: all).
        let id = v as u32;
        let pid = if user { ((v >> 32) & 0xff_ffff) as u32 } else { 0 };
        let depth = match (v >> 56) & 0x7f {
            0 => usize::MAX,
            n => n as usize,
        };
        if id as i32 >= 0 {
            if let Some(Ok(Some(raw))) = self.stacks.as_ref().map(|m| m.lookup(&id.to_le_bytes(), libbpf_rs::MapFlags::ANY)) {
                let ips = raw
                    .chunks_exact(8)
                    .map(|c| c.try_into().map_or(0, u64::from_le_bytes))
                    .take_while(|&ip| ip != 0)
                    .take(depth)
                    .collect();
                return Some((pid, ips));
            }
        }
        None
    }
}

/// What a record asks of the session beyond printing.
pub(super) enum Action<'m> {
    Continue,
    Exit,
    PrintHist { var: &'m str, n: usize, origin: Origin },
    Delete { var: &'m str },
}

/// A userspace value as the kernel stores it for `ty`, if it has that type.
pub(super) fn encode(ty: Ty, v: &Value) -> Option<Vec<u8>> {
    match (ty, v) {
        (Ty::Int, Value::Int(i)) => Some(i.to_le_bytes().to_vec()),
        (Ty::Int, Value::Bool(b)) => Some(i64::from(*b).to_le_bytes().to_vec()),
        (Ty::Comm | Ty::Str, Value::Str(s)) if (s.len() as u32) < ty.size() => {
            let mut b = s.as_bytes().to_vec();
            b.resize(ty.size() as usize, 0);
            Some(b)
        }
        _ => None,
    }
}

/// Turns one ring-buffer record (received at `time`, with -T) into output,
/// or into an action.
pub(super) fn handle_record<'m>(
    m: &'m Module,
    dec: &Decoder,
    rec: &[u8],
    time: Option<std::time::SystemTime>,
    out: &mut dyn Output,
) -> Result<Action<'m>, Error> {
    let Some(tag) = rec.get(..8) else { return Ok(Action::Continue) };
    let site_id = u64::from_le_bytes(tag.try_into().unwrap_or([0; 8])) as usize;
    let Some(site) = m.sites.get(site_id) else {
        return Err(Error::new(format!("corrupt record from the kernel (site {site_id})")));
    };
    let offsets = dec.layouts.get(site_id).map_or(&[][..], Vec::as_slice);
    let mut args = Vec::with_capacity(site.fields.len() + site.consts.len());
    for (ty, &off) in site.fields.iter().zip(offsets) {
        let off = off as usize;
        let bytes = rec.get(off..off + ty.size() as usize).unwrap_or(&[]);
        args.push(dec.value(*ty, bytes));
    }
    for (at, c) in &site.consts {
        let v = match c {
            ir::SiteConst::Nil => Value::Nil,
            ir::SiteConst::Bool(b) => Value::Bool(*b),
            ir::SiteConst::Int(i) => Value::Int(*i),
            ir::SiteConst::Str(s) => Value::str(s),
        };
        args.insert((*at).min(args.len()), v);
    }
    let io = |e: std::io::Error| Error::new(format!("cannot write output: {e}"));
    // A stamped record says when its event happened (-T).
    let time = match site.stamp_offset() {
        Some(at) => {
            let boot = u64::from_le_bytes(rec.get(at as usize..at as usize + 8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
            let ns = i128::from(boot) + i128::from(super::state::boot_to_real_ns());
            u64::try_from(ns).ok().map(|ns| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns)).or(time)
        }
        None => time,
    };
    let origin = Origin { site: Some(site.span), time };
    match &site.kind {
        SiteKind::Print => out.print(&origin, &args).map_err(io)?,
        SiteKind::Printf { format: f } => match crate::runtime::format::printf(f, &args) {
            Ok(text) => out.printf(&origin, &text).map_err(io)?,
            Err(e) => return Err(Error { message: e.to_string(), span: Some(site.span), notes: Vec::new() }),
        },
        SiteKind::Exit => return Ok(Action::Exit),
        SiteKind::PrintHist { var, n } => return Ok(Action::PrintHist { var, n: *n, origin }),
        SiteKind::Delete { var } => return Ok(Action::Delete { var }),
    }
    Ok(Action::Continue)
}

/// An aggregate entry as userspace sees it.
fn reading_value(r: Reading) -> Value {
    match r {
        Reading::Int(i) => Value::Int(i),
        other => Value::agg(other),
    }
}

/// A userspace value as an aggregate entry, if it can be one.
pub(super) fn value_reading(v: &Value) -> Option<Reading> {
    match v {
        Value::Int(i) => Some(Reading::Int(*i)),
        Value::Bool(b) => Some(Reading::Int(i64::from(*b))),
        Value::Agg(r) => Some(r.borrow().clone()),
        _ => None,
    }
}

/// What a global aggregate (a one-entry table, `lat = hist(d)`) reads as:
/// its entry at key 0, or the kind's empty reading before any update.
pub(super) fn single_reading(info: &ir::TableInfo, entries: impl IntoIterator<Item = (Value, Cell)>) -> Reading {
    let found = entries.into_iter().find(|(k, _)| *k == Value::Int(0)).and_then(|(_, c)| match c {
        Cell::Reading(r) => Some(r),
        Cell::Value(v) => value_reading(&v),
    });
    found.unwrap_or_else(|| info.value.agg().map_or(Reading::Int(0), |k| {
        let d = k.desc();
        d.read(&d.empty())
    }))
}

/// A userspace value as a table's map stores it, if it has the type.
pub(super) fn encode_entry(holds: TableValue, v: &Value) -> Option<Vec<u8>> {
    match holds {
        TableValue::Scalar(ty) => encode(ty, v),
        TableValue::Agg(agg) => value_reading(v).and_then(|r| agg.desc().write(&r)),
    }
}

/// Reads a kernel table into a userspace table (per-CPU copies merged by
/// the aggregate's kind).
pub(super) fn read_table(map: &libbpf_rs::Map, kind: ir::MapKind, info: &ir::TableInfo, dec: &Decoder) -> Value {
    read_table_with_keys(map, kind, info, dec).0
}

/// `read_table`, also returning each key as stored and as read, with its
/// value (one walk of the map for all).
pub(super) fn read_table_with_keys(map: &libbpf_rs::Map, kind: ir::MapKind, info: &ir::TableInfo, dec: &Decoder) -> (Value, TableKeys) {
    let mut table = crate::runtime::interp::Table::with_capacity(0);
    let mut keys = Vec::new();
    for (key, k, cell) in read_entries(map, kind, info, dec) {
        let value = match cell {
            Cell::Value(v) => v,
            Cell::Reading(r) => reading_value(r),
        };
        table.set(k.clone(), value.clone());
        keys.push((key, k, value));
    }
    (Value::Table(Rc::new(RefCell::new(table))), keys)
}

/// Every entry of a table's map: the key as stored and as read, and the
/// value (an aggregate's reading, per-CPU copies merged by its kind).
pub(super) fn read_entries(map: &libbpf_rs::Map, kind: ir::MapKind, info: &ir::TableInfo, dec: &Decoder) -> Vec<(Vec<u8>, Value, Cell)> {
    let mut entries = Vec::new();
    let agg = info.value.agg().map(|kind| kind.desc());
    for key in map.keys() {
        let cell = match (kind, &agg) {
            (ir::MapKind::PercpuHash, Some(agg)) => match map.lookup_percpu(&key, libbpf_rs::MapFlags::ANY) {
                Ok(Some(per_cpu)) => Cell::Reading(agg.read_cpus(per_cpu.iter().map(Vec::as_slice))),
                _ => continue,
            },
            (_, agg) => match map.lookup(&key, libbpf_rs::MapFlags::ANY) {
                Ok(Some(v)) => match agg {
                    Some(agg) => Cell::Reading(agg.read(&v)),
                    None => Cell::Value(dec.value(info.value.ty(), &v)),
                },
                _ => continue,
            },
        };
        let k = dec.value(info.key, &key);
        entries.push((key, k, cell));
    }
    entries
}
