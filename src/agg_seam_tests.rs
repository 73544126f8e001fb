//! The aggregate seam, end to end: a script's `+=` table is switched to the
//! test-only kind (`ir::agg::test_max`) after lowering, and codegen, the
//! verifier and the session's table reads follow the kind's two files and
//! registry lines alone. Tests only; the kernel part needs root and passes
//! silently without it (only main.rs and runtime/output/ may print).

use crate::ir::{self, AggKind, AggTarget, StmtKind, TableValue};
use crate::runtime::interp::{self, Interp, Value};
use crate::runtime::output::{SharedOutput, TextOptions, TextOutput};
use crate::runtime::session;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SCRIPT: &str = "var t = {}
var got = 0
trace syscalls:sys_enter_getpid { t[1] += 5 }
trace syscalls:sys_enter_getppid { t[1] += 9 }
trace_end { got = t[1] }
";

/// Every aggregate update in `stmts`, switched to `kind`.
fn switch_updates(stmts: &mut [ir::Stmt], kind: AggKind) -> usize {
    let mut n = 0;
    for s in stmts {
        match &mut s.kind {
            StmtKind::AggUpdate { kind: k, to: AggTarget::Entry { .. }, .. } => {
                *k = kind;
                n += 1;
            }
            StmtKind::If { then, otherwise, .. } => n += switch_updates(then, kind) + switch_updates(otherwise, kind),
            StmtKind::Loop { body, step, .. } => n += switch_updates(body, kind) + switch_updates(step, kind),
            StmtKind::Block { body, .. } => n += switch_updates(body, kind),
            _ => {}
        }
    }
    n
}

/// `SCRIPT` lowered, then its table made an aggregate of the test kind the
/// way lowering would have made it: layout and per-CPU from the kind.
fn with_test_kind(facts: &dyn crate::facts::KernelFacts) -> crate::Compilation {
    let mut c = match crate::compile(SCRIPT, facts) {
        Ok(c) => c,
        Err(e) => panic!("the script compiles: {e:?}"),
    };
    let m = &mut c.module;
    let map = m.maps.iter_mut().find(|map| map.table.is_some()).expect("a table map");
    assert_eq!(map.kind, ir::MapKind::PercpuHash, "a sum table only updated in probes is per-CPU");
    let holds = TableValue::Agg(AggKind::TestMax);
    map.kind = if holds.per_cpu() { ir::MapKind::PercpuHash } else { ir::MapKind::Hash };
    map.value_size = holds.size();
    if let Some(info) = &mut map.table {
        info.value = holds;
    }
    let switched: usize = m.probes.iter_mut().map(|p| switch_updates(&mut p.body, AggKind::TestMax)).sum();
    assert_eq!(switched, 2);
    let info = ir::validate::validate(m).expect("valid IR");
    c.compiled = crate::bpfgen::codegen::compile(m, &info).expect("codegen");
    c.object = crate::bpfgen::elf::write_object(&c.compiled.object).expect("object");
    c
}

/// The two events `SCRIPT` traces.
fn fake_kernel() -> crate::facts::FakeKernel {
    crate::facts::FakeKernel::new()
        .event("syscalls", "sys_enter_getpid", Vec::new())
        .event("syscalls", "sys_enter_getppid", Vec::new())
        .syscall("getpid", 39)
        .syscall("getppid", 110)
}

#[test]
fn the_test_kind_is_compiled_from_its_own_files() {
    let facts = fake_kernel();
    let c = with_test_kind(&facts);
    let map = c.compiled.object.maps.iter().find(|m| m.name == "ktap_tbl_t").expect("the table's map");
    assert_eq!(map.value_size, 16, "the test kind's layout");
    assert_eq!(map.map_type, 1, "a hash map: the test kind is not per-CPU");
    let text = crate::bpfgen::disasm::disasm(&c.compiled.object.programs[0].insns);
    // The test kind's update: keep the larger value, count at +8.
    assert!(text.contains("if r2 s>= r1 goto"), "{text}");
    assert!(text.contains("lock *(u64 *)(r0 + 8) += r2"), "{text}");
    // And not the sum's per-CPU add.
    assert!(!text.contains("r2 += r1"), "{text}");
}

#[test]
fn the_validator_refuses_an_update_of_another_kind() {
    let facts = fake_kernel();
    let mut c = with_test_kind(&facts);
    ir::validate::validate(&c.module).expect("valid as switched");
    // One update left a sum, on a table of test_max aggregates.
    let body = &mut c.module.probes[0].body;
    assert_eq!(switch_updates(body, AggKind::Sum), 1);
    let e = ir::validate::validate(&c.module).expect_err("a sum update of a test_max table");
    assert!(e.to_string().contains("sum update of a table that holds something else"), "{e}");
}

#[test]
fn the_kernel_runs_the_test_kind_and_userspace_reads_it_through_the_kind() {
    // (Library code may not write to the streams, so no note says why.)
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let facts = crate::runtime::facts::RunningKernel::new();
    let c = with_test_kind(&facts);
    let out = SharedOutput::new(Box::new(TextOutput::new(Box::new(std::io::sink()), TextOptions::default())));
    let opts = interp::Options { script_path: "seam.kp".into(), args: Vec::new(), max_steps: 1_000_000, max_depth: 100 };
    let mut interp = Interp::with_output(&c.program, opts, Box::new(out.clone())).expect("interpreter");
    interp.run_main().expect("main");
    let stop = Arc::new(AtomicBool::new(false));
    let trigger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            for _ in 0..150 {
                // SAFETY: no preconditions; the syscalls the probes count.
                unsafe {
                    libc::syscall(libc::SYS_getpid);
                    libc::syscall(libc::SYS_getppid);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let mut sopts = session::Options { quiet: true, target_pid: Some(std::process::id()), ..Default::default() };
    let r = session::run(&c.module, &c.compiled, &c.object, &mut interp, &out, &mut sopts, &stop);
    stop.store(true, Ordering::SeqCst);
    trigger.join().expect("trigger thread");
    r.expect("session");
    // The maximum of 5s and 9s; a sum of them could never be 9, since
    // each getppid follows a getpid.
    assert_eq!(interp.global("got"), Some(Value::Int(9)));
}
