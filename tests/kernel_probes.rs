//! End-to-end tests of dynamic probes against the live kernel: uprobes,
//! uretprobes, fetch arguments, globs, USDT markers with semaphores, libc,
//! `-p`, kprobes on a kernel without them, and that nothing stays behind
//! after ktap ends however it ends. They need root and say so when they skip.

mod support;
use support::{finish, ktap, ktap_command, ktap_with_input, need_root, Run};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const UPROBE_EVENTS: &str = "/sys/kernel/tracing/uprobe_events";

fn target() -> PathBuf {
    support::c_program("target", &["-O1", "-g"])
}

/// The compile half, which needs no root: `script` (`{BIN}` the target)
/// compiles; its IR dump's probe lines (where each probe attaches).
fn attach_lines(script: &str) -> Vec<String> {
    let script = script.replace("{BIN}", target().to_str().expect("utf8"));
    let run = ktap(&["--emit", "ir", "-e", &script]);
    assert_eq!(run.code, Some(0), "does not compile: {script}\n{}", run.stderr);
    run.stdout.lines().filter(|l| l.starts_with("probe ")).map(str::to_string).collect()
}

/// `ktap -q -e SCRIPT -- target COUNT`, the target started on its stdin line.
fn run_target(script: &str, count: u32) -> Run {
    let t = target();
    let script = script.replace("{BIN}", t.to_str().expect("utf8"));
    ktap_with_input(&["-q", "-e", &script, "--", t.to_str().expect("utf8"), &count.to_string()], "go\n")
}

/// Output lines of the probes (the target's own summary line removed).
fn probe_lines(run: &Run) -> Vec<String> {
    run.stdout.lines().filter(|l| !l.starts_with("sum ")).map(str::to_string).collect()
}

fn compile_error(script: &str) -> String {
    let t = target();
    let script = script.replace("{BIN}", t.to_str().expect("utf8"));
    let run = ktap(&["--emit", "ir", "-e", &script]);
    assert_eq!(run.code, Some(1), "accepted: {script}");
    run.stderr
}

#[test]
fn entry_args_and_return_values_are_exact() {
    let script = "trace probe:{BIN}:ktap_add3 { printf(\"add %d %d %d\\n\", arg1, arg2, arg3) }\n\
         trace probe:{BIN}:ktap_add3%return { printf(\"ret %d\\n\", retval) }\n\
         trace probe:{BIN}:ktap_neg%return r=$retval:s32 { printf(\"neg %d\\n\", args.r) }";
    let probes = attach_lines(script);
    assert_eq!(probes.len(), 3, "{probes:?}");
    assert!(probes[0].contains("[uprobe ") && probes[1].contains("[uretprobe ") && probes[2].contains(":ktap_neg @"), "{probes:?}");
    if !need_root() {
        return;
    }
    let run = run_target(script, 3);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines = probe_lines(&run);
    lines.sort();
    let mut want: Vec<String> = (1..=3).flat_map(|i| [format!("add {i} 20 300"), format!("ret {}", i + 320), "neg -5".to_string()]).collect();
    want.sort();
    assert_eq!(lines, want);
}

#[test]
fn fetch_args_dereference_and_read_strings() {
    let script = "trace probe:{BIN}:ktap_pair x=+0(%di) y=+8(%rdi):s32 name=+0(+16(%di)):string { printf(\"%d %d %s\\n\", args.x, args.y, args.name) }\n\
         trace probe:{BIN}:ktap_greet who=%di:string { print(args.who) }";
    assert_eq!(attach_lines(script).len(), 2);
    if !need_root() {
        return;
    }
    let run = run_target(script, 2);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines = probe_lines(&run);
    lines.sort();
    assert_eq!(lines, ["41 -7 pairname", "42 -7 pairname", "world", "world"]);
}

