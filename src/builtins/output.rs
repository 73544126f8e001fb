//! Output: `print`, `printf`, `print_hist`, `exit` and the `ansi.*`
//! terminal codes. In a probe, print/printf/print_hist/exit become records
//! sent through the ring buffer (the format string stays in userspace);
//! in an iterator, print/printf write into the reader's seq_file with
//! `bpf_seq_printf` (a kernel format made here: literals folded in,
//! numbers `%lld`, strings `%s`); userspace runs them directly.

use super::{Call, Def, Form, Kernel, KernelCx, UserCx};
use crate::frontend::ast;
use crate::frontend::diag::Diagnostic;
use crate::ir::{self, SiteKind, Ty};
use crate::runtime::format;
use crate::runtime::interp::{Throw, Value};
use crate::runtime::output::Origin;

/// `print_hist` shows this many rows unless told otherwise.
pub const HIST_DEFAULT_ROWS: usize = 20;

const fn ansi(name: &'static str, f: super::UserFn) -> Def {
    Def { namespace: Some("ansi"), name, form: Form::Call, kernel: None, user: Some(f) }
}

pub(super) const DEFS: &[Def] = &[
    Def { namespace: None, name: "print", form: Form::Call, kernel: Some(Kernel::Action(print_probe)), user: Some(print_user) },
    Def { namespace: None, name: "printf", form: Form::Call, kernel: Some(Kernel::Action(printf_probe)), user: Some(printf_user) },
    Def { namespace: None, name: "print_hist", form: Form::Call, kernel: Some(Kernel::Action(print_hist_probe)), user: Some(print_hist_user) },
    Def { namespace: None, name: "exit", form: Form::Call, kernel: Some(Kernel::Action(exit_probe)), user: Some(|_, _| Err(Throw::Exit)) },
    ansi("clear_screen", |cx, _| {
        cx.terminal(b"\x1b[1;1H\x1b[J");
        Ok(Value::Nil)
    }),
    ansi("set_color", |cx, args| {
        let fg = cx.int(args, 0)?;
        cx.terminal(format!("\x1b[{fg}m").as_bytes());
        Ok(Value::Nil)
    }),
    ansi("set_color2", |cx, args| {
        let (fg, bg) = (cx.int(args, 0)?, cx.int(args, 1)?);
        cx.terminal(format!("\x1b[{fg};{bg}m").as_bytes());
        Ok(Value::Nil)
    }),
    ansi("set_color3", |cx, args| {
        let (fg, bg, attr) = (cx.int(args, 0)?, cx.int(args, 1)?, cx.int(args, 2)?);
        let text = if attr != 0 { format!("\x1b[{fg};{bg};{attr}m") } else { format!("\x1b[{fg};{bg}m") };
        cx.terminal(text.as_bytes());
        Ok(Value::Nil)
    }),
    ansi("reset_color", |cx, _| {
        cx.terminal(b"\x1b[0;0m");
        Ok(Value::Nil)
    }),
    ansi("new_line", |cx, _| {
        cx.terminal(b"\n");
        Ok(Value::Nil)
    }),
];

fn record(cx: &mut dyn KernelCx, c: &Call, kind: SiteKind, fields: Vec<Ty>, consts: Vec<(usize, ir::SiteConst)>, values: Vec<ir::Expr>) -> ir::Stmt {
    let site = cx.site(kind, fields, consts, c.span);
    ir::Stmt { kind: ir::StmtKind::Emit { site, args: values }, span: Some(c.span) }
}

fn print_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Stmt> {
    let (fields, consts, values) = cx.record_args(c.args)?;
    if cx.seq_file() {
        let mut format = Vec::new();
        let mut kernel = values.iter();
        for i in 0..fields.len() + consts.len() {
            if i > 0 {
                format.push(b'\t');
            }
            match consts.iter().find(|(at, _)| *at == i) {
                Some((_, k)) => escape_into(&mut format, &format::value_text(&const_value(k))),
                None => {
                    let value = kernel.next()?;
                    format.extend_from_slice(seq_conversion(cx, value, b's')?);
                }
            }
        }
        format.push(b'\n');
        return seq_print(cx, c, format, values);
    }
    Some(record(cx, c, SiteKind::Print, fields, consts, values))
}

/// A literal argument as the value userspace would print.
fn const_value(k: &ir::SiteConst) -> Value {
    match k {
        ir::SiteConst::Nil => Value::Nil,
        ir::SiteConst::Bool(b) => Value::Bool(*b),
        ir::SiteConst::Int(n) => Value::Int(*n),
        ir::SiteConst::Str(s) => Value::str(s),
    }
}

/// Literal text in a kernel format: `%` doubled.
fn escape_into(format: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        if b == b'%' {
            format.push(b'%');
        }
        format.push(b);
    }
}

