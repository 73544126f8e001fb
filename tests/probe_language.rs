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
fn event_blocks_below_the_top_level_are_errors_at_their_span() {
    // Nested in main-context code: once silently never attached.
    let src = "if (1) { trace syscalls:sys_enter_getppid { print(\"x\") } }";
    let (ok, text) = rendered(src);
    assert!(!ok);
    assert_eq!(
        text,
        "error: an event block inside main-context code is not supported yet\n  \
         ┌─ t.kp:1:10\n  │\n1 │ if (1) { trace syscalls:sys_enter_getppid { print(\"x\") } }\n  \
         │          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ not at the top level\n  │\n  \
         = it would be registered when this code runs; write it at the top level of the script\n\n"
    );
    for src in ["tick-1s { profile-1ms { } }", "trace_end { trace syscalls:sys_enter_getppid { } }"] {
        let (ok, text) = rendered(src);
        assert!(!ok);
        assert!(text.starts_with("error: probes can only be registered by the main context\n"), "{text}");
        assert_eq!(text.matches("error").count(), 1, "{text}");
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
