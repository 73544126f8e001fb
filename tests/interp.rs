//! The userspace interpreter's API as the runtime uses it: interrupts,
//! step and depth limits, script arguments, ticks, trace_end, and globals
//! shared with the kernel bridge.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktap::runtime::interp::{run_userspace, Interp, Options, Outcome, RuntimeError, Value};
use support::Sink;

fn parse(src: &str) -> ktap::frontend::ast::Program {
    let (program, diags) = ktap::frontend::parse(src);
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "parse errors in {src:?}: {diags:?}"
    );
    program
}

fn interp(src: &str, opts: Options) -> (Interp, Sink) {
    let sink = Sink::default();
    let i = Interp::new(&parse(src), opts, Box::new(sink.clone())).expect("compiles");
    (i, sink)
}

fn run(src: &str, opts: Options) -> (Result<Outcome, RuntimeError>, String) {
    let sink = Sink::default();
    let r = run_userspace(&parse(src), opts, Box::new(sink.clone()));
    (r, sink.text())
}

#[test]
fn interrupt_stops_an_infinite_loop() {
    for src in [
        "while (true) { }",
        "var i = 0\nwhile (true) { i += 1 }",
        "function f() { return f() }\nf()",
    ] {
        let (mut i, _) = interp(
            src,
            Options {
                max_steps: u64::MAX,
                ..Options::default()
            },
        );
        let flag = Arc::new(AtomicBool::new(false));
        i.set_interrupt(flag.clone());
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::SeqCst);
            Instant::now()
        });
        let r = i.run_main();
        let stopped = Instant::now();
        let set_at = setter.join().expect("setter thread");
        assert_eq!(r, Ok(Outcome::Interrupted), "{src}");
        assert!(
            stopped.duration_since(set_at) < Duration::from_millis(500),
            "{src}: slow to notice"
        );
    }
}

#[test]
fn interrupt_already_set_stops_a_tick() {
    let (mut i, out) = interp(
        "tick-1s { print(1); for (k = 1, 1000000000) { } print(2) }",
        Options::default(),
    );
    let flag = Arc::new(AtomicBool::new(true));
    i.set_interrupt(flag);
    let (_, id) = i.ticks()[0];
    assert_eq!(i.run_tick(id), Ok(Outcome::Interrupted));
    assert_eq!(out.text(), "1\n");
}

#[test]
fn max_steps_bounds_loops_and_is_per_run() {
    let src = "var n = 0\nfor (i = 1, 100) { n += 1 }\nprint(n)";
    let (r, _) = run(
        src,
        Options {
            max_steps: 50,
            ..Options::default()
        },
    );
    let e = r.expect_err("loop limit");
    assert_eq!(e.message, "loop execute count exceed max limit");
    assert!(e.span.is_some());
    let (r, out) = run(
        src,
        Options {
            max_steps: 1000,
            ..Options::default()
        },
    );
    assert_eq!((r, out.as_str()), (Ok(Outcome::Done), "100\n"));

    // Each tick gets a fresh budget.
    let (mut i, out) = interp(
        "tick-1s { var n = 0; for (k = 1, 30) { n += 1 } print(n) }",
        Options {
            max_steps: 40,
            ..Options::default()
        },
    );
    let (_, id) = i.ticks()[0];
    for _ in 0..3 {
        assert_eq!(i.run_tick(id), Ok(Outcome::Done));
    }
    assert_eq!(out.text(), "30\n30\n30\n");
}