#[test]
fn glob_attaches_every_match_with_its_probename() {
    let script = "var n = {}\ntrace probe:{BIN}:ktap_* { n[probename] += 1 }\n\
         trace_end { print(n[\"ktap_add3\"], n[\"ktap_neg\"], n[\"ktap_pair\"], n[\"ktap_greet\"]) }";
    let probes = attach_lines(script);
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert_eq!(probes[0].matches("uprobe ").count(), 4, "one attach point per function: {probes:?}");
    if !need_root() {
        return;
    }
    let run = run_target(script, 4);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(probe_lines(&run), ["4\t4\t4\t4"]);
}

#[test]
fn usdt_markers_with_semaphores() {
    let script = "trace sdt:{BIN}:guarded { printf(\"guarded %d %d\\n\", arg1, arg2) }\n\
         trace sdt:{BIN}:plain { printf(\"plain %d %d\\n\", arg1, arg2) }";
    let probes = attach_lines(script);
    assert!(probes[0].contains(":guarded @") && probes[0].contains(" semaphore 0x"), "{probes:?}");
    if !need_root() {
        return;
    }
    let run = run_target(script, 2);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // The guarded marker fires only because attaching raised its semaphore.
    assert!(run.stdout.contains("semaphore 1"), "{}", run.stdout);
    let mut lines = probe_lines(&run);
    lines.sort();
    assert_eq!(lines, ["guarded 1 7", "guarded 2 7", "plain 1 -3", "plain 2 -3"]);
}

#[test]
fn uprobes_see_their_task_in_process_context() {
    let script = "trace probe:{BIN}:ktap_add3 { printf(\"%s %d\\n\", execname, in_interrupt()) }";
    attach_lines(script);
    if !need_root() {
        return;
    }
    let run = run_target(script, 2);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(probe_lines(&run), ["ktap-probe-targ 0", "ktap-probe-targ 0"]);
}

#[test]
fn libc_malloc_sizes() {
    let script = "var n = 0\ntrace probe:libc:malloc /arg1 == 12345/ { n += 1 }\ntrace_end { print(n) }";
    let probes = attach_lines(script);
    assert!(probes[0].contains("libc.so") && probes[0].contains(":malloc @"), "{probes:?}");
    if !need_root() {
        return;
    }
    let run = run_target(script, 5);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(probe_lines(&run), ["5"]);
}

#[test]
fn kprobes_load_but_need_kernel_support_to_attach() {
    let script = "trace probe:vfs_read n=%dx:u32 { print(args.n, execname, in_interrupt()) }\ntrace probe:vfs_read%return { print(retval) }";
    assert_eq!(attach_lines(script), ["probe p0 [kprobe vfs_read] {", "probe p1 [kretprobe vfs_read] {"]);
    if !need_root() {
        return;
    }
    let run = ktap(&["-d", "-e", script]);
    assert_eq!(run.code, Some(0), "the verifier refused: {}", run.stderr);
    if ktap::runtime::attach::kprobe::supported() {
        eprintln!("skipped the attach half: this kernel has kprobes");
        return;
    }
    let run = ktap(&["-q", "-e", script]);
    let err = &run.stderr;
    assert_eq!(run.code, Some(1));
    assert!(err.contains("this kernel has no kprobe support"), "{err}");
    assert!(err.contains("<command line>:1:7"), "no location: {err}");
}

