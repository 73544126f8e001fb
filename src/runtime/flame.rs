//! Flame graphs from stack tables: stacks as folded lines (root first,
//! frames separated by `;`, then the count) and the SVG flame graph drawn
//! from them by inferno. Writes only the files it is given; never
//! symbolizes or reads the kernel itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ir::{Module, Ty};
use crate::runtime::symbols::Frame;

/// A flame graph or folded file that could not be written.
#[derive(Debug)]
pub enum Error {
    Write { path: PathBuf, source: std::io::Error },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Write { path, source } => write!(f, "cannot write {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// The tables whose keys are stacks (`s[stack()] += 1`, `ustack()`).
pub fn stack_tables(module: &Module) -> Vec<&str> {
    module
        .maps
        .iter()
        .filter_map(|m| m.table.as_ref())
        .filter(|t| matches!(t.key, Ty::Stack { .. }))
        .map(|t| t.var.as_str())
        .collect()
}

/// One frame as folded stacks spell it: kernel functions with inferno's
/// `_[k]` annotation (`vfs_read_[k]`), user functions after their binary
/// or library (`libc.so.6`malloc`); `;` never appears inside a frame.
pub fn frame_name(f: &Frame, kernel: bool) -> String {
    let name = f.name.replace(';', ":");
    match (&f.module, kernel) {
        (_, true) => format!("{name}_[k]"),
        (Some(m), false) => format!("{}`{name}", m.replace(';', ":")),
        (None, false) => name,
    }
}

/// Folded stacks: identical stacks (once offsets are gone) add up.
#[derive(Default)]
pub struct Folded(BTreeMap<String, u64>);

impl Folded {
    /// Adds `count` samples of a stack given innermost frame first.
    pub fn add(&mut self, innermost_first: &[String], count: u64) {
        if count == 0 || innermost_first.is_empty() {
            return;
        }
        let line: Vec<&str> = innermost_first.iter().rev().map(String::as_str).collect();
        *self.0.entry(line.join(";")).or_default() += count;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lines, `frame;frame;frame count`, sorted.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(|(stack, n)| format!("{stack} {n}")).collect()
    }

    /// Writes the folded lines to `path`.
    pub fn write_folded(&self, path: &Path) -> Result<(), Error> {
        let mut text = self.lines().join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|source| Error::Write { path: path.into(), source })
    }

    /// Draws the flame graph of these stacks into `path` (an SVG titled
    /// `title`).
    pub fn write_svg(&self, path: &Path, title: &str) -> Result<(), Error> {
        let err = |source| Error::Write { path: path.into(), source };
        let file = std::fs::File::create(path).map_err(err)?;
        let mut w = std::io::BufWriter::new(file);
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = title.to_string();
        opts.count_name = "samples".to_string();
        let lines = self.lines();
        if lines.is_empty() {
            // inferno refuses empty input; an empty graph says "no samples".
            opts.subtitle = Some("no samples".to_string());
            let empty = ["[no samples] 1"];
            inferno::flamegraph::from_lines(&mut opts, empty.iter().copied(), &mut w).map_err(err)?;
        } else {
            inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut w).map_err(err)?;
        }
        w.flush().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_module() {
        let k = Frame { name: "vfs_read".into(), module: None };
        let u = Frame { name: "a;b".into(), module: Some("libc.so.6".into()) };
        assert_eq!(frame_name(&k, true), "vfs_read_[k]");
        assert_eq!(frame_name(&u, false), "libc.so.6`a:b");
        assert_eq!(frame_name(&Frame { name: "0x10".into(), module: None }, false), "0x10");
    }

    #[test]
    fn folded_lines_are_root_first_and_merged() {
        let mut f = Folded::default();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        f.add(&s(&["leaf", "mid", "main"]), 3);
        f.add(&s(&["leaf", "mid", "main"]), 2);
        f.add(&s(&["other", "main"]), 1);
        f.add(&s(&["never"]), 0);
        assert_eq!(f.lines(), ["main;mid;leaf 5", "main;other 1"]);
        let dir = std::env::temp_dir().join(format!("ktap-flame-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let svg = dir.join("f.svg");
        f.write_svg(&svg, "t").expect("svg written");
        let text = std::fs::read_to_string(&svg).expect("svg read");
        assert!(text.contains("<svg") && text.contains("leaf") && text.trim_end().ends_with("</svg>"), "{text}");
        Folded::default().write_svg(&svg, "t").expect("an empty graph is drawn too");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
