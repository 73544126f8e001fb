//! The ktap command line: flags, reading the script, listings, `--emit`
//! stage dumps, rendering diagnostics, exit codes, and the man page and
//! shell completions generated from the flags. All real work is in the
//! library.

use clap::{Parser, ValueEnum};
use ktap::bpfgen::listing;
use ktap::frontend::diag::{self, Diagnostic};
use ktap::runtime::facts::RunningKernel;
use ktap::runtime::interp::{self, Interp, Outcome};
use ktap::runtime::session;
use ktap::runtime::output::{self, Failure, JsonOptions, JsonOutput, Output, SharedOutput, Terminal, TextOptions, TextOutput};
use ktap::runtime::tapsets;
use ktap::span::Span;
use ktap::CompileError;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stage {
    /// The lexer's tokens.
    Tokens,
    /// The parse tree.
    Ast,
    /// The IR after lowering.
    Ir,
    /// The BPF instructions of every program, disassembled.
    Bpf,
    /// The BPF ELF object (to -o FILE or a non-terminal stdout).
    Obj,
}

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Generated {
    /// The man page (roff).
    Man,
    Bash,
    Zsh,
    Fish,
}

/// Shown after the options in `--help` and in the man page.
const EXAMPLES: &str = "\
Examples:
  ktap -e 'trace syscalls:sys_enter_openat { printf(\"%s %s\\n\", execname, user_string(arg2)) }'
  ktap -e 'var s = {} trace syscalls:sys_enter_* { s[probename] += 1 } trace_end { print_hist(s) }'
  ktap -e 'var n = 0 trace sched:sched_switch { n += 1 } tick-1s { print(n) n = 0 }'
  ktap -e 'var s = {} profile-10ms { s[stack()] += 1 } trace_end { print_hist(s, 5) }' -- sleep 2
  ktap scripts/samples/syscalls/opensnoop.kp -p 1234
  ktap -e 'print(errno.name(2))'  tapsets: NS.f() is f of NS.kp
  ktap -I ~/tapsets script.kp     look for tapsets in ~/tapsets first
  ktap -le 'sched:*' -v           list events with their arguments
  ktap -e 'trace iter:task { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }'
                                  a ps: the kernel walks its tasks once
  ktap --pin /sys/fs/bpf/ps -e 'trace iter:task { ... }'   `cat /sys/fs/bpf/ps/task`
  ktap -lf libc 'mall*'           list functions as probe:libc:FUNC
  ktap -lm /usr/bin/python3       list USDT markers as sdt:DSO:PROVIDER:MARKER

Tracing stops on Ctrl-C, SIGTERM or SIGHUP, on exit() in a probe or a tick,
or when the -p process or the -- CMD command ends (ktap then exits with the
command's status unless the script called exit()).";

/// How what a script shows is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Text, as ktap always printed it.
    Text,
    /// One JSON object a line (docs/output.md).
    Json,
}

