//! Tapsets as users meet them: the search path's order (`-I`, then
//! `KTAP_PATH`, then the shipped ones), namespaces, tapsets using tapsets,
//! the errors (each with its tapset file and line and the script line that
//! pulled the tapset in), every shipped tapset function in userspace and
//! the probe-safe ones in a probe, and one function used on both sides.
//! Tests that attach need root and say so when they skip.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{finish, need_root, Run, KTAP};

/// A fresh directory under the test target directory holding `files`
/// (name, text).
fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tapsets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a tapset directory");
    for (f, text) in files {
        std::fs::write(d.join(f), text).expect("write a tapset");
    }
    d
}

/// ktap with `args` and `KTAP_PATH` as given (unset when `None`).
fn run(args: &[&str], ktap_path: Option<&str>) -> Run {
    let mut c = std::process::Command::new(KTAP);
    c.args(args).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    match ktap_path {
        Some(p) => c.env("KTAP_PATH", p),
        None => c.env_remove("KTAP_PATH"),
    };
    c.env("NO_COLOR", "1");
    finish(c.spawn().expect("start ktap"), Duration::from_secs(60))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn the_search_path_is_include_then_ktap_path_then_shipped() {
    let who = |w: &str| format!("function who() {{ return \"{w}\" }}\nfunction name(n) {{ return \"{w}\" }}\n");
    let a = dir("order-a", &[("t.kp", &who("a")), ("errno.kp", &who("a"))]);
    let b = dir("order-b", &[("t.kp", &who("b")), ("errno.kp", &who("b")), ("u.kp", &who("b"))]);
    let c = dir("order-c", &[("u.kp", &who("c"))]);
    let script = "print(t.who(), errno.name(2), u.who())";
    let path = format!("{}:{}", s(&b), s(&c));
    let r = run(&["-I", s(&a), "-e", script], Some(&path));
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "a\ta\tb\n"), "{}", r.stderr);
    let r = run(&["-e", script], Some(&path));
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "b\tb\tb\n"), "{}", r.stderr);
    // -I is repeatable, in order; without either, the shipped errno.
    let r = run(&["-I", s(&c), "-I", s(&a), "-e", script], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "a\ta\tc\n"), "{}", r.stderr);
    let r = run(&["-e", "print(errno.name(2))"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "ENOENT\n"), "{}", r.stderr);
}

#[test]
fn namespaces_keep_names_apart_and_tapsets_use_tapsets() {
    let d = dir(
        "ns",
        &[
            ("one.kp", "var N = 1\nfunction f(x) { return x + N + helper() }\nfunction helper() { return 100 }\n"),
            ("two.kp", "var N = 2\nfunction f(x) { return one.f(x) * N }\n"),
        ],
    );
    let script = "function f(x) { return -x }\nfunction helper() { return 7 }\nprint(f(1), one.f(1), two.f(1), one.N, two.N, helper())";
    let r = run(&["-I", s(&d), "-e", script], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "-1\t102\t204\t1\t2\t7\n"), "{}", r.stderr);
}

#[test]
fn errors_show_the_tapset_line_and_the_script_line_that_used_it() {
    let d = dir(
        "errors",
        &[
            ("bad.kp", "# a comment\nfunction f(x) {\n    return x + undefined_name\n}\n"),
            ("broken.kp", "function f(x) {\n    return (x +\n}\n"),
            ("mid.kp", "function f(x) { return bad.f(x) }\n"),
            ("ring1.kp", "function f() { return ring2.f() }\n"),
            ("ring2.kp", "function f() { return ring1.f() }\n"),
            ("probe.kp", "function f() { return 1 }\ntrace *:* { print(1) }\n"),
            ("good.kp", "var LIMIT = 3\nfunction twice(x) { return 2 * x }\n"),
        ],
    );
    let inc = s(&d);
    let check = |script: &str, want: &[&str]| {
        let r = run(&["-I", inc, "-e", script], None);
        assert_eq!(r.code, Some(1), "{script}: {}", r.stderr);
        for w in want {
            assert!(r.stderr.contains(w), "{script}: no {w:?} in:\n{}", r.stderr);
        }
    };
    let bad = format!("{inc}/bad.kp:3:16");
    check("\nprint(bad.f(1))", &["`undefined_name` is not defined in tapset `bad`", &bad, "tapset `bad` (", "is used at <command line>:2:7"]);
    // Through another tapset: both steps back to the script.
    check("print(mid.f(1))", &[&bad, &format!("tapset `bad` ({inc}/bad.kp) is used at {inc}/mid.kp:1:24"), "tapset `mid` (", "is used at <command line>:1:7"]);
    check("print(broken.f(1))", &[&format!("{inc}/broken.kp:3:1"), "is used at <command line>:1:7"]);
    check("print(ring1.f())", &["tapsets use each other in a cycle: ring1 -> ring2 -> ring1"]);
    check("print(probe.f())", &["tapset `probe` may hold only functions and constants", &format!("{inc}/probe.kp:2:1")]);
    check("print(god.twice(1))", &["unknown tapset `god`", "did you mean `good.twice`?", "<command line>:1:7"]);
    check("print(good.twise(1))", &["tapset `good` has no function `twise`", "did you mean `good.twice`?"]);
    check("print(good.LIMT)", &["tapset `good` has no constant `LIMT`", "did you mean `good.LIMIT`?"]);
    check("var good = 1\nprint(good.twice(1))", &["`good` is both a name of this script and a tapset", "<command line>:1:5"]);
    // Only the tapsets a script uses are read: the broken ones beside
    // good.kp do not matter; a tapset function is a value too.
    let r = run(&["-I", inc, "-e", "var f = good.twice\nprint(good.twice(good.LIMIT), f(2))"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "6\t4\n"), "{}", r.stderr);
    check("good = {}\nprint(good.twice(1))", &["`good` is both a name of this script and a tapset", "<command line>:1:1"]);
    // A global the script assigns without declaring it is no tapset.
    let r = run(&["-I", inc, "-e", "function f() { t = {} t.g = function () { return 5 } }\nf() print(t.g())"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "5\n"), "{}", r.stderr);
}

