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
