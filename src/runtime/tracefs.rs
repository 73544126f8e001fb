//! tracefs: finds (or mounts) it, lists tracepoints and parses their format
//! files into the field layouts that lowering needs. Never attaches
//! anything.

use crate::facts::{glob_match, EventField, FieldKind, KernelFacts};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

#[derive(Debug)]
pub struct Error {
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub struct Tracefs {
    root: PathBuf,
    syscalls: std::cell::OnceCell<std::collections::HashMap<String, u32>>,
    /// Set when this process mounted tracefs itself.
    pub mounted_by_us: bool,
}

impl Tracefs {
    /// Finds tracefs, mounting it at /sys/kernel/tracing when needed.
    pub fn open() -> Result<Tracefs, Error> {
        for root in [TRACEFS, DEBUGFS_TRACING] {
            if Path::new(root).join("events").is_dir() {
                return Ok(Tracefs { root: root.into(), syscalls: Default::default(), mounted_by_us: false });
            }
        }
        match mount_tracefs() {
            Ok(()) if Path::new(TRACEFS).join("events").is_dir() => {
                Ok(Tracefs { root: TRACEFS.into(), syscalls: Default::default(), mounted_by_us: true })
            }
            Ok(()) => Err(Error { message: format!("mounted tracefs at {TRACEFS} but it has no events directory") }),
            // Another process mounted it at the same moment (EBUSY).
            Err(_) if Path::new(TRACEFS).join("events").is_dir() => {
                Ok(Tracefs { root: TRACEFS.into(), syscalls: Default::default(), mounted_by_us: false })
            }
            // SAFETY: geteuid has no preconditions.
            Err(_) if unsafe { libc::geteuid() } != 0 => Err(Error {
                message: "tracing needs root: ktap cannot read or mount tracefs as this user \
                          (run it with sudo, or grant CAP_BPF, CAP_PERFMON and access to /sys/kernel/tracing)"
                    .into(),
            }),
            Err(e) => Err(Error {
                message: format!(
                    "tracefs is not mounted and mounting it at {TRACEFS} failed: {e}; \
                     mount it with `mount -t tracefs nodev {TRACEFS}`"
                ),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }

    /// Every `system:event` pair, sorted.
    pub fn all_tracepoints(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for system in list_dirs(&self.events_dir()) {
            let dir = self.events_dir().join(&system);
            for event in list_dirs(&dir) {
                if is_tracepoint(&dir.join(&event)) {
                    out.push((system.clone(), event));
                }
            }
        }
        out.sort();
        out
    }

    /// The text of one tracepoint's format file (for listings).
    pub fn format_text(&self, system: &str, event: &str) -> Result<String, String> {
        let path = self.events_dir().join(system).join(event).join("format");
        read_small(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Whether an event directory is a tracepoint one can enable: ftrace's own
/// record formats (ftrace:function, ftrace:print, ...) have no `enable`
/// file; globs and listings leave them out.
fn is_tracepoint(dir: &Path) -> bool {
    dir.join("enable").exists()
}

/// Where the C library headers list the syscall numbers of this machine.
const UNISTD_HEADERS: &[&str] = &[
    "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
    "/usr/include/asm/unistd_64.h",
    "/usr/include/aarch64-linux-gnu/asm/unistd.h",
    "/usr/include/asm-generic/unistd.h",
];

/// x86-64 syscall numbers that C library headers older than the kernel
/// lack (the ABI never renumbers a syscall), keyed by tracepoint name.
/// Consulted only for names the header does not list.
#[cfg(target_arch = "x86_64")]
const BUILTIN_SYSCALLS: &[(&str, u32)] = &[
    ("uretprobe", 335),
    ("uprobe", 336),
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
    ("listns", 470),
];
#[cfg(not(target_arch = "x86_64"))]
const BUILTIN_SYSCALLS: &[(&str, u32)] = &[];

/// The built-in number of syscall `name` (a name as the ABI spells it).
pub fn builtin_syscall_nr(name: &str) -> Option<u32> {
    BUILTIN_SYSCALLS.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

/// `#define __NR_name nr` lines into a name → number table.
pub fn parse_unistd(text: &str) -> std::collections::HashMap<String, u32> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "#define" {
                return None;
            }
            let name = w.next()?.strip_prefix("__NR_")?;
            let nr = w.next()?.parse().ok()?;
            Some((name.to_string(), nr))
        })
        .collect()
}

fn mount_tracefs() -> io::Result<()> {
    let target = std::ffi::CString::new(TRACEFS).map_err(io::Error::other)?;
    let fstype = c"tracefs";
    // SAFETY: all pointers are valid NUL-terminated strings; data is null.
    let rc = unsafe { libc::mount(fstype.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Names of the subdirectories of `dir` (files such as `enable` skipped).
fn list_dirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// Reads a tracefs file with few large reads: each read of a format file
/// takes the kernel's event lock, which a detaching tracer may hold.
fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 16 << 10];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(io::Error::other)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Parses a tracepoint `format` file into its fields.
pub fn parse_format(text: &str) -> Vec<EventField> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else { continue };
        let mut decl = "";
        let (mut offset, mut size, mut signed) = (None, None, false);
        for part in rest.split(';') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("offset:") {
                offset = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("size:") {
                size = v.parse().ok();
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v == "1";
            } else if decl.is_empty() {
                decl = part;
            }
        }
        let name = decl.split_whitespace().last().unwrap_or("");
        let name = name.split('[').next().unwrap_or(name);
        if let (Some(offset), Some(size), false) = (offset, size, name.is_empty()) {
            let kind = if decl.contains("__data_loc") {
                FieldKind::DataLoc
            } else if decl.contains('[') {
                if decl.contains("char ") { FieldKind::CharArray } else { int_array(decl, size) }
            } else if [1, 2, 4, 8].contains(&size) {
                FieldKind::Int
            } else {
                FieldKind::Other
            };
            fields.push(EventField { name: name.to_string(), offset, size, signed, common: name.starts_with("common_"), kind });
        }
    }
    fields
}

/// An array field of integers (`unsigned long args[6]` of `size` 48):
/// its element size from its length; anything else is `Other`.
fn int_array(decl: &str, size: u32) -> FieldKind {
    if decl.contains("struct ") || decl.contains("union ") || decl.contains('*') {
        return FieldKind::Other;
    }
    let len = decl.split('[').nth(1).and_then(|r| r.split(']').next()).and_then(|n| n.trim().parse::<u32>().ok());
    match len {
        Some(n) if n > 0 && size % n == 0 && [1, 2, 4, 8].contains(&(size / n)) => FieldKind::IntArray { elem: (size / n) as u8 },
        _ => FieldKind::Other,
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl KernelFacts for Tracefs {
    fn tracepoints(&self, system: &str, event: &str) -> Result<Vec<(String, String)>, String> {
        if !has_glob(system) && !has_glob(event) {
            let dir = self.events_dir().join(system).join(event);
            return Ok(if dir.join("format").is_file() { vec![(system.into(), event.into())] } else { Vec::new() });
        }
        let systems: Vec<String> = if has_glob(system) {
            list_dirs(&self.events_dir()).into_iter().filter(|s| glob_match(system, s)).collect()
        } else {
            vec![system.to_string()]
        };
        let mut out = Vec::new();
        for s in systems {
            let dir = self.events_dir().join(&s);
            for e in list_dirs(&dir) {
                if glob_match(event, &e) && is_tracepoint(&dir.join(&e)) {
                    out.push((s.clone(), e));
                }
            }
        }
        Ok(out)
    }

    fn format(&self, system: &str, event: &str) -> Result<Vec<EventField>, String> {
        let path = self.events_dir().join(system).join(event).join("format");
        read_small(&path).map(|t| parse_format(&t)).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn syscall_nr(&self, name: &str) -> Option<u32> {
        let table = self.syscalls.get_or_init(|| {
            UNISTD_HEADERS
                .iter()
                .find_map(|p| fs::read_to_string(p).ok())
                .map(|t| parse_unistd(&t))
                .unwrap_or_default()
        });
        // Tracepoints carry the kernel's function names, which differ from
        // the ABI's names for a few syscalls (arch/x86/entry/syscalls).
        let abi = match name {
            "newstat" => "stat",
            "newfstat" => "fstat",
            "newlstat" => "lstat",
            "newuname" => "uname",
            "sendfile64" => "sendfile",
            "umount" => "umount2",
            other => other,
        };
        table.get(abi).copied().or_else(|| builtin_syscall_nr(abi))
    }

    fn similar(&self, system: &str, event: &str) -> Vec<String> {
        let want = format!("{system}:{event}");
        let mut scored: Vec<(usize, String)> = self
            .all_tracepoints()
            .into_iter()
            .map(|(s, e)| {
                let name = format!("{s}:{e}");
                (levenshtein(&want, &name), name)
            })
            .filter(|(d, _)| *d <= want.len() / 3 + 1)
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_file() {
        let text = "name: sys_enter_write\nID: 700\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:const char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\
            \tfield:char comm[16];\toffset:32;\tsize:16;\tsigned:0;\n\
            \tfield:unsigned long args[6];\toffset:48;\tsize:48;\tsigned:0;\n\
            \tfield:u8 mac[6];\toffset:96;\tsize:6;\tsigned:0;\n\
            \tfield:struct x pair[2];\toffset:104;\tsize:16;\tsigned:0;\n";
        let f = parse_format(text);
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["common_type", "common_pid", "__syscall_nr", "fd", "buf", "comm", "args", "mac", "pair"]);
        // Arrays of numbers by their element size; of structs, not.
        let kinds: Vec<FieldKind> = f[5..].iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FieldKind::CharArray, FieldKind::IntArray { elem: 8 }, FieldKind::IntArray { elem: 1 }, FieldKind::Other]);
        assert!(f[1].common && f[1].signed);
        assert_eq!((f[3].offset, f[3].size, f[3].signed, f[3].common), (16, 8, false, false));
        assert_eq!(f[5].size, 16);
    }

    #[test]
    fn unistd() {
        let t = parse_unistd("#ifndef X\n#define __NR_read 0\n#define __NR_openat 257\n#define __X_Y 3\n");
        assert_eq!(t.get("openat"), Some(&257));
        assert_eq!(t.get("read"), Some(&0));
        assert_eq!(t.len(), 2);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn builtin_numbers() {
        assert_eq!(builtin_syscall_nr("cachestat"), Some(451));
        assert_eq!(builtin_syscall_nr("file_setattr"), Some(469));
        assert_eq!(builtin_syscall_nr("uretprobe"), Some(335));
        assert_eq!(builtin_syscall_nr("openat"), None);
        // Numbers are unique, names too.
        let mut nrs: Vec<u32> = BUILTIN_SYSCALLS.iter().map(|e| e.1).collect();
        let mut names: Vec<&str> = BUILTIN_SYSCALLS.iter().map(|e| e.0).collect();
        nrs.sort_unstable();
        nrs.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!((nrs.len(), names.len()), (BUILTIN_SYSCALLS.len(), BUILTIN_SYSCALLS.len()));
    }

    #[test]
    fn distance() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "ab"), 2);
    }
}
