//! Facts about the machine, in userspace: `arch()`, `kernel_v()`,
//! `num_cpus()`.

use super::{Def, Form};
use crate::runtime::interp::Value;

const fn user(name: &'static str, f: super::UserFn) -> Def {
    Def { namespace: None, name, form: Form::Call, kernel: None, user: Some(f) }
}

pub(super) const DEFS: &[Def] = &[
    user("arch", |_, _| Ok(Value::str(uname().map(|u| u.1).unwrap_or_default()))),
    user("kernel_v", |_, _| Ok(Value::str(uname().map(|u| u.0).unwrap_or_default()))),
    user("num_cpus", |_, _| Ok(Value::Int(online_cpus()))),
];

/// `(release, machine)` from uname(2).
fn uname() -> Option<(String, String)> {
    // SAFETY: utsname is plain bytes; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((text(&u.release), text(&u.machine)))
}

fn online_cpus() -> i64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as i64
    } else {
        1
    }
}
