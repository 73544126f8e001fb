//! The userspace ktap interpreter: runs the main context, `tick-N` bodies,
//! `trace_end` and user functions with ktap's full dynamic semantics. The
//! AST is compiled once (`compile`) and run on a register machine (`vm`).
//! It never touches the kernel and never prints except to the `Output` it
//! is given; probe bodies are not its business.

mod builtins;
mod capture;
mod code;
mod compile;
mod error;
mod value;
mod vm;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use indexmap::IndexSet;

pub use builtins::Builtin;
pub use error::RuntimeError;
pub(crate) use error::msg::bad_arg;
pub use error::Throw;
pub use value::{Closure, Function, KStr, Table, Value};

use crate::frontend::ast;
use crate::runtime::output::{Output, Terminal, TextOptions, TextOutput};
use compile::Compiled;
use vm::Vm;

/// How the interpreter is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// `arg[0]`.
    pub script_path: String,
    /// `arg[1]`, `arg[2]`, ...: numeric ones (decimal or `0x` hex) become
    /// numbers.
    pub args: Vec<String>,
    /// Loop back-edges and calls one run (main, one tick, trace_end) may
    /// execute before it stops with "loop execute count exceed max limit".
    pub max_steps: u64,
    /// Call frames before "stack overflow".
    pub max_depth: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            script_path: String::new(),
            args: Vec::new(),
            max_steps: 1_000_000_000,
            max_depth: 10_000,
        }
    }
}

/// How a run ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end.
    Done,
    /// `exit()` was called: the script is over.
    Exit,
    /// The interrupt flag was set (Ctrl-C).
    Interrupted,
}

/// A registered `tick-N` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TickId(pub usize);

/// The interpreter for one script.
pub struct Interp {
    vm: Vm,
    compiled: Compiled,
    names: IndexSet<String>,
}

impl Interp {
    /// Compiles the userspace parts of `program` and sets up its globals
    /// (builtins, `arg`), printing as text to `out`. Fails on code that
    /// cannot run (e.g. `break` outside a loop).
    pub fn new(
        program: &ast::Program,
        opts: Options,
        out: Box<dyn Write>,
    ) -> Result<Interp, RuntimeError> {
        // The caller's writer gets every byte the script writes, terminal
        // control included (the command line decides per stream instead).
        let text = TextOutput::new(
            Box::new(std::io::BufWriter::with_capacity(1 << 16, out)),
            TextOptions { terminal: Terminal::Color, ..TextOptions::default() },
        );
        Interp::with_output(program, opts, Box::new(text))
    }

    /// `new`, printing to `out`.
    pub fn with_output(
        program: &ast::Program,
        opts: Options,
        out: Box<dyn Output>,
    ) -> Result<Interp, RuntimeError> {
        let mut names = IndexSet::new();
        let mut initial: Vec<(String, Value)> = Vec::new();
        let mut namespaces: Vec<(&str, Table)> = Vec::new();
        for (ns, name, b) in builtins::userspace() {
            let f = Value::Func(Rc::new(Function::Builtin(b)));
            match ns {
                None => initial.push((name.to_string(), f)),
                Some(ns) => {
                    let i = match namespaces.iter().position(|(n, _)| *n == ns) {
                        Some(i) => i,
                        None => {
                            namespaces.push((ns, Table::new()));
                            namespaces.len() - 1
                        }
                    };
                    namespaces[i].1.set(Value::str(name), f);
                }
            }
        }
        for (ns, t) in namespaces {
            initial.push((ns.to_string(), Value::Table(Rc::new(RefCell::new(t)))));
        }
        initial.push(("arg".to_string(), script_args(&opts)));
        for (name, _) in &initial {
            names.insert(name.clone());
        }

        let compiled = compile::compile(program, &mut names)?;
        let mut vm = Vm::new(out, opts.max_steps, opts.max_depth);
        vm.globals = vec![Value::Nil; names.len()];
        for (name, v) in initial {
            if let Some(i) = names.get_index_of(&name) {
                vm.globals[i] = v;
            }
        }
        Ok(Interp {
            vm,
            compiled,
            names,
        })
    }