#[test]
fn bad_probes_are_diagnostics_at_their_spans() {
    // Compile-time only: no root needed.
    let e = compile_error("trace probe:/no/such/bin:main { }");
    assert!(e.contains("cannot open /no/such/bin") && e.contains("1:13"), "{e}");
    let e = compile_error("trace probe:{BIN}:zz* { }");
    assert!(e.contains("matches `zz*`"), "{e}");
    let e = compile_error("trace probe:{BIN}:ktap_add3 x=%rxx { }");
    assert!(e.contains("unknown register `%rxx`"), "{e}");
    let e = compile_error("trace probe:{BIN}:ktap_add3 x=+8(%di { }");
    assert!(e.contains("unclosed '('"), "{e}");
    let e = compile_error("trace sdt:{BIN}:nosuch { }");
    assert!(e.contains("no USDT marker `nosuch`") && e.contains("ktap_test:plain"), "{e}");
    // A stripped copy keeps only exported symbols: ktap_add3 is gone.
    let stripped = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-probe-target-stripped");
    let st = Command::new("strip").arg("-o").arg(&stripped).arg(target()).status().expect("strip");
    assert!(st.success());
    let e = compile_error(&format!("trace probe:{}:ktap_add3 {{ }}", stripped.display()));
    assert!(e.contains("no function `ktap_add3`") && e.contains("stripped"), "{e}");
}

#[test]
fn pid_option_limits_uprobes_to_one_process() {
    if !need_root() {
        return;
    }
    let links = pid_limits("ktap_add3", 3);
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!((links[0].kind.as_str(), links[0].count), ("uprobe_multi", 1));
}

#[test]
fn pid_option_limits_multi_links_to_one_process() {
    if !need_root() {
        return;
    }
    let links = pid_limits("ktap_*", 3 * 4);
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!((links[0].kind.as_str(), links[0].count), ("uprobe_multi", 4));
}

/// Runs `n += 1` on `probe:TARGET:SPEC` with `-p` naming one of two
/// targets that each run their loop 3 times; checks the total is `want`
/// and that every link ktap held was for that process. Returns the links.
fn pid_limits(spec: &str, want: u32) -> Vec<LinkInfo> {
    let t = target();
    let spawn = || Command::new(&t).arg("3").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("target");
    let (mut a, mut b) = (spawn(), spawn());
    let script = format!("var n = 0\ntrace probe:{}:{spec} {{ n += 1 }}\ntrace_end {{ print(n) }}", t.display());
    let mut child = ktap_command(&["-p", &a.id().to_string(), "-e", &script]).spawn().expect("ktap");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("Tracing"), "{banner}");
    let links = links_of(child.id());
    for p in [&mut a, &mut b] {
        p.stdin.take().expect("stdin").write_all(b"go\n").expect("go");
        assert!(p.wait().expect("wait").success());
    }
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut run = finish(child, Duration::from_secs(30));
    out.read_to_string(&mut run.stdout).expect("rest");
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("{want}\n"));
    assert!(!links.is_empty());
    for l in &links {
        assert_eq!(l.pid, Some(a.id()), "{l:?}");
    }
    links
}

/// A BPF link a process holds, as /proc/PID/fdinfo describes it.
#[derive(Debug)]
struct LinkInfo {
    kind: String,
    /// `uprobe_cnt` of a multi link.
    count: usize,
    /// The process a uprobe link is limited to.
    pid: Option<u32>,
    /// Per-offset cookies of a multi link.
    cookies: Vec<u64>,
}

