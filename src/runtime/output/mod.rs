//! The one interface for everything ktap shows once a script runs: what
//! scripts print (print, printf, print_hist, terminal control) and what the
//! session reports (the banner, warnings and notes, the attach progress
//! line, libbpf's messages, run-time errors, the tables probes wrote). One
//! implementation per format (`text.rs`, `json.rs`); a new format is one
//! new file. Nothing else in the library writes to stdout or stderr.

mod json;
mod progress;
#[cfg(test)]
mod test_sink;
mod text;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::SystemTime;

use crate::ir::agg::Reading;
use crate::span::Span;
use crate::runtime::interp::{Table, Value};

pub use json::{diagnostic as json_diagnostic, failure as json_failure, probe_sites, JsonOptions, JsonOutput};
pub use progress::Progress;
pub use text::{Terminal, TextOptions, TextOutput};

/// Where a piece of script output comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The print/printf/print_hist call in the script, when known (records
    /// from probes know it; the interpreter does not say).
    pub site: Option<Span>,
    /// When the record arrived, with `-T`.
    pub time: Option<SystemTime>,
}

/// Something the session tells the user besides what the script prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Records dropped because the ring buffer was full.
    LostEvents(u64),
    /// Table updates the kernel refused (a table was full), and the
    /// tables that are full when tracing ends, each with its size.
    MapFailures { count: u64, full: &'a [(String, u32)] },
    /// Events of a many-event probe that could not be attached (`event: why`).
    NotAttached(&'a [String]),
    /// Attaching ran out of file descriptors at this open-file limit
    /// (soft, hard).
    FdLimit { limit: u64, hard: u64 },
    /// A tick gave a kernel variable a value probes cannot hold.
    TickRetyped { var: &'a str, given: &'a str, kept: &'a str },
    /// A table entry a tick changed could not be written back.
    TableWriteBack(&'a str),
    /// Ctrl-C arrived while attaching: what was attached is detached.
    InterruptedAttach,
    /// Slow links are closed by a background child process.
    BackgroundDetach { probes: usize, pid: i32 },
    /// Uprobes are attached one at a time; `disabled`: uprobe.multi links
    /// exist but `KTAP_NO_UPROBE_MULTI` turned them off.
    UprobesOneAtATime { count: usize, disabled: bool },
    /// An iterator pinned as a file (`--pin`): `cat` it to run it.
    Pinned { spec: &'a str, path: &'a str },
}

impl Notice<'_> {
    /// A stable name for the notice (JSON's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::LostEvents(_) => "lost_events",
            Notice::MapFailures { .. } => "map_failures",
            Notice::NotAttached(_) => "not_attached",
            Notice::FdLimit { .. } => "fd_limit",
            Notice::TickRetyped { .. } => "tick_retyped",
            Notice::TableWriteBack(_) => "table_write_back",
            Notice::InterruptedAttach => "interrupted_attach",
            Notice::BackgroundDetach { .. } => "background_detach",
            Notice::UprobesOneAtATime { .. } => "uprobes_one_at_a_time",
            Notice::Pinned { .. } => "pinned",
        }
    }

    /// How serious it is.
    pub fn level(&self) -> Level {
        match self {
            Notice::LostEvents(_) | Notice::MapFailures { .. } | Notice::NotAttached(_) | Notice::TickRetyped { .. } | Notice::TableWriteBack(_) => {
                Level::Warning
            }
            Notice::UprobesOneAtATime { .. } | Notice::FdLimit { .. } => Level::Note,
            Notice::InterruptedAttach | Notice::BackgroundDetach { .. } | Notice::Pinned { .. } => Level::Info,
        }
    }

    /// The notice in words, one line (a list it carries is not included).
    pub fn message(&self) -> String {
        match *self {
            Notice::LostEvents(n) => format!("{n} events lost (the ring buffer was full)"),
            Notice::MapFailures { count, full } => match full {
                [] => format!("{count} table updates failed (a table was full: size it with table.new(narr, nrec))"),
                [(name, size)] => format!("{count} table updates failed: table `{name}` is full ({size} entries): size it with table.new(narr, nrec)"),
                _ => {
                    let names: Vec<String> = full.iter().map(|(name, size)| format!("`{name}` ({size} entries)")).collect();
                    format!("{count} table updates failed: tables {} are full: size them with table.new(narr, nrec)", names.join(", "))
                }
            },
            Notice::NotAttached(events) => format!("{} events could not be attached and are not traced:", events.len()),
            Notice::FdLimit { limit, hard } => format!(
                "each attached event holds a file descriptor and the open-file limit is {limit} (hard maximum {hard}): \
                 raise it (`ulimit -n`; as root `ulimit -Hn` too) or trace fewer events"
            ),
            Notice::TickRetyped { var, given, kept } => format!("`{var}` was given {given} in a tick; probes keep {kept}"),
            Notice::TableWriteBack(why) => why.to_string(),
            Notice::InterruptedAttach => "interrupted while attaching: detaching what was attached; nothing was traced".to_string(),
            Notice::BackgroundDetach { probes, pid } => format!("{probes} probes are being detached in the background (pid {pid})"),
            Notice::UprobesOneAtATime { count, disabled } => {
                let why = if disabled { "uprobe.multi links are disabled (KTAP_NO_UPROBE_MULTI)" } else { "this kernel has no uprobe.multi links" };
                format!("{why}; attaching {count} uprobes one at a time (slow to attach and to detach)")
            }
            Notice::Pinned { spec, path } => format!("{spec} pinned at {path}: `cat {path}` runs it"),
        }
    }
}