    /// The flag the runtime's signal handler sets on Ctrl-C; polled at loop
    /// back-edges and calls (the first of each run always polls). The
    /// interpreter never clears it: to run trace_end after a Ctrl-C, clear
    /// it first (a second Ctrl-C then interrupts trace_end too).
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.vm.interrupt = Some(flag);
    }

    /// Runs the main context (top-level statements, probes skipped).
    pub fn run_main(&mut self) -> Result<Outcome, RuntimeError> {
        let main = Rc::clone(&self.compiled.main);
        self.run(&main)
    }

    /// The `tick-N` bodies: their period in nanoseconds and id (those
    /// nested in main-context code once main ran them).
    pub fn ticks(&self) -> Vec<(u64, TickId)> {
        self.compiled
            .ticks
            .iter()
            .enumerate()
            .filter(|(_, (_, _, at))| at.is_none_or(|at| self.registered(at)))
            .map(|(i, (ns, _, _))| (*ns, TickId(i)))
            .collect()
    }

    /// Runs one `tick-N` body.
    pub fn run_tick(&mut self, id: TickId) -> Result<Outcome, RuntimeError> {
        match self.compiled.ticks.get(id.0) {
            Some((_, p, _)) => {
                let p = Rc::clone(p);
                self.run(&p)
            }
            None => Err(RuntimeError::new(format!("no tick body #{}", id.0), None)),
        }
    }

    /// Whether the main context ran the probe statement starting at byte
    /// `at` (a probe nested in its code is attached only then).
    pub fn registered(&self, at: u32) -> bool {
        self.vm.registered.contains(&at)
    }

    pub fn has_trace_end(&self) -> bool {
        !self.compiled.trace_ends.is_empty()
    }

    /// Runs the `trace_end` bodies in source order; `exit()` in one ends
    /// them all.
    pub fn run_trace_end(&mut self) -> Result<Outcome, RuntimeError> {
        let bodies = self.compiled.trace_ends.clone();
        for p in &bodies {
            match self.run(p)? {
                Outcome::Done => {}
                other => return Ok(other),
            }
        }
        Ok(Outcome::Done)
    }

    /// The value of global `name`, if the script or runtime knows it.
    pub fn global(&self, name: &str) -> Option<Value> {
        let i = self.names.get_index_of(name)?;
        self.vm.globals.get(i).cloned()
    }

    /// Sets global `name` (adding it if the script never mentions it).
    pub fn set_global(&mut self, name: &str, v: Value) {
        let (i, _) = self.names.insert_full(name.to_string());
        if i >= self.vm.globals.len() {
            self.vm.globals.resize(i + 1, Value::Nil);
        }
        self.vm.globals[i] = v;
    }

    /// A listing of the compiled code of main, the ticks and trace_end.
    pub fn disassemble(&self) -> String {
        let mut out = self.compiled.main.dump();
        for (_, p, _) in &self.compiled.ticks {
            out.push_str(&p.dump());
        }
        for p in &self.compiled.trace_ends {
            out.push_str(&p.dump());
        }
        out
    }

    /// Flushes buffered output (each run flushes when it ends, too).
    pub fn flush(&mut self) {
        let _ = self.vm.out.flush();
    }

    fn run(&mut self, proto: &Rc<code::Proto>) -> Result<Outcome, RuntimeError> {
        match self.vm.run(proto) {
            Ok(_) => Ok(Outcome::Done),
            Err(Throw::Exit) => Ok(Outcome::Exit),
            Err(Throw::Interrupted) => Ok(Outcome::Interrupted),
            Err(Throw::Error(e)) => Err(e),
        }
    }
}

/// Runs a script with no probes: main, then trace_end (ticks ignored).
/// `exit()` in main ends the script there: trace_end does not run. For
/// tests and scripts without probes.
pub fn run_userspace(
    program: &ast::Program,
    opts: Options,
    out: Box<dyn Write>,
) -> Result<Outcome, RuntimeError> {
    let mut interp = Interp::new(program, opts, out)?;
    let outcome = interp.run_main()?;
    if outcome != Outcome::Done || !interp.has_trace_end() {
        return Ok(outcome);
    }
    interp.run_trace_end()
}

/// The `arg` table: `arg[0]` the script path, then the arguments.
fn script_args(opts: &Options) -> Value {
    let mut t = Table::with_capacity(opts.args.len() + 1);
    t.set(Value::Int(0), Value::str(&opts.script_path));
    for (i, a) in opts.args.iter().enumerate() {
        let bytes = a.as_bytes();
        let v = match value::parse_int(bytes) {
            Some(n) if bytes.trim_ascii() == bytes && !bytes.starts_with(b"+") => Value::Int(n),
            _ => Value::str(bytes),
        };
        t.set(Value::Int(i as i64 + 1), v);
    }
    Value::Table(Rc::new(RefCell::new(t)))
}
