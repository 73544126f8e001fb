//! Lexer: source text to tokens with spans, plus lexical diagnostics. The
//! only user of logos. Also switches to raw "event definition" mode after
//! `trace` (see `event_defs`). Never panics and never stops at the first
//! bad character: every problem becomes a diagnostic and lexing goes on.

use logos::{Lexer, Logos};

use super::ast::{Span, TimerKind};
use super::diag::Diagnostic;

/// A timer header such as `tick-1s` or `profile-10us`, already converted.
/// `nanos` is 0 only when the period was malformed (a diagnostic exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerTok {
    pub kind: TimerKind,
    pub nanos: u64,
}

impl TimerTok {
    /// Length of `tick-` / `profile-`: the period starts this many bytes
    /// into the token.
    pub fn prefix_len(self) -> usize {
        match self.kind {
            TimerKind::Tick => "tick-".len(),
            TimerKind::Profile => "profile-".len(),
        }
    }
}

/// A token. Variants without a logos attribute (`EventDefs`, `FilterOpen`,
/// `FilterClose`) are produced by the event-mode wrapper in `tokenize`.
#[derive(Logos, Clone, Debug, PartialEq, Eq)]
#[logos(extras = Vec<Diagnostic>)]
#[logos(skip r"[ \t\r\n\f\x0B]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
pub enum Token {
    #[token("var")]
    Var,
    #[token("function")]
    Function,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("elseif")]
    Elseif,
    #[token("while")]
    While,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("break")]
    Break,
    #[token("return")]
    Return,
    #[token("trace")]
    Trace,
    #[token("trace_end")]
    TraceEnd,
    #[token("nil")]
    Nil,
    #[token("true")]
    True,
    #[token("false")]
    False,

    #[regex("[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_owned())]
    Ident(String),
    /// Decimal or hex, wrapped to i64 (`0xffffffffffffffff` is -1).
    #[regex("[0-9][0-9A-Za-z_]*", number)]
    Int(i64),
    /// Contents after escape processing.
    #[token("\"", string)]
    #[token("'", string)]
    Str(Vec<u8>),
    /// `tick-N[unit]` / `profile-N[unit]`, only when a `{` follows;
    /// otherwise the wrapper splits it back into `tick`, `-`, `N...`.
    #[regex("(tick|profile)-[0-9][0-9A-Za-z_]*", timer)]
    Timer(TimerTok),
    /// The raw event specs after `trace` (may be empty).
    EventDefs(String),
    /// The `/` opening a trace filter.
    FilterOpen,
    /// The `/` closing a trace filter.
    FilterClose,

    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    /// `->`, a synonym of `.` for members (C and perf-probe habits).
    #[token("->")]
    Arrow,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("..")]
    DotDot,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,
    #[token("=")]
    Assign,
    #[token("+=")]
    PlusAssign,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
}

impl Token {
    /// The source spelling of a fixed token (keyword or punctuation).
    pub fn spelling(&self) -> Option<&'static str> {
        Some(match self {
            Token::Var => "var",
            Token::Function => "function",
            Token::If => "if",
            Token::Else => "else",
            Token::Elseif => "elseif",
            Token::While => "while",
            Token::For => "for",
            Token::In => "in",
            Token::Break => "break",
            Token::Return => "return",
            Token::Trace => "trace",
            Token::TraceEnd => "trace_end",
            Token::Nil => "nil",
            Token::True => "true",
            Token::False => "false",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Arrow => "->",
            Token::Star => "*",
            Token::Slash => "/",
            Token::Percent => "%",
            Token::DotDot => "..",
            Token::EqEq => "==",
            Token::NotEq => "!=",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::AndAnd => "&&",
            Token::OrOr => "||",
            Token::Bang => "!",
            Token::Assign => "=",
            Token::PlusAssign => "+=",
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::Comma => ",",
            Token::Dot => ".",
            Token::Colon => ":",
            Token::Semi => ";",
            _ => return None,
        })
    }

    pub fn is_keyword(&self) -> bool {
        self.spelling().is_some_and(|s| s.starts_with(|c: char| c.is_ascii_alphabetic()))
    }

    /// How a diagnostic names this token: `'}'`, `keyword 'var'`,
    /// `identifier 'foo'`, `integer`, ...
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("identifier '{name}'"),
            Token::Int(_) => "integer".into(),
            Token::Str(_) => "string".into(),
            Token::Timer(t) => match t.kind {
                TimerKind::Tick => "'tick-' timer".into(),
                TimerKind::Profile => "'profile-' timer".into(),
            },
            Token::EventDefs(_) => "event spec".into(),
            Token::FilterOpen => "filter '/'".into(),
            Token::FilterClose => "end of filter '/'".into(),
            t if t.is_keyword() => format!("keyword '{}'", t.spelling().unwrap_or("?")),
            t => format!("'{}'", t.spelling().unwrap_or("?")),
        }
    }
}

