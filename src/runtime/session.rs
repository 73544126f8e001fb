//! A tracing session: opens the compiled object with libbpf, seeds its
//! globals from the main context, loads (mapping verifier rejections back
//! to source lines), attaches, consumes the ring buffer, runs ticks, and on
//! the way out stops event delivery, drains, runs trace_end and only then
//! detaches. The only place that loads or attaches BPF.

use super::interp::{Interp, Outcome, Value};
use super::{format, SharedOut};
use crate::bpfgen::codegen::{Compiled, GlobalLayout};
use crate::frontend::ast::Span;
use crate::ir::{self, Module, Section, SiteKind, Ty};
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, Link, MapCore, ObjectBuilder, PrintLevel, RingBufferBuilder};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A runtime failure, with the source span it concerns when there is one.
#[derive(Debug, Clone)]
pub struct Error {
    pub message: String,
    pub span: Option<Span>,
    pub notes: Vec<String>,
}

impl Error {
    fn new(message: impl Into<String>) -> Error {
        Error { message: message.into(), span: None, notes: Vec::new() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[derive(Debug, Default)]
pub struct Options {
    /// No "Tracing..." banner.
    pub quiet: bool,
    /// Show libbpf's messages.
    pub verbose: bool,
    /// Load the programs but attach nothing (`-d`).
    pub dry_run: bool,
    /// Prefix what probes print with the wall-clock time (`-T`).
    pub timestamps: bool,
    /// Trace only this process (`-p`, or the `-- CMD` child).
    pub target_pid: Option<u32>,
    /// Trace only this CPU (`-C`).
    pub target_cpu: Option<u32>,
    /// The `-- CMD` child, held at its start gate until attach; tracing
    /// ends when it exits.
    pub child: Option<super::child::Child>,
}

/// How often the ring buffer is drained: the latency of printed output.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// libbpf's messages since the last take; shown live with `-v`.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());
static VERBOSE: AtomicBool = AtomicBool::new(false);

fn libbpf_print(level: PrintLevel, msg: String) {
    // Kept for error reports; shown live only with -v.
    if VERBOSE.load(Ordering::Relaxed) && (level != PrintLevel::Debug || msg.contains("verifier")) {
        eprint!("{msg}");
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

fn take_libbpf_log() -> String {
    LIBBPF_LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
}

/// Finds the failing instruction in a verifier log: the last `N: (..)`
/// line, and the reason printed after it.
pub fn verifier_failure(log: &str, program: &str) -> Option<(usize, String)> {
    let start = log.find(&format!("prog '{program}': -- BEGIN PROG LOAD LOG --"))?;
    let body = &log[start..];
    let end = body.find("-- END PROG LOAD LOG --").unwrap_or(body.len());
    let lines: Vec<&str> = body[..end].lines().skip(1).collect();
    let mut last_insn = None;
    for (i, line) in lines.iter().enumerate() {
        let mut parts = line.splitn(2, ": (");
        if let (Some(n), Some(_)) = (parts.next(), parts.next()) {
            if let Ok(n) = n.trim().parse::<usize>() {
                last_insn = Some((i, n));
            }
        }
    }
    let (line_no, insn) = last_insn?;
    let reason: Vec<&str> = lines[line_no + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("libbpf:"))
        .collect();
    Some((insn, reason.join("; ")))
}

/// A live view of one internal data section (`.bss`, `.data`) through
/// libbpf's memory mapping of it.
struct SectionView {
    ptr: *mut u8,
    len: usize,
}

impl SectionView {
    fn read_u64(&self, offset: u32) -> u64 {
        let at = offset as usize;
        if at + 8 > self.len {
            return 0;
        }
        // SAFETY: in bounds of the mapping libbpf keeps for the object's
        // lifetime; volatile because the kernel writes it concurrently.
        unsafe { std::ptr::read_volatile(self.ptr.add(at).cast::<u64>()) }
    }
    fn write_u64(&self, offset: u32, v: u64) {
        let at = offset as usize;
        if at + 8 <= self.len {
            // SAFETY: as in read_u64.
            unsafe { std::ptr::write_volatile(self.ptr.add(at).cast::<u64>(), v) }
        }
    }
}

fn section_of(name: &str) -> Option<Section> {
    if name.ends_with(".bss") {
        Some(Section::Bss)
    } else if name.ends_with(".data") {
        Some(Section::Data)
    } else {
        None
    }
}

/// The integer a kernel global starts with: the main context's value of
/// its variable, or for synthetic globals what the options ask.
fn initial_int(module: &Module, id: usize, interp: &Interp, opts: &Options) -> Result<i64, Error> {
    let g = &module.globals[id];
    let is = |x: Option<ir::GlobalId>| x.is_some_and(|x| x.index() == id);
    if is(module.target_pid) {
        return Ok(opts.target_pid.map_or(0, i64::from));
    }
    if is(module.target_cpu) {
        return Ok(opts.target_cpu.map_or(0, |c| i64::from(c) + 1));
    }
    if is(module.self_pid) {
        return Ok(i64::from(std::process::id()));
    }
    if is(module.boot_to_real) {
        return Ok(boot_to_real_ns());
    }
    let Some(var) = &g.var else { return Ok(0) };
    match interp.global(var) {
        None | Some(Value::Nil) => Ok(0),
        Some(Value::Int(v)) => Ok(v),
        Some(Value::Bool(b)) => Ok(i64::from(b)),
        Some(_) => Err(Error {
            message: format!("variable `{var}` is used as a number in a probe, but the main context set it to another type"),
            span: g.span,
            notes: Vec::new(),
        }),
    }
}

/// Turns kernel values (record fields, table keys) into userspace values:
/// names events, renders argstr, symbolizes stacks.
struct Decoder<'m> {
    names: Vec<String>,
    formats: Vec<&'m [ir::EventField]>,
    stacks: Option<libbpf_rs::MapHandle>,
    symbols: RefCell<super::symbols::Symbols>,
}

impl Decoder<'_> {
    fn value(&self, ty: Ty, bytes: &[u8]) -> Value {
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
                Value::str(super::argstr::render(name, fields, start, bytes.get(8..).unwrap_or(&[])))
            }
            Ty::Stack { user } => Value::str(self.stack(int(bytes), user)),
        }
    }

    /// Renders a stack id (with the process in the high half for user
    /// stacks) as one frame a line.
    fn stack(&self, v: u64, user: bool) -> String {
        let id = v as u32;
        let pid = if user { (v >> 32) as u32 } else { 0 };
        if id as i32 >= 0 {
            if let Some(Ok(Some(raw))) = self.stacks.as_ref().map(|m| m.lookup(&id.to_le_bytes(), libbpf_rs::MapFlags::ANY)) {
                let ips: Vec<u64> = raw
                    .chunks_exact(8)
                    .map(|c| c.try_into().map_or(0, u64::from_le_bytes))
                    .take_while(|&ip| ip != 0)
                    .collect();
                return format!("\n{}", self.symbols.borrow_mut().render(pid, &ips));
            }
        }
        "\n        [stack unavailable]\n".to_string()
    }
}

/// What a record asks of the session beyond printing.
enum Action<'m> {
    Continue,
    Exit,
    PrintHist { var: &'m str, n: usize },
    Delete { var: &'m str },
}

/// A userspace value as the kernel stores it for `ty`, if it has that type.
fn encode(ty: Ty, v: &Value) -> Option<Vec<u8>> {
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

/// Turns one ring-buffer record into output, or into an action.
fn handle_record<'m>(m: &'m Module, dec: &Decoder, rec: &[u8], out: &mut dyn Write) -> Result<Action<'m>, Error> {
    let Some(tag) = rec.get(..8) else { return Ok(Action::Continue) };
    let site_id = u64::from_le_bytes(tag.try_into().unwrap_or([0; 8])) as usize;
    let Some(site) = m.sites.get(site_id) else {
        return Err(Error::new(format!("corrupt record from the kernel (site {site_id})")));
    };
    let (offsets, _) = site.layout();
    let mut args = Vec::with_capacity(site.fields.len() + site.consts.len());
    for (ty, off) in site.fields.iter().zip(offsets) {
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
    match &site.kind {
        SiteKind::Print => out.write_all(&format::print_line(&args)).map_err(io)?,
        SiteKind::Printf { format: f } => match format::printf(f, &args) {
            Ok(text) => out.write_all(&text).map_err(io)?,
            Err(e) => return Err(Error { message: e.to_string(), span: Some(site.span), notes: Vec::new() }),
        },
        SiteKind::Exit => return Ok(Action::Exit),
        SiteKind::PrintHist { var, n } => return Ok(Action::PrintHist { var, n: *n }),
        SiteKind::Delete { var } => return Ok(Action::Delete { var }),
    }
    Ok(Action::Continue)
}

/// Reads a kernel table into a userspace table (per-CPU values summed).
fn read_table(map: &libbpf_rs::Map, kind: ir::MapKind, info: &ir::TableInfo, dec: &Decoder) -> Value {
    let mut table = super::interp::Table::with_capacity(0);
    for key in map.keys() {
        let value = if kind == ir::MapKind::PercpuHash {
            match map.lookup_percpu(&key, libbpf_rs::MapFlags::ANY) {
                Ok(Some(per_cpu)) => {
                    let sum = per_cpu.iter().map(|v| match dec.value(Ty::Int, v) {
                        Value::Int(i) => i,
                        _ => 0,
                    });
                    Value::Int(sum.fold(0i64, i64::wrapping_add))
                }
                _ => continue,
            }
        } else {
            match map.lookup(&key, libbpf_rs::MapFlags::ANY) {
                Ok(Some(v)) => dec.value(info.value, &v),
                _ => continue,
            }
        };
        table.set(dec.value(info.key, &key), value);
    }
    Value::Table(Rc::new(RefCell::new(table)))
}

/// `HH:MM:SS.micros` of the wall clock (UTC).
fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = now.as_secs();
    format!("{:02}:{:02}:{:02}.{:06}", s / 3600 % 24, s / 60 % 60, s % 60, now.subsec_micros())
}

/// Raises the open-file limit to its hard maximum.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid rlimit to fill and then to set.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// CLOCK_REALTIME − CLOCK_BOOTTIME, so boot-clock stamps taken in the
/// kernel become wall-clock times consistent with userspace.
fn boot_to_real_ns() -> i64 {
    let now = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: ts is a valid timespec to fill.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_BOOTTIME)
}

