//! The IR validator through its public entry point: the facts it returns
//! for lowered scripts, and each invariant it rejects, shown by breaking a
//! lowered module by hand; and bpfgen refusing facts that lack what the
//! code needs. No root, no kernel.

mod support;

use ktap::bpfgen::codegen;
use ktap::ir::validate::{validate, Error, ModuleInfo};
use ktap::ir::{BlockId, Expr, ExprKind, LocalId, MapId, MapKind, Module, ProbeId, ProgKind, Stmt, StmtKind, Ty};

/// `src` parsed and lowered against the fake event catalogue; it must
/// lower without errors.
fn lowered(src: &str) -> Module {
    let (program, diags) = ktap::frontend::parse(src);
    assert!(diags.is_empty(), "{src}: parse errors {diags:?}");
    let (module, diags) = ktap::frontend::lower::lower(&program, support::fake_events(), &ktap::Options::default());
    assert!(diags.iter().all(|d| d.severity != ktap::frontend::diag::Severity::Error), "{src}: lowering errors {diags:?}");
    module
}

fn facts(m: &Module) -> ModuleInfo {
    validate(m).unwrap_or_else(|e| panic!("a lowered module validates: {e}"))
}

fn stmt(kind: StmtKind) -> Stmt {
    Stmt { kind, span: None }
}

fn one() -> Expr {
    Expr { kind: ExprKind::Const(1), ty: Ty::Int, span: None }
}

const P0: ProbeId = ProbeId(0);

#[test]
fn facts_name_the_maps_each_probe_needs() {
    let m = lowered(
        "var n = 0\n\
         trace syscalls:sys_enter_write { print(stack()) }\n\
         trace syscalls:sys_enter_getppid { n += 1 }",
    );
    let info = facts(&m);
    assert_eq!(info.probes.len(), 2);
    let printing = info.probe(ProbeId(0));
    assert_eq!(printing.programs, vec![ProgKind::Tracepoint]);
    assert!(printing.ring_buffer.is_some());
    assert_eq!(printing.ring_buffer, m.events);
    assert!(printing.stack_map.is_some());
    assert_eq!(printing.stack_map, m.stacks);
    assert!(printing.syscall_filters.is_empty());
    assert_eq!(printing.lost_events, m.lost_events);
    assert_eq!(printing.map_failures, None, "it updates no table");
    let counting = info.probe(ProbeId(1));
    assert_eq!(counting.ring_buffer, None, "a probe that sends nothing needs no ring buffer");
    assert_eq!(counting.lost_events, None);
    assert_eq!(counting.stack_map, None);
    assert_eq!(counting.map_failures, None, "a global is no table");
}

#[test]
fn facts_name_the_counters_and_loop_counters() {
    let m = lowered(
        "var t = {} function f(k) { var s = 0 for (i = 1, 4) { s += i } return s }\n\
         trace syscalls:sys_enter_getppid { for (a = 1, 3) { for (b = 1, 2) { t[a] += b } } t[0] = f(1) }",
    );
    let p = facts(&m).probes.remove(0);
    assert!(p.map_failures.is_some());
    assert_eq!(p.map_failures, m.map_failures);
    // `a`'s loop, `b`'s inside it, then the inlined call's at the top.
    let depths: Vec<usize> = p.loop_counters.iter().map(|&(_, depth)| depth).collect();
    assert_eq!(depths, [0, 1, 0], "{:?}", p.loop_counters);
    let mut locals: Vec<_> = p.loop_counters.iter().map(|&(l, _)| l).collect();
    locals.dedup();
    assert_eq!(locals.len(), 3, "three counters: {:?}", p.loop_counters);
    assert!(locals.iter().all(|l| m.probes[0].locals[l.index()] == Ty::Int));
}

#[test]
fn a_record_needs_the_loss_counter() {
    let mut m = lowered("trace syscalls:sys_enter_write { print(pid) }");
    m.lost_events = None;
    assert_eq!(validate(&m), Err(Error::RecordWithoutLossCounter { probe: P0 }));
}

#[test]
fn a_table_update_needs_the_failure_counter() {
    for src in ["var t = {} trace syscalls:sys_enter_write { t[pid] += 1 }", "var t = {} trace syscalls:sys_enter_write { t[pid] = 2 }"] {
        let mut m = lowered(src);
        facts(&m);
        m.map_failures = None;
        assert_eq!(validate(&m), Err(Error::UpdateWithoutFailureCounter { probe: P0 }), "{src}");
    }
}