/// Pushes a diagnostic for a span relative to the current logos input.
fn report(lex: &mut Lexer<Token>, range: std::ops::Range<usize>, d: impl FnOnce(Span) -> Diagnostic) {
    let span = Span::new(range.start, range.end);
    let diag = d(span);
    lex.extras.push(diag);
}

/// Converts `[0-9][0-9A-Za-z_]*`: decimal or `0x` hex; anything else is
/// an error (value 0). A value beyond 64 bits is its low 64 bits (two's
/// complement, as a wrapped sum would be), with a warning.
fn number(lex: &mut Lexer<Token>) -> i64 {
    let text = lex.slice().to_owned();
    let range = lex.span();
    match parse_int(&text) {
        Ok(v) => v,
        Err(msg) if msg.ends_with("does not fit in 64 bits") => {
            let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                Some(hex) => (hex, 16),
                None => (text.as_str(), 10),
            };
            let v = digits.chars().filter_map(|c| c.to_digit(radix)).fold(0u64, |v, d| v.wrapping_mul(u64::from(radix)).wrapping_add(u64::from(d))) as i64;
            report(lex, range, |s| {
                Diagnostic::warning(s, format!("{msg}: its low 64 bits are used ({v})"))
                    .with_label("wraps around")
                    .with_note("numbers are 64-bit integers: a literal keeps its value modulo 2^64, as two's complement")
            });
            v
        }
        Err(msg) => {
            report(lex, range, |s| Diagnostic::error(s, msg).with_label("invalid integer literal"));
            0
        }
    }
}

/// Parses a whole integer literal (decimal or `0x` hex) into its wrapped
/// i64 value.
pub fn parse_int(text: &str) -> Result<i64, String> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() {
        return Err("hexadecimal literal has no digits".into());
    }
    if let Some(bad) = digits.chars().find(|c| !c.is_digit(radix)) {
        let kind = if radix == 16 { "hexadecimal" } else { "decimal" };
        return Err(format!("invalid digit '{bad}' in {kind} literal '{text}'"));
    }
    match u64::from_str_radix(digits, radix) {
        Ok(v) => Ok(v as i64),
        Err(_) => Err(format!("integer literal '{text}' does not fit in 64 bits")),
    }
}

