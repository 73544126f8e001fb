//! What `-le`, `-lf` and `-lm` list: the events a script can name after
//! `trace`, spelled as a script spells them, with fields and argument types
//! for `-v` (a user function's parameters with their types and locations
//! from its debug info; a source file's probeable lines). Each event kind is one entry of [`KINDS`] with its own lister,
//! so a new provider adds one function and one line. Reads tracefs, kallsyms
//! and ELF files only; never attaches anything and writes nothing (main.rs
//! prints what it returns).

use super::elfsyms;
use super::attach::kprobe;
use super::tracefs::Tracefs;
use crate::facts::glob_match;

/// One listed event: its spec, ready to paste after `trace`, and what `-v`
/// adds below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub spec: String,
    pub details: Vec<String>,
}

/// A listing failure (no tracefs, an unreadable binary, nothing matched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A source of events could not be read.
    Source { what: String, why: String },
    /// Nothing matched the glob.
    NoMatch { what: &'static str, glob: String, hint: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Source { what, why } => write!(f, "cannot list {what}: {why}"),
            Error::NoMatch { what, glob, hint } => write!(f, "no {what} matches `{glob}`{hint}"),
        }
    }
}

impl std::error::Error for Error {}

/// One kind of event `-le` lists.
struct Kind {
    /// What the kind is called in messages.
    name: &'static str,
    /// Its events matching a glob; `Ok(empty)` when the kind exists but
    /// cannot be traced on this machine.
    list: fn(&Lister, &str, bool) -> Result<Vec<Entry>, String>,
}

/// Every kind `-le` lists, in output order. Syscalls are the `syscalls:`
/// tracepoints; kernel functions are listed only where kprobes work.
const KINDS: &[Kind] = &[
    Kind { name: "tracepoints", list: tracepoints },
    Kind { name: "kernel functions", list: kernel_functions },
    Kind { name: "BTF tracepoints", list: btf_tracepoints },
    Kind { name: "iterators", list: iterators },
    Kind { name: "user functions and lines", list: user_probes },
    Kind { name: "USDT markers", list: user_markers },
];

/// What the listers share: tracefs, opened on first use.
#[derive(Default)]
struct Lister {
    tracefs: std::cell::OnceCell<Result<Tracefs, String>>,
}

impl Lister {
    fn tracefs(&self) -> Result<&Tracefs, String> {
        self.tracefs.get_or_init(|| Tracefs::open().map_err(|e| e.message)).as_ref().map_err(Clone::clone)
    }
}

/// Whether a glob picks an event: a glob with `:` matches the whole spec
/// (`sched:*`, `probe:vfs_*`), one without also the last part (`*open*`).
fn picks(glob: &str, spec: &str, short: &str) -> bool {
    match (glob.split_once(':'), spec.split_once(':')) {
        (Some((gs, ge)), Some((s, e))) if !ge.contains(':') => glob_match(gs, s) && glob_match(ge, e),
        (Some(_), _) => glob_match(glob, spec),
        (None, _) => glob_match(glob, spec) || glob_match(glob, short),
    }
}

/// `-le GLOB`: the events of every kind matching `glob`; `verbose` adds
/// each one's fields.
pub fn events(glob: &str, verbose: bool) -> Result<Vec<Entry>, Error> {
    let lister = Lister::default();
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for kind in KINDS {
        match (kind.list)(&lister, glob, verbose) {
            Ok(entries) => all.extend(entries),
            Err(why) => failures.push(Error::Source { what: kind.name.to_string(), why }),
        }
    }
    if all.is_empty() {
        // Nothing listed because nothing could be read: say why.
        if let Some(e) = failures.into_iter().next() {
            return Err(e);
        }
        return Err(Error::NoMatch { what: "event", glob: glob.to_string(), hint: " (try `-le '*'`, or a glob such as `sched:*`)".into() });
    }
    Ok(all)
}

/// Tracepoints as `system:event`; with `verbose`, each field after the
/// common ones as `argN type name` (ktap's numbering: arg0 is the first
/// field after the common ones; `args.NAME` reads it by name).
fn tracepoints(lister: &Lister, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let tracefs = lister.tracefs()?;
    let mut out = Vec::new();
    for (system, event) in tracefs.all_tracepoints() {
        let spec = format!("{system}:{event}");
        if !picks(glob, &spec, &event) {
            continue;
        }
        let details = if verbose {
            match tracefs.format_text(&system, &event) {
                Ok(text) => field_lines(&text),
                Err(e) => vec![format!("(format unreadable: {e})")],
            }
        } else {
            Vec::new()
        };
        out.push(Entry { spec, details });
    }
    Ok(out)
}

/// The `argN type name` lines of a tracepoint's format file.
fn field_lines(format: &str) -> Vec<String> {
    let mut n = 0;
    let mut lines = Vec::new();
    for line in format.lines() {
        let Some(rest) = line.trim().strip_prefix("field:") else { continue };
        let decl = rest.split(';').next().unwrap_or("").trim();
        let name = decl.split_whitespace().last().unwrap_or("");
        if name.starts_with("common_") || decl.is_empty() {
            continue;
        }
        lines.push(format!("arg{n:<3}{decl}"));
        n += 1;
    }
    lines
}

