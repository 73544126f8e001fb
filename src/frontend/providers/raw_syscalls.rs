//! Syscall events riding raw_syscalls: over many syscall events, one raw
//! tracepoint program on `raw_syscalls:sys_enter`/`sys_exit` serves them
//! all, filtered in the kernel through the probe's array map (syscall
//! number -> probename id + 1); a body reading event fields has them from
//! the record the program rebuilds (bpfgen's `syscall_record`). The [`super::tracepoint`] provider decides when; this module says
//! whether it is worth it, makes the attach point and the filter maps.
//! Pure.

use super::Cx;
use crate::ir::{self, Attach, ProgKind};

/// From how many syscall events a probe rides raw_syscalls.
const RIDE_RAW_SYSCALLS_FROM: usize = 4;
/// Syscall numbers a syscall filter map covers.
const SYSCALL_FILTER_ENTRIES: u32 = 1024;

/// Riding raw_syscalls runs the filter on every syscall of the system:
/// worth it only when many syscall events are traced.
pub fn worth_riding(syscall_events: usize) -> bool {
    syscall_events >= RIDE_RAW_SYSCALLS_FROM
}

/// `syscalls:sys_enter_NAME`/`sys_exit_NAME` on raw_syscalls, when the
/// kernel facts know the syscall's number (else a classic tracepoint).
pub fn attach_point(cx: &Cx<'_>, system: String, event: String) -> Attach {
    let (name, exit) = match (event.strip_prefix("sys_enter_"), event.strip_prefix("sys_exit_")) {
        (Some(n), _) => (n, false),
        (_, Some(n)) => (n, true),
        _ => return Attach::Tracepoint { system, event },
    };
    match cx.facts.syscall_nr(name) {
        Some(nr) if nr < SYSCALL_FILTER_ENTRIES => Attach::Syscall { nr, exit, event },
        _ => Attach::Tracepoint { system, event },
    }
}

/// The filter map of each direction probe number `probe` rides.
pub fn filter_maps(probe: usize, attach: &[Attach]) -> Vec<ir::Map> {
    [ProgKind::SysEnter, ProgKind::SysExit]
        .into_iter()
        .filter(|kind| attach.iter().any(|a| a.kind() == *kind))
        .map(|kind| ir::Map {
            name: format!("ktap_sys_{probe}_{}", if kind == ProgKind::SysEnter { "enter" } else { "exit" }),
            kind: ir::MapKind::Array,
            key_size: 4,
            value_size: 8,
            max_entries: SYSCALL_FILTER_ENTRIES,
            table: None,
            syscall_filter: Some((ir::ProbeId(probe as u32), kind)),
        })
        .collect()
}