/// ktap: a tracing tool that compiles ktap scripts to eBPF.
#[derive(Parser, Debug)]
#[command(name = "ktap", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Run this script text instead of a file.
    #[arg(short = 'e', long = "eval", value_name = "SCRIPT")]
    eval: Option<String>,
    /// Don't print the "Tracing... Hit Ctrl-C to end." banner (printed
    /// on stdout once attached, on stderr with -o).
    #[arg(short, long)]
    quiet: bool,
    /// Write the trace output to FILE (the "Tracing..." banner then goes
    /// to stderr).
    #[arg(short, long, value_name = "FILE")]
    output: Option<String>,
    /// Size of the ring buffer that carries what probes print (`4M`,
    /// `256K`, bytes; rounded up to a power of two of at least a page;
    /// default 16M). Events that find it full are counted as lost.
    #[arg(short = 'b', long = "buffer-size", value_name = "SIZE", value_parser = parse_buffer_size_arg)]
    buffer_size: Option<u32>,
    /// Show libbpf's and the verifier's messages.
    #[arg(short, long)]
    verbose: bool,
    /// Compile and load the programs, but attach nothing.
    #[arg(short = 'd', long = "dry-run")]
    dry_run: bool,
    /// Print one compilation stage and exit.
    #[arg(long, value_name = "STAGE")]
    emit: Option<Stage>,
    /// Trace only this process; tracing ends when it exits.
    #[arg(short = 'p', long, value_name = "PID")]
    pid: Option<u32>,
    /// Trace only this CPU.
    #[arg(short = 'C', long, value_name = "CPU")]
    cpu: Option<u32>,
    /// Print every matching event as it happens (`-s 'syscalls:*'`), as
    /// `comm-pid [cpu] event`.
    #[arg(short = 's', long = "show", value_name = "EVENTS")]
    show: Option<String>,
    /// Prefix each line a probe prints with the time its event happened
    /// (the kernel's clock, read by the probe).
    #[arg(short = 'T', long = "timestamps")]
    timestamps: bool,
    /// Type kernel structs against this BTF file instead of the running
    /// kernel's (/sys/kernel/btf/vmlinux); the object's CO-RE relocations
    /// fit its field offsets to the running kernel when it loads.
    #[arg(long = "btf", value_name = "FILE")]
    btf: Option<std::path::PathBuf>,
    /// Load the kernel programs from OBJECT (saved with `--emit obj`, on
    /// this or another machine) instead of compiling them here; the
    /// script still gives the userspace side, and must be the one the
    /// object was saved from.
    #[arg(long = "object", value_name = "OBJECT")]
    object: Option<std::path::PathBuf>,
    /// Pin each iterator (`trace iter:...`) as a file in DIR, on the BPF
    /// filesystem (/sys/fs/bpf, mounted when needed), instead of running
    /// it: every `cat DIR/TARGET` runs it again, without ktap.
    #[arg(long = "pin", value_name = "DIR")]
    pin: Option<std::path::PathBuf>,
    /// Remove the iterators ktap pinned in DIR (and DIR once empty), and
    /// exit.
    #[arg(long = "unpin", value_name = "DIR")]
    unpin: Option<std::path::PathBuf>,
    /// Print the members of a kernel struct or union from the kernel's
    /// BTF (offsets and sizes, like pahole), and exit.
    #[arg(long = "struct", value_name = "NAME")]
    strukt: Option<String>,
    /// List the events matching GLOB (`-le GLOB`, as in ktap; `-l GLOB`
    /// too): tracepoints, syscalls (`syscalls:*`) and kernel functions
    /// where this kernel can probe them; with -v, each one's arguments.
    #[arg(short = 'l', long = "list-events", visible_alias = "list", value_name = "GLOB", num_args = 0..=1, default_missing_value = "*")]
    list: Option<String>,
    /// List the functions of a binary or library (`-lf libc`), optionally
    /// those matching GLOB, as `probe:DSO:func`; with -v, their file
    /// offsets.
    #[arg(long = "list-functions", value_names = ["DSO", "GLOB"], num_args = 1..=2)]
    list_functions: Option<Vec<String>>,
    /// List the USDT markers of a binary (`-lm DSO`), optionally those
    /// matching GLOB, as `sdt:DSO:provider:marker`; with -v, their
    /// arguments.
    #[arg(long = "list-markers", value_names = ["DSO", "GLOB"], num_args = 1..=2)]
    list_markers: Option<Vec<String>>,
    /// Print a man page or a shell completion script and exit.
    #[arg(long, value_name = "WHAT", hide = true)]
    generate: Option<Generated>,
    /// Output format: `text` or `json` (one JSON object a line for every
    /// record, table, warning and error).
    #[arg(short = 'f', long = "format", value_name = "FORMAT", default_value = "text")]
    format: Format,
    /// When tracing ends, write the stack tables (`s[stack()] += 1`) as
    /// folded stacks to FILE.
    #[arg(long = "folded", value_name = "FILE")]
    folded: Option<String>,
    /// When tracing ends, draw the stack tables as an SVG flame graph in
    /// FILE.
    #[arg(long = "flamegraph", value_name = "FILE")]
    flamegraph: Option<String>,
    /// Serve the tables and globals probes write as Prometheus metrics on
    /// http://ADDR/metrics while tracing (`127.0.0.1:9464`).
    #[arg(long = "metrics", value_name = "ADDR")]
    metrics: Option<String>,
    /// Look for tapsets (`NS.kp`, called as `NS.f()`) in DIR first;
    /// repeatable. Then come KTAP_PATH's directories (colon-separated),
    /// then the tapsets installed with ktap.
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    include: Vec<std::path::PathBuf>,
    /// The script file, then its arguments (arg[1], arg[2], ...).
    #[arg(value_name = "FILE [ARGS]")]
    rest: Vec<String>,
    /// After `--`: a command to start once attached; only it is traced and
    /// tracing ends when it exits.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Largest ring buffer `-b` accepts.