/// How serious a notice is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Note,
    /// Neither: what ktap is doing.
    Info,
}

impl Level {
    /// Its name (`warning`, `note`, `info`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Note => "note",
            Level::Info => "info",
        }
    }
}

/// One value of a table entry or a kernel global as read from the kernel:
/// a plain value, or what an aggregate reads back as. Formats render a
/// `Reading` through its variants (the data), never through the kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Value(Value),
    Reading(Reading),
}

impl Cell {
    /// The number it is, if one (what sorts entries and what metrics
    /// export).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Cell::Value(Value::Int(i)) => Some(*i),
            Cell::Value(Value::Bool(b)) => Some(i64::from(*b)),
            Cell::Value(_) => None,
            Cell::Reading(r) => r.as_int(),
        }
    }
}

/// A table or kernel global that probes wrote, read at one moment (per-CPU
/// copies merged).
#[derive(Clone, Debug, PartialEq)]
pub struct Dump {
    /// The script's variable.
    pub name: String,
    /// The aggregate kind's name (`sum`), `None` for plain values.
    pub kind: Option<&'static str>,
    /// The kind counts things (metrics export it as a counter).
    pub counter: bool,
    pub body: DumpBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DumpBody {
    Global(Cell),
    /// Entries in the map's order; `stack_keys`: keys are stacks, one
    /// frame a line.
    Table { stack_keys: bool, entries: Vec<(Value, Cell)> },
}

/// A failure that ends a run (the interpreter's or the session's).
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    pub message: &'a str,
    pub span: Option<Span>,
    pub notes: &'a [String],
}

