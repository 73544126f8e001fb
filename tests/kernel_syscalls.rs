//! Syscall numbers against the live kernel. ktap turns syscall event names
//! into numbers (from the C library header, or its built-in table for
//! syscalls newer than the header) to ride `raw_syscalls`; a wrong number
//! would count another syscall under the event's name. These tests check
//! the numbers against the kernel itself: a classic tracepoint on
//! `sys_enter_NAME` fires only for NAME's number, and records it in
//! `__syscall_nr`. They need root and say so when they skip.

mod support;
use support::{ktap, ktap_with_input, need_root};

use ktap::frontend::lower::EventSource;
use ktap::runtime::tracefs::{builtin_syscall_nr, Tracefs};

/// Syscalls newer than older C library headers that the test calls
/// itself, with arguments every one of them refuses (tests/probes/
/// syscall_nrs.c). uprobe and uretprobe are never called: the kernel's own
/// trampolines make them (see `trampoline_syscalls`).
const CALLED: &[&str] = &[
    "cachestat",
    "fchmodat2",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "statmount",
    "listmount",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "mseal",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "open_tree_attr",
    "file_getattr",
    "file_setattr",
];

/// The half that needs no tracefs: ktap's built-in table numbers every
/// syscall these tests make (older headers lack them), the kernel's
/// trampoline syscalls too, each with its own number; and the programs
/// that make them build.
#[test]
fn the_builtin_table_numbers_the_newer_syscalls() {
    let mut nrs: Vec<u32> = CALLED
        .iter()
        .chain(&["uprobe", "uretprobe"])
        .map(|n| builtin_syscall_nr(n).unwrap_or_else(|| panic!("no built-in number for {n}")))
        .collect();
    let all = nrs.len();
    nrs.sort();
    nrs.dedup();
    assert_eq!(nrs.len(), all, "two syscalls share a number");
    assert_eq!(builtin_syscall_nr("no_such_syscall"), None);
    support::c_program("syscall_nrs", &["-O1"]);
    support::c_program("nop5", &["-O1"]);
}

/// The syscall names of this kernel's `syscalls:sys_enter_*` events.
fn syscall_events(t: &Tracefs) -> Vec<String> {
    let found = t.tracepoints("syscalls", "sys_enter_*").expect("list syscall events");
    found.into_iter().filter_map(|(_, e)| e.strip_prefix("sys_enter_").map(str::to_string)).collect()
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn every_syscall_event_has_a_number() {
    if !need_root() {
        return;
    }
    let t = Tracefs::open().expect("tracefs");
    let names = syscall_events(&t);
    assert!(names.len() > 300, "only {} syscall events", names.len());
    let missing: Vec<&String> = names.iter().filter(|n| t.syscall_nr(n).is_none()).collect();
    assert!(missing.is_empty(), "{} of {} syscall events have no number: {missing:?}", missing.len(), names.len());
    // So a wildcard over them rides raw_syscalls only, with no classic
    // tracepoint left.
    let run = ktap(&["--emit", "ir", "-e", "var s = {} trace syscalls:* { s[probename] += 1 }"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let probe = run.stdout.lines().find(|l| l.starts_with("probe ")).expect("a probe line");
    assert!(!probe.contains("tracepoint "), "classic tracepoints left: {probe}");
    assert_eq!(probe.matches("syscall sys_").count(), 2 * names.len(), "{probe}");
}

#[test]
fn numbers_match_the_kernel() {
    if !need_root() {
        return;
    }
    let t = Tracefs::open().expect("tracefs");
    let present = syscall_events(&t);
    let called: Vec<(&str, u32)> = CALLED
        .iter()
        .filter(|n| present.iter().any(|p| p == *n))
        .map(|n| (*n, t.syscall_nr(n).unwrap_or_else(|| panic!("no number for {n}"))))
        .collect();
    if called.len() < 4 {
        eprintln!("skipped: this kernel has only {} of the newer syscalls ({called:?})", called.len());
        return;
    }
    let events: Vec<String> = called.iter().map(|(n, _)| format!("syscalls:sys_enter_{n}")).collect();
    let prog = support::c_program("syscall_nrs", &["-O1"]);
    let mut args: Vec<String> = vec!["-q".into(), "-e".into(), String::new(), "--".into(), prog.display().to_string()];
    args.extend(called.iter().map(|(_, nr)| nr.to_string()));

    // A classic tracepoint fires for its own syscall only; the kernel
    // records the number it was called with.
    args[2] = format!("trace {} {{ printf(\"%s %d\\n\", probename, args.__syscall_nr) }}", events.join(", "));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = ktap(&argv);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut want: Vec<String> = called.iter().map(|(n, nr)| format!("sys_enter_{n} {nr}")).collect();
    want.sort();
    assert_eq!(sorted_lines(&run.stdout), want, "stderr: {}", run.stderr);

    // Without fields the probe rides raw_syscalls and finds the event by
    // ktap's number: the same events, each once.
    args[2] = format!("trace {} {{ printf(\"%s\\n\", probename) }}", events.join(", "));
    let ir = ktap(&["--emit", "ir", "-e", &args[2]]);
    let probe = ir.stdout.lines().find(|l| l.starts_with("probe ")).unwrap_or_default().to_string();
    assert_eq!(probe.matches("syscall sys_enter_").count(), called.len(), "does not ride raw_syscalls: {probe} {}", ir.stderr);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = ktap(&argv);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let mut want: Vec<String> = called.iter().map(|(n, _)| format!("sys_enter_{n}")).collect();
    want.sort();
    assert_eq!(sorted_lines(&run.stdout), want, "stderr: {}", run.stderr);
}

/// uretprobe and uprobe are made by the kernel's trampolines: returning
/// through a uretprobe, and entering an optimized uprobe (one on a 5-byte
/// nop, after its first hit).
#[test]
fn trampoline_syscalls() {
    if !need_root() {
        return;
    }
    let t = Tracefs::open().expect("tracefs");
    let present = syscall_events(&t);
    let prog = support::c_program("nop5", &["-O1"]);
    let bin = prog.display().to_string();
    // Every return goes through the trampoline; a uprobe is optimized on
    // its first hit, so later hits only make the syscall.
    for (name, probe, exact) in [("uretprobe", "ktap_nop5%return", true), ("uprobe", "ktap_nop5", false)] {
        if !present.iter().any(|p| p == name) {
            eprintln!("skipped {name}: this kernel has no such syscall");
            continue;
        }
        let nr = t.syscall_nr(name).unwrap_or_else(|| panic!("no number for {name}"));
        let script = format!(
            "var hits = 0 trace probe:{bin}:{probe} {{ hits += 1 }} \
             trace syscalls:sys_enter_{name} {{ printf(\"%s %d\\n\", probename, args.__syscall_nr) }} \
             trace_end {{ printf(\"hits %d\\n\", hits) }}"
        );
        let run = ktap_with_input(&["-q", "-e", &script, "--", &bin, "5"], "go\n");
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.last(), Some(&"hits 5"), "{name}: {lines:?} stderr: {}", run.stderr);
        let calls = &lines[..lines.len() - 1];
        let line = format!("sys_enter_{name} {nr}");
        assert!(calls.iter().all(|l| *l == line), "{name}: {lines:?}, want `{line}` lines");
        assert!(if exact { calls.len() == 5 } else { !calls.is_empty() }, "{name}: {} calls: {lines:?}", calls.len());
    }
}
