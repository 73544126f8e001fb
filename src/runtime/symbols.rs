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
        let unknown = |ip: &u64| Frame { name: format!("0x{ip:x}"), module: None };
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
