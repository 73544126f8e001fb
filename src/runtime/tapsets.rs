//! The tapset loader: finds `NS.kp` on the search path (`-I` directories,
//! then `KTAP_PATH`, then the tapsets installed with ktap), reads and
//! parses each tapset a script uses (and the ones those use, refusing
//! cycles), and hands them to `frontend::tapset::link`. Its only IO is
//! reading directories and files; it never prints and never panics.

use std::path::{Path, PathBuf};

use crate::frontend::ast::{Program, Span};
use crate::frontend::diag::{Diagnostic, Sources};
use crate::frontend::tapset::{self, Library};

/// Where tapsets are looked for, in order.
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    pub dirs: Vec<PathBuf>,
}

impl SearchPath {
    /// `-I` directories, then `KTAP_PATH`'s (colon-separated, empty parts
    /// skipped), then the shipped tapsets relative to the binary: an
    /// installed `PREFIX/bin/ktap` finds `PREFIX/share/ktap/tapsets`, a
    /// build in `target/*/ktap` the source tree's `scripts/tapsets`.
    pub fn new(include: &[PathBuf], ktap_path: Option<&std::ffi::OsStr>, exe: Option<&Path>) -> SearchPath {
        let mut dirs: Vec<PathBuf> = include.to_vec();
        if let Some(p) = ktap_path {
            dirs.extend(std::env::split_paths(p).filter(|d| !d.as_os_str().is_empty()));
        }
        dirs.extend(shipped_dirs(exe));
        SearchPath { dirs }
    }

    /// The file of namespace `ns`: the first directory that has `ns.kp`.
    pub fn find(&self, ns: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(format!("{ns}.kp"))).find(|p| p.is_file())
    }

    /// Every namespace on the path (for suggestions), sorted.
    pub fn available(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".kp")).map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The shipped tapsets' directories, for a binary at `exe`.
fn shipped_dirs(exe: Option<&Path>) -> Vec<PathBuf> {
    let Some(bin) = exe.and_then(Path::parent) else { return Vec::new() };
    let mut dirs = vec![bin.join("../share/ktap/tapsets")];
    // target/debug/ktap, target/release/ktap, target/<triple>/release/ktap.
    for up in ["../../scripts/tapsets", "../../../scripts/tapsets"] {
        dirs.push(bin.join(up));
    }
    dirs.into_iter().filter_map(|d| std::fs::canonicalize(d).ok()).filter(|d| d.is_dir()).collect()
}

/// The script with every tapset it uses linked in.
pub struct Linked {
    pub program: Program,
    /// The script and each tapset's text, for rendering diagnostics.
    pub sources: Sources,
    /// Loading and linking errors (none: `program` is ready to compile).
    pub diags: Vec<Diagnostic>,
}

/// A tapset being loaded.
struct Loading {
    namespace: String,
    path: PathBuf,
    /// The tapsets it uses, each with where.
    deps: Vec<(String, Span)>,
}

