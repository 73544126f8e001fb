//! A tracing session, one phase after another: load (open the compiled
//! object, seed its globals from the main context, load, mapping verifier
//! rejections back to source lines), attach, trace (the ring buffer and
//! ticks until Ctrl-C, `exit()` or the child's end), stop (stop event
//! delivery, drain), finish (kernel state to the interpreter, trace_end,
//! warnings) and only then teardown. The only place that loads or attaches
//! BPF; it shows nothing except through its `Output`.

use super::interp::{Interp, Outcome, Value};
use super::output::{Notice, Origin, Output, SharedOutput};
use crate::bpfgen::codegen::{Compiled, GlobalLayout};
use crate::span::Span;
use crate::ir::{self, Module, Section, SiteKind, Ty};
use libbpf_rs::{Link, MapCore};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

mod attach;
mod decode;
mod dump;
mod load;
mod logs;
mod ring;
mod state;
mod stop;
mod teardown;
mod ticks;

use decode::*;
use load::Live;
pub use logs::verifier_failure;
use state::*;

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
    /// The `-p PID` process: tracing ends when it exits.
    pub watched: Option<super::child::Watched>,
    /// `--metrics ADDR`: the endpoint answered while tracing (bound before
    /// the session starts).
    pub metrics: Option<super::metrics::Server>,
    /// `--folded FILE`: the stack tables as folded stacks when tracing ends.
    pub folded: Option<std::path::PathBuf>,
    /// `--flamegraph FILE`: the stack tables as an SVG flame graph.
    pub flamegraph: Option<std::path::PathBuf>,
    /// The flame graph's title.
    pub flame_title: String,
    /// `--pin DIR`: pin iterators as files in this bpffs directory
    /// instead of running them.
    pub pin: Option<std::path::PathBuf>,
}

/// Runs the probes of `module` until Ctrl-C, `exit()` or a tick's `exit()`,
/// then trace_end. `stop` is set by the signal handler.
pub fn run(
    module: &Module,
    compiled: &Compiled,
    object: &[u8],
    interp: &mut Interp,
    out: &SharedOutput,
    opts: &mut Options,
    stop: &Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    let mut out = out.clone();
    logs::capture_libbpf(opts.verbose);
    let result = phases(module, compiled, object, interp, &mut out, opts, stop);
    logs::show_libbpf(&mut out);
    result
}

/// The session's phases, in order; a failure anywhere detaches what was
/// attached (dropping the links) and returns.
fn phases(
    module: &Module,
    compiled: &Compiled,
    object: &[u8],
    interp: &mut Interp,
    out: &mut SharedOutput,
    opts: &mut Options,
    stop: &Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    let live = load::load(module, compiled, object, interp, opts)?;
    logs::show_libbpf(out);
    if opts.dry_run {
        out.loaded_only(compiled.programs.len());
        return Ok(Outcome::Done);
    }
    let links = match attach::attach(&live, interp, opts, stop, out)? {
        attach::Attached::All(links) => links,
        attach::Attached::Interrupted(links) => {
            // Ctrl-C while attaching (a big glob can take a while): undo and go.
            out.notice(&Notice::InterruptedAttach);
            live.stop_delivery();
            teardown::teardown(links, out);
            return Ok(Outcome::Interrupted);
        }
    };
    logs::show_libbpf(out);
    let ring = ring::Ring::open(&live, out, opts.timestamps)?;
    // Iterators have run (or are pinned) while attaching: a script of
    // nothing else goes straight to its end.
    let only_iterators = module.tick_uses.is_empty()
        && opts.child.is_none()
        && module.probes.iter().filter(|p| !p.nested || interp.registered(p.span.start)).all(|p| p.attach.iter().all(|a| a.kind().shape().seq_file));
    if !opts.quiet && !only_iterators {
        out.attached();
    }
    if let Some(child) = &mut opts.child {
        child.release();
    }
    let written = ir::written::written(module);
    let outcome = if only_iterators { Outcome::Done } else { ticks::trace(&live, &ring, interp, opts, &written, stop, out)? };
    stop::stop(&live, &ring, interp, outcome, out)?;
    let end = stop::finish(&live, interp, opts, &written, stop, out)?;
    drop(ring);
    teardown::teardown(links, out);
    Ok(if end == Outcome::Exit { Outcome::Exit } else { outcome })
}

fn interp_error(e: super::interp::RuntimeError) -> Error {
    Error { message: e.message, span: e.span, notes: Vec::new() }
}