/// The kernel conversion printing `value` (`conv`: the script's
/// conversion letter): numbers 64-bit, strings `%s`; what the kernel
/// cannot print is an error at the value.
fn seq_conversion(cx: &mut dyn KernelCx, value: &ir::Expr, conv: u8) -> Option<&'static [u8]> {
    let span = value.span;
    let text: &'static [u8] = match (value.ty, conv) {
        (Ty::Int, b'd' | b's') => b"%lld",
        (Ty::Int, b'i') => b"%lli",
        (Ty::Int, b'u') => b"%llu",
        (Ty::Int, b'x') => b"%llx",
        (Ty::Int, b'X') => b"%llX",
        (Ty::Int, b'c') => b"%c",
        (Ty::Comm | Ty::Str, b's') => b"%s",
        (ty, _) => {
            cx.diag(
                Diagnostic::error(span.unwrap_or_default(), format!("an iterator cannot print a {} into its seq_file", crate::frontend::lower::ty_name(ty)))
                    .with_label("not a number or a string")
                    .with_note("iterators print in the kernel with bpf_seq_printf: numbers and strings only"),
            );
            return None;
        }
    };
    Some(text)
}

/// The seq_file print of `values` with kernel `format`, at most
/// `ir::SEQ_MAX_ARGS` of them.
fn seq_print(cx: &mut dyn KernelCx, c: &Call, format: Vec<u8>, values: Vec<ir::Expr>) -> Option<ir::Stmt> {
    if values.len() > ir::SEQ_MAX_ARGS {
        cx.diag(
            Diagnostic::error(c.span, format!("{}() in an iterator prints at most {} values, not {}", c.name, ir::SEQ_MAX_ARGS, values.len()))
                .with_label("too many values")
                .with_note("bpf_seq_printf takes at most 12 arguments: split it into two calls"),
        );
        return None;
    }
    if format.contains(&0) {
        cx.diag(Diagnostic::error(c.span, format!("{}() in an iterator cannot print a NUL byte", c.name)));
        return None;
    }
    Some(ir::Stmt { kind: ir::StmtKind::SeqPrint { format, args: values }, span: Some(c.span) })
}

/// printf's format for the kernel: each conversion of a value becomes
/// one the kernel prints (flags `0+- ` and a width kept), each literal
/// argument its text.
fn seq_printf_format(cx: &mut dyn KernelCx, c: &Call, fmt: &[u8], consts: &[(usize, ir::SiteConst)], values: &[ir::Expr]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut kernel = values.iter();
    let mut n = 0;
    let mut i = 0;
    let bad = |cx: &mut dyn KernelCx, what: String| {
        cx.diag(
            Diagnostic::error(c.args[0].span, what)
                .with_label("format")
                .with_note("iterators print in the kernel with bpf_seq_printf: %d %i %u %x %X %c %s with flags 0+- and a width"),
        );
    };
    while i < fmt.len() {
        if fmt[i] != b'%' {
            out.push(fmt[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            out.extend_from_slice(b"%%");
            i += 1;
            continue;
        }
        let mut flags = Vec::new();
        while let Some(&f @ (b'0' | b'+' | b'-' | b' ' | b'#')) = fmt.get(i) {
            flags.push(f);
            i += 1;
        }
        while fmt.get(i).is_some_and(u8::is_ascii_digit) {
            flags.push(fmt[i]);
            i += 1;
        }
        if matches!(fmt.get(i), Some(b'.' | b'*')) {
            bad(cx, "an iterator's printf takes no precision or `*` width".into());
            return None;
        }
        while matches!(fmt.get(i), Some(b'h' | b'l' | b'q' | b'j' | b'z' | b't' | b'L')) {
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            bad(cx, "the format ends with `%`".into());
            return None;
        };
        i += 1;
        match consts.iter().find(|(at, _)| *at == n) {
            Some((_, k)) => {
                let text = format::printf(&fmt[start..i], &[const_value(k)]).map_err(|e| bad(cx, e.to_string())).ok()?;
                escape_into(&mut out, &text);
            }
            None => {
                let value = kernel.next()?;
                if flags.contains(&b'#') || !b"diuxXcs".contains(&conv) {
                    bad(cx, format!("the kernel's seq_printf has no `%{}`", String::from_utf8_lossy(&fmt[start + 1..i])));
                    return None;
                }
                let kconv = seq_conversion(cx, value, conv)?;
                out.push(b'%');
                out.extend_from_slice(&flags);
                out.extend_from_slice(&kconv[1..]);
            }
        }
        n += 1;
    }
    Some(out)
}

fn print_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let written = cx.out.print(&Origin::default(), args);
    cx.emitted(written);
    Ok(Value::Nil)
}

fn printf_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Stmt> {
    let Some(first) = c.args.first() else {
        cx.diag(Diagnostic::error(c.span, "printf needs a format string"));
        return None;
    };
    let ast::ExprKind::Str(fmt) = &first.kind else {
        cx.diag(Diagnostic::error(first.span, "the format of printf in a probe must be a string literal"));
        return None;
    };
    let wanted = count_conversions(fmt);
    if wanted != c.args.len() - 1 {
        cx.diag(
            Diagnostic::error(c.span, format!("printf format has {wanted} conversions but {} arguments follow", c.args.len() - 1))
                .with_secondary(first.span, "format"),
        );
        return None;
    }
    let (fields, consts, values) = cx.record_args(&c.args[1..])?;
    // Numeric conversions need numbers: say so now, not when the first
    // event arrives.
    let mut kernel = fields.iter().zip(&values);
    for (i, conv) in conversions(fmt).into_iter().enumerate() {
        if consts.iter().any(|(at, _)| *at == i) {
            continue;
        }
        let Some((ty, value)) = kernel.next() else { break };
        if b"diouxXc".contains(&conv) && !matches!(ty, Ty::Int) {
            cx.diag(
                Diagnostic::error(value.span.unwrap_or(c.span), format!("printf's %{} needs a number, but this is a {}", conv as char, crate::frontend::lower::ty_name(*ty)))
                    .with_secondary(first.span, "format")
                    .with_note("use %s to print it"),
            );
            return None;
        }
    }
    if cx.seq_file() {
        let format = seq_printf_format(cx, c, fmt, &consts, &values)?;
        return seq_print(cx, c, format, values);
    }
    Some(record(cx, c, SiteKind::Printf { format: fmt.clone() }, fields, consts, values))
}

fn printf_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let fmt = match args.first() {
        Some(Value::Str(s)) => s.clone(),
        other => return Err(cx.bad(1, "string", other)),
    };
    let text = format::printf(fmt.as_bytes(), args.get(1..).unwrap_or(&[])).map_err(|e| Throw::msg(e.to_string()))?;
    let written = cx.out.printf(&Origin::default(), &text);
    cx.emitted(written);
    Ok(Value::Nil)
}