const MAX_BUFFER_BYTES: u64 = 1 << 31;

/// `-b SIZE`: a number of bytes with an optional K, M or G suffix (powers
/// of 1024; `KiB`, `KB` also read), rounded up to a power of two of at
/// least `page` bytes.
fn parse_buffer_size(text: &str, page: u64) -> Result<u32, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{text}` is not a size: use bytes or a number with K, M or G (`4M`, `256K`)")),
    };
    let too_large = || format!("`{text}` is too large: the buffer size is at most 2G");
    if num.is_empty() {
        return Err(format!("`{text}` is not a size: use bytes or a number with K, M or G (`4M`, `256K`)"));
    }
    let n: u64 = num.parse().map_err(|_| too_large())?;
    if n == 0 {
        return Err("the buffer size must be more than 0".into());
    }
    let bytes = n.checked_shl(shift).filter(|b| b >> shift == n && *b <= MAX_BUFFER_BYTES);
    let bytes = bytes.ok_or_else(too_large)?;
    Ok(bytes.next_power_of_two().max(page) as u32)
}

fn parse_buffer_size_arg(text: &str) -> Result<u32, String> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    parse_buffer_size(text, u64::try_from(page).unwrap_or(4096).max(1))
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(flag) = STOP.get() {
        flag.store(true, Ordering::SeqCst);
    }
}

fn install_signal_handlers() -> Arc<AtomicBool> {
    let flag = STOP.get_or_init(|| Arc::new(AtomicBool::new(false))).clone();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only does an atomic store.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    flag
}

struct Script {
    name: String,
    src: String,
    args: Vec<String>,
}

fn read_script(cli: &Cli) -> Result<Script, String> {
    if let Some(events) = &cli.show {
        if cli.eval.is_some() {
            return Err("-s and -e cannot be used together".into());
        }
        let src = format!("trace {events} {{ printf(\"%s-%d [%03d] %s\\n\", execname, pid, cpu, argstr) }}");
        return Ok(Script { name: "<-s EVENTS>".into(), src, args: cli.rest.clone() });
    }
    if let Some(text) = &cli.eval {
        return Ok(Script { name: "<command line>".into(), src: text.clone(), args: cli.rest.clone() });
    }
    let Some((path, args)) = cli.rest.split_first() else {
        return Err("no script given: pass a FILE or -e 'SCRIPT' (see --help)".into());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let src = String::from_utf8(bytes).map_err(|e| format!("{path} is not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()))?;
    Ok(Script { name: path.clone(), src, args: args.to_vec() })
}

/// `-f json`: errors before the script runs are JSON lines on stdout too.
static JSON: AtomicBool = AtomicBool::new(false);

fn render(sources: &diag::Sources, diags: &[Diagnostic]) {
    if JSON.load(Ordering::Relaxed) {
        for d in diags {
            // Line and column within the file (script or tapset) it is in.
            let file = &sources.files()[sources.file_of(d.span.start)];
            let mut local = d.clone();
            local.span.start = local.span.start.saturating_sub(file.base);
            local.span.end = local.span.end.saturating_sub(file.base);
            println!("{}", output::json_diagnostic(&file.text, &local));
        }
        return;
    }
    let color = colors_on(std::io::stderr().is_terminal());
    eprint!("{}", diag::render_sources(sources, diags, color));
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    if JSON.load(Ordering::Relaxed) {
        println!("{}", output::json_failure(&msg.to_string()));
        return ExitCode::FAILURE;
    }
    eprintln!("ktap: error: {msg}");
    ExitCode::FAILURE
}

/// A failure once the script runs: reported through the output.
fn runtime_error(out: &mut SharedOutput, message: &str, span: Option<Span>, notes: &[String]) -> ExitCode {
    out.error(&Failure { message, span, notes });
    ExitCode::FAILURE
}

/// `ktap -le GLOB`, `-lf DSO`, `-lm DSO` as ktap spelled them: the long
/// flags they stand for (before any `--`; `-l GLOB` stays as it was).
fn ktap_listing_flags(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut after_dashes = false;
    for a in args {
        after_dashes |= a == "--";
        let long = match a.to_str() {
            Some("-le") if !after_dashes => "--list-events",
            Some("-lf") if !after_dashes => "--list-functions",
            Some("-lm") if !after_dashes => "--list-markers",
            Some("-lv") if !after_dashes => {
                out.push("--verbose".into());
                "--list-events"
            }
            _ => {
                out.push(a);
                continue;
            }
        };
        out.push(long.into());
    }
    out
}

/// Prints a listing (`-le`, `-lf`, `-lm`).
fn print_listing(listed: Result<Vec<ktap::runtime::listing::Entry>, ktap::runtime::listing::Error>) -> ExitCode {
    match listed {
        // A closed pipe (`| head`) is not an error.
        Ok(entries) => {
            let _ = std::io::stdout().lock().write_all(ktap::runtime::listing::render(&entries).as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// DSO and GLOB of `-lf`/`-lm`.
fn dso_and_glob(args: &[String]) -> (&str, &str) {
    (args.first().map_or("", String::as_str), args.get(1).map_or("*", String::as_str))
}

/// `--generate WHAT`: the man page or a completion script, from the flags
/// defined here.
fn generate(what: Generated) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let shell = match what {
        Generated::Man => {
            return match clap_mangen::Man::new(cmd).render(&mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("cannot write the man page: {e}")),
            };
        }
        Generated::Bash => clap_complete::Shell::Bash,
        Generated::Zsh => clap_complete::Shell::Zsh,
        Generated::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "ktap", &mut out);
    ExitCode::SUCCESS
}

/// Whether colours may be used on a stream: a terminal, and no `NO_COLOR`
/// (set and not empty).
fn colors_on(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(ktap_listing_flags(std::env::args_os()));
    if let Some(what) = cli.generate {
        return generate(what);
    }
    if let Some(name) = &cli.strukt {
        return match ktap::runtime::btf_listing::struct_view(name) {
            Ok(text) => {
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Some(dir) = &cli.unpin {
        return match ktap::runtime::attach::iter::unpin(dir) {
            Ok(removed) => {
                let mut stdout = std::io::stdout().lock();
                for path in removed {
                    let _ = writeln!(stdout, "unpinned {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Some(dir) = &cli.pin {
        if let Err(e) = ktap::runtime::attach::iter::pin_dir(dir) {
            return fail(e);
        }
    }
    if let Some(glob) = &cli.list {
        return print_listing(ktap::runtime::listing::events(glob, cli.verbose));
    }
    if let Some(args) = &cli.list_functions {
        let (dso, glob) = dso_and_glob(args);
        return print_listing(ktap::runtime::listing::functions(dso, glob, cli.verbose));
    }
    if let Some(args) = &cli.list_markers {
        let (dso, glob) = dso_and_glob(args);
        return print_listing(ktap::runtime::listing::markers(dso, glob, cli.verbose));
    }
    JSON.store(cli.format == Format::Json, Ordering::Relaxed);
    let script = match read_script(&cli) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match cli.emit {
        Some(Stage::Tokens) => {
            print!("{}", ktap::frontend::print::tokens(&script.src));
            return ExitCode::SUCCESS;
        }
        Some(Stage::Ast) => {
            let (program, diags) = ktap::frontend::parse(&script.src);
            print!("{}", ktap::frontend::print::program(&program));
            render(&diag::Sources::script(&script.name, &script.src), &diags);
            return if !diags.iter().any(Diagnostic::is_error) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
        _ => {}
    }

    let mut events = RunningKernel::new();
    if let Some(path) = &cli.btf {
        events = events.with_btf_file(path.clone());
    }
    let mut compile_opts = ktap::Options { timestamps: cli.timestamps, ..ktap::Options::default() };
    if let Some(bytes) = cli.buffer_size {
        compile_opts.event_buffer_bytes = bytes;
    }
    // The script and the tapsets it uses, found on the tapset path.
    let (program, parse_diags) = ktap::frontend::parse(&script.src);
    let sources = diag::Sources::script(&script.name, &script.src);
    let path = tapsets::SearchPath::new(&cli.include, std::env::var_os("KTAP_PATH").as_deref(), std::env::current_exe().ok().as_deref());
    // A script that does not parse is compiled as it is (for every
    // diagnostic at once); tapsets are looked for in one that does.
    let linked = if parse_diags.iter().any(Diagnostic::is_error) {
        tapsets::Linked { program, sources, diags: Vec::new() }
    } else {
        tapsets::load(program, sources, &path)
    };
    let sources = linked.sources;
    let load_failed = linked.diags.iter().any(Diagnostic::is_error);
    let mut diags = parse_diags;
    diags.extend(linked.diags);
    if load_failed {
        diag::normalize(&mut diags);
        render(&sources, &diags);
        return ExitCode::FAILURE;
    }
    // An object run at once on the kernel that typed it needs no CO-RE
    // relocations; saved objects and other BTFs keep them (the `--emit`
    // dumps show what `--emit obj` writes), the task name included.
    compile_opts.core_records = cli.emit.is_some() || cli.btf.is_some();
    compile_opts.portable_task_name = compile_opts.core_records;
    let compiled = ktap::compile_program(linked.program, diags, &events, &compile_opts);
    // The kernel's BTF is not needed past compilation: unmap it.
    events.release_btf();
    let c = match compiled {
        Ok(c) => c,
        Err(CompileError::Diagnostics(diags)) => {
            render(&sources, &diags);
            return ExitCode::FAILURE;
        }
        Err(CompileError::Limit(msg)) => return fail(format!("this script is more than the kernel takes: {msg}")),
        Err(CompileError::Internal(msg)) => return fail(format!("internal compiler error (a ktap bug): {msg}")),
    };
    render(&sources, &c.warnings);
    if let Ok(t) = events.tracefs() {
        if t.mounted_by_us && cli.verbose {
            eprintln!("ktap: mounted tracefs at {}", t.root().display());
        }
    }
    match cli.emit {
        Some(Stage::Ir) => {
            print!("{}", ktap::ir::print::module(&c.module));
            return ExitCode::SUCCESS;
        }
        Some(Stage::Bpf) => {
            print!("{}", disassemble(&c, &sources));
            return ExitCode::SUCCESS;
        }
        Some(Stage::Obj) => {
            // Saved with what it came from, so a run checks its script.
            let mut object = c.compiled.object.clone();
            object.digest = Some(script_digest(&sources));
            let bytes = match ktap::bpfgen::elf::write_object(&object) {
                Ok(b) => b,
                Err(e) => return fail(format!("internal compiler error (a ktap bug): {e}")),
            };
            let written = match &cli.output {
                Some(path) => std::fs::write(path, &bytes).map_err(|e| format!("cannot write {path}: {e}")),
                None if std::io::stdout().is_terminal() => {
                    Err("refusing to write a binary object to a terminal: use -o FILE or a redirect".into())
                }
                None => std::io::stdout().write_all(&bytes).map_err(|e| e.to_string()),
            };
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            };
        }
        _ => {}
    }

    if (cli.folded.is_some() || cli.flamegraph.is_some()) && ktap::runtime::flame::stack_tables(&c.module).is_empty() {
        let flag = if cli.flamegraph.is_some() { "--flamegraph" } else { "--folded" };
        return fail(format!("{flag} draws tables keyed by stacks, and this script has none: count samples with `s[stack()] += 1` or `s[ustack()] += 1`"));
    }
    // Bound before anything runs, so a bad address ends ktap before it traces.
    let metrics = match cli.metrics.as_deref().map(ktap::runtime::metrics::Server::bind).transpose() {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let writer: Box<dyn Write> = match &cli.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => return fail(format!("cannot create {path}: {e}")),
        },
        // Buffered: the session flushes after each drain of the ring buffer.
        None => Box::new(std::io::BufWriter::with_capacity(1 << 16, std::io::stdout())),
    };
    // ansi.* reaches the output only when it is a terminal.
    let terminal = match (cli.output.is_none() && std::io::stdout().is_terminal(), colors_on(true)) {
        (false, _) => Terminal::None,
        (true, false) => Terminal::NoColor,
        (true, true) => Terminal::Color,
    };
    let text = TextOptions {
        banner_to_stderr: cli.output.is_some(),
        color: colors_on(std::io::stderr().is_terminal()),
        script: Some(sources.clone()),
        terminal,
    };
    let mut out = match cli.format {
        Format::Text => SharedOutput::new(Box::new(TextOutput::new(writer, text))),
        Format::Json => {
            let opts = JsonOptions { script: Some(script.src.clone()), probes: output::probe_sites(&c.module, &script.src) };
            SharedOutput::new(Box::new(JsonOutput::new(writer, opts)))
        }
    };
    let stop = install_signal_handlers();
    let opts = interp::Options {
        script_path: script.name.clone(),
        args: script.args.clone(),
        max_steps: 1_000_000_000,
        max_depth: 10_000,
    };
    let mut interp = match Interp::with_output(&c.program, opts, Box::new(out.clone())) {
        Ok(i) => i,
        Err(e) => return runtime_error(&mut out, &e.message, e.span, &[]),
    };
    interp.set_interrupt(stop.clone());
    match interp.run_main() {
        Ok(Outcome::Done) => {}
        Ok(Outcome::Exit) | Ok(Outcome::Interrupted) => {
            interp.flush();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            interp.flush();
            return runtime_error(&mut out, &e.message, e.span, &[]);
        }
    }
    // Probes nested in main-context code count once main registered them.
    let registered = c.module.probes.iter().any(|p| !p.nested || interp.registered(p.span.start));
    if !registered && interp.ticks().is_empty() && cli.command.is_empty() {
        // Nothing to wait for: the script ends after its main context.
        let r = if interp.has_trace_end() { interp.run_trace_end() } else { Ok(Outcome::Done) };
        interp.flush();
        return match r {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => runtime_error(&mut out, &e.message, e.span, &[]),
        };
    }
    let mut opts = session::Options {
        quiet: cli.quiet,
        verbose: cli.verbose,
        dry_run: cli.dry_run,
        timestamps: cli.timestamps,
        target_pid: cli.pid,
        target_cpu: cli.cpu,
        child: None,
        watched: None,
        metrics,
        folded: cli.folded.as_ref().map(Into::into),
        flamegraph: cli.flamegraph.as_ref().map(Into::into),
        flame_title: format!("ktap {}", script.name),
        pin: cli.pin.clone(),
    };
    if let Some(pid) = cli.pid {
        match ktap::runtime::child::Watched::open(pid) {
            Ok(w) => opts.watched = Some(w),
            Err(e) => return fail(e),
        }
    }
    if !cli.command.is_empty() {
        if cli.pid.is_some() {
            return fail("-p and `-- CMD` cannot be used together");
        }
        match ktap::runtime::child::Child::spawn(&cli.command) {
            Ok(child) => {
                opts.target_pid = Some(child.pid());
                opts.child = Some(child);
            }
            Err(e) => return fail(e),
        }
    }
    let saved = match &cli.object {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => match saved_digest(&bytes) {
                Some(d) if d == script_digest(&sources) => Some(bytes),
                Some(_) => {
                    return fail(format!(
                        "{} was compiled from another script (or another ktap): run it with the script it was saved from, or save it again with --emit obj",
                        path.display()
                    ))
                }
                None => return fail(format!("{} is not an object ktap saved with --emit obj (it has no {} section)", path.display(), ktap::bpfgen::elf::DIGEST_SECTION)),
            },
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        },
        None => None,
    };
    let object = saved.as_deref().unwrap_or(&c.object);
    match session::run(&c.module, &c.compiled, object, &mut interp, &out, &mut opts, &stop) {
        // `-- CMD` that ended on its own: its status, unless exit() was called.
        Ok(outcome) => match opts.child.as_mut().and_then(|c| c.try_wait()) {
            Some(status) if outcome != Outcome::Exit => ExitCode::from(u8::try_from(status).unwrap_or(1)),
            _ => ExitCode::SUCCESS,
        },
        Err(e) => {
            interp.flush();
            runtime_error(&mut out, &e.message, e.span, &e.notes)
        }
    }
}

/// What a saved object was compiled from: the texts of the script and its
/// tapsets, and ktap's version (FNV-1a, 64 bits).
fn script_digest(sources: &diag::Sources) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain([0u8].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(env!("CARGO_PKG_VERSION").as_bytes());
    for f in sources.files() {
        eat(f.text.as_bytes());
    }
    h
}

/// The digest in a saved object's `.ktap.digest` section, if it has one.
fn saved_digest(object: &[u8]) -> Option<u64> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(object).ok()?;
    let data = file.section_by_name(ktap::bpfgen::elf::DIGEST_SECTION)?.data().ok()?;
    Some(u64::from_le_bytes(data.get(..8)?.try_into().ok()?))
}

/// `--emit bpf`: every program's instructions with the source lines they
/// came from.
fn disassemble(c: &ktap::Compilation, sources: &diag::Sources) -> String {
    let mut out = String::new();
    for (info, prog) in c.compiled.programs.iter().zip(&c.compiled.object.programs) {
        let attach: Vec<String> = c.module.probe(info.probe)
            .attach
            .iter()
            .enumerate()
            .filter(|(i, _)| info.attach.contains(i))
            .map(|(_, a)| a.full_name())
            .collect();
        out.push_str(&format!("{} (section {}) <- {}\n", prog.name, prog.section, attach.join(", ")));
        out.push_str(&listing::with_lines(&prog.insns, &info.spans, &|s| sources.line(s.start)));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn script_args_and_command() {
        let cli = Cli::try_parse_from(["ktap", "-q", "s.kp", "a", "2", "--", "ls", "-l"]).expect("parses");
        assert_eq!(cli.rest, ["s.kp", "a", "2"]);
        assert_eq!(cli.command, ["ls", "-l"]);
        assert!(cli.quiet);
        let cli = Cli::try_parse_from(["ktap", "-e", "print(1)", "-p", "12"]).expect("parses");
        assert_eq!(cli.pid, Some(12));
        assert!(cli.rest.is_empty());
        assert_eq!(cli.buffer_size, None);
        assert_eq!(cli.format, Format::Text);
        let cli = Cli::try_parse_from(["ktap", "-f", "json", "--metrics", "127.0.0.1:9464", "--flamegraph", "f.svg", "--folded", "f.txt", "-e", "x"]).expect("parses");
        assert_eq!((cli.format, cli.metrics.as_deref()), (Format::Json, Some("127.0.0.1:9464")));
        assert_eq!((cli.flamegraph.as_deref(), cli.folded.as_deref()), (Some("f.svg"), Some("f.txt")));
        assert!(Cli::try_parse_from(["ktap", "--format", "yaml", "-e", "x"]).is_err());
    }

    #[test]
    fn ktap_listing_flags_become_long_flags() {
        let args = |v: &[&str]| ktap_listing_flags(v.iter().map(std::ffi::OsString::from));
        let cli = Cli::try_parse_from(args(&["ktap", "-le", "sched:*", "-v"])).expect("parses");
        assert_eq!((cli.list.as_deref(), cli.verbose), (Some("sched:*"), true));
        let cli = Cli::try_parse_from(args(&["ktap", "-le"])).expect("parses");
        assert_eq!(cli.list.as_deref(), Some("*"));
        let cli = Cli::try_parse_from(args(&["ktap", "-l", "sched:*"])).expect("parses");
        assert_eq!(cli.list.as_deref(), Some("sched:*"));
        let cli = Cli::try_parse_from(args(&["ktap", "-lf", "libc", "mall*"])).expect("parses");
        assert_eq!(cli.list_functions, Some(vec!["libc".to_string(), "mall*".to_string()]));
        let cli = Cli::try_parse_from(args(&["ktap", "-lm", "/bin/x"])).expect("parses");
        assert_eq!(cli.list_markers, Some(vec!["/bin/x".to_string()]));
        // After `--` they belong to the command.
        let cli = Cli::try_parse_from(args(&["ktap", "-e", "print(1)", "--", "ls", "-lf"])).expect("parses");
        assert_eq!(cli.command, ["ls", "-lf"]);
        assert_eq!(cli.list_functions, None);
    }

    #[test]
    fn help_has_examples_and_generation_is_hidden() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("Examples:\n  ktap -e"), "{help}");
        assert!(help.contains("--list-events"), "{help}");
        assert!(!help.contains("--generate"), "{help}");
        let cli = Cli::try_parse_from(["ktap", "--generate", "zsh"]).expect("parses");
        assert_eq!(cli.generate, Some(Generated::Zsh));
    }

    #[test]
    fn buffer_sizes() {
        let page = 4096;
        assert_eq!(parse_buffer_size("4M", page), Ok(4 << 20));
        assert_eq!(parse_buffer_size("256K", page), Ok(256 << 10));
        assert_eq!(parse_buffer_size("256kib", page), Ok(256 << 10));
        assert_eq!(parse_buffer_size("1G", page), Ok(1 << 30));
        assert_eq!(parse_buffer_size("2G", page), Ok(1 << 31));
        assert_eq!(parse_buffer_size("65536", page), Ok(65536));
        // Rounded up to a power of two, and to at least a page.
        assert_eq!(parse_buffer_size("3M", page), Ok(4 << 20));
        assert_eq!(parse_buffer_size("100000", page), Ok(131072));
        assert_eq!(parse_buffer_size("1", page), Ok(4096));
        assert_eq!(parse_buffer_size("1K", 16384), Ok(16384));
        for bad in ["", "M", "4X", "-4M", "4.5M", "0", "0K", "3G", "99999999999999999999", "17179869184G"] {
            let e = parse_buffer_size(bad, page).expect_err(bad);
            assert!(e.contains("size"), "{bad}: {e}");
        }
        let cli = Cli::try_parse_from(["ktap", "-b", "4M", "-e", "print(1)"]).expect("parses");
        assert_eq!(cli.buffer_size, Some(4 << 20));
        let cli = Cli::try_parse_from(["ktap", "--buffer-size", "300K", "-e", "print(1)"]).expect("parses");
        assert_eq!(cli.buffer_size, Some(512 << 10));
        let e = Cli::try_parse_from(["ktap", "-b", "lots", "-e", "print(1)"]).expect_err("refused").to_string();
        assert!(e.contains("`lots` is not a size"), "{e}");
    }
}