#[test]
fn facts_give_each_raw_syscalls_program_its_filter() {
    // Four syscall events and no fields: raw_syscalls enter and exit.
    let m = lowered("var n = 0 trace syscalls:* { n += 1 }");
    let info = facts(&m);
    let p = info.probe(P0);
    assert_eq!(p.programs, vec![ProgKind::SysEnter, ProgKind::SysExit]);
    for kind in [ProgKind::SysEnter, ProgKind::SysExit] {
        let map = p.syscall_filter(kind).unwrap_or_else(|| panic!("{kind:?} has a filter"));
        assert_eq!(m.map(map).syscall_filter, Some((P0, kind)));
        assert_eq!(m.map(map).kind, MapKind::Array);
    }
}

#[test]
fn a_record_needs_the_ring_buffer() {
    let mut m = lowered("trace syscalls:sys_enter_write { print(pid) }");
    facts(&m);
    m.events = None;
    assert_eq!(validate(&m), Err(Error::RecordWithoutRingBuffer { probe: P0 }));
}

#[test]
fn a_stack_needs_the_stack_map() {
    let mut m = lowered("var s = {} trace syscalls:sys_enter_write { s[stack()] += 1 }");
    facts(&m);
    m.stacks = None;
    assert_eq!(validate(&m), Err(Error::StackWithoutStackMap { probe: P0 }));
    // A map of another kind is no stack map either.
    m.stacks = m.maps.iter().position(|mp| mp.kind != MapKind::StackTrace).map(|i| MapId(i as u32));
    assert!(m.stacks.is_some());
    assert_eq!(validate(&m), Err(Error::StackWithoutStackMap { probe: P0 }));
}

#[test]
fn a_raw_syscalls_program_needs_its_filter_map() {
    let mut m = lowered("var n = 0 trace syscalls:* { n += 1 }");
    facts(&m);
    let exit = m.maps.iter().position(|mp| mp.syscall_filter == Some((P0, ProgKind::SysExit))).expect("an exit filter");
    m.maps[exit].syscall_filter = None;
    assert_eq!(validate(&m), Err(Error::SyscallWithoutFilter { probe: P0, kind: ProgKind::SysExit }));
}

#[test]
fn break_needs_a_loop_of_its_own_function() {
    let src = "var n = 0 trace syscalls:sys_enter_getppid { for (i = 1, 3) { if (i > 1) { break } n += 1 } }";
    facts(&lowered(src));
    let mut m = lowered(src);
    m.probes[0].body.push(stmt(StmtKind::Break));
    assert_eq!(validate(&m), Err(Error::BreakOutsideLoop { probe: P0 }));
    // A loop outside an inlined function is not the function's loop.
    let mut m = lowered(src);
    let inner = stmt(StmtKind::Block { id: BlockId(90), body: vec![stmt(StmtKind::Break)] });
    m.probes[0].body.push(stmt(StmtKind::Loop { cond: one(), body: vec![inner], step: Vec::new(), max_iterations: 1 }));
    assert_eq!(validate(&m), Err(Error::BreakOutsideLoop { probe: P0 }));
}

#[test]
fn leave_needs_its_block() {
    let src = "var n = 0 function f(x) { if (x > 1) { return 2 } return 3 } trace syscalls:sys_enter_getppid { n += f(pid) }";
    facts(&lowered(src));
    let mut m = lowered(src);
    m.probes[0].body.push(stmt(StmtKind::Leave(BlockId(99))));
    assert_eq!(validate(&m), Err(Error::LeaveOutsideBlock { probe: P0, block: BlockId(99) }));
    // Inside another block, still not its own.
    let mut m = lowered(src);
    m.probes[0].body.push(stmt(StmtKind::Block { id: BlockId(98), body: vec![stmt(StmtKind::Leave(BlockId(99)))] }));
    assert_eq!(validate(&m), Err(Error::LeaveOutsideBlock { probe: P0, block: BlockId(99) }));
}