/// Reads a string literal after its opening quote: processes escapes,
/// bumps the lexer past the closing quote (or to the end of the line when
/// unterminated) and reports bad escapes and a missing quote.
fn string(lex: &mut Lexer<Token>) -> Vec<u8> {
    let quote = lex.slice().as_bytes().first().copied().unwrap_or(b'"');
    let open = lex.span().start;
    let body_start = lex.span().end;
    let rest = lex.remainder().to_owned();
    let bytes = rest.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(&c) = bytes.get(i) else {
            return unterminated(lex, open, body_start + i, i, out);
        };
        if c == b'\n' {
            return unterminated(lex, open, body_start + i, i, out);
        }
        if c == quote {
            lex.bump(i + 1);
            return out;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        // An escape: `\` then at least one more char (or EOL/EOF).
        let Some(&e) = bytes.get(i + 1) else {
            i += 1;
            continue;
        };
        let simple = match e {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
            continue;
        }
        match e {
            b'\n' => {
                // Leave the newline: the string is unterminated there.
                i += 1;
            }
            b'x' => {
                let digits: Vec<u8> =
                    bytes[i + 2..].iter().take(2).take_while(|b| b.is_ascii_hexdigit()).copied().collect();
                let end = i + 2 + digits.len();
                if digits.is_empty() {
                    let at = body_start + i;
                    report(lex, at..at + 2, |s| {
                        Diagnostic::error(s, "'\\x' escape needs one or two hex digits")
                            .with_label("invalid escape")
                    });
                } else {
                    let v = digits.iter().fold(0u8, |acc, d| acc.wrapping_mul(16).wrapping_add(hex_val(*d)));
                    out.push(v);
                }
                i = end;
            }
            b'0'..=b'7' => {
                let digits: Vec<u8> =
                    bytes[i + 1..].iter().take(3).take_while(|b| (b'0'..=b'7').contains(*b)).copied().collect();
                let end = i + 1 + digits.len();
                let v = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                match u8::try_from(v) {
                    Ok(v) => out.push(v),
                    Err(_) => {
                        let at = body_start + i;
                        report(lex, at..body_start + end, |s| {
                            Diagnostic::error(s, format!("octal escape value {v} is larger than 255"))
                                .with_label("invalid escape")
                        });
                    }
                }
                i = end;
            }
            _ => {
                let ch = rest[i + 1..].chars().next().unwrap_or('?');
                let len = ch.len_utf8();
                let at = body_start + i;
                report(lex, at..at + 1 + len, |s| {
                    Diagnostic::error(s, format!("unknown escape sequence '\\{}'", ch.escape_default()))
                        .with_label("unknown escape")
                        .with_note("known escapes: \\n \\t \\r \\\\ \\\" \\' \\a \\b \\f \\v \\xHH \\NNN (octal)")
                });
                out.extend_from_slice(&rest.as_bytes()[i + 1..i + 1 + len]);
                i += 1 + len;
            }
        }
    }
}

fn hex_val(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

fn unterminated(lex: &mut Lexer<Token>, open: usize, end: usize, consumed: usize, out: Vec<u8>) -> Vec<u8> {
    lex.bump(consumed);
    report(lex, open..end, |s| {
        Diagnostic::error(s, "unterminated string literal").with_label("missing closing quote")
    });
    out
}

fn timer(lex: &mut Lexer<Token>) -> TimerTok {
    let kind = if lex.slice().starts_with("tick") { TimerKind::Tick } else { TimerKind::Profile };
    TimerTok { kind, nanos: 0 }
}

/// Nanoseconds of a period such as `1s`, `100ms`, `10` (seconds), `99hz`
/// (a frequency: a 99th of a second).
pub fn parse_period(text: &str) -> Result<u64, Diagnostic> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let whole = Span::new(0, text.len());
    let unit_span = Span::new(split, text.len());
    let mult: u64 = match unit {
        "" | "s" | "sec" => 1_000_000_000,
        "ms" | "msec" => 1_000_000,
        "us" | "usec" => 1_000,
        "ns" | "nsec" => 1,
        "hz" | "Hz" => 0,
        _ => {
            return Err(Diagnostic::error(unit_span, format!("unknown time unit '{unit}'"))
                .with_label("unknown unit")
                .with_note("units are s sec ms msec us usec ns nsec, or hz for a frequency; no unit means seconds"))
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        Diagnostic::error(whole, format!("timer period '{text}' is too large")).with_label("overflows 64-bit nanoseconds")
    })?;
    if n == 0 {
        return Err(Diagnostic::error(whole, "timer period must not be zero").with_label("zero period"));
    }
    if mult == 0 {
        // A frequency: the period is its inverse, in whole nanoseconds.
        return match 1_000_000_000 / n {
            0 => Err(Diagnostic::error(whole, format!("timer frequency '{text}' is above 1 GHz")).with_label("shorter than a nanosecond")),
            period => Ok(period),
        };
    }
    n.checked_mul(mult).ok_or_else(|| {
        Diagnostic::error(whole, format!("timer period '{text}' is too large")).with_label("overflows 64-bit nanoseconds")
    })
}