/// Runs the probes of `module` until Ctrl-C, `exit()` or a tick's `exit()`,
/// then trace_end. `stop` is set by the signal handler.
pub fn run(
    module: &Module,
    compiled: &Compiled,
    object: &[u8],
    interp: &mut Interp,
    out: &SharedOut,
    opts: &mut Options,
    stop: &Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    VERBOSE.store(opts.verbose, Ordering::Relaxed);
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
    take_libbpf_log();

    let lib = |what: &str, e: libbpf_rs::Error| Error::new(format!("{what}: {e}"));
    let mut builder = ObjectBuilder::default();
    builder.name("ktap").map_err(|e| lib("cannot name the BPF object", e))?;
    let mut open = builder.open_memory(object).map_err(|e| {
        let mut err = lib("libbpf cannot open the generated object (a compiler bug)", e);
        err.notes.push(take_libbpf_log());
        err
    })?;

    // Seed the data sections with the main context's values.
    for mut map in open.maps_mut() {
        let Some(section) = section_of(&map.name().to_string_lossy()) else { continue };
        let Some(buf) = map.initial_value_mut() else { continue };
        for (id, layout) in compiled.globals.iter().enumerate() {
            if layout.section != section {
                continue;
            }
            let v = initial_int(module, id, interp, opts)?;
            let at = layout.offset as usize;
            if let Some(slot) = buf.get_mut(at..at + 8) {
                slot.copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    // Uprobe programs with many attach points use uprobe.multi links.
    for mut prog in open.progs_mut() {
        if compiled.programs.iter().any(|info| prog.name() == info.name.as_str() && super::uprobe::wants_multi(info)) {
            prog.set_attach_type(libbpf_rs::ProgramAttachType::TraceUprobeMulti);
        }
    }

    let obj = match open.load() {
        Ok(obj) => obj,
        Err(e) => return Err(load_error(compiled, e)),
    };
    take_libbpf_log();

    let mut views: Vec<(Section, SectionView)> = Vec::new();
    for map in obj.maps() {
        let Some(section) = section_of(&map.name().to_string_lossy()) else { continue };
        let mut size: libbpf_sys::size_t = 0;
        // SAFETY: the map pointer is valid while `obj` lives; after load
        // libbpf returns its live memory mapping of the section.
        let ptr = unsafe { libbpf_sys::bpf_map__initial_value(map.as_libbpf_object().as_ptr(), &mut size) };
        if !ptr.is_null() {
            views.push((section, SectionView { ptr: ptr.cast(), len: size as usize }));
        }
    }
    let global_view = |layout: &GlobalLayout| section_view(&views, layout);

    if opts.dry_run {
        let _ = writeln!(out.clone(), "Loaded {} program(s); not attaching (-d).", compiled.programs.len());
        return Ok(Outcome::Done);
    }

    // Tables the main context filled reach the kernel before any probe runs.
    for map_ir in &module.maps {
        let Some(info) = &map_ir.table else { continue };
        let Some(Value::Table(t)) = interp.global(&info.var) else { continue };
        let Some(map) = obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name.as_str()) else { continue };
        let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1);
        for (k, v) in t.borrow().iter() {
            let (Some(key), Some(value)) = (encode(info.key, k), encode(info.value, v)) else {
                return Err(Error::new(format!(
                    "table `{}` holds {} -> {} in the main context, but probes use it as {:?} -> {:?}",
                    info.var,
                    k.type_name(),
                    v.type_name(),
                    info.key,
                    info.value
                )));
            };
            let r = if map_ir.kind == ir::MapKind::PercpuHash {
                // The whole value on one CPU, zero on the others: the sum
                // userspace reads back is the value.
                let mut per_cpu = vec![vec![0u8; value.len()]; ncpus];
                per_cpu[0] = value;
                map.update_percpu(&key, &per_cpu, libbpf_rs::MapFlags::ANY)
            } else {
                map.update(&key, &value, libbpf_rs::MapFlags::ANY)
            };
            r.map_err(|e| lib(&format!("cannot fill table `{}` from the main context", info.var), e))?;
        }
    }

    // Syscall filters: number -> probename id + 1.
    for map_ir in &module.maps {
        let Some((probe, kind)) = map_ir.syscall_filter else { continue };
        let Some(map) = obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name.as_str()) else {
            return Err(Error::new(format!("map {} missing after load", map_ir.name)));
        };
        for (i, a) in module.probes[probe].attach.iter().enumerate() {
            if let ir::Attach::Syscall { nr, .. } = a {
                if a.kind() != kind {
                    continue;
                }
                let id = module.probe_name_id(probe, i) + 1;
                map.update(&nr.to_le_bytes(), &id.to_le_bytes(), libbpf_rs::MapFlags::ANY)
                    .map_err(|e| lib("cannot fill the syscall filter", e))?;
            }
        }
    }

    // Every classic tracepoint or perf event link holds a file descriptor:
    // a big wildcard needs many.
    raise_fd_limit();

    // Attach every program to the events it serves.
    let mut links: Vec<Link> = Vec::new();
    let mut slow_links = 0;
    let mut skipped = Vec::new();
    for info in &compiled.programs {
        let Some(prog) = obj.progs_mut().find(|p| p.name() == info.name.as_str()) else {
            return Err(Error::new(format!("program {} missing after load", info.name)));
        };
        let probe = &module.probes[info.probe];
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
                        None => super::perf::online_cpus(),
                    };
                    for cpu in cpus {
                        let fd = super::perf::cpu_clock(cpu, *period_ns).map_err(|e| Error {
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
                slow_links += super::uprobe::attach(&prog, module, info.probe, &info.attach, opts.target_pid, stop, &mut links, &mut skipped)?;
            }
            ir::ProgKind::Kprobe => super::kprobe::attach(&prog, module, info.probe, &info.attach, stop, &mut links, &mut skipped)?,
            ir::ProgKind::SysEnter | ir::ProgKind::SysExit => {
                let tp = if info.kind == ir::ProgKind::SysEnter { "sys_enter" } else { "sys_exit" };
                let link = prog.attach_raw_tracepoint(tp).map_err(|e| attach_error(format!("raw_syscalls:{tp}"), e))?;
                links.push(link);
            }
            ir::ProgKind::Tracepoint | ir::ProgKind::RawTracepoint => {
                for &i in &info.attach {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let cookie = module.probe_name_id(info.probe, i);
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
        // Ctrl-C while attaching (a big glob can take a while): undo and go.
        if stop.load(Ordering::Relaxed) {
            eprintln!("ktap: interrupted while attaching: detaching what was attached; nothing was traced");
            if let Some(layout) = module.stop_flag.map(|g| &compiled.globals[g.index()]) {
                if let Some(view) = global_view(layout) {
                    view.write_u64(layout.offset, 1);
                }
            }
            teardown(links, slow_links);
            return Ok(Outcome::Interrupted);
        }
    }
    if !skipped.is_empty() {
        eprintln!("ktap: warning: {} events could not be attached and are not traced:", skipped.len());
        for s in skipped.iter().take(5) {
            eprintln!("  {s}");
        }
    }

    let dec = Decoder {
        names: module.probe_names(),
        formats: module.probe_formats(),
        stacks: match module.stacks {
            Some(id) => {
                let name = &module.map(id).name;
                let map = obj.maps().find(|m| m.name().to_string_lossy() == name.as_str());
                map.and_then(|m| libbpf_rs::MapHandle::try_from(&m).ok())
            }
            None => None,
        },
        symbols: RefCell::default(),
    };
    let queue: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let ringbuf = match module.events {
        Some(events) => {
            let name = &module.map(events).name;
            let map = obj
                .maps()
                .find(|m| m.name().to_string_lossy() == name.as_str())
                .ok_or_else(|| Error::new("event ring buffer missing after load"))?;
            let mut b = RingBufferBuilder::new();
            let q = queue.clone();
            b.add(&map, move |data: &[u8]| {
                q.borrow_mut().push(data.to_vec());
                0
            })
            .map_err(|e| lib("cannot open the event ring buffer", e))?;
            Some(b.build().map_err(|e| lib("cannot open the event ring buffer", e))?)
        }
        None => None,
    };

    let mut w = out.clone();
    if !opts.quiet {
        let _ = writeln!(w, "Tracing... Hit Ctrl-C to end.");
        let _ = w.flush();
    }
    if let Some(child) = &mut opts.child {
        child.release();
    }

    let ticks = interp.ticks();
    let start = Instant::now();
    let mut next_tick: Vec<Instant> = ticks.iter().map(|(ns, _)| start + Duration::from_nanos(*ns)).collect();
    let mut outcome = Outcome::Done;
    let table_map = |var: &str| {
        let map_ir = module.maps.iter().find(|m| m.table.as_ref().is_some_and(|t| t.var == var))?;
        obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name.as_str()).map(|m| (m, map_ir))
    };
    let drain = |w: &mut SharedOut, interp: &mut Interp| -> Result<bool, Error> {
        let records = std::mem::take(&mut *queue.borrow_mut());
        for rec in &records {
            if opts.timestamps {
                let _ = write!(w, "{} ", timestamp());
            }
            match handle_record(module, &dec, rec, w)? {
                Action::Continue => {}
                Action::Exit => return Ok(true),
                Action::PrintHist { var, n } => {
                    let table = match table_map(var) {
                        Some((map, map_ir)) => map_ir.table.as_ref().map(|info| read_table(&map, map_ir.kind, info, &dec)),
                        None => interp.global(var),
                    };
                    interp.flush();
                    if let Some(Value::Table(t)) = table {
                        let _ = w.write_all(&format::print_hist(&t.borrow(), n));
                    }
                }
                Action::Delete { var } => match table_map(var) {
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
        Ok(false)
    };
    'run: loop {
        if stop.load(Ordering::Relaxed) {
            outcome = Outcome::Interrupted;
            break;
        }
        if opts.child.as_mut().is_some_and(|c| c.try_wait().is_some()) {
            // The traced command ended: take what it produced, then stop.
            if let Some(rb) = &ringbuf {
                let _ = rb.consume_raw();
            }
            if drain(&mut w, interp)? {
                outcome = Outcome::Exit;
            }
            break;
        }
        let now = Instant::now();
        let until_tick = next_tick.iter().map(|t| t.saturating_duration_since(now)).min();
        let timeout = until_tick.unwrap_or(DRAIN_INTERVAL).min(DRAIN_INTERVAL);
        match &ringbuf {
            Some(rb) => {
                // Records don't wake us (only exit() does): sleep until the
                // next drain, then take everything. EINTR from a signal is
                // an ordinary wake-up.
                let _ = rb.poll_raw(timeout);
                let _ = rb.consume_raw();
            }
            None => std::thread::sleep(timeout.min(Duration::from_millis(20))),
        }
        if drain(&mut w, interp)? {
            outcome = Outcome::Exit;
            break;
        }
        let now = Instant::now();
        for (i, (period, id)) in ticks.iter().enumerate() {
            if now >= next_tick[i] {
                next_tick[i] += Duration::from_nanos(*period);
                let before = sync_in(module, compiled, &obj, &views, &dec, interp);
                let result = interp.run_tick(*id).map_err(interp_error)?;
                sync_out(module, compiled, &obj, &views, interp, &before);
                match result {
                    Outcome::Done => {}
                    other => {
                        outcome = other;
                        break 'run;
                    }
                }
            }
        }
    }

    // Stop delivering events, then drain what is already in flight.
    if let Some(layout) = module.stop_flag.map(|g| &compiled.globals[g.index()]) {
        if let Some(view) = global_view(layout) {
            view.write_u64(layout.offset, 1);
        }
    }
    if let Some(rb) = &ringbuf {
        let _ = rb.consume_raw();
    }
    if outcome != Outcome::Exit || queue.borrow().is_empty() {
        let _ = drain(&mut w, interp)?;
    }

    // Kernel globals and tables become the variables trace_end reads.
    sync_in(module, compiled, &obj, &views, &dec, interp);
    let counter = |g: Option<ir::GlobalId>| {
        g.map(|g| &compiled.globals[g.index()])
            .and_then(|layout| global_view(layout).map(|v| v.read_u64(layout.offset)))
            .unwrap_or(0)
    };
    let lost = counter(module.lost_events);
    let failures = counter(module.map_failures);
    // The Ctrl-C that ended tracing must not also cut trace_end short; a
    // second one does.
    stop.store(false, Ordering::SeqCst);
    let end = if interp.has_trace_end() { interp.run_trace_end().map_err(interp_error)? } else { Outcome::Done };
    interp.flush();
    let _ = w.flush();
    if lost > 0 {
        eprintln!("ktap: warning: {lost} events lost (the ring buffer was full)");
    }
    if failures > 0 {
        eprintln!("ktap: warning: {failures} table updates failed (a table was full: size it with table.new(narr, nrec))");
    }
    drop(ringbuf);
    teardown(links, slow_links);
    Ok(if end == Outcome::Exit { Outcome::Exit } else { outcome })
}

/// From how many slow links (classic tracepoints, perf-event uprobes)
/// detaching moves to the background.
const BACKGROUND_TEARDOWN_FROM: usize = 32;

/// Detaches everything. Closing a classic tracepoint or perf-event uprobe
/// link waits for an RCU grace period, one after another (tens of ms
/// each), so with many of them a forked child holds the last references
/// and closes them while ktap itself exits at once. The programs already
/// deliver nothing (the stop flag is set).
fn teardown(links: Vec<Link>, slow_links: usize) {
    if slow_links < BACKGROUND_TEARDOWN_FROM {
        drop(links);
        return;
    }
    let _ = std::io::stdout().flush();
    // The child closes its references after ours are gone (it waits for
    // end of file on a pipe whose write end only ktap holds), so the last
    // close, the slow one, is the child's whatever the scheduling.
    let mut pipe = [-1; 2];
    // SAFETY: `pipe` is a valid array for pipe2 to fill.
    let piped = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } == 0;
    // SAFETY: the child only calls async-signal-safe functions (setsid,
    // open, dup2, close, read, _exit) before exiting.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::setsid();
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
            if piped {
                libc::close(pipe[1]);
                let mut byte = 0u8;
                loop {
                    let n = libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1);
                    if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                        break;
                    }
                }
            }
            // Exiting closes every descriptor: the slow detach happens here.
            libc::_exit(0);
        }
    }
    if piped {
        // SAFETY: our read end; the write end stays open until we exit.
        unsafe { libc::close(pipe[0]) };
    }
    if pid > 0 {
        eprintln!("ktap: {slow_links} probes are being detached in the background (pid {pid})");
        // Our references go with the process; the child's are the last.
        std::mem::forget(links);
    } else {
        drop(links);
    }
}

