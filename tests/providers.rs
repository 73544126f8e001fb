//! Each probe kind lives in its homes (ARCHITECTURE.md, "How to add a
//! provider"): its variants of `ir::Attach`, `ir::ProgKind` and
//! `ast::EventKind` are named only in `ir/attach.rs`, the frontend's
//! `providers/`, the runtime's `attach/` and the AST with its dump, so
//! the rest of the compiler stays kind-agnostic. Reads files only.

use std::fs;
use std::path::PathBuf;

/// Every `.rs` file under `src/`, as paths relative to it.
fn sources() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(fs::read_dir(&p).expect("read dir").map(|e| e.expect("dir entry").path()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(&root).expect("under src").display().to_string();
            out.push((rel, fs::read_to_string(&p).expect("read source")));
        }
    }
    out
}

/// Uses of a variant (`Attach::Kprobe`, not a method like `Attach::kind`)
/// of the kind enums in code (comments skipped).
fn variant_uses(text: &str) -> usize {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .map(|code| {
            ["Attach::", "ProgKind::", "EventKind::"]
                .iter()
                .flat_map(|e| code.match_indices(e).map(move |(i, _)| &code[i + e.len()..]))
                .filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
                .count()
        })
        .sum()
}

#[test]
fn probe_kinds_are_named_only_in_their_homes() {
    let homes = ["ir/attach.rs", "frontend/providers/", "runtime/attach/", "frontend/ast.rs", "frontend/print.rs"];
    let mut at_home = 0;
    let mut strays = Vec::new();
    for (path, text) in sources() {
        let n = variant_uses(&text);
        if homes.iter().any(|h| path.starts_with(h)) {
            at_home += n;
        } else if n > 0 {
            strays.push(format!("{path}: {n}"));
        }
    }
    assert!(strays.is_empty(), "probe kinds named outside their homes: {strays:?}");
    // The scan sees the kinds where they live, so it can fail.
    assert!(at_home >= 40, "only {at_home} uses found at home");
}

#[test]
fn the_scan_sees_variants_not_methods() {
    assert_eq!(variant_uses("let k = Attach::Kprobe { symbol, ret, spec };"), 1);
    assert_eq!(variant_uses("a.kind() == ProgKind::SysEnter || x == EventKind::Sdt"), 2);
    assert_eq!(variant_uses("p.attach.iter().map(Attach::describe) // Attach::Uprobe"), 0);
}
