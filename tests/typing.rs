//! Type inference through the public entry points (`ktap::compile`,
//! `frontend::lower::lower`): the one type each kernel-visible name gets
//! (globals, table keys and values, probe locals, function results), how
//! uses in other probes and the main context decide it, widening of task
//! names to strings, and conflicts reported with both uses. No root.

mod support;

use ktap::ir::{Module, Ty};

/// The module `src` lowers to against the fake catalogue; it must compile.
fn module(src: &str) -> Module {
    support::compiles(src).module
}

/// The diagnostics' messages for `src`, which must not compile.
fn errors(src: &str) -> Vec<String> {
    match ktap::compile(src, support::fake_events()) {
        Err(ktap::CompileError::Diagnostics(d)) => d.iter().map(|d| d.message.clone()).collect(),
        Err(e) => panic!("not a diagnostic: {e:?}"),
        Ok(_) => panic!("compiled: {src}"),
    }
}

fn global(m: &Module, name: &str) -> Ty {
    let var = format!("ktap_var_{name}");
    m.globals.iter().find(|g| g.name == var).unwrap_or_else(|| panic!("no kernel global {name}")).ty
}

/// A table's key and value types.
fn table(m: &Module, name: &str) -> (Ty, Ty) {
    let t = m.maps.iter().find_map(|mp| mp.table.as_ref().filter(|t| t.var == name));
    let t = t.unwrap_or_else(|| panic!("no table {name}"));
    (t.key, t.value.ty())
}

#[test]
fn main_context_literals_type_globals() {
    let m = module("var n = 0 var s = \"bash\" trace syscalls:sys_enter_write { n += 1 if (s == \"x\") { n += 2 } }");
    assert_eq!(global(&m, "n"), Ty::Int);
    assert_eq!(global(&m, "s"), Ty::Str);
    // Names the probes never touch stay in userspace.
    let m = module("var n = 0 var unused = \"x\" trace syscalls:sys_enter_write { n += 1 }");
    assert!(!m.globals.iter().any(|g| g.name == "ktap_var_unused"));
}

#[test]
fn table_keys_and_values_come_from_their_uses() {
    let m = module(
        "var by_name = {} var names = {} var hits = {}\n\
         trace syscalls:sys_enter_write { by_name[execname] += 1 names[pid] = execname hits[user_string(arg2)] += 1 }",
    );
    assert_eq!(table(&m, "by_name"), (Ty::Comm, Ty::Int));
    assert_eq!(table(&m, "names"), (Ty::Int, Ty::Comm));
    assert_eq!(table(&m, "hits"), (Ty::Str, Ty::Int));
}

#[test]
fn a_task_name_and_a_string_widen_to_the_string() {
    // One probe stores the task name, another a string read from memory:
    // the table value holds either.
    let m = module(
        "var last = {}\n\
         trace syscalls:sys_enter_write { last[1] = user_string(arg2) }\n\
         trace syscalls:sys_enter_getppid { last[1] = execname }",
    );
    assert_eq!(table(&m, "last"), (Ty::Int, Ty::Str));
    // A local too.
    let m = module("var n = 0 trace syscalls:sys_enter_write { var who = execname who = user_string(arg2) if (who == \"x\") { n += 1 } }");
    assert!(m.probes[0].locals.contains(&Ty::Str), "{:?}", m.probes[0].locals);
    assert!(!m.probes[0].locals.contains(&Ty::Comm), "{:?}", m.probes[0].locals);
}

#[test]
fn an_untyped_name_takes_the_type_of_what_it_meets() {
    // `a` is assigned from `b`, `b` from `c`, and only the last probe says
    // what `c` holds: types flow along assignments, in any order, until
    // nothing new is learned.
    let m = module(
        "var a = {} var b = {} var c = {}\n\
         trace syscalls:sys_enter_write { a[1] = b[1] }\n\
         trace syscalls:sys_exit_write { b[1] = c[pid] }\n\
         trace syscalls:sys_enter_getppid { c[pid] = execname }",
    );
    assert_eq!([table(&m, "a"), table(&m, "b"), table(&m, "c")], [(Ty::Int, Ty::Comm); 3]);
    // Globals the same way; a string global always holds 64 bytes (ticks
    // and the main context may store longer strings), and an assignment
    // joins both sides: a string global from the main context widens the
    // table it is assigned from.
    let m = module(
        "var copy var seen var t = {}\n\
         trace syscalls:sys_enter_write { copy = seen }\n\
         trace syscalls:sys_exit_write { seen = t[pid] }\n\
         trace syscalls:sys_enter_getppid { t[pid] = execname }",
    );
    assert_eq!((global(&m, "copy"), global(&m, "seen")), (Ty::Str, Ty::Str));
    let m = module(
        "var seen = \"\" var t = {}\n\
         trace syscalls:sys_exit_write { seen = t[pid] }\n\
         trace syscalls:sys_enter_getppid { t[pid] = execname }",
    );
    assert_eq!((global(&m, "seen"), table(&m, "t")), (Ty::Str, (Ty::Int, Ty::Str)));
    // A comparison types an untyped table element from its other side.
    let m = module("var n = 0 var t = {} trace syscalls:sys_enter_write { if (t[pid] == execname) { n += 1 } }");
    assert_eq!(table(&m, "t"), (Ty::Int, Ty::Comm));
}

