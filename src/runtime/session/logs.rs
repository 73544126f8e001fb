//! libbpf's messages: captured (with -v also queued for the session to
//! show after each phase), and a failed load explained — a verifier
//! rejection mapped back to the source line of the failing instruction,
//! with the verifier's reason. Shows nothing itself.

use super::*;
use libbpf_rs::PrintLevel;
use std::sync::Mutex;

/// libbpf's messages since the last take, for error reports.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

/// With -v: the messages worth showing, not yet shown.
static TO_SHOW: Mutex<String> = Mutex::new(String::new());

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Routes libbpf's messages here from now on; with `verbose` they are
/// also queued for `show_libbpf`.
pub(super) fn capture_libbpf(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
    take_libbpf_log();
}

/// libbpf's print callback: a plain function, called on the thread that
/// called into libbpf.
fn libbpf_print(level: PrintLevel, msg: String) {
    if VERBOSE.load(Ordering::Relaxed) && (level != PrintLevel::Debug || msg.contains("verifier")) {
        if let Ok(mut shown) = TO_SHOW.lock() {
            shown.push_str(&msg);
        }
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        log.push_str(&msg);
    }
}

/// Shows the queued messages (-v).
pub(super) fn show_libbpf(out: &mut dyn Output) {
    let text = TO_SHOW.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    if !text.is_empty() {
        out.libbpf_log(&text);
    }
}

pub(super) fn take_libbpf_log() -> String {
    LIBBPF_LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
}

/// Finds the failing instruction in a verifier log: the last `N: (..)`
/// line of the verifier's walk, and the reason printed after it; before
/// any walk (the kernel's check of the control flow: "unreachable insn
/// 44", "jump out of range from insn 5 to 90", "back-edge from insn 9 to
/// 3"), the first instruction such a reason names. `None` for the
/// instruction when the reason names none.
pub fn verifier_failure(log: &str, program: &str) -> Option<(Option<usize>, String)> {
    let start = log.find(&format!("prog '{program}': -- BEGIN PROG LOAD LOG --"))?;
    let body = &log[start..];
    let end = body.find("-- END PROG LOAD LOG --").unwrap_or(body.len());
    let lines: Vec<&str> = body[..end].lines().skip(1).collect();
    let mut last_insn = None;
    for (i, line) in lines.iter().enumerate() {
        let mut parts = line.splitn(2, ": (");
        if let (Some(n), Some(_)) = (parts.next(), parts.next()) {
            if let Ok(n) = n.trim().parse::<usize>() {
                last_insn = Some((i, n));
            }
        }
    }
    let reason_from = |from: usize| -> String {
        let reason: Vec<&str> = lines[from..]
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("libbpf:"))
            .collect();
        reason.join("; ")
    };
    if let Some((line_no, insn)) = last_insn {
        return Some((Some(insn), reason_from(line_no + 1)));
    }
    let named = lines.iter().find_map(|l| {
        let after = &l[l.find("insn ")? + "insn ".len()..];
        let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
        after[..digits].parse::<usize>().ok()
    });
    Some((named, reason_from(0)))
}

/// Explains a failed load: for a verifier rejection, the program's source
/// line and the verifier's reason; for a program the kernel refused
/// otherwise, its probe's line and libbpf's reason; for a map it could not
/// create, the table's name and the reason.
pub(super) fn load_error(module: &Module, compiled: &Compiled, e: libbpf_rs::Error) -> Error {
    let log = take_libbpf_log();
    for info in &compiled.programs {
        // An empty reason: the kernel refused the program before verifying
        // an instruction (not the code's fault; reported below).
        if let Some((insn, reason)) = verifier_failure(&log, &info.name).filter(|(_, r)| !r.trim().is_empty()) {
            // The failing instruction's line, else the probe's first.
            let at = insn.and_then(|i| info.spans.get(i).copied().flatten());
            let span = at.or_else(|| info.spans.iter().flatten().next().copied());
            let note = match insn {
                Some(insn) => format!("verifier: at instruction {insn}: {reason}"),
                None => format!("verifier: {reason}"),
            };
            return Error {
                message: format!("the kernel verifier rejected the code generated for this probe (a ktap bug): {e}"),
                span,
                notes: vec![note],
            };
        }
    }
    // libbpf's own lines about one program or one map.
    let about = |what: &str| log.lines().filter(|l| l.contains(what) && (l.contains("fail") || l.contains("error"))).map(str::trim).collect::<Vec<_>>();
    for info in &compiled.programs {
        let lines = about(&format!("prog '{}'", info.name));
        if !lines.is_empty() {
            return Error {
                message: format!("the kernel refused the program generated for this probe: {e}"),
                span: Some(module.probe(info.probe).span),
                notes: lines.into_iter().map(String::from).collect(),
            };
        }
    }
    for map in &module.maps {
        let lines = about(&format!("map '{}'", map.name));
        if !lines.is_empty() {
            let what = match &map.table {
                Some(t) => format!("table `{}`", t.var),
                None => format!("map {}", map.name),
            };
            let mut notes: Vec<String> = lines.into_iter().map(String::from).collect();
            notes.push(format!("{} entries of {} + {} bytes", map.max_entries, map.key_size, map.value_size));
            return Error { message: format!("the kernel could not create the BPF map for {what}: {e}"), span: None, notes };
        }
    }
    let mut err = Error::new(format!("cannot load the BPF programs: {e}"));
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        err.notes.push("loading BPF needs root (or CAP_BPF and CAP_PERFMON)".into());
    }
    let tail: Vec<&str> = log.lines().rev().take(8).collect();
    if !tail.is_empty() {
        err.notes.push(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    err
}

#[cfg(test)]
mod tests {
    use super::verifier_failure;

    fn log(body: &str) -> String {
        format!("libbpf: prog 'p': BPF program load failed: -EINVAL\nlibbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n{body}-- END PROG LOAD LOG --\n")
    }

    #[test]
    fn the_walk_names_the_last_instruction() {
        let l = log("0: (bf) r6 = r1\n1: (79) r1 = *(u64 *)(r6 +8)\nR6 invalid mem access 'scalar'\nprocessed 2 insns (limit 1000000)\n");
        assert_eq!(verifier_failure(&l, "p"), Some((Some(1), "R6 invalid mem access 'scalar'".to_string())));
    }

    #[test]
    fn the_control_flow_check_names_its_instruction() {
        let l = log("unreachable insn 44\nprocessed 0 insns (limit 1000000) max_states_per_insn 0\n");
        assert_eq!(verifier_failure(&l, "p"), Some((Some(44), "unreachable insn 44".to_string())));
        let l = log("jump out of range from insn 5 to 90\n");
        assert_eq!(verifier_failure(&l, "p"), Some((Some(5), "jump out of range from insn 5 to 90".to_string())));
        let l = log("last insn is not an exit or jmp\n");
        assert_eq!(verifier_failure(&l, "p"), Some((None, "last insn is not an exit or jmp".to_string())));
        assert_eq!(verifier_failure(&l, "q"), None);
    }
}
