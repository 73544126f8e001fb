//! Helpers shared by the integration tests: a fixed event catalogue for
//! root-free compiler tests, the one root gate, running the ktap binary,
//! the compile half of kernel tests, the fuzzers' random numbers, an
//! output sink, and the C workload for kernel tests. Every test file uses
//! these rather than its own copies.

#![expect(dead_code, reason = "each test file uses a part of the shared support")]

use ktap::facts::{EventField, FakeBinary, FakeKernel, FieldKind, FileOffset, PercpuAccess, SdtMarker};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

fn field(name: &str, offset: u32, size: u32, signed: bool) -> EventField {
    let kind = if name == "filename" { FieldKind::DataLoc } else { FieldKind::Int };
    EventField { name: name.into(), offset, size, signed, common: name.starts_with("common_"), kind }
}

const EVENTS: &[(&str, &str)] = &[
    ("sched", "sched_process_exec"),
    ("syscalls", "sys_enter_getppid"),
    ("syscalls", "sys_enter_write"),
    ("syscalls", "sys_exit_getppid"),
    ("syscalls", "sys_exit_write"),
];

/// The record layout of one of `EVENTS`.
fn format(event: &str) -> Vec<EventField> {
    let mut f = vec![
        field("common_type", 0, 2, false),
        field("common_flags", 2, 1, false),
        field("common_preempt_count", 3, 1, false),
        field("common_pid", 4, 4, true),
    ];
    if event.starts_with("sys_") {
        f.push(field("__syscall_nr", 8, 4, true));
    }
    match event {
        "sys_enter_write" => {
            f.push(field("fd", 16, 8, false));
            f.push(field("buf", 24, 8, false));
            f.push(field("count", 32, 8, false));
        }
        "sys_exit_write" | "sys_exit_getppid" => f.push(field("ret", 16, 8, true)),
        "sched_process_exec" => {
            f.push(field("filename", 8, 4, false));
            f.push(field("pid", 12, 4, true));
            f.push(field("old_pid", 16, 4, true));
        }
        _ => {}
    }
    f
}

/// The one binary the fake catalogue knows (`libapp` resolves to it).
const FAKE_BINARY: &str = "/opt/app/libapp.so";
const FUNCTIONS: &[(&str, u64)] = &[("app_close", 0x1200), ("app_open", 0x1100), ("app_read", 0x1180)];
/// Markers: name, file offset, semaphore, operands.
const MARKERS: &[(&str, u64, Option<u64>, &str)] =
    &[("request", 0x1300, Some(0x4010), "-4@%eax 8@-8(%rbp) 8@$12"), ("done", 0x1340, None, "8@%rdx"), ("odd", 0x1380, None, "8@foo(%rip)")];

/// A few syscall tracepoints with their real x86-64 layouts, so compiler
/// snapshots don't depend on the machine's tracefs; one binary with
/// functions and USDT markers; two kernel functions; no BTF.
fn catalogue() -> FakeKernel {
    let mut k = FakeKernel::new();
    for (system, event) in EVENTS {
        k = k.event(system, event, format(event));
    }
    let app = FakeBinary {
        path: FAKE_BINARY.into(),
        aliases: vec!["libapp".into()],
        functions: FUNCTIONS.iter().map(|(n, o)| (n.to_string(), FileOffset(*o))).collect(),
        markers: MARKERS
            .iter()
            .map(|(name, off, sema, args)| SdtMarker {
                provider: "app".into(),
                name: name.to_string(),
                offset: FileOffset(*off),
                semaphore: sema.map(FileOffset),
                args: args.to_string(),
            })
            .collect(),
    };
    k.binary(app).kernel_function("vfs_read").kernel_function("vfs_write").syscall("write", 1).syscall("getppid", 110)
}

/// The fake catalogue, without kernel BTF (probes copy the task name with
/// a helper; `in_interrupt()` is refused).
pub fn fake_events() -> &'static FakeKernel {
    static EVENTS: OnceLock<FakeKernel> = OnceLock::new();
    EVENTS.get_or_init(catalogue)
}

/// The fake catalogue on a kernel whose BTF is known (x86-64 6.18's
/// layout): probes load `execname` from the task and can read the
/// preempt count. Golden inputs named `*_btf.kp` compile against it.
pub fn fake_kernel() -> &'static FakeKernel {
    static KERNEL: OnceLock<FakeKernel> = OnceLock::new();
    KERNEL.get_or_init(|| {
        catalogue()
            .task_comm_offset(1752)
            .task_flag_bit("in_iowait", 9544)
            .percpu_var("__preempt_count", PercpuAccess { chain: vec![296, 312], delta: -92688, size: 4 })
            .btf(ktap::facts::sample_btf())
            .module_btf("fakenet", ktap::facts::sample_module_btf())
            .kernel_function("fakenet_open")
            .bpf_map(fake_map(12, "counts", 4, 8, false), Some("/sys/fs/bpf/counts"))
            .bpf_map(fake_map(13, "pairs", 4, 16, true), None)
            .bpf_map(fake_map(14, "wide", 16, 8, false), None)
            // Typed past its size: what the kernel would refuse at attach.
            .bpf_map(fake_map(15, "short", 4, 8, true), None)
    })
}

