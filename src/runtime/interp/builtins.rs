//! The builtin functions of userspace ktap, table-driven: one registry
//! line and one match arm per builtin. Builtins write only to the output
//! they are given and never call back into ktap code.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{msg, Throw};
use super::value::{Table, Value};
use crate::runtime::format;
use crate::runtime::output::{Origin, Output};

/// A builtin function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Print,
    Printf,
    PrintHist,
    Pairs,
    Len,
    Delete,
    TableNew,
    Exit,
    TimeS,
    TimeMs,
    TimeUs,
    TimeNs,
    Arch,
    KernelV,
    NumCpus,
    ClearScreen,
    SetColor,
    SetColor2,
    SetColor3,
    ResetColor,
    NewLine,
    ToString,
    ToNumber,
    /// `kdebug.*`: registers kernel probes, which the interpreter does not
    /// run; does nothing here.
    Noop,
}

/// Every builtin as `(namespace, name, builtin)`: `print` is a global,
/// `table.new` a field of the global table `table`.
pub const REGISTRY: &[(Option<&str>, &str, Builtin)] = &[
    (None, "print", Builtin::Print),
    (None, "printf", Builtin::Printf),
    (None, "print_hist", Builtin::PrintHist),
    (None, "pairs", Builtin::Pairs),
    (None, "len", Builtin::Len),
    (None, "delete", Builtin::Delete),
    (None, "exit", Builtin::Exit),
    (None, "gettimeofday_s", Builtin::TimeS),
    (None, "gettimeofday_ms", Builtin::TimeMs),
    (None, "gettimeofday_us", Builtin::TimeUs),
    (None, "gettimeofday_ns", Builtin::TimeNs),
    (None, "arch", Builtin::Arch),
    (None, "kernel_v", Builtin::KernelV),
    (None, "num_cpus", Builtin::NumCpus),
    (None, "tostring", Builtin::ToString),
    (None, "tonumber", Builtin::ToNumber),
    (Some("table"), "new", Builtin::TableNew),
    (Some("ansi"), "clear_screen", Builtin::ClearScreen),
    (Some("ansi"), "set_color", Builtin::SetColor),
    (Some("ansi"), "set_color2", Builtin::SetColor2),
    (Some("ansi"), "set_color3", Builtin::SetColor3),
    (Some("ansi"), "reset_color", Builtin::ResetColor),
    (Some("ansi"), "new_line", Builtin::NewLine),
    (Some("kdebug"), "kprobe", Builtin::Noop),
    (Some("kdebug"), "kretprobe", Builtin::Noop),
    (Some("kdebug"), "uprobe", Builtin::Noop),
    (Some("kdebug"), "uretprobe", Builtin::Noop),
    (Some("kdebug"), "tracepoint", Builtin::Noop),
    (Some("kdebug"), "probe_by_id", Builtin::Noop),
    (Some("kdebug"), "probe_end", Builtin::Noop),
    (Some("kdebug"), "trace_by_id", Builtin::Noop),
    (Some("kdebug"), "trace_end", Builtin::Noop),
];

/// Namespaces whose every field call is a kernel-probe registration.
pub const PROBE_NAMESPACE: &str = "kdebug";

/// `print_hist` shows this many rows unless told otherwise.
pub const HIST_DEFAULT_ROWS: usize = 20;

/// Largest preallocation `table.new` honours (entries).
const MAX_PREALLOC: i64 = 1 << 20;