fn section_view<'v>(views: &'v [(Section, SectionView)], layout: &GlobalLayout) -> Option<&'v SectionView> {
    views.iter().find(|(s, _)| *s == layout.section).map(|(_, v)| v)
}

/// What userspace saw of the kernel state before running a tick body.
struct Snapshot {
    globals: Vec<(usize, i64)>,
    /// Per table map: its keys (raw) and their userspace values.
    tables: Vec<(usize, Vec<(Vec<u8>, Value)>)>,
}

/// Copies kernel globals and tables into the interpreter's variables.
fn sync_in(
    module: &Module,
    compiled: &Compiled,
    obj: &libbpf_rs::Object,
    views: &[(Section, SectionView)],
    dec: &Decoder,
    interp: &mut Interp,
) -> Snapshot {
    let mut snap = Snapshot { globals: Vec::new(), tables: Vec::new() };
    for (i, (g, layout)) in module.globals.iter().zip(&compiled.globals).enumerate() {
        if let (Some(var), Some(view)) = (&g.var, section_view(views, layout)) {
            let v = view.read_u64(layout.offset) as i64;
            interp.set_global(var, Value::Int(v));
            snap.globals.push((i, v));
        }
    }
    for (i, map_ir) in module.maps.iter().enumerate() {
        let Some(info) = &map_ir.table else { continue };
        if let Some(map) = obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name.as_str()) {
            let keys: Vec<(Vec<u8>, Value)> = map.keys().map(|k| {
                let v = dec.value(info.key, &k);
                (k, v)
            }).collect();
            interp.set_global(&info.var, read_table(&map, map_ir.kind, info, dec));
            snap.tables.push((i, keys));
        }
    }
    snap
}