/// Kernel functions as `probe:FUNC` (and their `%return`), where this
/// kernel can create kprobes at all.
fn kernel_functions(lister: &Lister, glob: &str, _verbose: bool) -> Result<Vec<Entry>, String> {
    if !kprobe::supported() {
        return Ok(Vec::new());
    }
    // A glob for another kind (`sched:*`) picks no kernel function.
    if glob.contains(':') && !glob.starts_with("probe:") && glob != "*:*" {
        return Ok(Vec::new());
    }
    let root = lister.tracefs().ok().map(|t| t.root().to_path_buf());
    let names = kprobe::functions(root.as_deref(), "*")?;
    Ok(names
        .into_iter()
        .map(|f| (format!("probe:{f}"), f))
        .filter(|(spec, f)| picks(glob, spec, f))
        .map(|(spec, _)| Entry { spec, details: Vec::new() })
        .collect())
}

/// BTF tracepoints as `btf:EVENT`, for a glob that names the kind (`-le
/// 'btf:sched_*'`): every tracepoint has one, so `*` would list each twice.
fn btf_tracepoints(_lister: &Lister, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    match glob.strip_prefix("btf:") {
        Some(event) => super::btf_listing::events(event, verbose),
        None => Ok(Vec::new()),
    }
}

/// BPF iterator targets, for globs naming `iter:`; with `verbose`, each
/// context field as `args.NAME TYPE`.
fn iterators(_lister: &Lister, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    match glob.strip_prefix("iter:") {
        Some(target) => super::btf_listing::iterators(target, verbose),
        None => Ok(Vec::new()),
    }
}

/// User functions and source lines, for a glob that names a binary
/// (`probe:/bin/x:parse_*`, `probe:/bin/x:prog.c:*`): with `verbose`, a
/// function's parameters (types and locations, from its DWARF), a line's
/// function and address.
fn user_probes(_lister: &Lister, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let Some(rest) = glob.strip_prefix("probe:") else { return Ok(Vec::new()) };
    // The binary ends at the first `:` after its last `/`.
    let from = rest.rfind('/').unwrap_or(0);
    let Some(colon) = rest[from..].find(':').map(|i| from + i) else { return Ok(Vec::new()) };
    let (bin, what) = (&rest[..colon], &rest[colon + 1..]);
    if !(bin.contains('/') || bin.starts_with("lib") || bin.contains(".so")) {
        return Ok(Vec::new());
    }
    if let Some((file, line_glob)) = what.rsplit_once(':') {
        let path = elfsyms::resolve_binary(bin)?.to_string_lossy().into_owned();
        let (debug_file, lines) = super::dwarf::lines(&path, file)?;
        return Ok(lines
            .into_iter()
            .filter(|l| glob_match(line_glob, &l.line.to_string()))
            .map(|l| Entry {
                spec: format!("probe:{bin}:{file}:{}", l.line),
                details: if verbose { vec![format!("in {} at {:#x} ({debug_file})", l.function, l.address)] } else { Vec::new() },
            })
            .collect());
    }
    let what = what.strip_suffix("%return").unwrap_or(what);
    functions(bin, what, verbose).map_err(|e| e.to_string())
}

/// USDT markers, for a glob that names a binary (`sdt:/usr/bin/python3:*`,
/// `sdt:libc:*:setjmp`): the markers whose `provider:name` or name match
/// the rest, as `-lm` lists them.
fn user_markers(_lister: &Lister, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let Some(rest) = glob.strip_prefix("sdt:") else { return Ok(Vec::new()) };
    // The binary ends at the first `:` after its last `/`.
    let from = rest.rfind('/').unwrap_or(0);
    let Some(colon) = rest[from..].find(':').map(|i| from + i) else { return Ok(Vec::new()) };
    let (bin, what) = (&rest[..colon], &rest[colon + 1..]);
    // `*` alone would be the provider's glob: each marker's full name is
    // `provider:name`, which `*:*` matches.
    let what = if what == "*" { "*:*" } else { what };
    markers(bin, what, verbose).map_err(|e| e.to_string())
}

/// Functions listed with their parameters at most (a glob matching more
/// lists offsets only).
const MAX_TYPED_LISTED: usize = 64;

/// A user function's parameters from its debug info, for `-v`.
fn params(path: &str, func: &str) -> Vec<String> {
    match super::dwarf::function(path, func) {
        Ok(scope) => {
            let mut lines = super::dwarf::describe(&scope);
            if scope.ret != crate::facts::TypeId::VOID {
                lines.push(format!("retval: {}", crate::facts::TypeSource::type_name(&*scope.types, scope.ret)));
            }
            lines.push(format!("read at file offset {:#x} ({})", scope.offset.0, scope.debug_file));
            lines
        }
        Err(e) => vec![format!("(no parameters: {e})")],
    }
}