/// Lexes a whole script. Never fails: problems become diagnostics (not
/// yet normalized) and the token stream goes on.
pub fn tokenize(src: &str) -> (Vec<(Token, Span)>, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    lex_range(src, 0, src.len(), true, &mut out, &mut diags);
    (out, diags)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Index of the `\n` ending the line that contains `i` (or `end`).
fn line_end(b: &[u8], i: usize, end: usize) -> usize {
    b[i..end].iter().position(|&c| c == b'\n').map_or(end, |p| i + p)
}

/// The first byte at or after `i` that is neither whitespace nor comment.
fn next_significant(b: &[u8], mut i: usize, end: usize) -> Option<u8> {
    while i < end {
        match b[i] {
            c if is_space(c) => i += 1,
            b'#' => i = line_end(b, i, end),
            c => return Some(c),
        }
    }
    None
}

/// Index just past a string literal starting at `i` (its quote), or the
/// end of its line when unterminated.
fn skip_string(b: &[u8], i: usize, end: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < end {
        match b[j] {
            b'\\' => j += 2,
            b'\n' => return j,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    end
}

/// Lexes `src[start..end]` with logos, appending tokens and diagnostics
/// with file-absolute spans. With `events`, `trace` switches to event mode.
fn lex_range(
    src: &str,
    start: usize,
    end: usize,
    events: bool,
    out: &mut Vec<(Token, Span)>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(text) = src.get(start..end) else { return };
    let mut lx = Token::lexer(text);
    let mut bad: Option<Span> = None;
    let abs = |r: std::ops::Range<usize>| Span::new(start + r.start, start + r.end);
    while let Some(res) = lx.next() {
        let span = abs(lx.span());
        let tok = match res {
            Ok(t) => t,
            Err(()) => {
                bad = Some(match bad {
                    Some(b) if b.end == span.start => b.to(span),
                    Some(b) => {
                        diags.push(unknown_chars(src, b));
                        span
                    }
                    None => span,
                });
                continue;
            }
        };
        if let Some(b) = bad.take() {
            diags.push(unknown_chars(src, b));
        }
        // After `.`, a keyword is a field name: `kdebug.trace`, `t.end`.
        if tok.is_keyword() && matches!(out.last(), Some((Token::Dot | Token::Arrow, _))) {
            out.push((Token::Ident(lx.slice().to_owned()), span));
            continue;
        }
        match tok {
            Token::Trace if events => {
                out.push((Token::Trace, span));
                let resume = event_defs(src, span.end as usize, end, out, diags);
                let here = span.end as usize;
                if resume > here {
                    lx.bump(resume - here);
                }
            }
            Token::Timer(t) => timer_token(src, t, span, out, diags),
            t => out.push((t, span)),
        }
    }
    if let Some(b) = bad {
        diags.push(unknown_chars(src, b));
    }
    diags.extend(lx.extras.drain(..).map(|d| d.shifted(start as u32)));
}

fn unknown_chars(src: &str, span: Span) -> Diagnostic {
    let text = src.get(span.range()).unwrap_or("");
    let shown: String = text.chars().take(8).flat_map(char::escape_default).collect();
    let plural = if text.chars().count() > 1 { "s" } else { "" };
    Diagnostic::error(span, format!("unexpected character{plural} '{shown}'")).with_label("not valid in ktap")
}

/// A timer header: a real `Timer` when its body `{` follows, else the
/// expression `tick - N...` it also spells.
fn timer_token(src: &str, t: TimerTok, span: Span, out: &mut Vec<(Token, Span)>, diags: &mut Vec<Diagnostic>) {
    let (s, e) = (span.start as usize, span.end as usize);
    let b = src.as_bytes();
    let prefix = t.prefix_len();
    if next_significant(b, e, b.len()) == Some(b'{') {
        let period = &src[s + prefix..e];
        let nanos = match parse_period(period) {
            Ok(n) => n,
            Err(d) => {
                diags.push(d.shifted((s + prefix) as u32));
                0
            }
        };
        // `profile-99` is 99 Hz in DTrace, 99 seconds here (as in ktap).
        if t.kind == TimerKind::Profile && nanos > 1_000_000_000 && period.bytes().all(|c| c.is_ascii_digit()) {
            diags.push(
                Diagnostic::warning(Span::new(s + prefix, e), format!("`profile-{period}` samples every {period} seconds on each CPU"))
                    .with_label("no unit: seconds")
                    .with_note(format!("`profile-{period}hz` samples {period} times a second; `profile-{period}s` says seconds without this warning")),
            );
        }
        out.push((Token::Timer(TimerTok { nanos, ..t }), span));
        return;
    }
    let name = &src[s..s + prefix - 1];
    out.push((Token::Ident(name.to_owned()), Span::new(s, s + prefix - 1)));
    out.push((Token::Minus, Span::new(s + prefix - 1, s + prefix)));
    lex_range(src, s + prefix, e, false, out, diags);
}

/// Event mode, entered right after `trace` at `pos`.
///
/// The event specs are raw text: everything up to the body's `{`, up to a
/// filter's opening `/`, or up to `}`, `;` or a quote. A `/` starts a
/// filter only when whitespace precedes it (`probe:/bin/sh:f` is a path).
/// The specs may continue over a newline only after a `,`, while still
/// empty, or when the next line starts with `{` or `/`; otherwise they end
/// at the newline. A filter runs to the *last* `/` (outside strings and
/// comments) before the next `{` or `}`, so `/arg1 / 2 == 3/` divides. Its
/// inside is lexed normally between `FilterOpen` and `FilterClose`.
/// Returns where normal lexing resumes.
fn event_defs(src: &str, pos: usize, end: usize, out: &mut Vec<(Token, Span)>, diags: &mut Vec<Diagnostic>) -> usize {
    let b = src.as_bytes();
    let mut i = pos;
    let mut first: Option<usize> = None;
    let mut last_end = pos;
    let mut last_sig: Option<u8> = None;
    while i < end {
        let c = b[i];
        match c {
            b'{' | b'}' | b';' | b'"' | b'\'' => break,
            b'#' => i = line_end(b, i, end),
            b'/' if i > pos && is_space(b[i - 1]) => break,
            b'\n' => {
                let next = next_significant(b, i, end);
                let go_on = first.is_none() || last_sig == Some(b',') || matches!(next, Some(b'{' | b'/'));
                if !go_on {
                    break;
                }
                i += 1;
            }
            c if is_space(c) => i += 1,
            _ => {
                first.get_or_insert(i);
                last_sig = Some(c);
                i += 1;
                last_end = i;
            }
        }
    }
    let stop = i;
    let (text, span) = match first {
        Some(f) => (src[f..last_end].to_owned(), Span::new(f, last_end)),
        None => (String::new(), Span::new(stop, stop)),
    };
    out.push((Token::EventDefs(text), span));
    if stop >= end || b[stop] != b'/' {
        return stop;
    }
    let open = stop;
    let mut j = open + 1;
    let mut close = None;
    while j < end {
        match b[j] {
            b'"' | b'\'' => j = skip_string(b, j, end),
            b'#' => j = line_end(b, j, end),
            b'{' | b'}' => break,
            b'/' => {
                close = Some(j);
                j += 1;
            }
            _ => j += 1,
        }
    }
    let j = j.min(end);
    out.push((Token::FilterOpen, Span::new(open, open + 1)));
    match close {
        Some(close) => {
            lex_range(src, open + 1, close, false, out, diags);
            out.push((Token::FilterClose, Span::new(close, close + 1)));
            close + 1
        }
        None => {
            diags.push(
                Diagnostic::error(Span::new(open, open + 1), "unterminated filter")
                    .with_label("this '/' has no closing '/' before the body")
                    .with_note("a filter is written `/expression/` between the event specs and the body's '{'"),
            );
            lex_range(src, open + 1, j, false, out, diags);
            out.push((Token::FilterClose, Span::new(j, j)));
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Token> {
        tokenize(src).0.into_iter().map(|(t, _)| t).collect()
    }

    fn one(src: &str) -> (Token, Vec<Diagnostic>) {
        let (t, d) = tokenize(src);
        assert_eq!(t.len(), 1, "{src:?} gave {t:?}");
        (t[0].0.clone(), d)
    }

    #[test]
    fn integers() {
        assert_eq!(one("0").0, Token::Int(0));
        assert_eq!(one("42").0, Token::Int(42));
        assert_eq!(one("0x10").0, Token::Int(16));
        assert_eq!(one("0XfF").0, Token::Int(255));
        assert_eq!(one("0xffffffffffffffff").0, Token::Int(-1));
        assert_eq!(one("0x8000000000000000").0, Token::Int(i64::MIN));
        assert_eq!(one("9223372036854775807").0, Token::Int(i64::MAX));
        assert_eq!(one("9223372036854775808").0, Token::Int(i64::MIN));
        assert_eq!(one("18446744073709551615").0, Token::Int(-1));
        let (t, d) = one("18446744073709551616");
        assert_eq!(t, Token::Int(0));
        assert_eq!(d.len(), 1);
        assert!(!d[0].is_error());
        assert_eq!(d[0].message, "integer literal '18446744073709551616' does not fit in 64 bits: its low 64 bits are used (0)");
        // ktap's table test: 22222222222222222222222222222222222222222 mod 2^64.
        let (big, warned) = one("22222222222222222222222222222222222222222");
        assert_eq!(big, Token::Int(7_231_141_507_552_043_918));
        assert!(!warned[0].is_error());
        assert_eq!(d[0].span, Span::new(0, 20));
        assert_eq!(one("0x10000000000000000").1.len(), 1);
        assert_eq!(one("0x").1.len(), 1);
        assert_eq!(one("12ab").1.len(), 1);
        assert_eq!(one("0xfg").1.len(), 1);
    }

    #[test]
    fn strings() {
        assert_eq!(one(r#""a\n\t\r\\\"\'\0""#).0, Token::Str(b"a\n\t\r\\\"'\0".to_vec()));
        assert_eq!(one(r"'\a\b\f\v'").0, Token::Str(vec![7, 8, 12, 11]));
        assert_eq!(one(r"'\x41\x4a\x7'").0, Token::Str(b"AJ\x07".to_vec()));
        assert_eq!(one(r"'\101\60\0012'").0, Token::Str(b"A0\x012".to_vec()));
        assert_eq!(tokenize("'it''s'").0.len(), 2);
        assert_eq!(one(r#""'""#).0, Token::Str(b"'".to_vec()));
        assert_eq!(one("\"é\"").0, Token::Str("é".as_bytes().to_vec()));
        let (t, d) = one(r#""a\qb""#);
        assert_eq!(t, Token::Str(b"aqb".to_vec()));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, Span::new(2, 4));
        let (t, d) = one(r#""\777""#);
        assert_eq!(t, Token::Str(vec![]));
        assert_eq!(d.len(), 1);
        assert_eq!(one(r#""\x""#).1.len(), 1);
        assert_eq!(one("\"\\é\"").1[0].span, Span::new(1, 4));
    }

    #[test]
    fn unterminated_string() {
        let (t, d) = tokenize("x = \"abc\ny = 1");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, Span::new(4, 8));
        assert!(d[0].message.contains("unterminated"));
        let kinds: Vec<Token> = t.into_iter().map(|(t, _)| t).collect();
        assert_eq!(kinds[2], Token::Str(b"abc".to_vec()));
        assert_eq!(kinds[3], Token::Ident("y".into()));
        assert_eq!(tokenize("\"abc\\").1.len(), 1);
        assert_eq!(tokenize("'").1.len(), 1);
    }

    #[test]
    fn operators_and_comments() {
        use Token::*;
        assert_eq!(
            toks("a..b # c\n+= == != <= >= && || ! ; : ."),
            vec![Ident("a".into()), DotDot, Ident("b".into()), PlusAssign, EqEq, NotEq, Le, Ge, AndAnd, OrOr, Bang, Semi, Colon, Dot]
        );
        assert_eq!(toks("trace_end trace_endx"), vec![TraceEnd, Ident("trace_endx".into())]);
        assert_eq!(toks("kdebug.trace"), vec![Ident("kdebug".into()), Dot, Ident("trace".into())]);
    }

    #[test]
    fn unknown_chars_merge() {
        let (t, d) = tokenize("a @@ b $ c");
        assert_eq!(t.len(), 3);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].span, Span::new(2, 4));
        assert_eq!(d[1].span, Span::new(7, 8));
    }

    #[test]
    fn timers() {
        let t = |s: &str| tokenize(s);
        assert_eq!(t("tick-1s {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Tick, nanos: 1_000_000_000 }));
        assert_eq!(t("profile-10us {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Profile, nanos: 10_000 }));
        assert_eq!(t("tick-5 {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Tick, nanos: 5_000_000_000 }));
        assert_eq!(t("tick-3nsec {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Tick, nanos: 3 }));
        // A frequency: its period.
        assert_eq!(t("profile-99hz {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Profile, nanos: 10_101_010 }));
        assert_eq!(t("tick-4Hz {}").0[0].0, Token::Timer(TimerTok { kind: TimerKind::Tick, nanos: 250_000_000 }));
        assert_eq!(t("profile-2000000000hz {}").1.len(), 1);
        // `profile-99` (DTrace's 99 Hz) is 99 seconds here, with a warning;
        // one second or a unit says what it means.
        let (tokens, d) = t("profile-99 {}");
        assert_eq!(tokens[0].0, Token::Timer(TimerTok { kind: TimerKind::Profile, nanos: 99_000_000_000 }));
        assert_eq!((d.len(), d[0].span), (1, Span::new(8, 10)));
        assert!(d[0].notes.iter().any(|n| n.contains("profile-99hz")), "{:?}", d[0]);
        assert!(t("profile-99s {}").1.is_empty() && t("profile-1 {}").1.is_empty() && t("tick-99 {}").1.is_empty());
        let (_, d) = t("tick-0s {}");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, Span::new(5, 7));
        let (_, d) = t("tick-10h {}");
        assert_eq!(d[0].span, Span::new(7, 8));
        assert_eq!(t("tick-99999999999999s {}").1.len(), 1);
        assert_eq!(
            toks("x = tick-1"),
            vec![Token::Ident("x".into()), Token::Assign, Token::Ident("tick".into()), Token::Minus, Token::Int(1)]
        );
    }

    fn ev(src: &str) -> Vec<(Token, Span)> {
        tokenize(src).0
    }

    #[test]
    fn event_defs_plain() {
        let t = ev("trace syscalls:sys_enter_* { }");
        assert_eq!(t[1], (Token::EventDefs("syscalls:sys_enter_*".into()), Span::new(6, 26)));
        assert_eq!(t[2].0, Token::LBrace);
        let t = ev("trace probe:/lib/libc.so.6:malloc%return {}");
        assert_eq!(t[1].0, Token::EventDefs("probe:/lib/libc.so.6:malloc%return".into()));
        let t = ev("trace {}");
        assert_eq!(t[1], (Token::EventDefs(String::new()), Span::new(6, 6)));
    }

    #[test]
    fn event_defs_filter() {
        let t = ev("trace a:b /arg1 / 2 == 3/ { }");
        let kinds: Vec<Token> = t.iter().map(|(t, _)| t.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                Token::Trace,
                Token::EventDefs("a:b".into()),
                Token::FilterOpen,
                Token::Ident("arg1".into()),
                Token::Slash,
                Token::Int(2),
                Token::EqEq,
                Token::Int(3),
                Token::FilterClose,
                Token::LBrace,
                Token::RBrace
            ]
        );
        assert_eq!(t[8].1, Span::new(24, 25));
        let t = ev("trace probe:/bin/sh:f /execname == \"a/{b\"/ {}");
        assert_eq!(t[1].0, Token::EventDefs("probe:/bin/sh:f".into()));
        assert_eq!(t[6].0, Token::FilterClose);
    }

    #[test]
    fn event_defs_lines() {
        let t = ev("trace a:b,\n  c:d\n{ }");
        assert_eq!(t[1].0, Token::EventDefs("a:b,\n  c:d".into()));
        let t = ev("trace a:b\nshow(1)");
        assert_eq!(t[1].0, Token::EventDefs("a:b".into()));
        assert_eq!(t[2].0, Token::Ident("show".into()));
        let (t, d) = tokenize("trace a:b /x == 1 { }");
        assert_eq!(d.len(), 1);
        assert!(t.iter().any(|(t, _)| *t == Token::FilterClose));
    }
}