#[test]
fn a_local_is_read_with_its_declared_type() {
    let mut m = lowered("var n = 0 trace syscalls:sys_enter_write { var me = execname if (me == \"x\") { n += 1 } }");
    facts(&m);
    let me = m.probes[0].locals.iter().position(|t| *t == Ty::Comm).expect("a task-name local");
    // Still a valid store (a task name fits a string), but the read says Comm.
    m.probes[0].locals[me] = Ty::Str;
    assert_eq!(validate(&m), Err(Error::TypeMismatch { probe: P0, what: "local", found: Ty::Comm, declared: Ty::Str }));
}

#[test]
fn a_global_is_read_with_its_declared_type() {
    let mut m = lowered("var n = 0 var want = \"bash\" trace syscalls:sys_enter_write { if (execname == want) { n += 1 } }");
    facts(&m);
    let want = m.globals.iter().position(|g| g.name == "ktap_var_want").expect("the global");
    let declared = m.globals[want].ty;
    let other = if declared == Ty::Str { Ty::Comm } else { Ty::Str };
    m.globals[want].ty = other;
    assert_eq!(validate(&m), Err(Error::TypeMismatch { probe: P0, what: "global", found: declared, declared: other }));
}

#[test]
fn a_table_value_is_read_with_its_declared_type() {
    let mut m = lowered("var n = 0 var who = {} trace syscalls:sys_enter_write { who[pid] = execname if (who[pid] == \"x\") { n += 1 } }");
    facts(&m);
    let who = m.maps.iter().position(|mp| mp.table.as_ref().is_some_and(|t| t.var == "who")).expect("the table");
    let table = m.maps[who].table.as_mut().expect("table info");
    assert_eq!(table.value, ktap::ir::TableValue::Scalar(Ty::Comm));
    table.value = ktap::ir::TableValue::Scalar(Ty::Str);
    assert_eq!(validate(&m), Err(Error::TypeMismatch { probe: P0, what: "table", found: Ty::Comm, declared: Ty::Str }));
}

#[test]
fn a_record_field_has_its_site_type() {
    let mut m = lowered("trace syscalls:sys_enter_write { print(pid) }");
    facts(&m);
    assert_eq!(m.sites[0].fields, vec![Ty::Int]);
    m.sites[0].fields[0] = Ty::Str;
    assert_eq!(validate(&m), Err(Error::TypeMismatch { probe: P0, what: "record field", found: Ty::Int, declared: Ty::Str }));
}

#[test]
fn ids_out_of_range_are_rejected() {
    let mut m = lowered("var n = 0 trace syscalls:sys_enter_getppid { n += 1 }");
    let locals = m.probes[0].locals.len();
    m.probes[0].body.push(stmt(StmtKind::LocalSet { local: LocalId(locals as u32), value: one() }));
    assert_eq!(validate(&m), Err(Error::OutOfRange { probe: P0, what: "local", index: locals }));
    let mut m = lowered("var n = 0 trace syscalls:sys_enter_getppid { n += 1 }");
    m.probes[0].attach.clear();
    assert_eq!(validate(&m), Err(Error::NoAttachPoint { probe: P0 }));
}

/// Codegen takes what the facts say and falls back on nothing: facts that
/// lack a map the code needs are an error, never a program without it.
#[test]
fn codegen_refuses_facts_that_lack_what_the_code_needs() {
    let m = lowered("trace syscalls:sys_enter_write { print(pid) }");
    let mut info = facts(&m);
    assert!(codegen::compile(&m, &info).is_ok());
    let full = info.clone();
    info.probes[0].ring_buffer = None;
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: P0, fact: "ring buffer" }));
    let mut info = full;
    info.probes[0].lost_events = None;
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: P0, fact: "counter of lost records" }));

    let m = lowered("var n = 0 trace syscalls:* { n += 1 } trace syscalls:sys_enter_write { n += 2 }");
    let mut info = facts(&m);
    assert!(codegen::compile(&m, &info).is_ok());
    let second = info.probes.pop().expect("two probes");
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: ProbeId(1), fact: "probe's facts" }));
    info.probes.push(second);
    info.probes[0].syscall_filters.clear();
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: P0, fact: "syscall filter map" }));

    let m = lowered("var s = {} trace syscalls:sys_enter_write { s[ustack()] += 1 }");
    let mut info = facts(&m);
    assert!(codegen::compile(&m, &info).is_ok());
    let full = info.clone();
    info.probes[0].stack_map = None;
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: P0, fact: "stack map" }));
    let mut info = full;
    info.probes[0].map_failures = None;
    assert_eq!(codegen::compile(&m, &info).err(), Some(codegen::Error::Unvalidated { probe: P0, fact: "counter of failed updates" }));
}

