//! User-space types from DWARF against the live kernel: a C program
//! (`tests/dwarf/shapes.c`) built here with `gcc -g` at -O0 and -O2, and
//! once more with its debug info in a separate file (`objcopy
//! --only-keep-debug` and a `.gnu_debuglink`), probed by name: parameters
//! with member chains, arrays and strings, `%return` with a struct pointer,
//! a source-line probe reading a loop counter, fetch arguments mixed in,
//! listings, and every bad input an error at its span. Compiling needs no
//! root; running does, and says so when it skips.

mod support;
use support::{ktap, ktap_with_input, need_root, Run};

use std::path::PathBuf;
use std::process::Command;

fn source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dwarf/shapes.c")
}

/// Where a build's debug info goes.
#[derive(Clone, Copy, PartialEq)]
enum Split {
    /// Stays in the binary.
    No,
    /// Moves to `ktap-dwarf-NAME.debug` next to it (`.gnu_debuglink`).
    NextToIt,
    /// Moves to `.debug/ktap-dwarf-NAME.debug` below its directory.
    DotDebug,
}

/// Builds shapes.c with `flags` as `ktap-dwarf-NAME` (once per change),
/// its debug info where `split` says.
fn build(name: &str, flags: &[&str], split: Split) -> PathBuf {
    let src = source();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ktap-dwarf-{name}"));
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = out.metadata().and_then(|m| m.modified()).ok() >= src.metadata().and_then(|m| m.modified()).ok();
    if out.exists() && fresh {
        return out;
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let st = Command::new("gcc").args(flags).arg("-o").arg(&tmp).arg(&src).status().expect("gcc runs");
    assert!(st.success(), "gcc failed on {}", src.display());
    if split != Split::No {
        let debug = out.with_file_name(format!("ktap-dwarf-{name}.debug"));
        let run = |args: &[&std::ffi::OsStr]| {
            let st = Command::new("objcopy").args(args).status().expect("objcopy runs");
            assert!(st.success(), "objcopy {args:?}");
        };
        run(&["--only-keep-debug".as_ref(), tmp.as_os_str(), debug.as_os_str()]);
        let link = format!("--add-gnu-debuglink={}", debug.display());
        run(&["--strip-debug".as_ref(), link.as_ref(), tmp.as_os_str()]);
        if split == Split::DotDebug {
            let dir = out.with_file_name(".debug");
            std::fs::create_dir_all(&dir).expect("mkdir .debug");
            std::fs::rename(&debug, dir.join(debug.file_name().expect("a name"))).expect("move the debug file");
        }
    }
    std::fs::rename(&tmp, &out).expect("rename program");
    out
}

fn o0() -> PathBuf {
    build("O0", &["-g", "-O0"], Split::No)
}

fn o2() -> PathBuf {
    build("O2", &["-g", "-O2"], Split::No)
}

/// The line of shapes.c holding `marker`.
fn line_of(marker: &str) -> usize {
    let text = std::fs::read_to_string(source()).expect("read shapes.c");
    text.lines().position(|l| l.contains(marker)).expect("marker in shapes.c") + 1
}

fn with_bin(script: &str, bin: &std::path::Path) -> String {
    script
        .replace("{BIN}", bin.to_str().expect("utf8"))
        .replace("{LOOP}", &line_of("/* LOOP */").to_string())
        .replace("{AFTER}", &line_of("/* AFTER */").to_string())
}

/// The compile half, which needs no root: the script compiles; its IR.
fn compiles(script: &str, bin: &std::path::Path) -> String {
    let script = with_bin(script, bin);
    let run = ktap(&["--emit", "ir", "-e", &script]);
    assert_eq!(run.code, Some(0), "does not compile: {script}\n{}", run.stderr);
    run.stdout
}

fn compile_error(script: &str, bin: &std::path::Path) -> String {
    let script = with_bin(script, bin);
    let run = ktap(&["--emit", "ir", "-e", &script]);
    assert_eq!(run.code, Some(1), "accepted: {script}\n{}", run.stdout);
    run.stderr
}

/// Runs the script over `shapes COUNT`, started on its stdin line; the
/// probes' lines, sorted.
fn run(script: &str, bin: &std::path::Path, count: u32) -> Vec<String> {
    let script = with_bin(script, bin);
    let r: Run = ktap_with_input(&["-q", "-e", &script, "--", bin.to_str().expect("utf8"), &count.to_string()], "go\n");
    assert_eq!(r.code, Some(0), "{script}\nstderr: {}", r.stderr);
    let mut lines: Vec<String> = r.stdout.lines().filter(|l| !l.starts_with("done ")).map(str::to_string).collect();
    lines.sort();
    lines
}

const AREA: &str = "trace probe:{BIN}:dw_area { printf(\"area %d %d %d %s %s %d %d %s %d\\n\", args.scale, args.s.origin.x, args.s->origin.y, args.s->name, args.s.tag, args.s.sides[2], args.s.area, args.label, args.s.next.origin.y) }";

fn area_lines(count: i64) -> Vec<String> {
    let mut want: Vec<String> = (1..=count).map(|i| format!("area {i} 3 -4 square sq {i} 16 big 6")).collect();
    want.sort();
    want
}

#[test]
fn parameters_with_members_arrays_and_strings_at_o0_and_o2() {
    for bin in [o0(), o2()] {
        let ir = compiles(AREA, &bin);
        assert!(ir.contains("(user read)"), "user memory is read with bpf_probe_read_user:\n{ir}");
        if !need_root() {
            return;
        }
        assert_eq!(run(AREA, &bin, 3), area_lines(3), "{}", bin.display());
    }
}

#[test]
fn o0_parameters_are_read_after_the_prologue() {
    let bin = o0();
    let ir = compiles("trace probe:{BIN}:dw_area { print(args.scale) }", &bin);
    let plain = compiles("trace probe:{BIN}:dw_area { print(arg1) }", &bin);
    let at = |ir: &str| ir.lines().find(|l| l.starts_with("probe ")).map(str::to_string).expect("a probe line");
    assert_ne!(at(&ir), at(&plain), "a frame parameter moves the probe past the prologue");
    // At -O2 the parameters are in registers at the entry.
    let bin = o2();
    let ir = compiles("trace probe:{BIN}:dw_area { print(args.scale) }", &bin);
    let plain = compiles("trace probe:{BIN}:dw_area { print(arg1) }", &bin);
    assert_eq!(at(&ir), at(&plain));
}

#[test]
fn return_probes_type_retval_as_a_struct_pointer() {
    let script = "trace probe:{BIN}:dw_make%return { printf(\"make %d %d %s %d\\n\", retval.origin.x, retval->origin.y, retval.name, retval.area) }";
    for bin in [o0(), o2()] {
        compiles(script, &bin);
        if !need_root() {
            return;
        }
        let mut want: Vec<String> = (1..=3).map(|i| format!("make {i} 7 made {}", i * 7)).collect();
        want.sort();
        assert_eq!(run(script, &bin, 3), want, "{}", bin.display());
    }
}

#[test]
fn a_source_line_probe_reads_the_loop_counter_at_each_iteration() {
    let script = "trace probe:{BIN}:shapes.c:{LOOP} { printf(\"i %d n %d total %d\\n\", args.i, args.n, args.total) }";
    for bin in [o0(), o2()] {
        compiles(script, &bin);
        if !need_root() {
            return;
        }
        // dw_sum(3) per round: total is 0, 0+0, 0+1 before each iteration's add.
        let mut want: Vec<String> = (0..2).flat_map(|_| ["i 0 n 3 total 0", "i 1 n 3 total 0", "i 2 n 3 total 1"]).map(str::to_string).collect();
        want.sort();
        assert_eq!(run(script, &bin, 2), want, "{}", bin.display());
    }
}

#[test]
fn separate_debug_files_are_found_by_debuglink() {
    for (name, split, at) in [("split", Split::NextToIt, "/ktap-dwarf-split.debug"), ("dotdebug", Split::DotDebug, "/.debug/ktap-dwarf-dotdebug.debug")] {
        let bin = build(name, &["-g", "-O2"], split);
        let listed = ktap(&["-lv", &format!("probe:{}:dw_area", bin.display())]);
        assert_eq!(listed.code, Some(0), "{}", listed.stderr);
        assert!(listed.stdout.contains(&format!("{at})")), "read from {at}:\n{}", listed.stdout);
        compiles(AREA, &bin);
        if !need_root() {
            return;
        }
        assert_eq!(run(AREA, &bin, 2), area_lines(2));
    }
}

#[test]
fn fetch_arguments_mix_with_named_parameters() {
    let script = "trace probe:{BIN}:dw_area sc=%si:s32 { printf(\"%d %d %d\\n\", args.sc, args.scale, arg1) }";
    for bin in [o0(), o2()] {
        compiles(script, &bin);
        if !need_root() {
            return;
        }
        assert_eq!(run(script, &bin, 2), ["1 1 1", "2 2 2"], "{}", bin.display());
    }
}

#[test]
fn listings_show_parameters_and_lines() {
    let bin = o0();
    let r = ktap(&["-lv", &format!("probe:{}:dw_area", bin.display())]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // -O0: frame slots (DW_OP_fbreg against the CFA, %bp + 16 after the
    // prologue); -O2: the entry registers.
    for want in ["s: struct shape *  at -24(%bp)", "scale: int  at -28(%bp)", "label: const char *  at -40(%bp)", "retval: long int"] {
        assert!(r.stdout.contains(want), "no `{want}` in\n{}", r.stdout);
    }
    let r = ktap(&["-lv", &format!("probe:{}:dw_area", o2().display())]);
    for want in ["s: struct shape *  at %di", "scale: int  at %si", "label: const char *  at %dx"] {
        assert!(r.stdout.contains(want), "no `{want}` in\n{}", r.stdout);
    }
    let r = ktap(&["-lv", &format!("probe:{}:shapes.c:*", bin.display())]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let spec = format!("probe:{}:shapes.c:{}", bin.display(), line_of("/* LOOP */"));
    assert!(r.stdout.lines().any(|l| l == spec), "no `{spec}` in\n{}", r.stdout);
    assert!(r.stdout.contains("in dw_sum at 0x"), "{}", r.stdout);
}

#[test]
fn bad_input_is_an_error_at_its_span() {
    let bin = o0();
    let e = compile_error("trace probe:{BIN}:dw_area { print(args.scal) }", &bin);
    assert!(e.contains("`dw_area` has no argument `scal`") && e.contains("did you mean `scale`?"), "{e}");
    assert!(e.contains(":1:"), "at a line and column: {e}");
    let e = compile_error("trace probe:{BIN}:dw_area { print(args.scale.x) }", &bin);
    assert!(e.contains("`args.scale` is an `int`, which has no members"), "{e}");
    let e = compile_error("trace probe:{BIN}:dw_area { print(args.s.origin.z) }", &bin);
    assert!(e.contains("`struct point` has no member `z`"), "{e}");
    let e = compile_error("trace probe:{BIN}:shapes.c:1 { print(1) }", &bin);
    assert!(e.contains("shapes.c:1 has no code"), "{e}");
    let e = compile_error("trace probe:{BIN}:shapes.c:{LOOP} { print(args.j) }", &bin);
    assert!(e.contains("has no argument or local `j`") && e.contains("did you mean `i`"), "{e}");
    let e = compile_error("trace probe:{BIN}:dw_make%return { print(args.x) }", &bin);
    assert!(e.contains("cannot be read in a %return probe"), "{e}");
    let e = compile_error("trace probe:{BIN}:dw_area { print(args.s.origin) }", &bin);
    assert!(e.contains("`args.s.origin` is a whole `struct point`, not a value"), "{e}");
    // -O2, after a call: the parameters' registers are gone.
    let e = compile_error("trace probe:{BIN}:shapes.c:{AFTER} { print(args.s) }", &o2());
    assert!(e.contains("cannot read `s`: its DWARF location (DW_OP_entry_value"), "{e}");
    // No debug info: where ktap looked.
    let plain = build("nodebug", &["-O2"], Split::No);
    let e = compile_error("trace probe:{BIN}:dw_area { print(args.scale) }", &plain);
    assert!(e.contains("this probe has no argument `scale`") && e.contains("no debug info for") && e.contains("looked in"), "{e}");
    assert!(e.contains("ktap-dwarf-nodebug (no .debug_info)") && e.contains("no .gnu_debuglink"), "{e}");
}

#[test]
fn member_chains_named_in_the_spec_read_as_their_members() {
    // perf probe's habit: a fetch argument that is a member chain of a
    // parameter, named in the spec and read as `args.NAME`.
    let script = "trace probe:{BIN}:dw_area nm=s->name:string y=s.next->origin.y o=s->origin sc=scale { printf(\"%s %d %d %d %d\\n\", args.nm, args.y, args.o.x, args.sc, args.s.area) }";
    for bin in [o0(), o2()] {
        let ir = compiles(script, &bin);
        assert!(ir.contains("(user read)"), "{ir}");
        let err = compile_error("trace probe:{BIN}:dw_area nm=s->nmae { print(args.nm) }", &bin);
        assert!(err.contains("has no member `nmae`") && err.contains("did you mean `name`?"), "{err}");
        let err = compile_error("trace probe:{BIN}:dw_area nm=s->area:u32 { print(args.nm) }", &bin);
        assert!(err.contains("a member chain takes its type from the debug info or BTF"), "{err}");
        let err = compile_error("trace probe:{BIN}:dw_area nm=q->name { print(args.nm) }", &bin);
        assert!(err.contains("`dw_area` has no argument `q`"), "{err}");
        if !need_root() {
            return;
        }
        let want: Vec<String> = (1..=3).map(|i| format!("square 6 3 {i} 16")).collect();
        assert_eq!(run(script, &bin, 3), want, "{}", bin.display());
        // Unnamed, a chain is named after its last member.
        let bare = "trace probe:{BIN}:dw_area s->name:string s.next->origin.y { printf(\"%s %d\\n\", args.name, args.y) }";
        assert_eq!(run(bare, &bin, 2), ["square 6", "square 6"], "{}", bin.display());
    }
}