/// Everything ktap shows once a script runs. Methods that carry script
/// output report write failures (a closed pipe ends tracing); the others
/// drop them.
pub trait Output {
    /// `print(a, b, ...)`: the values themselves.
    fn print(&mut self, origin: &Origin, values: &[Value]) -> io::Result<()>;
    /// `printf(fmt, ...)`: the formatted text.
    fn printf(&mut self, origin: &Origin, text: &[u8]) -> io::Result<()>;
    /// `print_hist(t, n)`: the table and how many rows to show.
    fn hist(&mut self, origin: &Origin, table: &Table, rows: usize) -> io::Result<()>;
    /// A table or global probes wrote, shown when tracing ends without a
    /// trace_end (name, then contents).
    fn dump(&mut self, dump: &Dump) -> io::Result<()>;
    /// Terminal control text (`ansi.*`): colors, clearing, new lines.
    fn terminal(&mut self, text: &[u8]) -> io::Result<()>;
    /// Attaching `total` probes begins; the session advances the returned
    /// count and drops it when done. Shows nothing unless overridden.
    fn attach_progress(&mut self, _total: usize) -> Progress {
        Progress::silent()
    }
    /// Everything is attached: tracing has begun.
    fn attached(&mut self);
    /// `-d`: this many programs were loaded, nothing attached.
    fn loaded_only(&mut self, programs: usize);
    /// A warning or note from the session.
    fn notice(&mut self, notice: &Notice<'_>);
    /// libbpf's and the verifier's own messages (`-v`), verbatim.
    fn libbpf_log(&mut self, text: &str);
    /// A failure that ends the run.
    fn error(&mut self, failure: &Failure<'_>);
    /// Pushes out what is buffered.
    fn flush(&mut self) -> io::Result<()>;
}

/// One output shared by the interpreter and the session (records, ticks,
/// warnings), so what they print stays in order.
#[derive(Clone)]
pub struct SharedOutput(Rc<RefCell<Box<dyn Output>>>);

impl SharedOutput {
    pub fn new(out: Box<dyn Output>) -> SharedOutput {
        SharedOutput(Rc::new(RefCell::new(out)))
    }

    /// Runs `f` on the output; `None` if it is already in use (a call from
    /// inside another output call, which nothing does).
    fn with<T>(&self, f: impl FnOnce(&mut dyn Output) -> T) -> Option<T> {
        let mut out = self.0.try_borrow_mut().ok()?;
        Some(f(out.as_mut()))
    }
}

/// An output in use elsewhere cannot be written.
fn busy() -> io::Error {
    io::Error::other("the output is busy")
}

impl Output for SharedOutput {
    fn print(&mut self, origin: &Origin, values: &[Value]) -> io::Result<()> {
        self.with(|o| o.print(origin, values)).unwrap_or_else(|| Err(busy()))
    }
    fn printf(&mut self, origin: &Origin, text: &[u8]) -> io::Result<()> {
        self.with(|o| o.printf(origin, text)).unwrap_or_else(|| Err(busy()))
    }
    fn hist(&mut self, origin: &Origin, table: &Table, rows: usize) -> io::Result<()> {
        self.with(|o| o.hist(origin, table, rows)).unwrap_or_else(|| Err(busy()))
    }
    fn dump(&mut self, dump: &Dump) -> io::Result<()> {
        self.with(|o| o.dump(dump)).unwrap_or_else(|| Err(busy()))
    }
    fn terminal(&mut self, text: &[u8]) -> io::Result<()> {
        self.with(|o| o.terminal(text)).unwrap_or_else(|| Err(busy()))
    }
    fn attach_progress(&mut self, total: usize) -> Progress {
        self.with(|o| o.attach_progress(total)).unwrap_or_else(Progress::silent)
    }
    fn attached(&mut self) {
        self.with(|o| o.attached());
    }
    fn loaded_only(&mut self, programs: usize) {
        self.with(|o| o.loaded_only(programs));
    }
    fn notice(&mut self, notice: &Notice<'_>) {
        self.with(|o| o.notice(notice));
    }
    fn libbpf_log(&mut self, text: &str) {
        self.with(|o| o.libbpf_log(text));
    }
    fn error(&mut self, failure: &Failure<'_>) {
        self.with(|o| o.error(failure));
    }
    fn flush(&mut self) -> io::Result<()> {
        self.with(|o| o.flush()).unwrap_or_else(|| Err(busy()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::interp::{Interp, Options, Outcome};
    use std::path::Path;

    /// What writes to the process's own streams.
    const STREAM_WRITERS: &[&str] =
        &["println!", "eprintln!", "print!(", "eprint!(", "dbg!(", "io::stdout", "io::stderr", "stdout()", "stderr()"];

    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }

    /// Only main.rs and this module write to stdout or stderr; a file's
    /// unit tests (from its `#[cfg(test)]` on) and comments do not count.
    #[test]
    fn only_main_and_output_write_to_the_streams() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
        let mut found = Vec::new();
        for path in files {
            let rel = path.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            if rel == "main.rs" || rel.starts_with("runtime/output/") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("#[cfg(test)]") {
                    break;
                }
                if code.starts_with("//") {
                    continue;
                }
                if let Some(w) = STREAM_WRITERS.iter().find(|w| code.contains(*w)) {
                    found.push(format!("src/{rel}:{}: {w}", i + 1));
                }
            }
        }
        assert!(found.is_empty(), "write through runtime::output (or return to main.rs) instead:\n{}", found.join("\n"));
    }

    /// What a structured format sees: calls with values, not text.
    #[derive(Default)]
    struct Recorder(std::rc::Rc<std::cell::RefCell<Vec<String>>>);

    impl Output for Recorder {
        fn print(&mut self, _: &Origin, values: &[Value]) -> io::Result<()> {
            self.0.borrow_mut().push(format!("print {values:?}"));
            Ok(())
        }
        fn printf(&mut self, _: &Origin, text: &[u8]) -> io::Result<()> {
            self.0.borrow_mut().push(format!("printf {:?}", String::from_utf8_lossy(text)));
            Ok(())
        }
        fn hist(&mut self, _: &Origin, table: &Table, rows: usize) -> io::Result<()> {
            self.0.borrow_mut().push(format!("hist {} entries, {rows} rows", table.len()));
            Ok(())
        }
        fn dump(&mut self, dump: &Dump) -> io::Result<()> {
            self.0.borrow_mut().push(format!("dump {}", dump.name));
            Ok(())
        }
        fn terminal(&mut self, text: &[u8]) -> io::Result<()> {
            self.0.borrow_mut().push(format!("terminal {:?}", String::from_utf8_lossy(text)));
            Ok(())
        }
        fn attached(&mut self) {}
        fn loaded_only(&mut self, _: usize) {}
        fn notice(&mut self, _: &Notice<'_>) {}
        fn libbpf_log(&mut self, _: &str) {}
        fn error(&mut self, _: &Failure<'_>) {}
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_interpreter_prints_values_through_the_output() {
        let (program, diags) = crate::frontend::parse("print(1, \"a\", nil)\nprintf(\"%d!\\n\", 2)\nprint_hist({x = 3}, 5)\nansi.new_line()");
        assert!(diags.is_empty(), "{diags:?}");
        let calls = Recorder::default();
        let log = calls.0.clone();
        let mut interp = Interp::with_output(&program, Options::default(), Box::new(calls)).expect("compiles");
        assert_eq!(interp.run_main().expect("runs"), Outcome::Done);
        let expected = [
            format!("print {:?}", [Value::Int(1), Value::str("a"), Value::Nil]),
            "printf \"2!\\n\"".to_string(),
            "hist 1 entries, 5 rows".to_string(),
            "terminal \"\\n\"".to_string(),
        ];
        assert_eq!(*log.borrow(), expected);
    }
}
