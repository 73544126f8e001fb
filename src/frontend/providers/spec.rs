//! Event specs: the text after `trace` split into comma-separated specs,
//! each parsed by the provider that claims its first word
//! ([`super::claiming`]), then its `name=FETCH[:TYPE]` arguments. Also
//! the pieces providers' spec parsers share. Never panics; every problem
//! is a diagnostic at its span.

use crate::frontend::ast::*;
use crate::frontend::diag::Diagnostic;


pub const FORMS: &str = "event specs look like `syscalls:sys_enter_openat`, `sched:*`, \
    `probe:do_sys_open`, `probe:/bin/bash:readline%return`, `sdt:/path/to/bin:marker`";

/// A piece of the spec text: byte range relative to the text.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
}

/// What a provider's spec parser sees: the text after `trace`, where it
/// starts in the file, and where problems go.
pub struct SpecCx<'a> {
    text: &'a str,
    base: usize,
    pub diags: &'a mut Vec<Diagnostic>,
}

impl SpecCx<'_> {
    pub fn span(&self, p: Piece) -> Span {
        Span::new(self.base + p.start, self.base + p.end)
    }
    pub fn word(&self, p: Piece) -> Word {
        Word { text: self.text.get(p.start..p.end).unwrap_or("").to_owned(), span: self.span(p) }
    }
    pub fn str(&self, p: Piece) -> &str {
        self.text.get(p.start..p.end).unwrap_or("")
    }
    pub fn err(&mut self, p: Piece, msg: impl Into<String>, label: impl Into<String>) {
        let d = Diagnostic::error(self.span(p), msg).with_label(label);
        self.diags.push(d);
    }
}

/// Parses the comma-separated event specs in `text`, which starts at
/// byte `base` of the file (`end` is where it ends; equal for an
/// empty spec list).
pub fn event_specs(diags: &mut Vec<Diagnostic>, text: &str, base: usize, end: usize) -> Vec<EventSpec> {
    let mut cx = SpecCx { text, base, diags };
    let words = split_words(text);
    if words.is_empty() {
        cx.diags.push(
            Diagnostic::error(Span::new(base, end), "expected an event spec after 'trace'")
                .with_label("event spec missing here")
                .with_note(FORMS),
        );
        return Vec::new();
    }
    // Group words into specs at commas (a comma is its own word).
    let mut specs = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut last_comma: Option<Piece> = None;
    for w in words {
        if cx.str(w) == "," {
            if current.is_empty() {
                cx.err(w, "empty event spec", "expected an event spec before this ','");
            } else {
                specs.extend(spec(&mut cx, &current));
            }
            current.clear();
            last_comma = Some(w);
        } else {
            current.push(w);
        }
    }
    if current.is_empty() {
        if let Some(c) = last_comma {
            cx.err(c, "empty event spec", "expected an event spec after this ','");
        }
    } else {
        specs.extend(spec(&mut cx, &current));
    }
    specs
}

