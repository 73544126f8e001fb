//! Output formatting shared by the userspace interpreter and the printer of
//! records sent by probes: `print`, C-style `printf`, ktap's `print_hist`
//! layout and the tables shown when tracing ends. Pure: returns bytes,
//! never writes them anywhere.

use std::fmt;

use crate::ir::agg::{mean, Bucket, Reading};
use crate::runtime::interp::{Table, Value};
use crate::runtime::output::{Cell, Dump, DumpBody};

/// A `printf` format that cannot be applied to its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub message: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FormatError {}

/// How `%s` and `tostring` render a value (and `print`, but for tables):
/// nil, true/false, decimal integers, string bytes, `table: 0x…` and
/// `function: 0x…`.
pub fn value_text(v: &Value) -> Vec<u8> {
    match v {
        Value::Nil => b"nil".to_vec(),
        Value::Bool(b) => {
            if *b {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            }
        }
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Table(_) | Value::Func(_) => {
            format!("{}: 0x{:x}", v.type_name(), v.address().unwrap_or(0)).into_bytes()
        }
        Value::Agg(r) => reading_text(&r.borrow()),
    }
}

/// `print(args...)`: the values separated by tabs, then a newline.
pub fn print_line(args: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match a {
            Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            Value::Table(t) => {
                // A table (`print(t)`): its entries, the way tables are
                // shown when tracing ends, without a name (a table inside
                // it is named by its address, as `tostring` names it).
                let entries: Vec<(Value, Cell)> = t.borrow().iter().map(|(k, v)| (k.clone(), Cell::Value(v.clone()))).collect();
                let rows = table_rows(&entries);
                let end = rows.iter().rposition(|&b| b != b'\n').map_or(0, |i| i + 1);
                out.extend_from_slice(&rows[..end]);
            }
            Value::Agg(r) => {
                let text = reading_text(&r.borrow());
                if text.contains(&b'\n') && i > 0 {
                    out.push(b'\n');
                }
                out.extend_from_slice(&text);
            }
            other => out.extend_from_slice(&value_text(other)),
        }
    }
    out.push(b'\n');
    out
}

/// Whether a table holds kernel aggregates that are not plain numbers
/// (`print` shows such a table's entries rather than its address).
/// Cells in a bucket's bar.
const BUCKET_BAR: u64 = 40;

/// A bucket's range as histogram readers know it: `[4, 8)`, `[0]` for a
/// bucket of one value, `(..., 0)` and `[100, ...)` at the open ends.
pub fn bucket_label(b: &Bucket) -> String {
    match (b.min, b.max) {
        (None, Some(hi)) => format!("(..., {hi})"),
        (Some(lo), None) => format!("[{lo}, ...)"),
        (Some(lo), Some(hi)) if hi.checked_sub(lo) == Some(1) => format!("[{lo}]"),
        (Some(lo), Some(hi)) => format!("[{lo}, {hi})"),
        (None, None) => "(..., ...)".into(),
    }
}

/// A histogram: one line a bucket, lowest first, the range, the count and
/// a bar proportional to the largest count (`[4, 8)   3 |@@@@   |`).
pub fn buckets_text(buckets: &[Bucket]) -> Vec<u8> {
    if buckets.is_empty() {
        return b"(no values)".to_vec();
    }
    let labels: Vec<String> = buckets.iter().map(bucket_label).collect();
    let label_w = labels.iter().map(String::len).max().unwrap_or(0);
    let most = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let count_w = most.to_string().len().max(5);
    let mut out = String::new();
    for (b, label) in buckets.iter().zip(&labels) {
        let cells = if most > 0 { (u128::from(b.count) * u128::from(BUCKET_BAR) / u128::from(most)) as usize } else { 0 };
        let cells = if b.count > 0 { cells.max(1) } else { 0 };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{label:<label_w$} {:>count_w$} |{}{}|", b.count, "@".repeat(cells), " ".repeat(BUCKET_BAR as usize - cells)));
    }
    out.into_bytes()
}