/// Every shipped function in userspace, with what it answers.
#[test]
fn every_shipped_function_works_in_userspace() {
    let cases: &[(&str, &str)] = &[
        ("errno.name(2)", "ENOENT"),
        ("errno.name(-13)", "EACCES"),
        ("errno.name(9999)", "unknown"),
        ("errno.message(-2)", "No such file or directory"),
        ("errno.message(110)", "Connection timed out"),
        ("errno.number(\"EAGAIN\")", "11"),
        ("errno.number(\"ENOPE\")", "-1"),
        ("errno.EWOULDBLOCK", "11"),
        ("signal.name(9)", "SIGKILL"),
        ("signal.name(40)", "SIGRT"),
        ("signal.name(99)", "unknown"),
        ("signal.name_rt(40)", "SIGRTMIN+6"),
        ("signal.name_rt(15)", "SIGTERM"),
        ("signal.number(\"SIGCHLD\")", "17"),
        ("signal.SIGUSR1", "10"),
        ("syscall.name(0)", "read"),
        ("syscall.name(257)", "openat"),
        ("syscall.name(-1)", "unknown"),
        ("syscall.number(\"sched_getaffinity\")", "204"),
        ("syscall.number(\"nope\")", "-1"),
        ("net.ntohs(0x5000)", "80"),
        ("net.ntohl(0x0100007f)", "2130706433"),
        ("net.family(10)", "AF_INET6"),
        ("net.AF_INET", "2"),
        ("net.ip4_str(0x0100007f)", "127.0.0.1"),
        ("net.ip4_str(-1)", "255.255.255.255"),
        ("net.ip6_str(0, 0x0100000000000000)", "::1"),
        ("net.ip6_str(0xb80d0120, 0x0100000000000000)", "2001:db8::1"),
        ("net.ip6_str(0, 0x0100007fffff0000)", "::ffff:127.0.0.1"),
        ("net.ip6_str(-1, -1)", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("net.ip6_str(0x00000100000080fe, 0)", "fe80:0:1::"),
        ("net.hex(48879)", "beef"),
        ("human.bytes(512)", "512 B"),
        ("human.bytes(1536)", "1.5 KiB"),
        ("human.bytes(5 * 1048576 + 104858)", "5.1 MiB"),
        ("human.bytes(3 * 1073741824)", "3.0 GiB"),
        ("human.bytes(-2048)", "-2.0 KiB"),
        ("human.duration(999)", "999 ns"),
        ("human.duration(1500)", "1.500 us"),
        ("human.duration(12034000)", "12.034 ms"),
        ("human.duration(2500000000)", "2.500 s"),
        ("human.duration(90000000000)", "1 min 30 s"),
        ("human.duration(7260000000000)", "2 h 1 min"),
        ("sched.state(0)", "R"),
        ("sched.state(1)", "S"),
        ("sched.state(2)", "D"),
        ("sched.state(4)", "T"),
        ("sched.state(8)", "t"),
        ("sched.state(16)", "X"),
        ("sched.state(32)", "Z"),
        ("sched.state(64)", "P"),
        ("sched.state(128)", "I"),
        ("sched.state(1026)", "I"),
        ("sched.state(256)", "R+"),
        ("sched.state_name(2)", "disk sleep"),
        ("sched.state_name(256)", "preempted"),
        ("sched.index(32)", "6"),
        ("sched.TASK_UNINTERRUPTIBLE", "2"),
    ];
    let script: String = cases.iter().map(|(e, _)| format!("print({e})\n")).collect();
    let r = run(&["-e", &script], None);
    let want: String = cases.iter().map(|(_, w)| format!("{w}\n")).collect();
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), want.as_str()), "{}", r.stderr);
    // And every function of every shipped tapset is among the cases.
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/tapsets");
    for entry in std::fs::read_dir(&shipped).expect("scripts/tapsets") {
        let path = entry.expect("entry").path();
        let ns = path.file_stem().and_then(|n| n.to_str()).expect("a name").to_string();
        let text = std::fs::read_to_string(&path).expect("a tapset");
        for f in text.lines().filter_map(|l| l.strip_prefix("function ")).filter_map(|l| l.split('(').next()) {
            // Helpers the exported functions call are exercised through them.
            let helper = matches!((ns.as_str(), f), ("net", "byte" | "groups") | ("human", "scaled" | "zeros"));
            assert!(helper || cases.iter().any(|(e, _)| e.starts_with(&format!("{ns}.{f}("))), "{ns}.{f} has no case");
        }
    }
}