#[test]
fn function_results_have_one_type() {
    let m = module(
        "var t = {}\n\
         function name_of(x) { if (x > 1) { return execname } return \"short\" }\n\
         trace syscalls:sys_enter_write { t[name_of(pid)] += 1 }",
    );
    let (key, value) = table(&m, "t");
    assert!(key.is_string(), "{key:?}");
    assert_eq!(value, Ty::Int);
    let e = errors("var n = 0 function f(x) { if (x > 1) { return execname } return 1 } trace syscalls:sys_enter_write { n += f(pid) }");
    assert!(e.iter().any(|m| m.contains("`f` returns")), "{e:?}");
}

#[test]
fn conflicting_uses_are_errors_naming_the_name() {
    let e = errors("var n = 0 trace syscalls:sys_enter_write { n = stack() }");
    assert_eq!(e, ["`n` is given a stack trace here"]);
    let e = errors("var t = {} trace syscalls:sys_enter_write { t[pid] += 1 } trace syscalls:sys_exit_write { t[stack()] += 1 }");
    assert_eq!(e, ["table `t` is keyed by a stack trace here"]);
    let e = errors("var n = 0 trace syscalls:sys_enter_write { if (stack() == execname) { n += 1 } }");
    assert_eq!(e, ["comparing a stack trace with a string"]);
}

#[test]
fn a_number_where_strings_live_becomes_text_with_a_warning() {
    // The main context's uses count too: its string key makes the
    // probe's number key text.
    let c = support::compiles("var names = {} names[\"init\"] = 1 trace syscalls:sys_enter_write { names[pid] += 1 }");
    let w: Vec<&str> = c.warnings.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(w, ["table `names` is keyed by strings: this number key becomes its decimal text"]);
    assert_eq!(table(&c.module, "names").0, Ty::Str);
    let c = support::compiles("var t = {} trace syscalls:sys_enter_write { t[pid] = execname t[tid] = 0 }");
    let w: Vec<&str> = c.warnings.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(w, ["table `t` holds strings: this number becomes its decimal text"]);
    assert_eq!(table(&c.module, "t").1, Ty::Str);
    // Compared with a string, a number is its text too.
    let c = support::compiles("var n = 0 trace syscalls:sys_enter_write { if (pid == execname) { n += 1 } if (\"1\" != tid) { n += 2 } }");
    let w: Vec<&str> = c.warnings.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(w, ["comparing a number with a string: the number's decimal text is compared"; 2]);
}

#[test]
fn every_expression_agrees_with_what_it_reads() {
    // Whatever inference decided, the validator finds each read typed as
    // its declaration (it rejects a disagreement: tests/validate.rs).
    for src in [
        "var copy = \"\" var seen = \"\" var t = {}\n\
         trace syscalls:sys_enter_write { copy = seen }\n\
         trace syscalls:sys_exit_write { seen = t[pid] }\n\
         trace syscalls:sys_enter_getppid { t[pid] = execname print(copy, seen, t[1]) }",
        "var n = 0 function f(s) { if (s == \"bash\") { return \"a string returned from a function\" } return s }\n\
         trace syscalls:sys_enter_write { var a = f(execname) var b = f(user_string(arg2)) if (a == b) { n += 1 } }",
    ] {
        let m = module(src);
        let facts = ktap::ir::validate::validate(&m).unwrap_or_else(|e| panic!("{e}\n{src}"));
        assert_eq!(facts.probes.len(), m.probes.len());
    }
}