/// Each broken shape is its own error, with what it found.
#[test]
fn shapes_are_named_errors() {
    let src = "var t = {} trace syscalls:sys_enter_write { var x = 1 t[x] += 1 print(x) }";
    let base = lowered(src);
    facts(&base);
    let x = LocalId(base.probes[0].locals.iter().position(|t| *t == Ty::Int).expect("x") as u32);
    let t = MapId(base.maps.iter().position(|mp| mp.table.is_some()).expect("t") as u32);
    let ring = base.events.expect("a ring buffer");
    let name = || Expr { kind: ExprKind::StrConst(b"x".to_vec()), ty: Ty::Comm, span: None };
    let broken = |extra: StmtKind| {
        let mut m = base.clone();
        m.probes[0].body.push(stmt(extra));
        validate(&m)
    };
    assert_eq!(broken(StmtKind::LocalSet { local: x, value: name() }), Err(Error::StoreMismatch { probe: P0, what: "local", value: Ty::Comm, holds: Ty::Int }));
    assert_eq!(broken(StmtKind::If { cond: name(), then: Vec::new(), otherwise: Vec::new() }), Err(Error::NotANumber { probe: P0, found: Ty::Comm }));
    assert_eq!(broken(StmtKind::MapDelete { map: ring, key: one() }), Err(Error::NotATable { probe: P0, map: ring }));
    assert_eq!(broken(StmtKind::MapDelete { map: t, key: name() }), Err(Error::KeyMismatch { probe: P0, map: t, key: Ty::Comm, keyed_by: Ty::Int }));
    let field = Expr { kind: ExprKind::CtxField { offset: 16, size: 3, signed: false }, ty: Ty::Int, span: None };
    assert_eq!(broken(StmtKind::LocalSet { local: x, value: field }), Err(Error::BadWidth { probe: P0, what: "context field", bytes: 3 }));
    let mut m = base.clone();
    m.sites[0].fields.push(Ty::Int);
    assert_eq!(validate(&m), Err(Error::RecordArity { probe: P0, site: ktap::ir::SiteId(0), fields: 2, args: 1 }));
}

/// `src` lowered against the fake kernel with BTF.
fn lowered_btf(src: &str) -> Module {
    let (program, diags) = ktap::frontend::parse(src);
    assert!(diags.is_empty(), "{src}: parse errors {diags:?}");
    let (module, diags) = ktap::frontend::lower::lower(&program, support::fake_kernel(), &ktap::Options::default());
    assert!(diags.iter().all(|d| d.severity != ktap::frontend::diag::Severity::Error), "{src}: lowering errors {diags:?}");
    module
}

/// The value of the probe's last statement, an aggregate update.
fn updated(m: &mut Module) -> &mut Expr {
    match m.probes[0].body.last_mut().map(|s| &mut s.kind) {
        Some(StmtKind::AggUpdate { value, .. }) => value,
        other => panic!("not an update: {other:?}"),
    }
}

fn invalid(m: &Module) -> String {
    match validate(m) {
        Err(Error::Invalid { message, .. }) => message,
        other => panic!("not an invalid IR: {other:?}"),
    }
}

#[test]
fn a_typed_argument_needs_a_btf_context() {
    let mut m = lowered_btf("var n = 0 trace btf:sched_switch { n += args.next.pid }");
    assert_eq!(facts(&m).probe(P0).programs, vec![ProgKind::TpBtf]);
    let mut m2 = lowered_btf("var n = 0 trace sched:sched_process_exec { n += curtask.pid }");
    facts(&m2);
    // A context argument read where the context is a raw tracepoint's.
    let ExprKind::Load(path) = &mut updated(&mut m2).kind else { panic!("a typed load") };
    path.base = ktap::ir::PathBase::Arg(2);
    path.derefs.insert(0, 0);
    for c in &mut path.core {
        c.step += 1;
    }
    assert!(invalid(&m2).contains("argument 2 read where the context has no typed arguments"));
    // The first pointer of an argument is its slot, at offset 0.
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.derefs[0] = 8;
    assert!(invalid(&m).contains("argument 2 read"));
}