/// A BPF map of the fake kernel: with BTF, its key is a `__u32` and its
/// value a `struct pair { __u32 a; u64 b; }`.
fn fake_map(id: u32, name: &str, key_size: u32, value_size: u32, btf: bool) -> ktap::facts::BpfMap {
    use ktap::btf::write::{BtfBuilder, BtfMember};
    let types = btf.then(|| {
        let mut b = BtfBuilder::new();
        let u32_ = b.add_int("unsigned int", 4, false);
        let u64_ = b.add_int("long long unsigned int", 8, false);
        let key = b.add_typedef("__u32", u32_);
        let m = |name: &str, ty, byte: u32| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 };
        let value = b.add_struct("pair", 16, &[m("a", key, 0), m("b", u64_, 8)]);
        let blob = b.to_bytes();
        let reader = ktap::facts::BtfReader::new(&blob).expect("btf");
        let (table, roots) = ktap::facts::TypeTable::from_btf(&reader, &[key, value]).expect("types");
        ktap::facts::MapTypes { key: roots[0], value: roots[1], table: std::sync::Arc::new(table) }
    });
    ktap::facts::BpfMap { id, name: name.into(), kind: "hash".into(), key_size, value_size, types }
}

/// What a finished ktap printed, and how it ended.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

/// Waits for `child` up to `limit`; one that overstays is killed (by its
/// own pid) and the test fails.
pub fn finish(mut child: Child, limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ktap did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut stdout).expect("stdout");
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).expect("stderr");
    }
    let code = child.wait().expect("wait").code();
    Run { stdout, stderr, code }
}

/// xorshift64*: the fuzz tests' deterministic random numbers (the state
/// must not be 0).
#[derive(Default)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }
    /// One of `items` (which is not empty).
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A writer whose bytes the test reads back: the interpreter's output.
#[derive(Clone, Default)]
pub struct Sink(Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

/// A fuzz test's seed (odd, as xorshift needs a nonzero state) and how
/// many scripts it runs: `{PREFIX}_SEED` and `{PREFIX}_SCRIPTS` from the
/// environment explore beyond the fixed run.
pub fn fuzz_params(prefix: &str, seed: u64, scripts: u64) -> (u64, usize) {
    let env = |k: &str| std::env::var(format!("{prefix}_{k}")).ok().and_then(|v| v.parse::<u64>().ok());
    (env("SEED").unwrap_or(seed) | 1, env("SCRIPTS").unwrap_or(scripts) as usize)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The gate of every test that loads BPF, reads tracefs or attaches:
/// true when root; otherwise prints which test skips and why, and
/// returns false (`if !need_root() { return; }`).
pub fn need_root() -> bool {
    if is_root() {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("test").to_string();
    eprintln!("skipped {test}: loading BPF, attaching and reading tracefs need root (or CAP_BPF + CAP_PERFMON)");
    false
}

/// The compile half of a kernel test, which runs without root: `script`
/// (its `{PID}` made 1) through every compiler stage against the fake
/// kernel (`FakeKernel`: the fake catalogue plus BTF). Panics with the
/// diagnostics when it does not compile.
pub fn compiles(script: &str) -> ktap::Compilation {
    let src = script.replace("{PID}", "1");
    match ktap::compile(&src, fake_kernel()) {
        Ok(c) => c,
        Err(ktap::CompileError::Diagnostics(d)) => panic!("does not compile:\n{}", ktap::frontend::diag::render("<test>", &src, &d, false)),
        Err(e) => panic!("does not compile: {e:?}\n{src}"),
    }
}

/// Builds (once) and returns the path of the C workload in tests/workload.c.
pub fn workload() -> PathBuf {
    // Tests run on several threads: build once per process, under a lock.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/workload.c");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-workload");
    let fresh = out.metadata().and_then(|m| m.modified()).ok() >= src.metadata().and_then(|m| m.modified()).ok();
    if !out.exists() || !fresh {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let st = Command::new("gcc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc runs");
        assert!(st.success(), "gcc failed on {}", src.display());
        std::fs::rename(&tmp, &out).expect("rename workload");
    }
    out
}

/// Builds (once per change) `tests/probes/NAME.c` with gcc and `flags`,
/// into the test target directory; returns the binary's path.
pub fn c_program(name: &str, flags: &[&str]) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/probes").join(format!("{name}.c"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ktap-probe-{name}"));
    // Tests run on threads of one process: build one at a time.
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = out.metadata().and_then(|m| m.modified()).ok() >= src.metadata().and_then(|m| m.modified()).ok();
    if !out.exists() || !fresh {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let st = Command::new("gcc").args(flags).arg("-o").arg(&tmp).arg(&src).status().expect("gcc runs");
        assert!(st.success(), "gcc failed on {}", src.display());
        std::fs::rename(&tmp, &out).expect("rename program");
    }
    out
}