/// How a listing spells a binary: as given when a script may write it that
/// way (a path, or a library name starting with `lib`), else its path.
fn binary_spec(given: &str, resolved: &str) -> String {
    if given.contains('/') || given.starts_with("lib") { given.to_string() } else { resolved.to_string() }
}

/// `-lf DSO [GLOB]`: functions as `probe:DSO:func`; `verbose` adds their
/// file offsets.
pub fn functions(dso: &str, glob: &str, verbose: bool) -> Result<Vec<Entry>, Error> {
    let found = elfsyms::functions(dso, glob).map_err(|why| Error::Source { what: format!("the functions of {dso}"), why })?;
    if found.symbols.is_empty() {
        let hint = if found.stripped { " (the binary is stripped: only exported functions are visible)" } else { "" };
        return Err(Error::NoMatch { what: "function", glob: glob.to_string(), hint: format!(" in {}{hint}", found.path) });
    }
    let bin = binary_spec(dso, &found.path);
    // Each function's parameters read the debug info again: a few only.
    let typed = found.symbols.len() <= MAX_TYPED_LISTED;
    Ok(found
        .symbols
        .iter()
        .map(|(name, off)| Entry {
            spec: format!("probe:{bin}:{name}"),
            details: if verbose {
                let mut d = vec![format!("file offset {:#x}", off.0)];
                if typed {
                    d.extend(params(&found.path, name));
                }
                d
            } else {
                Vec::new()
            },
        })
        .collect())
}

/// `-lm DSO [GLOB]`: USDT markers as `sdt:DSO:provider:marker`; `verbose`
/// adds each argument's size and where it lives (`arg1 s32 -4@%eax`).
pub fn markers(dso: &str, glob: &str, verbose: bool) -> Result<Vec<Entry>, Error> {
    let found = elfsyms::sdt_markers(dso, glob).map_err(|why| Error::Source { what: format!("the markers of {dso}"), why })?;
    if found.markers.is_empty() {
        return Err(Error::NoMatch { what: "USDT marker", glob: glob.to_string(), hint: format!(" in {}", found.path) });
    }
    let bin = binary_spec(dso, &found.path);
    Ok(found
        .markers
        .iter()
        .map(|m| {
            let mut details = Vec::new();
            if verbose {
                for (i, operand) in m.args.split_whitespace().enumerate() {
                    details.push(format!("arg{:<3}{:<4} {operand}", i + 1, operand_type(operand)));
                }
                if m.semaphore.is_some() {
                    details.push("(guarded by a semaphore: ktap sets it while attached)".into());
                }
            }
            Entry { spec: format!("sdt:{bin}:{}:{}", m.provider, m.name), details }
        })
        .collect())
}

/// The type a USDT operand (`-4@%eax`) carries: its size and sign.
fn operand_type(operand: &str) -> String {
    let Some((size, _)) = operand.split_once('@') else { return "?".into() };
    match size.strip_prefix('-') {
        Some(n) => format!("s{}", n.parse::<u32>().map_or(0, |b| b * 8)),
        None => format!("u{}", size.parse::<u32>().map_or(0, |b| b * 8)),
    }
}

/// The lines a listing prints: each spec, its details indented below it.
pub fn render(entries: &[Entry]) -> String {
    let mut text = String::new();
    for e in entries {
        text.push_str(&e.spec);
        text.push('\n');
        for d in &e.details {
            text.push_str("    ");
            text.push_str(d);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_pick_by_spec_or_last_part() {
        assert!(picks("sched:*", "sched:sched_switch", "sched_switch"));
        assert!(!picks("sched:*", "syscalls:sys_enter_read", "sys_enter_read"));
        assert!(picks("*open*", "syscalls:sys_enter_openat", "sys_enter_openat"));
        assert!(picks("*:sys_enter_read", "syscalls:sys_enter_read", "sys_enter_read"));
        assert!(picks("probe:vfs_*", "probe:vfs_read", "vfs_read"));
        assert!(!picks("sched:*", "probe:vfs_read", "vfs_read"));
        assert!(picks("*", "probe:vfs_read", "vfs_read"));
    }

    #[test]
    fn fields_are_numbered_after_the_common_ones() {
        let text = "name: sys_enter_openat\nID: 1\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n";
        assert_eq!(field_lines(text), ["arg0  int __syscall_nr", "arg1  int dfd", "arg2  const char * filename"]);
    }

    #[test]
    fn operands_and_binaries() {
        assert_eq!(operand_type("-4@%eax"), "s32");
        assert_eq!(operand_type("8@-8(%rbp)"), "u64");
        assert_eq!(operand_type("%eax"), "?");
        assert_eq!(binary_spec("libc", "/lib/x86_64-linux-gnu/libc.so.6"), "libc");
        assert_eq!(binary_spec("bash", "/usr/bin/bash"), "/usr/bin/bash");
        assert_eq!(binary_spec("./a.out", "/tmp/a.out"), "./a.out");
        let e = [Entry { spec: "a:b".into(), details: vec!["arg0  int x".into()] }, Entry { spec: "c:d".into(), details: vec![] }];
        assert_eq!(render(&e), "a:b\n    arg0  int x\nc:d\n");
    }
}