#[test]
fn a_typed_read_is_direct_and_of_a_bpf_width() {
    let mut m = lowered_btf("var n = 0 trace sched:sched_process_exec { n += curtask.pid }");
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.via = ktap::ir::Via::ProbeRead;
    assert_eq!(invalid(&m), "a typed read through a probe read");
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.via = ktap::ir::Via::Direct;
    path.size = 3;
    assert_eq!(validate(&m), Err(Error::BadWidth { probe: P0, what: "typed read", bytes: 3 }));
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.size = 4;
    path.core[0].step = 5;
    assert_eq!(invalid(&m), "typed read out of reach");
    // A CO-RE record must name the members the offset adds up to.
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.core[0].step = 0;
    path.offset += 4;
    assert_eq!(invalid(&m), "CO-RE record of struct task_struct.pid does not describe offset 1268");
}

#[test]
fn a_record_address_is_only_read_from() {
    let mut m = lowered("var n = 0 trace syscalls:sys_enter_write { n += 1 }");
    *updated(&mut m) = Expr { kind: ExprKind::CtxAddr { offset: 16, data_loc: false }, ty: Ty::Int, span: None };
    assert_eq!(invalid(&m), "a record address used as a value");
}

#[test]
fn a_seq_print_needs_an_iterator_and_a_format_that_fits_its_values() {
    let m = lowered_btf("trace iter:task { printf(\"%d %s\\n\", args.task.pid, args.task.comm) }");
    let info = facts(&m);
    assert_eq!(info.probe(P0).ring_buffer, None, "an iterator's prints need no ring buffer");
    let seq = |format: &str, args: Vec<Expr>| stmt(StmtKind::SeqPrint { format: format.as_bytes().to_vec(), args });
    // Outside an iterator.
    let mut other = lowered("trace syscalls:sys_enter_getppid { }");
    other.probes[0].body.push(seq("%lld\n", vec![one()]));
    assert!(matches!(validate(&other), Err(Error::Invalid { message, .. }) if message.contains("outside an iterator")));
    let broken = |s: Stmt| {
        let mut m = m.clone();
        m.probes[0].body.push(s);
        validate(&m)
    };
    let why = |r: Result<ModuleInfo, Error>| match r {
        Err(Error::Invalid { message, .. }) => message,
        other => panic!("not refused: {other:?}"),
    };
    assert!(broken(seq("%lld %lld\n", vec![one()])).is_err_and(|e| e.to_string().contains("2 conversions for 1 arguments")));
    assert!(why(broken(seq(&"%lld ".repeat(13), vec![one(); 13]))).contains("13 arguments (at most 12)"));
    assert!(why(broken(seq("%s\n", vec![one()]))).contains("printed by %s"));
    assert!(why(broken(seq("%o\n", vec![one()]))).contains("`%o` is not one the kernel prints"));
    assert!(why(broken(seq("%.3lld\n", vec![one()]))).contains("not one the kernel prints"));
    assert!(broken(seq("%5lld|%-3llx %%\n", vec![one(), one()])).is_ok());
}

#[test]
fn a_register_path_starts_at_the_register_itself() {
    let mut m = lowered_btf("var n = 0 trace probe:vfs_read { n += args.file->f_pos }");
    facts(&m);
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    assert_eq!((path.base, path.derefs.as_slice()), (ktap::ir::PathBase::Reg(ktap::ir::RegOffset::DI), &[0][..]));
    // Read from user memory (DWARF-typed user values): still valid.
    path.via = ktap::ir::Via::ProbeReadUser;
    path.core.clear();
    facts(&m);
    // The first step is the register's value: no offset from its slot.
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.derefs[0] = 8;
    assert_eq!(invalid(&m), "a register read at an offset from its slot");
    // A register path is always read with a helper.
    let ExprKind::Load(path) = &mut updated(&mut m).kind else { panic!("a typed load") };
    path.derefs[0] = 0;
    path.via = ktap::ir::Via::Direct;
    assert_eq!(invalid(&m), "a register's pointer followed without a probe read");
}