#[test]
fn depth_limit_not_rust_stack() {
    let src = "function d(n) { if (n == 0) { return 0 } return 1 + d(n - 1) }\nprint(d(DEPTH))";
    let (r, out) = run(&src.replace("DEPTH", "9990"), Options::default());
    assert_eq!((r, out.as_str()), (Ok(Outcome::Done), "9990\n"));
    let (r, _) = run(&src.replace("DEPTH", "100000"), Options::default());
    assert_eq!(r.expect_err("overflow").message, "stack overflow");
    let (r, _) = run(
        &src.replace("DEPTH", "100"),
        Options {
            max_depth: 50,
            ..Options::default()
        },
    );
    assert_eq!(r.expect_err("overflow").message, "stack overflow");
    // A huge limit is fine too: frames live on the heap.
    let (r, out) = run(
        &src.replace("DEPTH", "200000"),
        Options {
            max_depth: 1_000_000,
            ..Options::default()
        },
    );
    assert_eq!((r, out.as_str()), (Ok(Outcome::Done), "200000\n"));
}

#[test]
fn script_arguments() {
    let opts = Options {
        script_path: "/tmp/s.kp".into(),
        args: vec![
            "7".into(),
            "0x1f".into(),
            "-2".into(),
            "abc".into(),
            " 5".into(),
            "".into(),
        ],
        ..Options::default()
    };
    let (i, _) = interp("", opts);
    let Some(Value::Table(t)) = i.global("arg") else {
        panic!("arg is not a table")
    };
    let t = t.borrow();
    let at = |n: i64| t.get(&Value::Int(n));
    assert_eq!(at(0), Value::str("/tmp/s.kp"));
    assert_eq!(at(1), Value::Int(7));
    assert_eq!(at(2), Value::Int(31));
    assert_eq!(at(3), Value::Int(-2));
    assert_eq!(at(4), Value::str("abc"));
    assert_eq!(at(5), Value::str(" 5"));
    assert_eq!(at(6), Value::str(""));
    assert_eq!(at(7), Value::Nil);
}

#[test]
fn ticks_and_trace_end() {
    let src = "var n = 0\n\
               tick-1s { n += 1; printf(\"tick %d\\n\", n); if (n == 2) { exit(); print(\"no\") } }\n\
               tick-100ms { print(\"fast\") }\n\
               trace_end { print(\"end\", n) }\n\
               print(\"main\")";
    let (mut i, out) = interp(src, Options::default());
    let ticks = i.ticks();
    assert_eq!(
        ticks.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![1_000_000_000, 100_000_000]
    );
    assert!(i.has_trace_end());
    assert_eq!(i.run_main(), Ok(Outcome::Done));
    assert_eq!(i.run_tick(ticks[0].1), Ok(Outcome::Done));
    assert_eq!(i.run_tick(ticks[1].1), Ok(Outcome::Done));
    assert_eq!(i.run_tick(ticks[0].1), Ok(Outcome::Exit));
    assert_eq!(i.run_trace_end(), Ok(Outcome::Done));
    assert_eq!(out.text(), "main\ntick 1\nfast\ntick 2\nend\t2\n");

    let (i, _) = interp("print(1)", Options::default());
    assert!(!i.has_trace_end());
    assert!(i.ticks().is_empty());
}

#[test]
fn globals_shared_with_the_runtime() {
    let src =
        "var count = 0\nvar names = {}\ntrace_end { print(count, kernel_only, names[\"a\"]) }";
    let (mut i, out) = interp(src, Options::default());
    assert_eq!(i.run_main(), Ok(Outcome::Done));
    assert_eq!(i.global("count"), Some(Value::Int(0)));
    assert!(matches!(i.global("names"), Some(Value::Table(_))));
    assert_eq!(i.global("never_mentioned"), None);
    i.set_global("count", Value::Int(42));
    i.set_global("kernel_only", Value::str("from kernel"));
    if let Some(Value::Table(t)) = i.global("names") {
        t.borrow_mut().set(Value::str("a"), Value::Int(7));
    }
    i.set_global("brand_new", Value::Int(1));
    assert_eq!(i.global("brand_new"), Some(Value::Int(1)));
    assert_eq!(i.run_trace_end(), Ok(Outcome::Done));
    assert_eq!(out.text(), "42\tfrom kernel\t7\n");
}