/// The functions that work in probes, in a probe; the same function in a
/// probe and in trace_end.
#[test]
fn shipped_functions_work_in_probes_and_userspace_alike() {
    if !need_root() {
        return;
    }
    let script = r#"
trace syscalls:sys_enter_openat {
    printf("%s %s %s|%s %d|%s|%d %d %s|%s %s|%d\n", syscall.name(arg0), errno.name(-2), errno.message(2), signal.name(9),
        signal.number("SIGTERM"), syscall.name(257), net.ntohs(0x5000), net.ntohl(0x0100007f),
        net.family(10), sched.state(256), sched.state_name(2), errno.number("ENOENT") + errno.EPERM)
    exit()
}
trace_end { print(syscall.name(257), errno.name(-2), sched.state(256)) }
"#;
    let r = run(&["-q", "-e", script, "--", "cat", "/dev/null"], None);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "openat ENOENT No such file or directory|SIGKILL 15|openat|80 2130706433 AF_INET6|R+ disk sleep|3\nopenat\tENOENT\tR+\n"),
        "{}",
        r.stderr
    );
    // syscall.number compares with every name (about 11,000 instructions):
    // a probe of its own.
    let script = "trace syscalls:sys_enter_openat { printf(\"%d %d\\n\", syscall.number(\"openat\"), syscall.number(\"nope\")) exit() }";
    let r = run(&["-q", "-e", script, "--", "cat", "/dev/null"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "257 -1\n"), "{}", r.stderr);
}

/// A function that builds text from numbers runs in probes and in
/// userspace with the same answer; one a probe cannot run (a table
/// literal, an unbounded loop) is the usual error, in the tapset, with
/// the line that called it.
#[test]
fn tapset_functions_in_probes_or_a_clear_error() {
    if !need_root() {
        return;
    }
    let r = run(&["-q", "-e", "trace syscalls:sys_enter_openat {\n    print(net.ip4_str(0x0101a8c0))\n    exit()\n}", "--", "cat", "/dev/null"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "192.168.1.1\n"), "{}", r.stderr);
    let r = run(&["-e", "print(net.ip4_str(0x0101a8c0))"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "192.168.1.1\n"), "{}", r.stderr);
    let r = run(&["-e", "trace syscalls:sys_enter_openat {\n    print(net.hex(arg1))\n}"], None);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("a `while` loop in a probe has no bound the compiler can see"), "{}", r.stderr);
    assert!(r.stderr.contains("/net.kp:"), "{}", r.stderr);
    assert!(r.stderr.contains("is used at <command line>:2:11"), "{}", r.stderr);
    assert!(r.stderr.contains("<command line>:2:11") && r.stderr.contains("in this call of `net.hex`"), "{}", r.stderr);
}

/// A tapset of one's own, using a shipped one, with a constant: inlined
/// into a probe and called in trace_end, the same answers.
#[test]
fn an_own_tapset_using_another_runs_in_a_probe_and_in_userspace() {
    let d = dir(
        "own",
        &[("outcome.kp", "var OK = \"ok\"\n# The result of a syscall, in words.\nfunction of(ret) {\n    if (ret < 0) { return errno.name(ret) }\n    return OK\n}\n")],
    );
    let script = "var last = \"\"\ntrace syscalls:sys_exit_openat /ret < 0/ { last = outcome.of(arg1) }\ntrace_end { print(last, outcome.of(-13), outcome.of(3), outcome.OK) }";
    let inc = s(&d);
    if !need_root() {
        return;
    }
    let r = run(&["-I", inc, "--emit", "ir", "-e", script], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("ENOENT"), "errno.name is inlined into the probe: {}", r.stdout);
    // The listing shows each tapset line with its file.
    let r = run(&["-I", inc, "--emit", "bpf", "-e", script], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("; {inc}/outcome.kp:4: if (ret < 0) {{ return errno.name(ret) }}")), "{}", r.stdout);
    assert!(r.stdout.contains("; 2: trace syscalls:sys_exit_openat"), "{}", r.stdout);
    let r = run(&["-q", "-I", inc, "-e", script, "--", "cat", "/nonexistent"], None);
    assert_eq!((r.code, r.stdout.as_str()), (Some(1), "ENOENT\tEACCES\tok\tok\n"), "{}", r.stderr);
}
