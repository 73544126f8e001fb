//! Kernel probes (`ProgKind::Kprobe`): lists traceable kernel functions
//! (tracefs `available_filter_functions`, else /proc/kallsyms) and symbol
//! addresses for the kernel facts, and attaches kprobe programs, one
//! perf-event link per function, refusing with a clear message on kernels
//! built without kprobes. Never writes kprobe_events itself.

use super::{AttachCx, Attacher};
use crate::facts::glob_match;
use crate::ir::Attach;
use crate::runtime::session::Error;
use libbpf_rs::{KprobeOpts, ProgramMut};
use std::path::Path;

/// Kernel functions matching `glob`, sorted, each once. `tracefs` is the
/// tracefs root when known.
pub fn functions(tracefs: Option<&Path>, glob: &str) -> Result<Vec<String>, String> {
    let from_ftrace = tracefs.and_then(|t| std::fs::read_to_string(t.join("available_filter_functions")).ok());
    let mut out: Vec<String> = match from_ftrace {
        Some(text) => text.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| glob_match(glob, n)).map(str::to_string).collect(),
        None => {
            let text = std::fs::read_to_string("/proc/kallsyms").map_err(|e| format!("cannot read /proc/kallsyms: {e}"))?;
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split_whitespace();
                    let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
                    matches!(kind, "t" | "T").then_some(name)
                })
                .filter(|n| glob_match(glob, n))
                .map(str::to_string)
                .collect()
        }
    };
    out.sort();
    out.dedup();
    Ok(out)
}

/// The address of a kernel symbol, from /proc/kallsyms (0s without root).
pub fn symbol_address(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (addr, _, sym) = (f.next()?, f.next()?, f.next()?);
        (sym == name).then(|| u64::from_str_radix(addr, 16).ok()).flatten().filter(|a| *a != 0)
    })
}

/// Whether the kernel can create kprobes at all: the perf PMU or the
/// legacy tracefs interface (kernel/trace/trace_kprobe.c).
pub fn supported() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || ["/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"].iter().any(|p| Path::new(p).exists())
}

pub struct Kprobe;

impl Attacher for Kprobe {
    /// Attaches to the kernel functions of the program's points; stops
    /// early on Ctrl-C.
    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        let (module, info) = (cx.module, cx.info);
        let probe = module.probe(info.probe);
        for &i in &info.attach {
            if cx.stopped() {
                break;
            }
            let p = probe;
            let Attach::Kprobe { symbol, ret, spec } = &p.attach[i] else { continue };
            if !supported() {
                return Err(Error {
                    message: format!("this kernel has no kprobe support (built without CONFIG_KPROBES): cannot attach to kernel function `{symbol}`"),
                    span: Some(*spec),
                    notes: vec!["kernel probes compile and load (try `ktap -d`), but this kernel cannot attach them; tracepoints work".into()],
                });
            }
            let opts = KprobeOpts { cookie: cx.cookie(i), ..Default::default() };
            cx.point_result(i, prog.attach_kprobe_with_opts(*ret, symbol, opts))?;
        }
        Ok(())
    }
}
