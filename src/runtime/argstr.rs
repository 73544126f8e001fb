//! `argstr`: renders a tracepoint record the way the kernel's own trace
//! output does — syscalls as `sys_close(fd: 3)` / `sys_mprotect -> 0x0`
//! (kernel/trace/trace_syscalls.c), other events as `name=value` pairs.
//! Pure formatting over the bytes the probe copied; no IO.

use crate::ir::{EventField, FieldKind};
use std::fmt::Write as _;

/// `bytes` are the record's bytes from offset `start`. A uprobe's,
/// kprobe's or USDT probe's registers (fields after
/// [`EventField::PROBE_IP`]) render as ktap did: `name: (0xADDR) a=1 b=2`.
pub fn render(event: &str, fields: &[EventField], start: u32, bytes: &[u8]) -> String {
    let int = |f: &EventField| -> Option<u64> {
        let at = f.offset.checked_sub(start)? as usize;
        let b = bytes.get(at..at + f.size as usize)?;
        let mut buf = [0u8; 8];
        buf[..b.len()].copy_from_slice(b);
        let v = u64::from_le_bytes(buf);
        Some(if f.signed && f.size < 8 {
            let shift = 64 - 8 * f.size;
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        })
    };
    if let Some((ip, args)) = fields.split_first().filter(|(ip, _)| ip.name == EventField::PROBE_IP) {
        let mut out = format!("{event}: (0x{:x})", int(ip).unwrap_or(0));
        for f in args {
            let v = int(f).unwrap_or(0);
            let _ = if f.signed { write!(out, " {}={}", f.name, v as i64) } else { write!(out, " {}={v}", f.name) };
        }
        return out;
    }
    if let Some(name) = event.strip_prefix("sys_enter_") {
        let args: Vec<String> = fields
            .iter()
            .filter(|f| f.name != "__syscall_nr")
            .map(|f| {
                let v = int(f).unwrap_or(0);
                // The kernel prints small values in decimal, others in hex.
                if v < 10 {
                    format!("{}: {v}", f.name)
                } else {
                    format!("{}: 0x{v:x}", f.name)
                }
            })
            .collect();
        return format!("sys_{name}({})", args.join(", "));
    }
    if let Some(name) = event.strip_prefix("sys_exit_") {
        let ret = fields.iter().find(|f| f.name == "ret").and_then(int).unwrap_or(0);
        return format!("sys_{name} -> 0x{ret:x}");
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|f| {
            let value = match f.kind {
                FieldKind::Int => match int(f) {
                    Some(v) if f.signed => (v as i64).to_string(),
                    Some(v) => v.to_string(),
                    None => "?".into(),
                },
                FieldKind::CharArray => {
                    let at = f.offset.saturating_sub(start) as usize;
                    text(bytes.get(at..at + f.size as usize).unwrap_or(&[]))
                }
                FieldKind::DataLoc => {
                    // u32: length << 16 | offset from the record's start.
                    let loc = int(f).unwrap_or(0) as u32;
                    let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                    match off.checked_sub(start as usize).and_then(|at| bytes.get(at..at + len)) {
                        Some(b) => text(b),
                        None => "?".into(),
                    }
                }
                FieldKind::Other | FieldKind::IntArray { .. } => "?".into(),
            };
            format!("{}={value}", f.name)
        })
        .collect();
    parts.join(" ")
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, offset: u32, size: u32, signed: bool, kind: FieldKind) -> EventField {
        EventField { name: name.into(), offset, size, signed, common: false, kind }
    }

    #[test]
    fn syscalls_like_the_kernel() {
        let f = vec![field("__syscall_nr", 8, 4, true, FieldKind::Int), field("fd", 16, 8, false, FieldKind::Int), field("buf", 24, 8, false, FieldKind::Int)];
        let mut b = vec![0u8; 24];
        b[0..4].copy_from_slice(&3i32.to_le_bytes());
        b[8..16].copy_from_slice(&3u64.to_le_bytes());
        b[16..24].copy_from_slice(&0x7ffd1234u64.to_le_bytes());
        assert_eq!(render("sys_enter_read", &f, 8, &b), "sys_read(fd: 3, buf: 0x7ffd1234)");
        let f = vec![field("__syscall_nr", 8, 4, true, FieldKind::Int), field("ret", 16, 8, true, FieldKind::Int)];
        let mut b = vec![0u8; 16];
        b[8..16].copy_from_slice(&(-2i64).to_le_bytes());
        assert_eq!(render("sys_exit_openat", &f, 8, &b), "sys_openat -> 0xfffffffffffffffe");
    }

    #[test]
    fn probes_on_registers_as_ktap_had_them() {
        let f = vec![field(EventField::PROBE_IP, 128, 8, false, FieldKind::Int), field("fd", 112, 8, false, FieldKind::Int), field("n", 104, 4, true, FieldKind::Int)];
        let mut b = vec![0u8; 40];
        b[24..32].copy_from_slice(&0x4547b0u64.to_le_bytes());
        b[8..16].copy_from_slice(&3u64.to_le_bytes());
        b[0..4].copy_from_slice(&(-7i32).to_le_bytes());
        assert_eq!(render("readline", &f, 104, &b), "readline: (0x4547b0) fd=3 n=-7");
    }

    #[test]
    fn other_events_as_pairs() {
        let f = vec![field("filename", 8, 4, false, FieldKind::DataLoc), field("old_pid", 12, 4, true, FieldKind::Int), field("comm", 16, 8, false, FieldKind::CharArray)];
        let mut b = vec![0u8; 40];
        b[0..4].copy_from_slice(&((4u32 << 16) | 24).to_le_bytes());
        b[4..8].copy_from_slice(&(-5i32).to_le_bytes());
        b[8..12].copy_from_slice(b"bash");
        b[16..20].copy_from_slice(b"/bin");
        assert_eq!(render("sched_process_exec", &f, 8, &b), "filename=/bin old_pid=-5 comm=bash");
    }
}
