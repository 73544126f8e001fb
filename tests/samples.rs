//! Every sample script compiles and its programs pass the kernel verifier
//! (`ktap -d` loads without attaching). Needs root; says so when skipped.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn samples(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("samples dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            samples(&p, out);
        } else if p.extension().is_some_and(|x| x == "kp") {
            out.push(p);
        }
    }
}

#[test]
fn every_sample_loads() {
    if !support::is_root() {
        eprintln!("skipped: loading BPF needs root");
        return;
    }
    let mut all = Vec::new();
    samples(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/samples"), &mut all);
    all.sort();
    assert!(all.len() >= 5, "samples missing: {all:?}");
    let mut failed = Vec::new();
    for s in &all {
        let out = Command::new(env!("CARGO_BIN_EXE_ktap")).arg("-d").arg(s).output().expect("run ktap");
        if !out.status.success() {
            failed.push(format!("{}:\n{}", s.display(), String::from_utf8_lossy(&out.stderr)));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
