//! Faults a tracer meets on production machines, each injected and its
//! user-visible outcome checked: an open-file limit too low for a glob,
//! tracefs missing (mounted by ktap) or impossible to mount, no kernel BTF,
//! a command that cannot start, `-p` naming a process that ends at once or
//! is gone, SIGKILL of ktap in each phase (nothing may be left attached),
//! two ktaps tracing the same events at the same time, tables fuller than
//! their size, a small ring buffer fed from two CPUs, a traced binary
//! deleted or replaced while traced, and SIGKILL of ktap with an iterator
//! pinned (only the iterator stays). Needs root (and `unshare`, `prlimit`
//! from util-linux, `gcc`); says why when it skips.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{finish, need_root, Killed, PinDir, Run, KTAP};

/// Whether `program` runs here.
fn have(program: &str) -> bool {
    let found = Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        eprintln!("skipped: `{program}` is not installed");
    }
    found
}

/// ktap with `args` under `wrapper` (a command that execs what follows it).
fn wrapped(wrapper: &[&str], args: &[&str]) -> Run {
    let child = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(KTAP)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the wrapper");
    finish(child, Duration::from_secs(60))
}

/// A shell in a private mount namespace that runs `setup` (mounts seen by
/// nothing outside it) and then execs what follows.
fn in_mount_namespace(setup: &str) -> Vec<String> {
    ["unshare", "--mount", "--propagation", "private", "sh", "-c", &format!("{setup}; exec \"$@\""), "sh"].iter().map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn an_open_file_limit_too_low_for_a_glob_says_so_and_how_to_raise_it() {
    if !need_root() || !have("prlimit") {
        return;
    }
    // Each of sched:*'s raw tracepoints holds a descriptor: more than 20.
    let script = "var n = {}\ntrace sched:* { n[probename] += 1 }\ntick-100ms { exit() }";
    let low = wrapped(&["prlimit", "--nofile=20:20"], &["-q", "-e", script]);
    assert_eq!(low.code, Some(0), "the events that did attach are traced: {}", low.stderr);
    assert!(low.stderr.contains("events could not be attached and are not traced"), "{}", low.stderr);
    assert!(low.stderr.contains("Too many open files"), "the reason of each: {}", low.stderr);
    assert!(low.stderr.contains("the open-file limit is 20 (hard maximum 20): raise it (`ulimit -n`"), "{}", low.stderr);
    // A low soft limit under a high hard one is raised: everything attaches.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let soft_only = format!("--nofile=20:{}", limit.rlim_max);
    let soft = wrapped(&["prlimit", &soft_only], &["-q", "-e", script]);
    assert_eq!(soft.code, Some(0), "{}", soft.stderr);
    assert!(!soft.stderr.contains("could not be attached"), "{}", soft.stderr);
}

#[test]
fn tracefs_not_mounted_is_mounted_and_not_mountable_is_a_clear_error() {
    if !need_root() || !have("unshare") {
        return;
    }
    let script = "trace sched:sched_process_exit { print(\"exit\") exit() }";
    // Unmounted (in a namespace of its own): ktap mounts it and traces.
    let unmounted = in_mount_namespace("umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; true");
    let run = wrapped(&strs(&unmounted), &["-v", "-q", "-e", script, "--", "true"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("ktap: mounted tracefs at /sys/kernel/tracing"), "{}", run.stderr);
    assert_eq!(run.stdout, "exit\n", "{}", run.stderr);
    // Nowhere to mount it (a read-only, empty /sys/kernel): the reason and
    // the command to run, exit status 1.
    let nowhere = in_mount_namespace("mount -t tmpfs -o ro,size=64k none /sys/kernel");
    let run = wrapped(&strs(&nowhere), &["-q", "-e", script, "--", "true"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("tracefs is not mounted and mounting it at /sys/kernel/tracing failed"), "{}", run.stderr);
    assert!(run.stderr.contains("mount -t tracefs nodev /sys/kernel/tracing"), "{}", run.stderr);
}

#[test]
fn without_kernel_btf_typed_reads_are_refused_and_the_rest_works() {
    if !need_root() || !have("unshare") {
        return;
    }
    let no_btf = in_mount_namespace("mount -t tmpfs -o ro,size=64k none /sys/kernel/btf");
    let run = wrapped(&strs(&no_btf), &["-q", "-e", "trace syscalls:sys_enter_getppid { print(curtask.real_parent.pid) }"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("<command line>:1:"), "at the script's line: {}", run.stderr);
    assert!(run.stderr.contains("BTF"), "names what is missing: {}", run.stderr);
    // execname falls back to the helper that copies it; events still work.
    let run = wrapped(&strs(&no_btf), &["-q", "-e", "trace sched:sched_process_exec { print(execname) exit() }", "--", "true"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "true\n"), "{}", run.stderr);
}

#[test]
fn a_command_that_cannot_start_is_a_clear_error() {
    if !need_root() {
        return;
    }
    let run = support::ktap(&["-q", "-e", "trace sched:sched_switch { }", "--", "/nonexistent/ktap-no-such-command"]);
    // 127, as a shell says of a command it cannot find.
    assert_eq!(run.code, Some(127), "{}", run.stderr);
    assert!(run.stderr.contains("cannot run"), "{}", run.stderr);
    assert!(run.stderr.contains("/nonexistent/ktap-no-such-command"), "{}", run.stderr);
    assert!(!run.stderr.contains("Tracing"), "nothing was traced: {}", run.stderr);
}

#[test]
fn p_of_a_process_that_ends_at_once_or_is_gone() {
    if !need_root() {
        return;
    }
    // Ends shortly after ktap starts: tracing ends with it.
    let mut short = Command::new("sleep").arg("0.3").spawn().expect("sleep");
    let pid = short.id().to_string();
    let started = Instant::now();
    let run = support::ktap(&["-q", "-p", &pid, "-e", "var n = 0\ntrace sched:sched_switch { n += 1 }\ntrace_end { print(\"end\") }"]);
    let _ = short.wait();
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "end\n"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "ktap outlived its process by far");
    // Already gone (reaped): an error naming the pid.
    let mut gone = Command::new("true").spawn().expect("true");
    let pid = gone.id().to_string();
    gone.wait().expect("reap");
    let run = support::ktap(&["-q", "-p", &pid, "-e", "trace sched:sched_switch { }"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains(&pid), "{}", run.stderr);
}

/// A C program with `n` functions `f0`..`fN-1` that it calls in a loop
/// until killed: many uprobes to attach, in a binary of the test's own.
fn many_functions(n: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin = dir.join(format!("ktap-faults-{n}fns"));
    if bin.exists() {
        return bin;
    }
    let mut src = String::from("#include <unistd.h>\nvolatile long sink;\n");
    for i in 0..n {
        src.push_str(&format!("__attribute__((noinline)) void f{i}(long x) {{ sink += x + {i}; }}\n"));
    }
    src.push_str("int main(void) {\n    for (;;) {\n");
    for i in (0..n).step_by(97) {
        src.push_str(&format!("        f{i}(1);\n"));
    }
    src.push_str("        usleep(1000);\n    }\n}\n");
    let c = dir.join(format!("ktap-faults-{n}fns-{}.c", std::process::id()));
    std::fs::write(&c, src).expect("write C");
    let tmp = bin.with_extension(format!("tmp{}", std::process::id()));
    let st = Command::new("gcc").args(["-O0", "-o"]).arg(&tmp).arg(&c).status().expect("gcc runs");
    assert!(st.success(), "gcc failed");
    std::fs::rename(&tmp, &bin).expect("rename");
    let _ = std::fs::remove_file(&c);
    bin
}

/// BPF maps whose name starts with `prefix` (the kernel keeps 15 bytes).
fn maps_named(prefix: &str) -> usize {
    libbpf_rs::query::MapInfoIter::default().filter(|m| m.name.to_str().is_some_and(|n| n.starts_with(prefix))).count()
}

/// Waits (at most `limit`) until no map named `prefix` is left.
fn none_left(prefix: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if maps_named(prefix) == 0 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_in_any_phase_leaves_nothing_attached() {
    if !need_root() || !have("gcc") {
        return;
    }
    let bin = many_functions(2000);
    let mut victim = Killed(Command::new(&bin).stdin(Stdio::null()).spawn().expect("victim"));
    // The table's map is how this test finds what ktap made.
    const MAP: &str = "ktap_tbl_zkill";
    let script = |glob: &str| {
        format!(
            "var zkill = {{}}\ntrace probe:{}:{glob} {{ zkill[probename] += 1 }}\n\
             trace_end {{ var i = 0\n while (i < 30000000) {{ i += 1 }} }}",
            bin.display()
        )
    };
    assert!(none_left(MAP, Duration::from_secs(5)), "a map named {MAP} exists before the test");
    // One uprobe at a time (slow to attach and detach) and with a multi
    // link, killed while loading, attaching, tracing, in trace_end and
    // while detaching.
    for one_at_a_time in [true, false] {
        for phase in ["load", "attach", "trace", "trace_end", "detach"] {
            // The kernel takes tens of milliseconds to remove each uprobe
            // of a dead process one at a time: 11 of them there, all 2000
            // through one multi link.
            let script = script(if one_at_a_time { "f199*" } else { "f*" });
            let mut cmd = support::ktap_command(&["-e", &script]);
            if one_at_a_time {
                cmd.env("KTAP_NO_UPROBE_MULTI", "1");
            }
            eprintln!("SIGKILL while {phase} (one at a time: {one_at_a_time})");
            let mut child = cmd.spawn().expect("ktap");
            let pid = child.id() as i32;
            let kill = |sig| {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid, sig) };
            };
            match phase {
                "load" => std::thread::sleep(Duration::from_millis(3)),
                "attach" => {
                    // Attaching has begun once the programs are loaded: the
                    // table exists.
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while maps_named(MAP) == 0 && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                _ => {
                    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
                    let mut banner = String::new();
                    out.read_line(&mut banner).expect("banner");
                    assert!(banner.starts_with("Tracing"), "{phase}: {banner}");
                    match phase {
                        "trace_end" => {
                            kill(libc::SIGINT);
                            std::thread::sleep(Duration::from_millis(300));
                        }
                        "detach" => {
                            kill(libc::SIGINT);
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        _ => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
            kill(libc::SIGKILL);
            let _ = finish(child, Duration::from_secs(30));
            let clean = none_left(MAP, Duration::from_secs(30));
            assert!(clean, "SIGKILL while {phase} (one at a time: {one_at_a_time}) left ktap's maps in the kernel");
            let events = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default();
            assert!(!events.contains("ktap-faults"), "left in uprobe_events: {events}");
        }
    }
    // The victim still runs, undisturbed by breakpoints left behind.
    assert!(victim.0.try_wait().expect("victim").is_none(), "the traced program died");
}

#[test]
fn two_ktaps_on_the_same_events_both_count_exactly() {
    if !need_root() {
        return;
    }
    const NAME: &str = "zk-twice";
    let (threads, count) = (2u64, 50_000u64);
    let mut workload = Command::new(support::workload())
        .args([threads.to_string(), count.to_string(), NAME.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("workload");
    let script = format!("var n = 0\ntrace syscalls:sys_enter_getppid /execname == \"{NAME}\"/ {{ n += 1 }}\ntrace_end {{ print(n) }}");
    let mut tracers = Vec::new();
    for _ in 0..2 {
        let mut child = support::ktap_command(&["-e", &script]).spawn().expect("ktap");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        out.read_line(&mut banner).expect("banner");
        assert!(banner.starts_with("Tracing"), "{banner}");
        tracers.push((child, out));
    }
    workload.stdin.take().expect("stdin").write_all(b"go\n").expect("go");
    assert!(workload.wait().expect("workload").success());
    for (child, mut out) in tracers {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let mut run = finish(child, Duration::from_secs(30));
        std::io::Read::read_to_string(&mut out, &mut run.stdout).expect("output");
        assert_eq!((run.code, run.stdout.trim()), (Some(0), (threads * count).to_string().as_str()), "{}", run.stderr);
    }
}

#[test]
fn a_full_table_counts_its_failed_updates_and_keeps_the_keys_that_fit() {
    // 1,500 events over 150 keys (each 10 times, in order) into tables of
    // 100 entries: keys 0..99 fit, the 500 updates of keys 100..149 fail
    // in each table. `t` (only `+=`) is a per-CPU map, `s` (stored to) a
    // shared one: both ways of updating a table.
    let script = "var t = table.new(0, 100)\nvar s = table.new(0, 100)\nvar i = 0\n\
                  trace syscalls:sys_enter_getppid /pid == {PID}/ { t[i % 150] += 1 s[i % 150] = i i += 1 }\n\
                  trace_end {\n\
                    var n, bad = 0, 0\n for (k, v in pairs(t)) { n = n + 1 if (k >= 100 || v != 10) { bad = bad + 1 } }\n print(\"t\", n, bad)\n\
                    n, bad = 0, 0\n for (k, v in pairs(s)) { n = n + 1 if (k >= 100 || v != k + 1350) { bad = bad + 1 } }\n print(\"s\", n, bad)\n}";
    support::compiles(script);
    if !need_root() {
        return;
    }
    let run = support::traced(script, 1, 1500, true);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Every key that fit, with its exact count (or last value); no other.
    assert_eq!(run.stdout, "t\t100\t0\ns\t100\t0\n", "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "ktap: warning: 1000 table updates failed: tables `t` (100 entries), `s` (100 entries) are full: size them with table.new(narr, nrec)"
        ),
        "{}",
        run.stderr
    );
}

/// `ktap_step`, in a program that calls it N times for each line `N` on
/// its input and then answers `done N`; `variant` moves it (a function
/// before it), so two builds are two different files.
fn stepper(variant: u32) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let bin = dir.join(format!("ktap-faults-step{variant}"));
    if bin.exists() {
        return bin;
    }
    let mut src = String::from("#include <stdio.h>\n#include <stdlib.h>\nvolatile long sink;\n");
    for i in 0..variant {
        src.push_str(&format!("__attribute__((noinline)) void pad{i}(long x) {{ sink += x * {i}; }}\n"));
    }
    src.push_str(
        "__attribute__((noinline)) void ktap_step(long x) { sink += x; }\n\
         int main(void) {\n    char line[32];\n    while (fgets(line, sizeof line, stdin)) {\n\
         \x20       long n = atol(line);\n        for (long i = 0; i < n; i++) ktap_step(i);\n\
         \x20       printf(\"done %ld\\n\", n);\n        fflush(stdout);\n    }\n    return 0;\n}\n",
    );
    let c = dir.join(format!("ktap-faults-step{variant}-{}.c", std::process::id()));
    std::fs::write(&c, src).expect("write C");
    let tmp = bin.with_extension(format!("tmp{}", std::process::id()));
    let st = Command::new("gcc").args(["-O1", "-o"]).arg(&tmp).arg(&c).status().expect("gcc runs");
    assert!(st.success(), "gcc failed");
    std::fs::rename(&tmp, &bin).expect("rename");
    let _ = std::fs::remove_file(&c);
    bin
}

/// A running stepper: `step(n)` makes it call `ktap_step` n times.
struct Stepper {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Stepper {
    fn start(bin: &std::path::Path) -> Stepper {
        let mut child = support::spawn_copied(Command::new(bin).stdin(Stdio::piped()).stdout(Stdio::piped()));
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Stepper { child, out }
    }

    fn step(&mut self, n: u32) {
        writeln!(self.child.stdin.as_mut().expect("stdin"), "{n}").expect("write");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read");
        assert_eq!(line, format!("done {n}\n"));
    }
}

impl Drop for Stepper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_traced_binary_deleted_or_replaced_keeps_being_traced_and_nothing_is_left() {
    if !need_root() || !have("gcc") {
        return;
    }
    let (first, other) = (stepper(0), stepper(3));
    // The table's map is how this test finds what ktap made.
    const MAP: &str = "ktap_tbl_zstep";
    for one_at_a_time in [false, true] {
        for replaced in [false, true] {
            let case = format!("{} (one at a time: {one_at_a_time})", if replaced { "replaced" } else { "deleted" });
            eprintln!("the traced binary {case}");
            // A copy of its own, for the test to delete.
            let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ktap-faults-doomed-{}", std::process::id()));
            std::fs::copy(&first, &bin).expect("copy");
            let mut victim = Stepper::start(&bin);
            let script = format!(
                "var zstep = {{}}\nvar zret = {{}}\n\
                 trace probe:{0}:ktap_step {{ zstep[pid] += 1 }}\ntrace probe:{0}:ktap_step%return {{ zret[pid] += 1 }}\n\
                 trace_end {{ for (p, n in pairs(zstep)) {{ print(\"entry\", p, n) }} for (p, n in pairs(zret)) {{ print(\"return\", p, n) }} }}",
                bin.display()
            );
            let mut cmd = support::ktap_command(&["-e", &script]);
            if one_at_a_time {
                cmd.env("KTAP_NO_UPROBE_MULTI", "1");
            }
            let mut child = cmd.spawn().expect("ktap");
            let mut out = BufReader::new(child.stdout.take().expect("stdout"));
            let mut banner = String::new();
            out.read_line(&mut banner).expect("banner");
            assert!(banner.starts_with("Tracing"), "{case}: {banner}");
            victim.step(1000);
            std::fs::remove_file(&bin).expect("delete the traced binary");
            if replaced {
                // Another program at the same path (renamed into place, as
                // package managers do): another file, which the probes,
                // placed in the first one, do not see.
                let tmp = bin.with_extension("new");
                std::fs::copy(&other, &tmp).expect("copy");
                std::fs::rename(&tmp, &bin).expect("replace");
                Stepper::start(&bin).step(500);
            }
            victim.step(1000);
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let mut run = finish(child, Duration::from_secs(30));
            std::io::Read::read_to_string(&mut out, &mut run.stdout).expect("output");
            let pid = victim.child.id();
            let mut lines: Vec<&str> = run.stdout.lines().collect();
            lines.sort();
            assert_eq!(run.code, Some(0), "{case}: {}", run.stderr);
            assert_eq!(lines, [format!("entry\t{pid}\t2000"), format!("return\t{pid}\t2000")], "{case}: {}", run.stderr);
            drop(victim);
            let _ = std::fs::remove_file(&bin);
            assert!(none_left(MAP, Duration::from_secs(10)), "{case}: ktap's maps are left in the kernel");
            let events = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default();
            assert!(!events.contains("ktap-faults"), "{case}: left in uprobe_events: {events}");
        }
    }
}

/// The BPF objects (kind, id) a process holds descriptors of, from
/// /proc/PID/fdinfo: `prog`, `map` and `link` ids.
fn bpf_objects_of(pid: u32) -> Vec<(&'static str, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("fdinfo").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u32>().ok());
        // A link's fdinfo names its program too: the link is what it is.
        if let Some(id) = field("link_id:") {
            found.push(("link", id));
        } else if let Some(id) = field("prog_id:") {
            found.push(("prog", id));
        } else if let Some(id) = field("map_id:") {
            found.push(("map", id));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Which of `objects` still exist in the kernel.
fn alive(objects: &[(&'static str, u32)]) -> Vec<(&'static str, u32)> {
    use libbpf_rs::query::{LinkInfoIter, MapInfoIter, ProgInfoIter};
    let progs: Vec<u32> = ProgInfoIter::default().map(|p| p.id).collect();
    let maps: Vec<u32> = MapInfoIter::default().map(|m| m.id).collect();
    let links: Vec<u32> = LinkInfoIter::default().map(|l| l.id).collect();
    let exists = |(kind, id): &(&str, u32)| match *kind {
        "prog" => progs.contains(id),
        "map" => maps.contains(id),
        _ => links.contains(id),
    };
    objects.iter().filter(|o| exists(o)).copied().collect()
}

/// Waits (at most `limit`) until what is alive of `objects` is `want`;
/// what is alive then.
fn alive_settles(objects: &[(&'static str, u32)], want: &[(&'static str, u32)], limit: Duration) -> Vec<(&'static str, u32)> {
    let deadline = Instant::now() + limit;
    loop {
        let now = alive(objects);
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_with_a_pinned_iterator_keeps_only_the_iterator() {
    if !need_root() || !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        eprintln!("skipped unless root with kernel BTF");
        return;
    }
    let pinned = PinDir(PathBuf::from(format!("/sys/fs/bpf/ktap-faults-{}", std::process::id())));
    let dir = pinned.0.to_string_lossy().into_owned();
    // An iterator to pin, and probes of other kinds traced meanwhile.
    let script = "var zpin = {}\n\
                  trace iter:task /args.task.pid == args.task.tgid/ { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }\n\
                  trace sched:sched_switch { zpin[cpu] += 1 }\n\
                  trace syscalls:sys_enter_getppid { zpin[-1] += 1 }\n\
                  profile-1ms { zpin[-2] += 1 }";
    let mut ktap = Killed(support::ktap_command(&["--pin", &dir, "-e", script]).spawn().expect("ktap"));
    let mut out = BufReader::new(ktap.0.stdout.take().expect("stdout"));
    let mut banner = String::new();
    out.read_line(&mut banner).expect("banner");
    assert!(banner.starts_with("Tracing"), "{banner}");
    let held = bpf_objects_of(ktap.0.id());
    assert!(held.iter().filter(|(k, _)| *k == "link").count() >= 3, "the probes' links: {held:?}");
    // The pinned iterator: its link, its program and the maps it uses.
    let file = pinned.0.join("task");
    let link = libbpf_rs::query::LinkInfoIter::default()
        .find(|l| matches!(l.info, libbpf_rs::query::LinkTypeInfo::Iter(_)) && held.iter().any(|&(k, id)| k == "prog" && id == l.prog_id))
        .expect("the pinned iterator's link");
    let with_maps = libbpf_rs::query::ProgInfoQueryOptions::default().include_map_ids(true);
    let prog = libbpf_rs::query::ProgInfoIter::with_query_opts(with_maps).find(|p| p.id == link.prog_id).expect("its program");
    let mut kept: Vec<(&'static str, u32)> = vec![("link", link.id), ("prog", prog.id)];
    kept.extend(prog.map_ids.iter().map(|&id| ("map", id)));
    kept.sort();
    let mut all = held.clone();
    all.extend(kept.iter().copied());
    all.sort();
    all.dedup();
    assert!(maps_named("ktap_tbl_zpin") == 1, "the other probes' table exists");

    ktap.0.kill().expect("SIGKILL");
    ktap.0.wait().expect("reap");
    // Only the iterator is left; the other probes' links, programs and
    // table went with ktap.
    assert_eq!(alive_settles(&all, &kept, Duration::from_secs(10)), kept, "held by ktap: {held:?}");
    assert!(none_left("ktap_tbl_zpin", Duration::from_secs(5)), "the table outlived ktap");
    let names: Vec<String> = std::fs::read_dir(&pinned.0).expect("pin dir").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["task"], "only the iterator is pinned");
    // The file still runs the iterator: this test's own process is there.
    let text = std::fs::read_to_string(&file).expect("cat the pinned iterator");
    let me = format!("{} ", std::process::id());
    assert!(text.lines().any(|l| l.starts_with(&me)), "{me}missing from:\n{text}");
    // --unpin removes it, and with it the last of ktap's objects.
    let un = support::ktap(&["--unpin", &dir]);
    assert_eq!((un.code, un.stdout.clone()), (Some(0), format!("unpinned {}\n", file.display())), "{}", un.stderr);
    assert!(!pinned.0.exists(), "--unpin leaves {dir}");
    assert_eq!(alive_settles(&all, &[], Duration::from_secs(10)), [], "left after --unpin");
}

#[test]
fn a_full_ring_buffer_fed_from_two_cpus_counts_every_loss() {
    // tests/kernel.rs and kernel_output.rs check printed + lost == events
    // for one thread; here two threads on two CPUs reserve in the same
    // small ring at once, and every event must still be printed or counted.
    let script = "trace syscalls:sys_enter_getppid /pid == {PID}/ { printf(\"%d\\n\", tid) }";
    support::compiles(script);
    if !need_root() {
        return;
    }
    let (threads, count) = (2u32, 50_000u64);
    let run = support::traced_with(&["-b", "8K"], &[], script, threads, count, true);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lost = support::lost_events(&run.stderr);
    let printed = run.stdout.lines().count() as u64;
    // (Which thread's records the full ring takes is up to the timing:
    // only the sum is certain.)
    assert!(lost > 0 && printed > 0, "lost {lost}, printed {printed}");
    assert_eq!(printed + lost, u64::from(threads) * count, "lost {lost}, printed {printed}");
}
