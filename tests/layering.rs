//! Who may import whom (ARCHITECTURE.md, "Layers"): scans the sources for
//! `crate::` and `super::` paths that cross a layer the wrong way. Reads
//! files only.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/<rel>` (or `src/<rel>` itself).
fn sources(rel: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src").join(rel);
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(fs::read_dir(&p).expect("read dir").map(|e| e.expect("dir entry").path()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    assert!(!out.is_empty(), "no sources under src/{rel}");
    out.sort();
    out
}

/// The modules a line of code names through `crate::` (`crate::frontend::ast`,
/// `crate::{ir, runtime}`) or after `super::` (a sibling, or a top-level
/// module from a layer's root); comments skipped.
fn crate_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let starts = code.match_indices("crate::").map(|(i, m)| i + m.len());
    let supers = code.match_indices("super::").map(|(i, m)| i + m.len()).filter(|&i| !code[i..].starts_with("super::"));
    for i in starts.chain(supers) {
        let rest = &code[i..];
        let names = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').map(str::trim).collect(),
            None => vec![rest],
        };
        for n in names {
            let end = n.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(n.len());
            found.push(n[..end].to_string());
        }
    }
    found
}

/// Lines of `path` that import one of `banned` (a module, or a module
/// path prefix like `frontend::lower`).
fn violations(path: &Path, banned: &[&str], allowed: &[&str]) -> Vec<String> {
    let text = fs::read_to_string(path).expect("read source");
    let mut bad = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let hits = crate_modules(line).into_iter().any(|m| banned.contains(&m.as_str()));
        let excused = allowed.iter().any(|a| code.contains(a));
        if hits && !excused {
            bad.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
        }
    }
    bad
}

fn check(layer: &str, banned: &[&str], allowed: &[&str]) {
    let bad: Vec<String> = sources(layer).iter().flat_map(|p| violations(p, banned, allowed)).collect();
    assert!(bad.is_empty(), "src/{layer} imports from {banned:?}:\n{}", bad.join("\n"));
}

#[test]
fn the_core_imports_nothing_from_the_frontend_or_the_runtime() {
    check("span.rs", &["frontend", "runtime", "facts", "ir", "bpfgen", "btf"], &[]);
    check("ir", &["frontend", "runtime", "facts", "bpfgen"], &[]);
    check("bpfgen", &["frontend", "runtime", "facts"], &[]);
    check("btf", &["frontend", "runtime", "facts", "bpfgen"], &[]);
    check("facts", &["frontend", "runtime", "bpfgen"], &[]);
}

#[test]
fn the_frontend_does_not_reach_into_the_runtime() {
    check("frontend", &["runtime", "bpfgen"], &[]);
}

#[test]
fn the_runtime_uses_only_the_frontends_syntax_tree() {
    // The interpreter runs the AST itself; the text output renders
    // run-time errors as the compiler renders diagnostics; tests parse
    // scripts; the tapset loader parses tapsets and hands them to the
    // linker. Nothing else of the frontend.
    check("runtime", &["frontend"], &["crate::frontend::ast", "crate::frontend::diag", "crate::frontend::parse", "crate::frontend::tapset"]);
}

#[test]
fn the_scanner_sees_imports() {
    assert_eq!(crate_modules("use crate::frontend::ast::Span;"), ["frontend"]);
    assert_eq!(crate_modules("use crate::{ir, runtime::tracefs};"), ["ir", "runtime"]);
    assert_eq!(crate_modules("    let x = 1; // crate::frontend"), Vec::<String>::new());
    assert_eq!(crate_modules("use super::super::frontend::ast;"), ["frontend"]);
}
