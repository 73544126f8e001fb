//! The rest of the language in probe bodies (issue 12), through
//! `ktap::compile` against the fake kernel, with exact diagnostics:
//! unreachable code, warnings that used to be errors, one error per
//! cause. No root; the kernel runs these in tests/kernel.rs.

mod support;

/// Every diagnostic of `src`, rendered as the user sees it, and whether
/// it compiled.
fn rendered(src: &str) -> (bool, String) {
    match ktap::compile(src, support::fake_kernel()) {
        Ok(c) => (true, ktap::frontend::diag::render("t.kp", src, &c.warnings, false)),
        Err(ktap::CompileError::Diagnostics(d)) => (false, ktap::frontend::diag::render("t.kp", src, &d, false)),
        Err(e) => panic!("not a diagnostic: {e:?}"),
    }
}

#[test]
fn code_after_break_is_left_out_with_a_warning() {
    let src = "trace syscalls:sys_enter_getppid {\n    for (i = 1, 2) {\n        break\n        print(pid)\n    }\n}\n";
    let (ok, text) = rendered(src);
    assert!(ok, "{text}");
    assert_eq!(
        text,
        "warning: unreachable code: it never runs and is left out\n  \
         ┌─ t.kp:4:9\n  │\n3 │         break\n  │         ----- `break` leaves the loop here\n\
         4 │         print(pid)\n  │         ^^^^^^^^^^ never runs\n\n"
    );
}

#[test]
fn code_after_a_leaving_if_and_after_exit_is_left_out() {
    let src = "trace syscalls:sys_enter_getppid {\n    if (pid == 1) { return } else { exit() }\n    print(pid)\n    print(tid)\n}\n";
    let (ok, text) = rendered(src);
    assert!(ok, "{text}");
    assert!(text.starts_with("warning: unreachable code: it never runs and is left out\n  ┌─ t.kp:3:5\n"), "{text}");
    assert!(text.contains("every branch of this `if` leaves"), "{text}");
    // Both statements after it are one warning.
    assert_eq!(text.matches("warning").count(), 1, "{text}");
    let m = support::compiles(src).module;
    let printed = ktap::ir::print::module(&m);
    assert!(!printed.contains("emit s0(tid"), "{printed}");
}

#[test]
fn exit_ends_the_probe() {
    let m = support::compiles("var n = 0 trace syscalls:sys_enter_getppid { if (pid == 1) { exit() } n += 1 }").module;
    let printed = ktap::ir::print::module(&m);
    assert!(printed.contains("  if (get_current_pid_tgid().hi32 == 1) {\n    emit s0()\n    return\n  }\n  g7 += 1\n"), "{printed}");
}

#[test]
fn a_task_name_against_a_longer_literal_is_a_warning_and_a_constant() {
    let src = "var n = 0\ntrace syscalls:sys_enter_getppid {\n    if (execname == \"a name of more than fifteen\") { n += 1 }\n    if (execname != \"a name of more than fifteen\") { n += 2 }\n}\n";
    let (ok, text) = rendered(src);
    assert!(ok, "{text}");
    assert_eq!(text.matches("warning: this string can never match: it is longer than the 15 bytes the value holds").count(), 2, "{text}");
    assert!(text.contains("always false") && text.contains("always true"), "{text}");
    let printed = ktap::ir::print::module(&support::compiles(src).module);
    assert!(printed.contains("if 0 {") && printed.contains("if 1 {"), "{printed}");
}

#[test]
fn a_failed_declaration_is_one_error() {
    let src = "trace syscalls:sys_enter_getppid {\n    var x = argstr\n    print(x)\n    x = 2\n    var y = nosuch(1)\n    printf(\"%d\\n\", y + 1)\n}\n";
    let (ok, text) = rendered(src);
    assert!(!ok);
    assert!(!text.contains("undeclared"), "{text}");
    assert_eq!(text.matches("error").count(), 2, "{text}");
}

#[test]
fn a_local_that_may_be_nil_has_a_presence_flag() {
    let src = "var m = {}\ntrace syscalls:sys_enter_getppid {\n    var t = m[cpu]\n    if (t == nil) { return }\n    print(t)\n}\n";
    let printed = ktap::ir::print::module(&support::compiles(src).module);
    // One key evaluation, a presence flag and the value; the test reads the flag.
    assert!(
        printed.contains("  l0 = get_smp_processor_id()\n  l1 = (m0[l0] != nil)\n  l2 = m0[l0]\n  if !l1 {\n    return\n  }\n"),
        "{printed}"
    );
    // A local never nil compares as present; nil == nil holds.
    let src = "var n = 0\ntrace syscalls:sys_enter_getppid {\n    var a = 1\n    if (a == nil) { n += 1 }\n    if (nil == nil) { n += 2 }\n}\n";
    let printed = ktap::ir::print::module(&support::compiles(src).module);
    assert!(printed.contains("if !1 {") && printed.contains("if !0 {"), "{printed}");
}

