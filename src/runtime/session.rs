//! A tracing session: opens the compiled object with libbpf, seeds its
//! globals from the main context, loads (mapping verifier rejections back
//! to source lines), attaches, consumes the ring buffer, runs ticks, and on
//! the way out stops event delivery, drains, runs trace_end and only then
//! detaches. The only place that loads or attaches BPF.

use super::interp::{Interp, Outcome, Value};
use super::{format, SharedOut};
use crate::bpfgen::codegen::{Compiled, GlobalLayout};
use crate::span::Span;
use crate::ir::{self, Module, Section, SiteKind, Ty};
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, Link, MapCore, ObjectBuilder, PrintLevel, RingBufferBuilder};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod attach;
mod decode;
mod logs;
mod state;
mod teardown;

use attach::*;
use decode::*;
use logs::*;
pub use logs::verifier_failure;
use state::*;
use teardown::*;

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

    /// A libbpf failure while doing `what`.
    fn libbpf(what: &str, e: libbpf_rs::Error) -> Error {
        Error::new(format!("{what}: {e}"))
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
    /// The banner goes to stderr: the output stream is a file (`-o`),
    /// which should hold only what the script prints.
    pub banner_to_stderr: bool,
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

/// Printed once everything is attached.
const BANNER: &str = "Tracing... Hit Ctrl-C to end.";

/// How often the ring buffer is drained: the latency of printed output.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

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

    let mut builder = ObjectBuilder::default();
    builder.name("ktap").map_err(|e| Error::libbpf("cannot name the BPF object", e))?;
    let mut open = builder.open_memory(object).map_err(|e| {
        let mut err = Error::libbpf("libbpf cannot open the generated object (a compiler bug)", e);
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
            let v = initial_bytes(module, id, interp, opts)?;
            let at = layout.offset as usize;
            if let Some(slot) = buf.get_mut(at..at + v.len()) {
                slot.copy_from_slice(&v);
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
    fill_tables(module, &obj, interp)?;

    // Syscall filters: number -> probename id + 1.
    fill_syscall_filters(module, &obj)?;

    // Every classic tracepoint or perf event link holds a file descriptor:
    // a big wildcard needs many.
    raise_fd_limit();

    // Attach every program to the events it serves.
    let (links, slow_links) = match attach_all(module, compiled, &obj, opts, stop)? {
        Attached::All { links, slow_links } => (links, slow_links),
        Attached::Interrupted { links, slow_links } => {
            // Ctrl-C while attaching (a big glob can take a while): undo and go.
            eprintln!("ktap: interrupted while attaching: detaching what was attached; nothing was traced");
            if let Some(layout) = module.stop_flag.map(|g| &compiled.globals[g.index()]) {
                if let Some(view) = global_view(layout) {
                    view.write_u64(layout.offset, 1);
                }
            }
            teardown(links, slow_links);
            return Ok(Outcome::Interrupted);
        }
    };

    let dec = Decoder {
        names: module.probe_names(),
        formats: module.probe_formats(),
        stacks: match module.stacks {
            Some(id) => {
                let name = &module.map(id).name;
                map_named(&obj, name).and_then(|m| libbpf_rs::MapHandle::try_from(&m).ok())
            }
            None => None,
        },
        symbols: RefCell::default(),
        layouts: module.sites.iter().map(|s| s.layout().0).collect(),
    };
    // Records are handled in libbpf's callback, straight from ring-buffer
    // memory; one that asks for more than output (exit, print_hist,
    // delete, an error) stops consumption and waits here, in order.
    let pending: Rc<RefCell<Option<Result<Action, Error>>>> = Rc::default();
    let ringbuf = match module.events {
        Some(events) => {
            let name = &module.map(events).name;
            let map = obj
                .maps()
                .find(|m| m.name().to_string_lossy() == name.as_str())
                .ok_or_else(|| Error::new("event ring buffer missing after load"))?;
            let mut b = RingBufferBuilder::new();
            let pending = pending.clone();
            let mut w = out.clone();
            let dec = &dec;
            let timestamps = opts.timestamps;
            b.add(&map, move |data: &[u8]| {
                if timestamps {
                    let _ = write!(w, "{} ", timestamp());
                }
                match handle_record(module, dec, data, &mut w) {
                    Ok(Action::Continue) => 0,
                    other => {
                        *pending.borrow_mut() = Some(other);
                        -1
                    }
                }
            })
            .map_err(|e| Error::libbpf("cannot open the event ring buffer", e))?;
            Some(b.build().map_err(|e| Error::libbpf("cannot open the event ring buffer", e))?)
        }
        None => None,
    };

    let mut w = out.clone();
    if !opts.quiet {
        // Wrappers wait for this line to know that ktap is attached.
        if opts.banner_to_stderr {
            eprintln!("{BANNER}");
        } else {
            let _ = writeln!(w, "{BANNER}");
            let _ = w.flush();
        }
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
        map_named(&obj, &map_ir.name).map(|m| (m, map_ir))
    };
    let drain = |w: &mut SharedOut, interp: &mut Interp| -> Result<bool, Error> {
        loop {
            let next = pending.borrow_mut().take();
            let action = match next {
                Some(a) => a?,
                None => {
                    if let Some(rb) = &ringbuf {
                        let _ = rb.consume_raw();
                    }
                    match pending.borrow_mut().take() {
                        Some(a) => a?,
                        None => break,
                    }
                }
            };
            match action {
                Action::Continue => {}
                Action::Exit => {
                    let _ = w.flush();
                    return Ok(true);
                }
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
        let _ = w.flush();
        Ok(false)
    };
    'run: loop {
        if stop.load(Ordering::Relaxed) {
            outcome = Outcome::Interrupted;
            break;
        }
        if opts.child.as_mut().is_some_and(|c| c.try_wait().is_some()) {
            // The traced command ended: take what it produced, then stop.
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
                let before = sync_in(module, compiled, &obj, &views, &dec, interp, module.tick_uses.get(id.0).and_then(|u| u.as_deref()));
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
    // Records after an exit() are not shown: tracing ended there.
    if outcome != Outcome::Exit {
        let _ = drain(&mut w, interp)?;
    }

    // Kernel globals and tables become the variables trace_end reads.
    sync_in(module, compiled, &obj, &views, &dec, interp, None);
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

fn interp_error(e: super::interp::RuntimeError) -> Error {
    Error { message: e.message, span: e.span, notes: Vec::new() }
}