fn exit_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Stmt> {
    if !c.args.is_empty() {
        cx.diag(Diagnostic::error(c.span, "exit() takes no arguments"));
    }
    Some(record(cx, c, SiteKind::Exit, Vec::new(), Vec::new(), Vec::new()))
}

/// The top-level table a probe-side table builtin names as its first
/// argument.
pub(super) fn table_arg(cx: &mut dyn KernelCx, c: &Call) -> Option<String> {
    match c.args.first().map(|a| &a.kind) {
        Some(ast::ExprKind::Name(id)) if cx.is_table(&id.name) => Some(id.name.clone()),
        _ => {
            cx.diag(Diagnostic::error(c.span, format!("{}() in a probe takes a table declared at the top level", c.name)));
            None
        }
    }
}

fn print_hist_probe(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Stmt> {
    let var = table_arg(cx, c)?;
    let n = match c.args.get(1).map(|a| &a.kind) {
        None => HIST_DEFAULT_ROWS,
        Some(ast::ExprKind::Int(n)) if *n > 0 => *n as usize,
        Some(_) => {
            cx.diag(Diagnostic::error(c.args[1].span, "print_hist's count in a probe must be a positive number literal"));
            return None;
        }
    };
    Some(record(cx, c, SiteKind::PrintHist { var, n }, Vec::new(), Vec::new(), Vec::new()))
}

fn print_hist_user(cx: &mut UserCx, args: &[Value]) -> Result<Value, Throw> {
    let t = cx.table(args, 0)?;
    let n = match args.get(1) {
        None | Some(Value::Nil) => HIST_DEFAULT_ROWS,
        Some(_) => usize::try_from(cx.int(args, 1)?.max(0)).unwrap_or(usize::MAX),
    };
    let t = t.borrow();
    let number = |v: &Value| match v {
        Value::Int(_) => true,
        Value::Agg(r) => r.borrow().as_int().is_some(),
        _ => false,
    };
    if let Some((_, v)) = t.iter().find(|(_, v)| !number(v)) {
        if matches!(v, Value::Agg(_)) {
            return Err(Throw::msg("print_hist shows numbers: print(t) shows a table of these aggregates"));
        }
        return Err(Throw::msg("print_hist only can print number"));
    }
    let written = cx.out.hist(&Origin::default(), &t, n);
    cx.emitted(written);
    Ok(Value::Nil)
}

/// Number of arguments a printf format consumes.
pub fn count_conversions(format: &[u8]) -> usize {
    conversions(format).len()
}

/// The conversion letter of each argument a printf format consumes.
fn conversions(format: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    let mut i = 0;
    while i < format.len() {
        if format[i] == b'%' {
            i += 1;
            if format.get(i) == Some(&b'%') {
                i += 1;
                continue;
            }
            while i < format.len() && !format[i].is_ascii_alphabetic() {
                i += 1;
            }
            while i < format.len() && matches!(format[i], b'l' | b'h') {
                i += 1;
            }
            n.push(format.get(i).copied().unwrap_or(b'?'));
        }
        i += 1;
    }
    n
}