/// The count of ktap's "N events lost" warning in `stderr`; fails the
/// test when there is none.
pub fn lost_events(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("ktap: warning: ")?.strip_suffix(" events lost (the ring buffer was full)")?.parse().ok())
        .unwrap_or_else(|| panic!("no lost-events warning: {stderr}"))
}

/// Starts `cmd`, whose program this test process has just written (a
/// copy, a build): a child another test thread forked meanwhile may hold
/// the file open until it execs, and exec fails with ETXTBSY for that
/// moment, so it is tried again (for up to a second).
pub fn spawn_copied(cmd: &mut Command) -> Child {
    for _ in 0..100 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(10)),
            started => return started.expect("start the program"),
        }
    }
    cmd.spawn().expect("start the program")
}

/// A process the test started, killed and reaped however the test ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bpffs directory the test pins in, emptied (by `ktap --unpin`, else
/// by hand) and removed however the test ends.
pub struct PinDir(pub PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = ktap(&["--unpin", &self.0.to_string_lossy()]);
            if let Ok(entries) = std::fs::read_dir(&self.0) {
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            let _ = std::fs::remove_dir(&self.0);
        }
    }
}

/// The ktap binary under test.
pub const KTAP: &str = env!("CARGO_BIN_EXE_ktap");

/// The ktap binary with `args`, its output piped and no input: for tests
/// that drive it while it runs.
pub fn ktap_command(args: &[&str]) -> Command {
    let mut c = Command::new(KTAP);
    c.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Runs ktap with `args` to its end (at most a minute): its exit code and
/// output.
pub fn ktap(args: &[&str]) -> Run {
    finish(ktap_command(args).spawn().expect("start ktap"), Duration::from_secs(60))
}

/// `ktap` with `input` on its standard input (a command after `--` reads
/// its start line there).
pub fn ktap_with_input(args: &[&str], input: &str) -> Run {
    let mut child = ktap_command(args).stdin(Stdio::piped()).spawn().expect("start ktap");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write ktap's input");
    finish(child, Duration::from_secs(60))
}

/// Runs `script` (with `{PID}` replaced by the workload's pid) while the
/// C workload makes `threads` × `count` getppid calls. With `interrupt`,
/// ktap gets SIGINT once the workload is done; otherwise the script must end
/// by itself. A ktap that fails before attaching (a compile error, a
/// verifier rejection) is returned as it ended.
pub fn traced(script: &str, threads: u32, count: u64, interrupt: bool) -> Run {
    traced_with(&[], &[], script, threads, count, interrupt)
}

/// `traced` with extra ktap options (`{PID}` replaced there too) and a
/// command the workload runs under (e.g. `taskset -c 1`).
pub fn traced_with(options: &[&str], wrapper: &[&str], script: &str, threads: u32, count: u64, interrupt: bool) -> Run {
    let args = [threads.to_string().into(), count.to_string().into()];
    traced_workload(options, wrapper, script, &args, interrupt)
}

/// `traced_with` with the workload's arguments as given (`THREADS COUNT
/// [NAME]`; a NAME need not be UTF-8). The `-f json` banner,
/// `{"type":"attached"}`, counts as the banner and is left out too.
pub fn traced_workload(options: &[&str], wrapper: &[&str], script: &str, workload_args: &[std::ffi::OsString], interrupt: bool) -> Run {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(workload());
            c
        }
        None => Command::new(workload()),
    };
    let mut work = cmd.args(workload_args).stdin(Stdio::piped()).spawn().expect("start workload");
    let pid = work.id().to_string();
    let script = script.replace("{PID}", &pid);
    let mut args: Vec<String> = options.iter().map(|o| o.replace("{PID}", &pid)).collect();
    args.extend(["-e".to_string(), script]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = ktap_command(&args).spawn().expect("start ktap");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut rest = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            if line.starts_with("Tracing...") || line == r#"{"type":"attached"}"# {
                let _ = tx.send(());
                continue;
            }
            rest.push(line);
        }
        rest
    });
    let attached = rx.recv_timeout(Duration::from_secs(20)).is_ok();
    if !attached {
        let _ = work.kill();
        let _ = work.wait();
        let run = finish(child, Duration::from_secs(5));
        assert_ne!(run.code, Some(0), "ktap never attached: {}", run.stderr);
        return run;
    }
    work.stdin.take().expect("stdin").write_all(b"go\n").expect("start workload");
    assert!(work.wait().expect("workload").success(), "workload failed");
    if interrupt {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    let mut run = finish(child, Duration::from_secs(30));
    let lines = reader.join().expect("reader");
    run.stdout = lines.iter().map(|l| format!("{l}\n")).collect();
    run
}