/// Splits at whitespace (and `#` comments); every `,` outside
/// parentheses is a word of its own.
fn split_words(text: &str) -> Vec<Piece> {
    let b = text.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    let mut depth = 0usize;
    while i < b.len() {
        let c = b[i];
        let boundary = c.is_ascii_whitespace() || c == b'#' || (c == b',' && depth == 0);
        if boundary {
            if let Some(s) = start.take() {
                words.push(Piece { start: s, end: i });
            }
            depth = 0;
            match c {
                b'#' => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b',' => words.push(Piece { start: i, end: i + 1 }),
                _ => {}
            }
        } else {
            start.get_or_insert(i);
            match c {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        words.push(Piece { start: s, end: b.len() });
    }
    words
}

/// Where the binary of `probe:`/`sdt:` ends: at the first `:` after
/// the last `/` of a path, else at the first `:`.
pub fn binary_colon(s: &str) -> Option<usize> {
    let from = s.rfind('/').unwrap_or(0);
    s[from..].find(':').map(|i| from + i)
}

pub fn sub(p: Piece, from: usize, to: usize) -> Piece {
    Piece { start: p.start + from, end: p.start + to }
}

fn spec(cx: &mut SpecCx<'_>, words: &[Piece]) -> Option<EventSpec> {
    let head = *words.first()?;
    let last = *words.last()?;
    let span = cx.span(head).to(cx.span(last));
    let text = cx.str(head).to_owned();
    let provider = super::claiming(&text);
    let kind = provider.parse(cx, head, &text)?;
    let allows_args = provider.takes_fetch_args();
    let mut fetch_args = Vec::new();
    for &w in &words[1..] {
        if !allows_args {
            cx.err(w, "fetch arguments are only allowed after probe: and sdt: specs", "unexpected argument");
            continue;
        }
        fetch_args.extend(fetch_arg(cx, w));
    }
    Some(EventSpec { kind, provider: ProviderId(provider.name()), fetch_args, span })
}

/// `probe:[BINARY:]SYMBOL[%return]` after the prefix (`p` is `rest`'s
/// piece): the syntax kprobes and uprobes share.
pub fn probe_syntax(cx: &mut SpecCx<'_>, p: Piece, rest: &str) -> Option<EventKind> {
    let (sym_text, ret) = match rest.strip_suffix("%return") {
        Some(s) => (s, true),
        None => (rest, false),
    };
    let sym_end = sym_text.len();
    if let Some(pct) = sym_text.find('%') {
        cx.err(sub(p, pct, rest.len()), format!("unknown probe suffix '{}'", &rest[pct..]), "only '%return' is allowed");
        return None;
    }
    let user = binary_colon(sym_text).filter(|&c| is_binary(&sym_text[..c]));
    let (binary, symbol) = match user {
        Some(c) => {
            if c == 0 {
                cx.err(sub(p, 0, 1), "missing binary before ':'", "expected a path or library");
                return None;
            }
            (Some(sub(p, 0, c)), sub(p, c + 1, sym_end))
        }
        None => {
            if sym_text.contains('/') {
                let mut d = Diagnostic::error(cx.span(p), "missing ':SYMBOL' after the binary")
                    .with_label("expected `probe:/path/to/binary:symbol`");
                if sym_text.ends_with('/') && sym_text.contains(':') {
                    d = d.with_note("a filter must be separated from the event spec by whitespace: `trace a:b /cond/ {`");
                }
                cx.diags.push(d);
                return None;
            }
            (None, sub(p, 0, sym_end))
        }
    };
    if symbol.start == symbol.end {
        let at = if sym_end == 0 { cx_piece_or(p) } else { sub(p, sym_end - 1, sym_end) };
        let what = if binary.is_some() { "missing symbol after the binary" } else { "missing symbol after 'probe:'" };
        cx.err(at, what, "expected a symbol, a glob or a 0x offset");
        return None;
    }
    Some(EventKind::Probe { binary: binary.map(|b| cx.word(b)), symbol: cx.word(symbol), ret })
}

/// A path (has `/`) or a short library name (`libc`, `foo.so`); else
/// `MOD:SYM` names a kernel module symbol.
pub fn is_binary(s: &str) -> bool {
    s.contains('/') || s.starts_with("lib") || s.contains(".so")
}

/// Whether a `probe:` spec's text after the prefix names a user binary
/// (a path or a library) rather than a kernel function.
pub fn is_user_probe(rest: &str) -> bool {
    let sym_text = rest.strip_suffix("%return").unwrap_or(rest);
    binary_colon(sym_text).is_some_and(|c| is_binary(&sym_text[..c])) || sym_text.contains('/')
}

/// The piece itself, or (when empty) the character before it.
pub fn cx_piece_or(p: Piece) -> Piece {
    if p.start == p.end {
        Piece { start: p.start.saturating_sub(1), end: p.end }
    } else {
        p
    }
}

fn fetch_arg(cx: &mut SpecCx<'_>, w: Piece) -> Option<FetchArg> {
    let text = cx.str(w).to_owned();
    let Some(eq) = text.find('=') else {
        // perf probe's bare member chain (`file->f_path.dentry->d_name.name:string`),
        // named after its last member.
        let chain_end = text.rfind(':').unwrap_or(text.len());
        let chain = &text[..chain_end];
        let chained = chain.contains("->") || chain.contains('.');
        if let Some((_, members)) = super::fetch_args::member_chain(chain, crate::frontend::ast::Span::default()).filter(|_| chained) {
            let last = members.last().map_or(0, |m| m.name.len());
            let ty = (chain_end < text.len()).then(|| sub(w, chain_end + 1, text.len()));
            if ty.is_some_and(|t| t.start == t.end) {
                cx.err(sub(w, text.len() - 1, text.len()), "missing type after ':'", "expected `string`");
                return None;
            }
            return Some(FetchArg {
                name: cx.word(sub(w, chain_end - last, chain_end)),
                fetch: cx.word(sub(w, 0, chain_end)),
                ty: ty.map(|t| cx.word(t)),
                span: cx.span(w),
            });
        }
        let d = Diagnostic::error(cx.span(w), format!("malformed fetch argument '{text}'"))
            .with_label("expected `NAME=FETCH[:TYPE]`")
            .with_note("e.g. `dfd=%di`, `mode=+4($stack):u32`, or a member chain `file->f_pos`");
        cx.diags.push(d);
        return None;
    };
    let name = &text[..eq];
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        let at = if eq == 0 { sub(w, 0, 1) } else { sub(w, 0, eq) };
        cx.err(at, "fetch argument needs a name before '='", "expected an identifier");
        return None;
    }
    let value = &text[eq + 1..];
    let (fetch, ty) = match value.rfind(':') {
        Some(c) => (sub(w, eq + 1, eq + 1 + c), Some(sub(w, eq + 2 + c, text.len()))),
        None => (sub(w, eq + 1, text.len()), None),
    };
    if fetch.start == fetch.end {
        cx.err(sub(w, eq, eq + 1), "missing fetch location after '='", "expected e.g. %di, $stack, +4($stack)");
        return None;
    }
    if let Some(t) = ty {
        if t.start == t.end {
            cx.err(sub(w, text.len() - 1, text.len()), "missing type after ':'", "expected e.g. u32, s64, string");
            return None;
        }
    }
    Some(FetchArg { name: cx.word(sub(w, 0, eq)), fetch: cx.word(fetch), ty: ty.map(|t| cx.word(t)), span: cx.span(w) })
}

#[cfg(test)]
mod tests {
    use super::event_specs;
    use crate::frontend::ast::*;
    use crate::frontend::diag::Diagnostic;

    fn specs(text: &str) -> (Vec<EventSpec>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let s = event_specs(&mut d, text, 100, 100 + text.len());
        (s, d)
    }

    fn w(text: &str, start: usize) -> Word {
        Word { text: text.into(), span: Span::new(100 + start, 100 + start + text.len()) }
    }

    #[test]
    fn tracepoints() {
        let (s, d) = specs("syscalls:sys_enter_*, *:*");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, EventKind::Tracepoint { system: w("syscalls", 0), event: w("sys_enter_*", 9) });
        assert_eq!(s[0].span, Span::new(100, 120));
        assert_eq!(s[1].kind, EventKind::Tracepoint { system: w("*", 22), event: w("*", 24) });
    }

    #[test]
    fn probes() {
        let (s, d) = specs("probe:/lib/libc.so.6:malloc%return size=%di:u64 p=+4($stack)");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            s[0].kind,
            EventKind::Probe { binary: Some(w("/lib/libc.so.6", 6)), symbol: w("malloc", 21), ret: true }
        );
        assert_eq!(s[0].fetch_args.len(), 2);
        let a = &s[0].fetch_args[0];
        assert_eq!((a.name.clone(), a.fetch.clone(), a.ty.clone()), (w("size", 35), w("%di", 40), Some(w("u64", 44))));
        assert_eq!(s[0].fetch_args[1].fetch, w("+4($stack)", 50));
        assert_eq!(s[0].fetch_args[1].ty, None);

        let (s, _) = specs("probe:do_sys_open");
        assert_eq!(s[0].kind, EventKind::Probe { binary: None, symbol: w("do_sys_open", 6), ret: false });
        let (s, _) = specs("probe:ext4:ext4_sync_file%return");
        assert_eq!(s[0].kind, EventKind::Probe { binary: None, symbol: w("ext4:ext4_sync_file", 6), ret: true });
        let (s, _) = specs("probe:libc:malloc");
        assert_eq!(s[0].kind, EventKind::Probe { binary: Some(w("libc", 6)), symbol: w("malloc", 11), ret: false });
        let (s, _) = specs("probe:/bin/bash:0x1a2b");
        assert_eq!(s[0].kind, EventKind::Probe { binary: Some(w("/bin/bash", 6)), symbol: w("0x1a2b", 16), ret: false });
    }

    #[test]
    fn sdt() {
        let (s, d) = specs("sdt:/usr/bin/python3.11:function__entry");
        assert!(d.is_empty());
        assert_eq!(
            s[0].kind,
            EventKind::Sdt { binary: w("/usr/bin/python3.11", 4), marker: w("function__entry", 24) }
        );
    }

    #[test]
    fn malformed() {
        for bad in ["", "syscalls", "a:", ":b", "a:b:c", "probe:", "probe:/x", "sdt:/x", "sdt:", "a:b x=1", "probe:f x", "probe:f =1", "a:b,", ",a:b", "probe:f%foo"] {
            let (_, d) = specs(bad);
            assert!(!d.is_empty(), "no diagnostic for {bad:?}");
            for d in &d {
                assert!(d.span.start >= 100 && d.span.end as usize <= 100 + bad.len().max(1), "{bad:?}: {d:?}");
            }
        }
    }
}
