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