/// Loads the tapsets `program` (the script, already parsed; its text is
/// `sources`' first file) uses, transitively, and links them in.
pub fn load(program: Program, mut sources: Sources, path: &SearchPath) -> Linked {
    let mut diags = Vec::new();
    let mut loaded: Vec<Loading> = Vec::new();
    let mut libraries: Vec<Library> = Vec::new();
    // (namespace, use, the namespace using it: None for the script).
    let mut todo: Vec<(tapset::Use, Option<String>)> = tapset::uses(&program, None).into_iter().map(|u| (u, None)).collect();
    todo.reverse();
    // Namespaces with no file on the path, and those reported so.
    let mut absent: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut available: Option<Vec<String>> = None;
    while let Some((u, by)) = todo.pop() {
        if let Some(user) = by.as_ref().and_then(|b| loaded.iter_mut().find(|l| &l.namespace == b)) {
            if !user.deps.iter().any(|(d, _)| *d == u.namespace) {
                user.deps.push((u.namespace.clone(), u.span));
            }
        }
        if loaded.iter().any(|l| l.namespace == u.namespace) || missing.contains(&u.namespace) {
            continue;
        }
        let found = if absent.contains(&u.namespace) { None } else { path.find(&u.namespace) };
        let Some(file) = found else {
            if !absent.contains(&u.namespace) {
                absent.push(u.namespace.clone());
            }
            // `x.f()` on nothing the script declares is a tapset call;
            // `x.NAME` may be an event's field: only calls must resolve.
            if !u.call || u.shadowed {
                continue;
            }
            missing.push(u.namespace.clone());
            {
                let names = available.get_or_insert_with(|| path.available());
                let mut d = Diagnostic::error(u.span, format!("unknown tapset `{}`", u.namespace))
                    .with_label(format!("no {}.kp on the tapset path", u.namespace))
                    .with_note(format!("the tapset path is: {}", describe(path)));
                if let Some(n) = tapset::near(&u.namespace, names.iter().map(String::as_str)) {
                    d = d.with_note(format!("did you mean `{n}.{}`?", u.member));
                }
                diags.push(d);
            }
            continue;
        };
        let text = match read(&file) {
            Ok(t) => t,
            Err(e) => {
                missing.push(u.namespace.clone());
                diags.push(Diagnostic::error(u.span, format!("cannot read tapset `{}`: {e}", u.namespace)).with_label("used here"));
                continue;
            }
        };
        let base = sources.add(file.display().to_string(), text.as_str(), &u.namespace, u.span);
        let (lib, parse_diags) = crate::frontend::parse_at(&text, base);
        diags.extend(parse_diags);
        let mut next: Vec<(tapset::Use, Option<String>)> =
            tapset::uses(&lib, Some(&u.namespace)).into_iter().filter(|n| !n.shadowed).map(|n| (n, Some(u.namespace.clone()))).collect();
        next.reverse();
        todo.extend(next);
        loaded.push(Loading { namespace: u.namespace.clone(), path: file, deps: Vec::new() });
        libraries.push(Library { namespace: u.namespace, program: lib });
    }
    if let Some(d) = cycle(&loaded) {
        diags.push(d);
    }
    if diags.iter().any(Diagnostic::is_error) {
        return Linked { program, sources, diags };
    }
    let (program, link_diags) = tapset::link(program, libraries);
    diags.extend(link_diags);
    Linked { program, sources, diags }
}

/// Why a tapset file could not be read.
#[derive(Debug)]
pub enum Error {
    Read { path: PathBuf, source: std::io::Error },
    NotUtf8 { path: PathBuf, valid_up_to: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Read { path, source } => write!(f, "{}: {source}", path.display()),
            Error::NotUtf8 { path, valid_up_to } => write!(f, "{} is not valid UTF-8 (at byte {valid_up_to})", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::NotUtf8 { .. } => None,
        }
    }
}

/// A tapset's text.
fn read(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|e| Error::NotUtf8 { path: path.to_path_buf(), valid_up_to: e.utf8_error().valid_up_to() })
}

fn describe(path: &SearchPath) -> String {
    if path.dirs.is_empty() {
        return "empty (add directories with -I DIR or KTAP_PATH)".into();
    }
    path.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
}

/// The first cycle of tapsets using each other, as an error at the use
/// that closes it.
fn cycle(loaded: &[Loading]) -> Option<Diagnostic> {
    fn walk(loaded: &[Loading], at: usize, stack: &mut Vec<usize>, done: &mut Vec<bool>) -> Option<(Vec<usize>, Span)> {
        stack.push(at);
        for (dep, span) in &loaded[at].deps {
            let Some(d) = loaded.iter().position(|l| &l.namespace == dep) else { continue };
            if let Some(i) = stack.iter().position(|&s| s == d) {
                let mut ring = stack[i..].to_vec();
                ring.push(d);
                return Some((ring, *span));
            }
            if !done[d] {
                if let Some(found) = walk(loaded, d, stack, done) {
                    return Some(found);
                }
            }
        }
        stack.pop();
        done[at] = true;
        None
    }
    let mut done = vec![false; loaded.len()];
    for i in 0..loaded.len() {
        if !done[i] {
            if let Some((ring, span)) = walk(loaded, i, &mut Vec::new(), &mut done) {
                let names: Vec<&str> = ring.iter().map(|&i| loaded[i].namespace.as_str()).collect();
                let files: Vec<String> = ring.iter().take(ring.len() - 1).map(|&i| loaded[i].path.display().to_string()).collect();
                return Some(
                    Diagnostic::error(span, format!("tapsets use each other in a cycle: {}", names.join(" -> ")))
                        .with_label("this use closes the cycle")
                        .with_note(format!("files: {}", files.join(", "))),
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_include_then_env_then_shipped() {
        let p = SearchPath::new(&[PathBuf::from("/a"), PathBuf::from("/b")], Some(std::ffi::OsStr::new("/c::/d")), None);
        assert_eq!(p.dirs, [PathBuf::from("/a"), PathBuf::from("/b"), PathBuf::from("/c"), PathBuf::from("/d")]);
    }
}