#[test]
fn errors_carry_spans_and_stop_the_run() {
    let src = "print(\"a\")\nvar x = 1 / 0\nprint(\"b\")";
    let (r, out) = run(src, Options::default());
    let e = r.expect_err("divide");
    assert_eq!(e.message, "divide 0");
    let span = e.span.expect("span");
    assert_eq!(&src[span.range()], "1 / 0");
    assert_eq!(out, "a\n");
}

#[test]
fn compile_errors_are_reported_not_panics() {
    let r = Interp::new(
        &parse("break"),
        Options::default(),
        Box::new(Sink::default()),
    );
    assert_eq!(
        r.err().map(|e| e.message),
        Some("break outside a loop".to_string())
    );
    // Whatever nesting the parser accepts compiles; deeper hand-built
    // trees are refused with an error, not a Rust stack overflow.
    let ok = format!("print({}1{})", "1 + (".repeat(90), ")".repeat(90));
    let (r, out) = run(&ok, Options::default());
    assert_eq!((r, out.as_str()), (Ok(Outcome::Done), "91\n"));
    for (depth, fits) in [(390, true), (5000, false)] {
        let r = Interp::new(
            &nested_sum(depth),
            Options::default(),
            Box::new(Sink::default()),
        );
        match r {
            Ok(_) => assert!(fits, "depth {depth} compiled"),
            Err(e) => {
                assert!(!fits, "depth {depth}: {}", e.message);
                assert!(e.message.contains("nested too deeply"), "{}", e.message);
            }
        }
    }
}

/// `print(1 + (1 + (... + 1)))`, `depth` additions deep, built directly.
fn nested_sum(depth: usize) -> ktap::frontend::ast::Program {
    use ktap::frontend::ast::{BinOp, Expr, ExprKind, Ident, Program, Span, Stmt, StmtKind};
    let sp = Span::default();
    let one = || Expr {
        kind: ExprKind::Int(1),
        span: sp,
    };
    let mut e = one();
    for _ in 0..depth {
        e = Expr {
            kind: ExprKind::Binary {
                op: BinOp::Add,
                lhs: Box::new(one()),
                rhs: Box::new(e),
            },
            span: sp,
        };
    }
    let callee = Expr {
        kind: ExprKind::Name(Ident {
            name: "print".into(),
            span: sp,
        }),
        span: sp,
    };
    let call = Expr {
        kind: ExprKind::Call {
            callee: Box::new(callee),
            args: vec![e],
        },
        span: sp,
    };
    Program {
        stmts: vec![Stmt {
            kind: StmtKind::Expr(call),
            span: sp,
        }],
    }
}

#[test]
fn interp_can_run_again_after_an_error() {
    let src = "var n = 0\ntick-1s { n += 1; if (n == 1) { var z = nil + 1 } print(n) }";
    let (mut i, out) = interp(src, Options::default());
    assert_eq!(i.run_main(), Ok(Outcome::Done));
    let (_, id) = i.ticks()[0];
    assert!(i.run_tick(id).is_err());
    assert_eq!(i.run_tick(id), Ok(Outcome::Done));
    assert_eq!(out.text(), "2\n");
}

#[test]
fn deep_structures_drop_without_recursion() {
    // A 300,000-long linked list of tables, and a chain of closures, each
    // freed when the interpreter goes away.
    let src = "var list = nil\n\
               for (i = 1, 300000) { list = {next = list, i = i} }\n\
               var f = function () { return 0 }\n\
               for (i = 1, 100000) { var g = f; f = function () { return g } }\n\
               print(list.i, list.next.i)";
    let (r, out) = run(src, Options::default());
    assert_eq!((r, out.as_str()), (Ok(Outcome::Done), "300000\t299999\n"));
}

#[test]
fn runaway_strings_are_an_error() {
    let (r, _) = run(
        "var s = \"xx\"\nwhile (true) { s = s .. s }",
        Options::default(),
    );
    assert_eq!(r.expect_err("too long").message, "string length overflow");
}