fn links_of(pid: u32) -> Vec<LinkInfo> {
    let mut links = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("fdinfo") {
        let Ok(text) = std::fs::read_to_string(entry.expect("entry").path()) else { continue };
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        let Some(kind) = field("link_type:") else { continue };
        let cookies = text
            .lines()
            .skip_while(|l| !l.starts_with("cookie"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        links.push(LinkInfo {
            kind: kind.to_string(),
            count: field("uprobe_cnt:").and_then(|c| c.parse().ok()).unwrap_or(0),
            pid: field("pid:").and_then(|c| c.parse().ok()).filter(|&p| p != 0),
            cookies,
        });
    }
    links
}

/// `ktap -e SCRIPT -- target COUNT` with `env` set: the links ktap holds
/// once attached, and its run after the target is let go.
fn run_attached(script: &str, count: u32, env: &[(&str, &str)]) -> (Run, Vec<LinkInfo>) {
    let t = target();
    let script = script.replace("{BIN}", t.to_str().expect("utf8"));
    let mut child = ktap_command(&["-e", &script, "--", t.to_str().expect("utf8"), &count.to_string()])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn ktap");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("Tracing"), "{banner}");
    let links = links_of(child.id());
    child.stdin.take().expect("stdin").write_all(b"go\n").expect("write");
    let mut run = finish(child, Duration::from_secs(60));
    out.read_to_string(&mut run.stdout).expect("rest");
    (run, links)
}

const GLOB_ENTRY_AND_RETURN: &str = "var n = {}\nvar r = {}\n\
    trace probe:{BIN}:ktap_* { n[probename] += 1 }\n\
    trace probe:{BIN}:ktap_*%return { r[probename] += 1 }\n\
    trace_end {\n\
      for (k, v in pairs(n)) { printf(\"entry %s %d\\n\", k, v) }\n\
      for (k, v in pairs(r)) { printf(\"return %s %d\\n\", k, v) }\n\
    }";

/// What GLOB_ENTRY_AND_RETURN prints for `count` loops, sorted.
fn glob_counts(count: u32) -> Vec<String> {
    let mut want: Vec<String> = ["ktap_add3", "ktap_greet", "ktap_neg", "ktap_pair"]
        .iter()
        .flat_map(|f| [format!("entry {f} {count}"), format!("return {f} {count}")])
        .collect();
    want.sort();
    want
}

fn sorted_probe_lines(run: &Run) -> Vec<String> {
    let mut lines: Vec<String> = probe_lines(run).into_iter().filter(|l| !l.starts_with("Tracing")).collect();
    lines.sort();
    lines
}

#[test]
fn glob_uses_one_multi_link_per_direction_with_probename_cookies() {
    let probes = attach_lines(GLOB_ENTRY_AND_RETURN);
    assert_eq!((probes.len(), probes[0].matches("[uprobe ").count(), probes[0].matches(", uprobe ").count()), (2, 1, 3), "{probes:?}");
    assert_eq!((probes[1].matches("[uretprobe ").count(), probes[1].matches(", uretprobe ").count()), (1, 3), "{probes:?}");
    if !need_root() {
        return;
    }
    let (run, links) = run_attached(GLOB_ENTRY_AND_RETURN, 5, &[]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(sorted_probe_lines(&run), glob_counts(5));
    let mut kinds: Vec<&str> = links.iter().map(|l| l.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["uprobe_multi", "uretprobe_multi"], "{links:?}");
    for l in &links {
        assert_eq!(l.count, 4, "{l:?}");
        let mut cookies = l.cookies.clone();
        cookies.sort();
        cookies.dedup();
        assert_eq!(cookies.len(), 4, "one probename per function: {l:?}");
    }
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn glob_without_multi_links_counts_the_same() {
    if !need_root() {
        return;
    }
    let (run, links) = run_attached(GLOB_ENTRY_AND_RETURN, 5, &[("KTAP_NO_UPROBE_MULTI", "1")]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(sorted_probe_lines(&run), glob_counts(5));
    assert!(links.iter().all(|l| l.kind == "perf"), "{links:?}");
    assert_eq!(links.len(), 8, "{links:?}");
    assert!(run.stderr.contains("attaching 4 uprobes one at a time"), "{}", run.stderr);
}

/// The virtual address of `ktap_add3` in a running target.
fn function_address(pid: u32, binary: &Path) -> u64 {
    // `-lf -v`: `probe:BIN:ktap_add3`, then `file offset 0x...`.
    let text = ktap(&["-v", "--list-functions", binary.to_str().expect("utf8"), "ktap_add3"]).stdout;
    // (then, built with -g, its parameters).
    let off = text.lines().find_map(|l| l.trim().strip_prefix("file offset 0x")).and_then(|h| u64::from_str_radix(h, 16).ok()).expect("offset");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let canon = std::fs::canonicalize(binary).expect("canonical");
    for line in maps.lines().filter(|l| l.ends_with(canon.to_str().expect("utf8"))) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (range, map_off) = (f[0], u64::from_str_radix(f[2], 16).expect("offset"));
        let (start, end) = range.split_once('-').expect("range");
        let (start, end) = (u64::from_str_radix(start, 16).expect("hex"), u64::from_str_radix(end, 16).expect("hex"));
        if off >= map_off && off < map_off + (end - start) {
            return start + off - map_off;
        }
    }
    panic!("ktap_add3 not mapped in {pid}");
}

fn byte_at(pid: u32, addr: u64) -> u8 {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("mem");
    let mut b = [0u8];
    mem.read_exact_at(&mut b, addr).expect("read mem");
    b[0]
}

/// Ends ktap with `signal` while a uprobe is live in a running process, and
/// checks that the breakpoint is gone and tracefs holds no probe entry.
fn nothing_left_after(signal: i32) {
    // A private copy: probes other tests attach to the shared target would
    // put breakpoints into this process too.
    let t = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ktap-probe-target-sig{signal}"));
    std::fs::copy(target(), &t).expect("copy target");
    let mut victim = support::spawn_copied(Command::new(&t).args(["1", "loop"]).stdin(Stdio::null()).stdout(Stdio::null()));
    let pid = victim.id();
    std::thread::sleep(Duration::from_millis(100));
    let addr = function_address(pid, &t);
    let original = byte_at(pid, addr);
    assert_ne!(original, 0xcc);
    let script = format!("var n = 0\ntrace probe:{}:ktap_add3 {{ n += 1 }}\ntrace sdt:{}:guarded {{ n += 1 }}", t.display(), t.display());
    let mut child = ktap_command(&["-e", &script]).spawn().expect("ktap");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("Tracing"), "{banner}");
    assert_eq!(byte_at(pid, addr), 0xcc, "no breakpoint while attached");
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let run = finish(child, Duration::from_secs(30));
    if signal != libc::SIGKILL {
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    }
    // The kernel drops the probes as the last descriptor closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while byte_at(pid, addr) == 0xcc && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = byte_at(pid, addr);
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(after, original, "the breakpoint stayed in the traced process");
    let events = std::fs::read_to_string(UPROBE_EVENTS).unwrap_or_default();
    assert!(!events.lines().any(|l| l.contains("ktap-probe-target")), "left in uprobe_events: {events}");
}

#[test]
fn nothing_left_after_ctrl_c() {
    if !need_root() {
        return;
    }
    nothing_left_after(libc::SIGINT);
}

#[test]
fn nothing_left_after_sigterm() {
    if !need_root() {
        return;
    }
    nothing_left_after(libc::SIGTERM);
}

#[test]
fn nothing_left_after_sigkill() {
    if !need_root() {
        return;
    }
    nothing_left_after(libc::SIGKILL);
}

#[test]
fn command_is_traced_from_its_first_function() {
    // `main` runs before the target reads its start line: the probe must
    // already be there when the command execs.
    let script = "trace probe:{BIN}:main { print(\"main\", arg1) }";
    attach_lines(script);
    if !need_root() {
        return;
    }
    let run = run_target(script, 1);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(probe_lines(&run), ["main\t2"]);
}

#[test]
fn usdt_glob_raises_semaphores_through_a_multi_link() {
    let script = "trace sdt:{BIN}:* { printf(\"%s %d %d\\n\", probename, arg1, arg2) }";
    // One probe per argument layout.
    assert_eq!(attach_lines(script).len(), 2);
    if !need_root() {
        return;
    }
    let (run, links) = run_attached(script, 2, &[]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // The guarded marker fires only because the link raised its semaphore.
    assert!(run.stdout.contains("semaphore 1"), "{}", run.stdout);
    assert_eq!(sorted_probe_lines(&run), ["guarded 1 7", "guarded 2 7", "plain 1 -3", "plain 2 -3"]);
    // One program per argument layout, each on a multi link.
    assert!(links.iter().all(|l| l.kind == "uprobe_multi"), "{links:?}");
    assert_eq!(links.iter().map(|l| l.count).sum::<usize>(), 2, "{links:?}");
}

#[test]
fn argstr_in_uprobes_is_the_name_the_address_and_each_argument() {
    // ktap's form: the probe, the address, then name=value of each fetch
    // argument (registers; one read from memory is refused at its use).
    let script = "trace probe:{BIN}:ktap_add3 a=%di b=%si:s32 c=%dx { print(argstr) }\n\
         trace probe:{BIN}:ktap_neg%return r=$retval:s32 { print(argstr) }";
    assert_eq!(attach_lines(script).len(), 2);
    let e = compile_error("trace probe:{BIN}:ktap_pair x=+0(%di) { print(argstr) }");
    assert!(e.contains("`argstr` with fetch argument `x`, which is not a register, is not supported yet"), "{e}");
    if !need_root() {
        return;
    }
    let run = run_target(script, 2);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines = probe_lines(&run);
    lines.sort();
    assert_eq!(lines.len(), 4, "{lines:?}");
    // The address differs between runs (ASLR): everything else is exact.
    let shape = |l: &str| -> String {
        let (head, rest) = l.split_once(": (0x").unwrap_or((l, ""));
        let (addr, args) = rest.split_once(')').unwrap_or(("", rest));
        assert!(!addr.is_empty() && addr.chars().all(|c| c.is_ascii_hexdigit()), "{l}");
        format!("{head}: (ADDR){args}")
    };
    let got: Vec<String> = lines.iter().map(|l| shape(l)).collect();
    assert_eq!(got, ["ktap_add3: (ADDR) a=1 b=20 c=300", "ktap_add3: (ADDR) a=2 b=20 c=300", "ktap_neg: (ADDR) r=-5", "ktap_neg: (ADDR) r=-5"]);
}

#[test]
fn ksym_and_usym_name_the_function_an_address_lies_in() {
    // Userspace builtins: a kernel function's address from kallsyms, and
    // a user function's in a process waiting on its stdin (its ELF symbol
    // plus where the binary is mapped), each exact and five bytes in.
    use object::{Object, ObjectSymbol};
    let bad = ktap(&["-e", "print(usym(1, 0))"]);
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("bad argument #2 to 'usym' (process id expected"), "{}", bad.stderr);
    if !need_root() {
        return;
    }
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let vfs_read = kallsyms.lines().find_map(|l| l.strip_suffix(" T vfs_read")).and_then(|a| u64::from_str_radix(a, 16).ok()).expect("vfs_read in kallsyms");
    let target = support::c_program("target", &["-O1", "-g"]);
    let elf = std::fs::read(&target).expect("read target");
    let file = object::File::parse(&*elf).expect("an ELF file");
    let sym = file.symbols().find(|s| s.name() == Ok("ktap_add3")).expect("ktap_add3").address();
    let child = Command::new(&target).arg("1").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("start target");
    let pid = child.id();
    let child = support::Killed(child);
    // The lowest mapping of the binary holds its ELF header: the load base
    // (the file may show as deleted: another test may build it again).
    // Spawning returns while exec still maps it: wait for the mapping.
    let path = target.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut maps = String::new();
    while Instant::now() < deadline {
        maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
        if maps.contains(&path) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let base = maps
        .lines()
        .filter(|l| l.contains(&path))
        .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
        .min()
        .unwrap_or_else(|| panic!("{path} not mapped:\n{maps}"));
    let script = format!("print(ksym({vfs_read}), ksym({}), usym({}, {pid}), usym({}, {pid}))", vfs_read + 5, base + sym, base + sym + 3);
    let run = ktap(&["-e", &script]);
    drop(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "vfs_read\tvfs_read+0x5\tktap_add3\tktap_add3+0x3\n", "{}", run.stderr);
}
