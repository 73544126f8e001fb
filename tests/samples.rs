//! Every sample script parses (without root) and compiles, its programs
//! passing the kernel verifier (`ktap -d` loads without attaching; needs
//! root, says so when skipped).

mod support;

use std::path::{Path, PathBuf};

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
    let mut all = Vec::new();
    samples(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/samples"), &mut all);
    all.sort();
    assert!(all.len() >= 5, "samples missing: {all:?}");
    // The half without root: each parses cleanly (compiling needs the
    // machine's events).
    for s in &all {
        let src = std::fs::read_to_string(s).expect("read sample");
        let (_, diags) = ktap::frontend::parse(&src);
        assert!(diags.is_empty(), "{}: {diags:?}", s.display());
    }
    if !support::need_root() {
        return;
    }
    let mut failed = Vec::new();
    for s in &all {
        let run = support::ktap(&["-d", s.to_str().expect("utf-8 path")]);
        if run.code != Some(0) {
            failed.push(format!("{}:\n{}", s.display(), run.stderr));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
