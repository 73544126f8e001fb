//! Golden snapshots: each `tests/golden/<stage>/*.kp` input is run through
//! one stage and compared with the `.out` file beside it. Run with
//! `BLESS=1 cargo test --test golden` to rewrite the `.out` files.

use std::fs;
use std::path::{Path, PathBuf};

/// Runs `render` on every `.kp` file of `tests/golden/<stage>` and compares
/// (or, with BLESS set, rewrites) the `.out` snapshots.
fn check_stage(stage: &str, render: fn(&Path, &str) -> String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(stage);
    let bless = std::env::var_os("BLESS").is_some();
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "kp"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no .kp inputs in {}", dir.display());
    let mut failures = Vec::new();
    for input in &inputs {
        let src = fs::read_to_string(input).expect("read input");
        let actual = render(input, &src);
        let out_path = input.with_extension("out");
        if bless {
            fs::write(&out_path, &actual).expect("write snapshot");
            continue;
        }
        let expected = fs::read_to_string(&out_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {} (expected)\n{expected}\n+++ (actual)\n{actual}",
                out_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} snapshots differ (BLESS=1 rewrites them):\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

// One test per stage; each stage adds its line here.

mod support;

/// What a golden input compiles against: the fake catalogue, with a known
/// kernel BTF for inputs named `*_btf.kp`.
fn events(path: &Path) -> &'static dyn ktap::facts::KernelFacts {
    if file_name(path).ends_with("_btf.kp") {
        support::fake_kernel()
    } else {
        support::fake_events()
    }
}

/// The IR of each script, or its diagnostics when it does not compile.
fn render_ir(path: &Path, src: &str) -> String {
    match ktap::compile(src, events(path)) {
        Ok(c) if c.warnings.is_empty() => ktap::ir::print::module(&c.module),
        Ok(c) => ktap::frontend::diag::render(&file_name(path), src, &c.warnings, false) + &ktap::ir::print::module(&c.module),
        Err(ktap::CompileError::Diagnostics(d)) => ktap::frontend::diag::render(&file_name(path), src, &d, false),
        Err(ktap::CompileError::Limit(e)) => format!("limit: {e}\n"),
        Err(ktap::CompileError::Internal(e)) => format!("internal error: {e}\n"),
    }
}

/// The BPF of each script, disassembled with its source lines.
fn render_bpf(path: &Path, src: &str) -> String {
    match ktap::compile(src, events(path)) {
        Ok(c) => c
            .compiled
            .object
            .programs
            .iter()
            .zip(&c.compiled.programs)
            .map(|(p, info)| format!("{} ({})\n{}", p.name, p.section, ktap::bpfgen::listing::with_source(&p.insns, &info.spans, src)))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => render_ir(path, src),
    }
}

#[test]
fn ir() {
    check_stage("ir", render_ir);
}

#[test]
fn bpf() {
    check_stage("bpf", render_bpf);
}

/// The input's file name without its directory, as diagnostics show it.
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn tokens() {
    check_stage("tokens", |_, src| ktap::frontend::print::tokens(src));
}

#[test]
fn ast() {
    check_stage("ast", |path, src| {
        let (program, diags) = ktap::frontend::parse(src);
        let mut out = ktap::frontend::print::program(&program);
        if !diags.is_empty() {
            out.push_str("\n--- diagnostics ---\n");
            out.push_str(&ktap::frontend::diag::render(&file_name(path), src, &diags, false));
        }
        out
    });
}

#[test]
fn diag() {
    check_stage("diag", |path, src| {
        let (_, diags) = ktap::frontend::parse(src);
        ktap::frontend::diag::render(&file_name(path), src, &diags, false)
    });
}

/// Runs each script in userspace (main, then trace_end) and snapshots its
/// output, then `error: MESSAGE at LINE:COL` if it failed. A script may
/// carry `# args: a b` and `# max_steps: N` directive comments.
#[test]
fn run() {
    use ktap::runtime::interp::{run_userspace, Options, Outcome};

    fn directive(src: &str, key: &str) -> Option<String> {
        src.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    }

    check_stage("run", |path, src| {
        let name = file_name(path);
        let (program, diags) = ktap::frontend::parse(src);
        if diags.iter().any(|d| d.is_error()) {
            return ktap::frontend::diag::render(&name, src, &diags, false);
        }
        let mut opts = Options { script_path: name.clone(), ..Options::default() };
        if let Some(args) = directive(src, "# args:") {
            opts.args = args.split_whitespace().map(str::to_string).collect();
        }
        if let Some(n) = directive(src, "# max_steps:") {
            opts.max_steps = n.parse().expect("max_steps directive");
        }
        let sink = support::Sink::default();
        let result = run_userspace(&program, opts, Box::new(sink.clone()));
        let mut out = sink.text();
        match result {
            Ok(Outcome::Done) => {}
            Ok(other) => out.push_str(&format!("outcome: {other:?}\n")),
            Err(e) => {
                let at = match e.span {
                    Some(s) => {
                        let loc = ktap::frontend::diag::location(&name, src, s.start);
                        format!(" at {}", loc.trim_start_matches(&format!("{name}:")))
                    }
                    None => String::new(),
                };
                out.push_str(&format!("error: {}{at}\n", e.message));
            }
        }
        out
    });
}

/// `-b SIZE` reaches the event ring buffer's map and nothing else.
#[test]
fn event_buffer_size() {
    let src = "trace syscalls:sys_enter_getppid { printf(\"%d\\n\", pid) }";
    let ring = |opts: &ktap::Options| {
        let c = ktap::compile_with(src, support::fake_events(), opts).unwrap_or_else(|_| panic!("compiles"));
        let m = c.module.events.map(|id| &c.module.maps[id.0 as usize]).expect("an event ring buffer");
        (m.kind, m.max_entries)
    };
    assert_eq!(ring(&ktap::Options::default()), (ktap::ir::MapKind::RingBuf, 16 << 20));
    assert_eq!(ring(&ktap::Options { event_buffer_bytes: 1 << 20, ..Default::default() }), (ktap::ir::MapKind::RingBuf, 1 << 20));
    let c = ktap::compile_with("var n = 0 trace syscalls:sys_enter_getppid { n += 1 }", support::fake_events(), &ktap::Options { event_buffer_bytes: 4096, ..Default::default() })
        .unwrap_or_else(|_| panic!("compiles"));
    assert!(c.module.events.is_none(), "a script that prints nothing has no ring buffer");
}
