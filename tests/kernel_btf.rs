//! Kernel types in the live kernel: `btf:` (tp_btf) probes read their
//! typed arguments and member chains, `curtask` reads the current task,
//! with exact values from workloads whose ids they print. Compile halves
//! run without root; the rest needs root and the kernel's BTF, and says
//! why it skips.

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::{compiles, ktap, need_root, traced};

/// Builds (once per process) the ping-pong workload of tests/btf/.
fn pingpong() -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/btf/pingpong.c");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ktap-pingpong");
    let st = Command::new("gcc").args(["-O1", "-pthread", "-o"]).arg(&out).arg(&src).status().expect("run gcc");
    assert!(st.success(), "gcc failed on {}", src.display());
    out
}

fn have_btf() -> bool {
    if std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    eprintln!("skipped: /sys/kernel/btf/vmlinux is missing");
    false
}

/// "pid P ppid Q ping T1 pong T2" as numbers.
fn ids(line: &str) -> Vec<i64> {
    line.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

#[test]
fn sched_switch_sees_two_threads_handing_the_cpu_over() {
    // Pinned to one CPU, each round switches ping -> pong and back; the
    // probe runs only for the workload (`-- CMD`), where the current task
    // is the one switched out.
    let script = "var by_pid = {}\nvar by_name = {}\nvar parent = 0\nvar odd = 0\n\
        trace btf:sched_switch /(args.prev.comm == \"ping\" || args.prev.comm == \"pong\") && (args.next->comm == \"ping\" || args.next->comm == \"pong\")/ {\n\
          by_pid[args.prev.pid * 10000000 + args.next.pid] += 1\n\
          by_name[args.prev.comm .. \">\" .. args.next.comm] += 1\n\
          parent = curtask.real_parent.tgid\n\
          odd += (curtask.pid != args.prev.pid) + (curtask.tgid != pid) + (curtask.pid != tid) + (arg1 != curtask)\n\
        }\n\
        trace_end { for (k, v in pairs(by_pid)) { print(k, v >= 500, v <= 1003) } for (k, v in pairs(by_name)) { print(k, v >= 500) } print(\"parent\", parent) print(\"odd\", odd) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let bin = pingpong();
    let bin = bin.to_str().expect("utf-8 path");
    let run = ktap(&["-q", "-e", script, "--", "taskset", "-c", "1", bin, "1000"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("pid ")).expect("the workload's ids");
    let id = ids(lines.remove(first));
    let (ppid, ping, pong) = (id[1], id[2], id[3]);
    lines.sort_unstable();
    let mut want = vec![
        format!("{}\ttrue\ttrue", ping * 10_000_000 + pong),
        format!("{}\ttrue\ttrue", pong * 10_000_000 + ping),
        "ping>pong\ttrue".to_string(),
        "pong>ping\ttrue".to_string(),
        format!("parent\t{ppid}"),
        "odd\t0".to_string(),
    ];
    want.sort_unstable();
    assert_eq!(lines, want, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
}

#[test]
fn curtask_in_a_classic_tracepoint() {
    // The current task of a syscall event: its ids are the helpers', its
    // parent the test process that started the workload, and its name the
    // workload's.
    let script = "var bad = 0\nvar n = 0\nvar parent = 0\nvar name = \"\"\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ {\n\
          bad += (curtask.tgid != pid) + (curtask->pid != tid)\n\
          n += 1\n\
          parent = curtask.real_parent.tgid\n\
          name = curtask.comm\n\
        }\n\
        trace_end { print(n, bad, parent, name) }";
    compiles(script);
    if !need_root() || !have_btf() {
        return;
    }
    let run = traced(script, 2, 500, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, format!("1000\t0\t{}\tktap-workload\n", std::process::id()), "stderr: {}", run.stderr);
}

#[test]
fn typing_errors_name_the_members() {
    let run = ktap(&["-e", "trace btf:sched_switch { print(args.prev.pdi) }"]);
    if !have_btf() {
        return;
    }
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("`struct task_struct` has no member `pdi`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `pid`"), "{}", run.stderr);
    let run = ktap(&["-e", "trace btf:sched_swich { }"]);
    assert!(run.stderr.contains("no BTF tracepoint named `sched_swich`"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `btf:sched_switch`"), "{}", run.stderr);
}