const DISTRIBUTION: &str = "------------- Distribution -------------";
/// Cells in a histogram bar.
const BAR_CELLS: i128 = 38;
/// Keys longer than this get a line of their own.
const KEY_MAX: usize = 32;

/// `print_hist(t, n)` in ktap's layout: a header, then the `n` largest
/// entries (value descending, insertion order among equals) as
/// `"%31s |%s%-7d\n"` rows with a 38-cell bar, then `...` if rows were cut.
/// Entries whose value is not an integer are skipped (the interpreter
/// refuses such tables before calling this).
pub fn print_hist(t: &Table, n: usize) -> Vec<u8> {
    let mut rows: Vec<(&Value, i64)> = t
        .iter()
        .filter_map(|(k, v)| match v {
            Value::Int(i) => Some((k, *i)),
            // An average reads as its mean.
            Value::Agg(r) => r.borrow().as_int().map(|i| (k, i)),
            _ => None,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let total: i128 = rows.iter().map(|r| i128::from(r.1)).sum();

    let mut out = Vec::new();
    out.extend_from_slice(format!("{:>31}{}{}\n", "value ", DISTRIBUTION, " count").as_bytes());
    for &(key, value) in rows.iter().take(n) {
        let cells = if total > 0 {
            (i128::from(value) * BAR_CELLS / total).clamp(0, BAR_CELLS) as usize
        } else {
            0
        };
        let mut bar = "@".repeat(cells);
        bar.push_str(&" ".repeat(BAR_CELLS as usize - cells));
        let key_text = match key {
            Value::Str(s) => s.as_bytes().to_vec(),
            other => value_text(other),
        };
        let shown: &[u8] = if key_text.len() > KEY_MAX {
            out.extend_from_slice(&key_text);
            out.push(b'\n');
            b""
        } else {
            &key_text
        };
        pad(&mut out, shown, 31, false);
        out.extend_from_slice(b" |");
        out.extend_from_slice(bar.as_bytes());
        pad(&mut out, value.to_string().as_bytes(), 7, true);
        out.push(b'\n');
    }
    if rows.len() > n {
        out.extend_from_slice(format!("{:>31} |\n", "...").as_bytes());
    }
    out
}

/// Appends `text` padded with spaces to `width` (on the right when `left`).
fn pad(out: &mut Vec<u8>, text: &[u8], width: usize, left: bool) {
    let fill = width.saturating_sub(text.len());
    if !left {
        out.resize(out.len() + fill, b' ');
    }
    out.extend_from_slice(text);
    if left {
        out.resize(out.len() + fill, b' ');
    }
}

/// What an aggregate entry reads back as, in text.
pub fn reading_text(r: &Reading) -> Vec<u8> {
    match r {
        Reading::Int(i) => i.to_string().into_bytes(),
        Reading::Avg { count, total } => mean(*count, *total).to_string().into_bytes(),
        Reading::Stats { count, total } => format!("count {count}, average {}, total {total}", mean(*count, *total)).into_bytes(),
        Reading::Buckets(b) => buckets_text(b),
    }
}

/// A table entry's or global's value in text.
pub fn cell_text(c: &Cell) -> Vec<u8> {
    match c {
        Cell::Value(v) => value_text(v),
        Cell::Reading(r) => reading_text(r),
    }
}

/// Keys wider than this are not padded to line values up.
const DUMP_KEY_ALIGN: usize = 40;

/// A table or global probes wrote, as shown when tracing ends: `name:`,
/// then one `  key  value` row an entry, numbers ascending (the largest
/// last, nearest the prompt), keys lined up; a key or value of several
/// lines (a stack) is shown on lines of its own with the value under it;
/// an empty line ends it. A global is `name: value`.
pub fn dump(d: &Dump) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(d.name.as_bytes());
    out.push(b':');
    let entries = match &d.body {
        DumpBody::Global(c) => {
            let text = cell_text(c);
            if text.contains(&b'\n') {
                // A histogram: its lines under the name.
                for line in text.split(|&b| b == b'\n') {
                    out.extend_from_slice(b"\n  ");
                    out.extend_from_slice(line);
                }
                out.extend_from_slice(b"\n\n");
                return out;
            }
            out.push(b' ');
            out.extend_from_slice(&text);
            out.push(b'\n');
            return out;
        }
        DumpBody::Table { entries, .. } => entries,
    };
    out.push(b'\n');
    out.extend_from_slice(&table_rows(entries));
    out
}

/// A table's rows as `dump` shows them, with the empty line ending them.
fn table_rows(entries: &[(Value, Cell)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rows: Vec<(Vec<u8>, Vec<u8>, Option<i64>)> = entries
        .iter()
        .map(|(k, v)| {
            let key = match k {
                Value::Str(s) => s.as_bytes().to_vec(),
                other => value_text(other),
            };
            (key, cell_text(v), v.as_int())
        })
        .collect();
    // Stable: entries with equal numbers (or none) keep the map's order.
    rows.sort_by_key(|r| r.2);
    let single = |b: &[u8]| !b.contains(&b'\n');
    let width = rows
        .iter()
        .filter(|(k, v, _)| single(k) && single(v) && k.len() <= DUMP_KEY_ALIGN)
        .map(|(k, ..)| k.len())
        .max()
        .unwrap_or(0);
    for (key, value, _) in &rows {
        if single(key) && single(value) {
            out.extend_from_slice(b"  ");
            pad(&mut out, key, width, true);
            out.extend_from_slice(b"  ");
            out.extend_from_slice(value);
            out.push(b'\n');
            continue;
        }
        for line in key.split(|&b| b == b'\n') {
            out.extend_from_slice(b"  ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        for line in value.split(|&b| b == b'\n') {
            out.extend_from_slice(b"    ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    out
}

/// One parsed `%` conversion.
#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    /// Bits kept by an `h`/`hh` modifier (64 otherwise).
    bits: u32,
}

/// C `printf` over ktap values: `%d %i %u %x %X %o %c %s %p %%` with flags
/// `-+ #0`, width and precision (either may be `*`) and the `hh h l ll`
/// modifiers. Integers are 64-bit unless `h`/`hh` narrows them; `%d` takes
/// numeric strings, `%s` takes any value.
pub fn printf(fmt: &[u8], args: &[Value]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut cursor = Args { args, next: 0 };
    let mut i = 0usize;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec {
            bits: 64,
            ..Spec::default()
        };
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => spec.left = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'#' => spec.alt = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        if fmt.get(i) == Some(&b'*') {
            i += 1;
            let w = cursor.int("width")?;
            if w < 0 {
                spec.left = true;
            }
            spec.width = w.unsigned_abs().min(4096) as usize;
        } else {
            spec.width = digits(fmt, &mut i);
        }
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            if fmt.get(i) == Some(&b'*') {
                i += 1;
                let p = cursor.int("precision")?;
                spec.precision = usize::try_from(p).ok().map(|p| p.min(4096));
            } else {
                spec.precision = Some(digits(fmt, &mut i));
            }
        }
        loop {
            match fmt.get(i) {
                Some(b'h') => spec.bits = if spec.bits == 16 { 8 } else { 16 },
                Some(b'l' | b'q' | b'j' | b'z' | b't' | b'L') => {}
                _ => break,
            }
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            return Err(FormatError {
                message: "invalid format (ends with '%')".into(),
            });
        };
        i += 1;
        match conv {
            b'%' => out.push(b'%'),
            b'd' | b'i' => {
                let v = cursor.int("%d")?;
                let v = match spec.bits {
                    8 => i64::from(v as i8),
                    16 => i64::from(v as i16),
                    _ => v,
                };
                let sign: &[u8] = if v < 0 {
                    b"-"
                } else if spec.plus {
                    b"+"
                } else if spec.space {
                    b" "
                } else {
                    b""
                };
                integer(
                    &mut out,
                    &spec,
                    sign,
                    b"",
                    v.unsigned_abs().to_string().as_bytes(),
                );
            }
            b'u' | b'x' | b'X' | b'o' => {
                let v = cursor.int("%u")? as u64;
                let v = match spec.bits {
                    8 => u64::from(v as u8),
                    16 => u64::from(v as u16),
                    _ => v,
                };
                let text = match conv {
                    b'u' => v.to_string(),
                    b'x' => format!("{v:x}"),
                    b'X' => format!("{v:X}"),
                    _ => format!("{v:o}"),
                };
                let prefix: &[u8] = match conv {
                    b'x' if spec.alt && v != 0 => b"0x",
                    b'X' if spec.alt && v != 0 => b"0X",
                    _ => b"",
                };
                let mut text = text.into_bytes();
                if conv == b'o' && spec.alt {
                    let shown = spec.precision.map_or(text.len(), |p| p.max(text.len()));
                    if shown == text.len() && text.first() != Some(&b'0') {
                        text.insert(0, b'0');
                    }
                }
                integer(&mut out, &spec, b"", prefix, &text);
            }
            b'p' => {
                let v = cursor.int("%p")? as u64;
                let text = format!("0x{v:x}");
                pad(&mut out, text.as_bytes(), spec.width, spec.left);
            }
            b'c' => {
                let (v, n) = cursor.take("%c")?;
                let byte = match v {
                    Value::Str(s) if s.len() == 1 => s.as_bytes()[0],
                    other => int(other, n)? as u8,
                };
                pad(&mut out, &[byte], spec.width, spec.left);
            }
            b's' => {
                let (v, _) = cursor.take("%s")?;
                let text = value_text(v);
                let shown = match spec.precision {
                    Some(p) if p < text.len() => &text[..p],
                    _ => &text[..],
                };
                pad(&mut out, shown, spec.width, spec.left);
            }
            other => {
                return Err(FormatError {
                    message: format!(
                        "invalid option '%{}' to 'printf'",
                        String::from_utf8_lossy(&[other])
                    ),
                })
            }
        }
    }
    Ok(out)
}

fn digits(fmt: &[u8], i: &mut usize) -> usize {
    let mut n = 0usize;
    while let Some(d) = fmt.get(*i).filter(|c| c.is_ascii_digit()) {
        n = (n * 10 + usize::from(d - b'0')).min(4096);
        *i += 1;
    }
    n
}

/// The integer argument `#n` (`n` counts the format as #1).
fn int(v: &Value, n: usize) -> Result<i64, FormatError> {
    v.to_int().ok_or_else(|| FormatError {
        message: format!(
            "bad argument #{n} to 'printf' (number expected, got {})",
            v.type_name()
        ),
    })
}

/// The arguments of one `printf`, consumed left to right.
struct Args<'a> {
    args: &'a [Value],
    next: usize,
}

impl<'a> Args<'a> {
    /// The next argument and its number in the call (the format is #1).
    fn take(&mut self, what: &str) -> Result<(&'a Value, usize), FormatError> {
        let n = self.next;
        self.next += 1;
        match self.args.get(n) {
            Some(v) => Ok((v, n + 2)),
            None => Err(FormatError {
                message: format!("bad argument #{} to 'printf' (no value for {what})", n + 2),
            }),
        }
    }

    fn int(&mut self, what: &str) -> Result<i64, FormatError> {
        let (v, n) = self.take(what)?;
        int(v, n)
    }
}

/// Lays out an integer: sign, prefix, zero-extended digits, padding.
fn integer(out: &mut Vec<u8>, spec: &Spec, sign: &[u8], prefix: &[u8], digits: &[u8]) {
    let digits: &[u8] = if spec.precision == Some(0) && digits == b"0" {
        b""
    } else {
        digits
    };
    let zeros = spec.precision.map_or(0, |p| p.saturating_sub(digits.len()));
    let body = sign.len() + prefix.len() + zeros + digits.len();
    let fill = spec.width.saturating_sub(body);
    let zero_pad = spec.zero && !spec.left && spec.precision.is_none();
    if !spec.left && !zero_pad {
        out.resize(out.len() + fill, b' ');
    }
    out.extend_from_slice(sign);
    out.extend_from_slice(prefix);
    if zero_pad {
        out.resize(out.len() + fill, b'0');
    }
    out.resize(out.len() + zeros, b'0');
    out.extend_from_slice(digits);
    if spec.left {
        out.resize(out.len() + fill, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: &[Value]) -> String {
        String::from_utf8(printf(fmt.as_bytes(), args).expect("format")).expect("utf8")
    }

    #[test]
    fn histograms_in_numeric_order_with_proportional_bars() {
        let b = |min, max, count| Bucket { min, max, count };
        let text = buckets_text(&[b(None, Some(0), 2), b(Some(0), Some(1), 0), b(Some(1), Some(2), 8), b(Some(2), Some(4), 3), b(Some(1 << 20), None, 1)]);
        let expected = "\
(..., 0)           2 |@@@@@@@@@@                              |
[0]                0 |                                        |
[1]                8 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[2, 4)             3 |@@@@@@@@@@@@@@@                         |
[1048576, ...)     1 |@@@@@                                   |";
        assert_eq!(String::from_utf8_lossy(&text), expected);
        assert_eq!(buckets_text(&[]), b"(no values)");
        assert_eq!(reading_text(&Reading::Stats { count: 3, total: -9 }), b"count 3, average -3, total -9");
        assert_eq!(reading_text(&Reading::Avg { count: 0, total: 0 }), b"0");
    }

    #[test]
    fn print_shows_a_table_of_aggregates_and_dumps_put_histograms_under_keys() {
        let h = Value::agg(Reading::Buckets(vec![Bucket { min: Some(1), max: Some(2), count: 1 }, Bucket { min: Some(2), max: Some(4), count: 2 }]));
        let mut t = Table::new();
        t.set(Value::str("sh"), h.clone());
        let t = Value::Table(std::rc::Rc::new(std::cell::RefCell::new(t)));
        let expected = "  sh\n    [1]        1 |@@@@@@@@@@@@@@@@@@@@                    |\n    [2, 4)     2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n";
        assert_eq!(String::from_utf8_lossy(&print_line(&[t])), expected);
        // A plain table prints its entries too, by value; one inside it is
        // named; an empty one is an empty line.
        let mut plain = Table::new();
        plain.set(Value::str("b"), Value::Int(2));
        plain.set(Value::str("a"), Value::Int(1));
        plain.set(Value::str("t"), Value::new_table());
        let text = String::from_utf8_lossy(&print_line(&[Value::Table(std::rc::Rc::new(std::cell::RefCell::new(plain)))])).into_owned();
        assert!(text.starts_with("  t  table: 0x") && text.ends_with("\n  a  1\n  b  2\n"), "{text}");
        assert_eq!(print_line(&[Value::new_table()]), b"\n");
        let d = Dump { name: "lat".into(), kind: Some("hist"), counter: false, body: DumpBody::Table { stack_keys: false, entries: vec![(Value::str("sh"), Cell::Value(h))] } };
        assert_eq!(String::from_utf8_lossy(&dump(&d)), format!("lat:\n{expected}\n"));
        // print_hist shows an average as its mean.
        let mut a = Table::new();
        a.set(Value::str("sh"), Value::agg(Reading::Avg { count: 2, total: 10 }));
        let text = String::from_utf8_lossy(&print_hist(&a, 5)).into_owned();
        assert!(text.lines().nth(1).is_some_and(|l| l.trim_start().starts_with("sh |") && l.trim_end().ends_with("@5")), "{text}");
        // A global histogram dumps under its name.
        let g = Dump { name: "lat".into(), kind: Some("hist"), counter: false, body: DumpBody::Global(Cell::Reading(Reading::Buckets(vec![Bucket { min: Some(0), max: Some(1), count: 1 }, Bucket { min: Some(1), max: Some(2), count: 1 }]))) };
        assert_eq!(String::from_utf8_lossy(&dump(&g)), "lat:\n  [0]     1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n  [1]     1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n");
    }

    #[test]
    fn integers_like_c() {
        assert_eq!(
            f(
                "%d|%5d|%-5d|%05d|%+d|% d",
                &[
                    42.into(),
                    42.into(),
                    42.into(),
                    (-42).into(),
                    7.into(),
                    7.into()
                ]
            ),
            "42|   42|42   |-0042|+7| 7"
        );
        assert_eq!(
            f(
                "%x %X %#x %#o %o %u",
                &[
                    255.into(),
                    255.into(),
                    255.into(),
                    8.into(),
                    0.into(),
                    (-1).into()
                ]
            ),
            "ff FF 0xff 010 0 18446744073709551615"
        );
        assert_eq!(
            f(
                "%.3d|%8.3d|%-8.3x|%.0d|",
                &[5.into(), (-5).into(), 10.into(), 0.into()]
            ),
            "005|    -005|00a     ||"
        );
        assert_eq!(
            f(
                "%hd %hhu %ld %lld %lx",
                &[65537.into(), 257.into(), 1.into(), 2.into(), (-1).into()]
            ),
            "1 1 1 2 ffffffffffffffff"
        );
        assert_eq!(
            f("%*d|%-*d|", &[4.into(), 1.into(), 3.into(), 2.into()]),
            "   1|2  |"
        );
        assert_eq!(f("%d", &[Value::str("12")]), "12");
    }

    #[test]
    fn strings_and_others() {
        assert_eq!(
            f(
                "%s|%5s|%-5s|%.2s|%s|%s",
                &[
                    Value::str("ab"),
                    Value::str("ab"),
                    Value::str("ab"),
                    Value::str("abc"),
                    12.into(),
                    Value::Nil
                ]
            ),
            "ab|   ab|ab   |ab|12|nil"
        );
        assert_eq!(
            f("%c%c%%|%p", &[65.into(), Value::str("z"), 255.into()]),
            "Az%|0xff"
        );
        assert_eq!(f("%3c|", &[66.into()]), "  B|");
    }

    #[test]
    fn errors() {
        assert!(printf(b"%d", &[]).is_err());
        assert!(printf(b"%d", &[Value::str("x")]).is_err());
        assert!(printf(b"%y", &[1.into()]).is_err());
        assert!(printf(b"50%", &[]).is_err());
        let e = printf(b"%s %d", &[1.into(), Value::Bool(true)]).unwrap_err();
        assert_eq!(
            e.message,
            "bad argument #3 to 'printf' (number expected, got boolean)"
        );
    }

    #[test]
    fn dumps_sort_by_value_and_line_keys_up() {
        let entries = vec![
            (Value::str("read"), Cell::Reading(Reading::Int(12))),
            (Value::str("close"), Cell::Reading(Reading::Int(3))),
            (Value::Int(7), Cell::Reading(Reading::Int(5))),
        ];
        let d = Dump { name: "s".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: false, entries } };
        assert_eq!(String::from_utf8_lossy(&dump(&d)), "s:\n  close  3\n  7      5\n  read   12\n\n");
        let g = Dump { name: "n".into(), kind: None, counter: false, body: DumpBody::Global(Cell::Value(Value::str("x"))) };
        assert_eq!(String::from_utf8_lossy(&dump(&g)), "n: x\n");
        let stacks = vec![(Value::str("        f+0x1\n        main"), Cell::Reading(Reading::Int(2)))];
        let d = Dump { name: "k".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: true, entries: stacks } };
        assert_eq!(String::from_utf8_lossy(&dump(&d)), "k:\n          f+0x1\n          main\n    2\n\n");
    }

    #[test]
    fn hist_layout() {
        let mut t = Table::new();
        t.set(Value::str("a"), 3.into());
        t.set(Value::str("b"), 1.into());
        let text = String::from_utf8(print_hist(&t, 20)).expect("utf8");
        let expected = format!(
            "{:>31}{}{}\n{:>31} |{}{}{:<7}\n{:>31} |{}{}{:<7}\n",
            "value ",
            DISTRIBUTION,
            " count",
            "a",
            "@".repeat(28),
            " ".repeat(10),
            3,
            "b",
            "@".repeat(9),
            " ".repeat(29),
            1
        );
        assert_eq!(text, expected);
        let cut = String::from_utf8(print_hist(&t, 1)).expect("utf8");
        assert!(cut.ends_with(&format!("{:>31} |\n", "...")));
        assert_eq!(cut.lines().count(), 3);
    }
}
