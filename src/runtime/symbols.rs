//! Symbolization of kernel and user stacks with blazesym, rendered as one
//! frame a line (`func+0x1a`), the way stacks print and key tables, or as
//! frames with their module for flame graphs. Never writes anything.

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::{MaybeDefault, Pid};
use std::collections::HashMap;
use std::fmt::Write;

/// A symbolizer with a cache of rendered stacks (stack ids repeat).
pub struct Symbols {
    symbolizer: Symbolizer,
    cache: HashMap<(u32, Vec<u64>), String>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols { symbolizer: Symbolizer::new(), cache: HashMap::new() }
    }
}

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The function, or the address in hex when unknown.
    pub name: String,
    /// The file name of the binary or library (user frames), if known.
    pub module: Option<String>,
}

impl Symbols {
    /// The frames of `ips` (innermost first); `pid` 0 means kernel
    /// addresses.
    pub fn frames(&mut self, pid: u32, ips: &[u64]) -> Vec<Frame> {
        let src = source(pid);
        // An address no symbol covers: in a user process, its offset in
        // the file mapped there (the same in every process, unlike the
        // address), after the file's name.
        let mut maps: Option<Vec<Mapping>> = None;
        let mut unknown = |ip: &u64| {
            if pid != 0 {
                let maps = maps.get_or_insert_with(|| mappings(pid));
                if let Some(m) = maps.iter().find(|m| (m.start..m.end).contains(ip)) {
                    return Frame { name: format!("0x{:x}", ip - m.start + m.offset), module: Some(m.file.clone()) };
                }
            }
            Frame { name: format!("0x{ip:x}"), module: None }
        };
        match self.symbolizer.symbolize(&src, Input::AbsAddr(ips)) {
            Ok(syms) => ips
                .iter()
                .zip(syms)
                .map(|(ip, sym)| match sym {
                    Symbolized::Sym(s) => Frame {
                        name: s.name.to_string(),
                        module: s.module.as_ref().and_then(|m| {
                            std::path::Path::new(m).file_name().map(|f| f.to_string_lossy().into_owned())
                        }),
                    },
                    Symbolized::Unknown(_) => unknown(ip),
                })
                .collect(),
            Err(_) => ips.iter().map(unknown).collect(),
        }
    }

    /// One address as a stack's frame shows it (`vfs_read+0x5`), or in hex
    /// when no symbol covers it; `pid` 0 means a kernel address.
    pub fn symbol(&mut self, pid: u32, addr: u64) -> String {
        let rendered = self.render(pid, &[addr]);
        rendered.trim().to_string()
    }

    /// Renders `ips` (innermost first); `pid` 0 means kernel addresses.
    pub fn render(&mut self, pid: u32, ips: &[u64]) -> String {
        let key = (pid, ips.to_vec());
        if let Some(s) = self.cache.get(&key) {
            return s.clone();
        }
        let src = source(pid);
        let mut out = String::new();
        match self.symbolizer.symbolize(&src, Input::AbsAddr(ips)) {
            Ok(syms) => {
                for (ip, sym) in ips.iter().zip(syms) {
                    match sym {
                        Symbolized::Sym(s) if s.offset > 0 => {
                            let _ = writeln!(out, "        {}+0x{:x}", s.name, s.offset);
                        }
                        Symbolized::Sym(s) => {
                            let _ = writeln!(out, "        {}", s.name);
                        }
                        Symbolized::Unknown(_) => {
                            let _ = writeln!(out, "        0x{ip:x}");
                        }
                    }
                }
            }
            Err(_) => {
                for ip in ips {
                    let _ = writeln!(out, "        0x{ip:x}");
                }
            }
        }
        self.cache.insert(key, out.clone());
        out
    }
}

/// A file mapped into a process.
struct Mapping {
    start: u64,
    end: u64,
    /// The file offset mapped at `start`.
    offset: u64,
    /// The file's name (without its directory).
    file: String,
}

/// The files mapped into `pid` (`/proc/PID/maps`); none when it is gone.
fn mappings(pid: u32) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines().filter_map(mapping).collect()
}

/// One line of a maps file: `start-end perms offset dev inode path`.
fn mapping(line: &str) -> Option<Mapping> {
    let mut f = line.split_whitespace();
    let (range, _perms, offset, _dev, _inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let path = f.next().filter(|p| p.starts_with('/'))?;
    let (start, end) = range.split_once('-')?;
    let hex = |t: &str| u64::from_str_radix(t, 16).ok();
    let file = path.rsplit('/').next().unwrap_or(path).to_string();
    Some(Mapping { start: hex(start)?, end: hex(end)?, offset: hex(offset)?, file })
}

/// Where the addresses of `pid` (0: the kernel) are symbolized from.
fn source(pid: u32) -> Source<'static> {
    if pid == 0 {
        // Symbols from kallsyms; no DWARF lookups on the hot path.
        Source::Kernel(Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Kernel::default() })
    } else {
        let mut p = Process::new(Pid::from(pid));
        p.debug_syms = false;
        Source::Process(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_files_and_their_offsets() {
        let m = mapping("7f16178f0000-7f1617a45000 r-xp 00026000 fd:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6").expect("a file");
        assert_eq!((m.start, m.end, m.offset, m.file.as_str()), (0x7f16178f0000, 0x7f1617a45000, 0x26000, "libc.so.6"));
        assert!(mapping("7ffd1000-7ffd2000 rw-p 00000000 00:00 0   [stack]").is_none());
        assert!(mapping("7ffd1000-7ffd2000 rw-p 00000000 00:00 0").is_none());
        // This process: its own executable is mapped.
        let own = mappings(std::process::id());
        assert!(!own.is_empty());
    }
}