/// Writes back what a tick body changed: globals it assigned, and keys it
/// removed from tables (`delete(t)` after `print_hist(t)`). Updates that
/// the kernel makes in between may be lost; deletions never resurrect.
fn sync_out(
    module: &Module,
    compiled: &Compiled,
    obj: &libbpf_rs::Object,
    views: &[(Section, SectionView)],
    interp: &Interp,
    before: &Snapshot,
) {
    for &(i, old) in &before.globals {
        let (g, layout) = (&module.globals[i], &compiled.globals[i]);
        let Some(var) = &g.var else { continue };
        if let (Some(Value::Int(now)), Some(view)) = (interp.global(var), section_view(views, layout)) {
            if now != old {
                view.write_u64(layout.offset, now as u64);
            }
        }
    }
    for (i, keys) in &before.tables {
        let map_ir = &module.maps[*i];
        let Some(info) = &map_ir.table else { continue };
        let Some(Value::Table(t)) = interp.global(&info.var) else { continue };
        let Some(map) = obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name.as_str()) else { continue };
        let t = t.borrow();
        for (raw, key) in keys {
            if t.get(key).is_nil() {
                let _ = map.delete(raw);
            }
        }
    }
}

fn interp_error(e: super::interp::RuntimeError) -> Error {
    Error { message: e.message, span: e.span, notes: Vec::new() }
}

/// Explains a failed load: for a verifier rejection, the program's source
/// line and the verifier's reason.
fn load_error(compiled: &Compiled, e: libbpf_rs::Error) -> Error {
    let log = take_libbpf_log();
    for info in &compiled.programs {
        if let Some((insn, reason)) = verifier_failure(&log, &info.name) {
            let span = info.spans.get(insn).copied().flatten();
            return Error {
                message: format!("the kernel verifier rejected the code generated for this probe (a ktap bug): {e}"),
                span,
                notes: vec![format!("verifier: at instruction {insn}: {reason}")],
            };
        }
    }
    let mut err = Error::new(format!("cannot load the BPF programs: {e}"));
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        err.notes.push("loading BPF needs root (or CAP_BPF and CAP_PERFMON)".into());
    }
    let tail: Vec<&str> = log.lines().rev().take(8).collect();
    if !tail.is_empty() {
        err.notes.push(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    err
}