impl Builtin {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        REGISTRY
            .iter()
            .find(|e| e.2 == self)
            .map_or("kdebug", |e| e.1)
    }

    /// Looks up a global builtin (no namespace).
    pub fn global(name: &str) -> Option<Builtin> {
        REGISTRY
            .iter()
            .find(|e| e.0.is_none() && e.1 == name)
            .map(|e| e.2)
    }

    /// Looks up `namespace.name`.
    pub fn field(namespace: &str, name: &str) -> Option<Builtin> {
        REGISTRY
            .iter()
            .find(|e| e.0 == Some(namespace) && e.1 == name)
            .map(|e| e.2)
    }

    /// Runs the builtin on `args`, writing any output to `out`.
    pub(crate) fn call(self, args: &[Value], out: &mut dyn Output) -> Result<Value, Throw> {
        let arg = |i: usize| args.get(i).unwrap_or(&Value::Nil);
        match self {
            Builtin::Print => {
                emit(out.print(&Origin::default(), args));
                Ok(Value::Nil)
            }
            Builtin::Printf => {
                let fmt = match arg(0) {
                    Value::Str(s) => s.clone(),
                    _ => return Err(bad(1, self, "string", args.first())),
                };
                let text = format::printf(fmt.as_bytes(), args.get(1..).unwrap_or(&[]))
                    .map_err(|e| Throw::msg(e.to_string()))?;
                emit(out.printf(&Origin::default(), &text));
                Ok(Value::Nil)
            }
            Builtin::PrintHist => {
                let t = table_arg(self, args, 0)?;
                let n = match arg(1) {
                    Value::Nil => HIST_DEFAULT_ROWS,
                    _ => usize::try_from(int_arg(self, args, 1)?.max(0)).unwrap_or(usize::MAX),
                };
                let t = t.borrow();
                if t.iter().any(|(_, v)| !matches!(v, Value::Int(_))) {
                    return Err(Throw::msg("print_hist only can print number"));
                }
                emit(out.hist(&Origin::default(), &t, n));
                Ok(Value::Nil)
            }
            Builtin::Pairs => {
                table_arg(self, args, 0)?;
                Ok(arg(0).clone())
            }
            Builtin::Len => match arg(0) {
                Value::Table(t) => Ok(Value::Int(t.borrow().len() as i64)),
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                _ => Err(bad(1, self, "table or string", args.first())),
            },
            Builtin::Delete => {
                let t = table_arg(self, args, 0)?;
                if args.len() >= 2 {
                    t.borrow_mut().remove(arg(1));
                } else {
                    t.borrow_mut().clear();
                }
                Ok(Value::Nil)
            }
            Builtin::TableNew => {
                let mut cap = 0i64;
                for (i, v) in args.iter().take(2).enumerate() {
                    if !v.is_nil() {
                        cap = cap.saturating_add(int_arg(self, args, i)?.clamp(0, MAX_PREALLOC));
                    }
                }
                let cap = usize::try_from(cap.min(MAX_PREALLOC)).unwrap_or(0);
                Ok(Value::Table(std::rc::Rc::new(std::cell::RefCell::new(
                    Table::with_capacity(cap),
                ))))
            }
            Builtin::Exit => Err(Throw::Exit),
            Builtin::TimeS => Ok(Value::Int((now_ns() / 1_000_000_000) as i64)),
            Builtin::TimeMs => Ok(Value::Int((now_ns() / 1_000_000) as i64)),
            Builtin::TimeUs => Ok(Value::Int((now_ns() / 1_000) as i64)),
            Builtin::TimeNs => Ok(Value::Int(now_ns() as i64)),
            Builtin::Arch => Ok(Value::str(uname().map(|u| u.1).unwrap_or_default())),
            Builtin::KernelV => Ok(Value::str(uname().map(|u| u.0).unwrap_or_default())),
            Builtin::NumCpus => Ok(Value::Int(online_cpus())),
            Builtin::ClearScreen => {
                emit(out.terminal(b"\x1b[1;1H\x1b[J"));
                Ok(Value::Nil)
            }
            Builtin::SetColor => {
                let fg = int_arg(self, args, 0)?;
                emit(out.terminal(format!("\x1b[{fg}m").as_bytes()));
                Ok(Value::Nil)
            }
            Builtin::SetColor2 => {
                let fg = int_arg(self, args, 0)?;
                let bg = int_arg(self, args, 1)?;
                emit(out.terminal(format!("\x1b[{fg};{bg}m").as_bytes()));
                Ok(Value::Nil)
            }
            Builtin::SetColor3 => {
                let fg = int_arg(self, args, 0)?;
                let bg = int_arg(self, args, 1)?;
                let attr = int_arg(self, args, 2)?;
                let text = if attr != 0 {
                    format!("\x1b[{fg};{bg};{attr}m")
                } else {
                    format!("\x1b[{fg};{bg}m")
                };
                emit(out.terminal(text.as_bytes()));
                Ok(Value::Nil)
            }
            Builtin::ResetColor => {
                emit(out.terminal(b"\x1b[0;0m"));
                Ok(Value::Nil)
            }
            Builtin::NewLine => {
                emit(out.terminal(b"\n"));
                Ok(Value::Nil)
            }
            Builtin::ToString => Ok(Value::str(format::value_text(arg(0)))),
            Builtin::ToNumber => Ok(arg(0).to_int().map_or(Value::Nil, Value::Int)),
            Builtin::Noop => Ok(Value::Nil),
        }
    }
}

/// Output errors (a closed pipe) are not the script's fault and must not
/// stop it; they are dropped here.
fn emit(written: std::io::Result<()>) {
    let _ = written;
}

/// Argument #`n` (1-based) was `got` (`None`: not passed at all).
fn bad(n: usize, b: Builtin, expected: &str, got: Option<&Value>) -> Throw {
    let got = got.map_or("no value", Value::type_name);
    Throw::msg(msg::bad_arg(n, b.name(), expected, got))
}

fn table_arg(
    b: Builtin,
    args: &[Value],
    i: usize,
) -> Result<std::rc::Rc<std::cell::RefCell<Table>>, Throw> {
    match args.get(i) {
        Some(Value::Table(t)) => Ok(t.clone()),
        other => Err(bad(i + 1, b, "table", other)),
    }
}

/// The integer argument at index `i`.
fn int_arg(b: Builtin, args: &[Value], i: usize) -> Result<i64, Throw> {
    let v = args.get(i);
    v.and_then(Value::to_int)
        .ok_or_else(|| bad(i + 1, b, "number", v))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `(release, machine)` from uname(2).
fn uname() -> Option<(String, String)> {
    // SAFETY: utsname is plain bytes; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
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