#[test]
fn an_integer_literal_beyond_64_bits_is_a_warning_and_its_low_bits() {
    // ktap's table test assigns and compares such a literal.
    let big = "22222222222222222222222222222222222222222";
    let run = support::ktap(&["-e", &format!("var t = {{}} t[{big}] = {big} if (t[{big}] == {big}) {{ print(\"same\", t[{big}]) }}")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "same\t7231141507552043918\n");
    assert_eq!(run.stderr.matches("warning: integer literal '22222222222222222222222222222222222222222' does not fit in 64 bits: its low 64 bits are used (7231141507552043918)").count(), 5, "{}", run.stderr);
}

#[test]
fn event_blocks_in_main_context_code_are_registered_when_it_runs_them() {
    // In an `if` or a loop of the main context: compiled like top-level
    // ones, marked to be attached once main ran their statement.
    let src = "var n = 0\nif (arg[1] == \"on\") {\n    trace syscalls:sys_enter_getppid { n += 1 }\n}\nfor (i = 1, 2) { profile-1ms { n += 2 } }\ntrace syscalls:sys_enter_write { n += 3 }\n";
    let module = support::compiles(src).module;
    assert_eq!(module.probes.iter().map(|p| p.nested).collect::<Vec<_>>(), [true, true, false]);
    let printed = ktap::ir::print::module(&module);
    assert_eq!(printed.matches("(nested: attached once main runs it)").count(), 2, "{printed}");
    // Ticks, trace_end and functions cannot register probes; trace_end
    // itself stays at the top level.
    for (src, message, label) in [
        ("tick-1s { profile-1ms { } }", "probes and ticks can only be registered by the main context", "inside a tick or trace_end"),
        ("trace_end { trace syscalls:sys_enter_getppid { } }", "probes and ticks can only be registered by the main context", "inside a tick or trace_end"),
        ("function f() { trace syscalls:sys_enter_getppid { } }", "probes and ticks can only be registered by the main context", "inside a function"),
        ("function f() { kdebug.tracepoint(\"sched_switch\", function () { }) }", "probes and ticks can only be registered by the main context", "inside a function"),
        ("if (true) { trace_end { } }", "trace_end belongs at the top level of the script", "not at the top level"),
    ] {
        let (ok, text) = rendered(src);
        assert!(!ok, "{src}");
        assert!(text.starts_with(&format!("error: {message}\n")), "{src}: {text}");
        assert!(text.contains(label), "{src}: {text}");
        assert_eq!(text.matches("error").count(), 1, "{src}: {text}");
    }
}

#[test]
fn in_iowait_reads_the_task_bit_the_btf_gives() {
    let kernel = ktap::facts::FakeKernel::new().task_flag_bit("in_iowait", 8 * 2000 + 3);
    let c = ktap::compile("var n = 0 profile-1ms { n += in_iowait() }", &kernel);
    let printed = match c {
        Ok(c) => ktap::ir::print::module(&c.module),
        Err(e) => panic!("{e:?}"),
    };
    assert!(printed.contains("g7 += ((task +2000:u8 (probe read) & 8) != 0)"), "{printed}");
    // Without the BTF: an error at the call.
    match ktap::compile("var n = 0 profile-1ms { n += in_iowait() }", support::fake_events()) {
        Err(ktap::CompileError::Diagnostics(d)) => {
            assert_eq!(d.len(), 1, "{d:?}");
            assert_eq!(d[0].message, "in_iowait() needs `task_struct.in_iowait` from the kernel's BTF: the kernel's BTF is not available");
        }
        _ => panic!("in_iowait() compiled without BTF"),
    }
}

#[test]
fn probes_and_ticks_nested_in_main_context_code_run_as_it_chose() {
    // The same script attaches the openat probe or the exit_group one, as
    // its argument says; a tick in a branch not taken never runs.
    let script = "var n = 0\nvar m = 0\n\
        if (arg[1] == \"open\") { trace syscalls:sys_enter_openat { n += 1 } } else { trace syscalls:sys_enter_exit_group { m += args.error_code } }\n\
        trace_end { print(n, m) }";
    let ticks = "var n = 0\n\
        if (arg[1] == \"a\") { tick-10ms { n += 1 if (n == 3) { print(\"a\", n) exit() } } } else { tick-10ms { print(\"b\") exit() } }";
    support::compiles(ticks);
    if !support::need_root() {
        return;
    }
    // A static program making one openat, then exit_group(3).
    let program = support::c_program("raw_syscall_args", &["-static", "-O1"]);
    let program = program.to_str().expect("path");
    for (arg, want) in [("open", "1\t0\n"), ("exit", "0\t3\n")] {
        let run = support::ktap(&["-q", "-e", script, arg, "--", program]);
        assert_eq!((run.code, run.stdout.as_str()), (Some(3), want), "{arg}: {}", run.stderr);
    }
    // No probe or tick registered: the script ends after main, as one
    // with none would (it does not wait for Ctrl-C).
    let none = support::ktap(&["-q", "-e", "if (false) { trace syscalls:sys_enter_getppid { } tick-1s { } } print(\"main\")"]);
    assert_eq!((none.code, none.stdout.as_str()), (Some(0), "main\n"), "{}", none.stderr);
    for (arg, want) in [("a", "a\t3\n"), ("z", "b\n")] {
        let run = support::ktap(&["-q", "-e", ticks, arg]);
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), want), "{arg}: {}", run.stderr);
    }
}
