//! Symbolization of kernel and user stacks with blazesym, rendered as one
//! frame a line (`func+0x1a`), the way stacks print and key tables.

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

impl Symbols {
    /// Renders `ips` (innermost first); `pid` 0 means kernel addresses.
    pub fn render(&mut self, pid: u32, ips: &[u64]) -> String {
        let key = (pid, ips.to_vec());
        if let Some(s) = self.cache.get(&key) {
            return s.clone();
        }
        let src = if pid == 0 {
            // Symbols from kallsyms; no DWARF lookups on the hot path.
            Source::Kernel(Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Kernel::default() })
        } else {
            let mut p = Process::new(Pid::from(pid));
            p.debug_syms = false;
            Source::Process(p)
        };
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
