//! Tracepoints (`system:event`, globs in either part): the provider that
//! claims every spec no other provider does. It expands globs against the
//! kernel's event list, gives bodies the event record's fields (`argN`
//! from 0 after the common fields, `args.NAME`, bare field names in
//! filters, `argstr`), reading each format only once a body needs one,
//! and picks the cheapest mechanism that still supplies what the body
//! reads: a classic tracepoint, a raw tracepoint, or raw_syscalls
//! ([`super::raw_syscalls`]). Pure: the kernel is seen through the facts.

use super::spec::{sub, Piece, SpecCx, FORMS};
use super::{Cx, Family, Point, ProbeArgs, Provider, Reads, Shape};
use crate::frontend::ast::{EventKind, EventSpec, ProviderId, Span, Word};
use crate::frontend::diag::Diagnostic;
use crate::ir::{Attach, EventField, Expr, ExprKind, FieldKind, Ty};

/// Room for `__data_loc` strings in an `argstr` copy, and its cap.
const ARGSTR_DYNAMIC_BYTES: u32 = 256;
const ARGSTR_MAX_BYTES: u32 = 1024;

pub struct Tracepoint;

/// Its name in the registry.
pub const NAME: &str = "tracepoint";

impl Provider for Tracepoint {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The fallback: registered last, it claims whatever is left.
    fn claims(&self, _head: &str) -> bool {
        true
    }

    fn parse(&self, cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<EventKind> {
        parse_tracepoint(cx, head, text)
    }

    fn family(&self) -> Family {
        Family::Record
    }

    fn kdebug(&self) -> Option<(&'static str, &'static str)> {
        Some(("tracepoint", "sched_switch"))
    }

    /// `system:event`, or an event of any system.
    fn spec_of_name(&self, text: &str, span: Span) -> Option<EventSpec> {
        let (system, event) = match text.split_once(':') {
            Some((s, e)) => (s.to_string(), e.to_string()),
            None => ("*".to_string(), text.to_string()),
        };
        Some(EventSpec {
            kind: EventKind::Tracepoint { system: Word { text: system, span }, event: Word { text: event, span } },
            provider: ProviderId(NAME),
            fetch_args: Vec::new(),
            span,
        })
    }

    fn expand(&self, cx: &mut Cx<'_>, spec: &EventSpec) -> Vec<Point> {
        let EventKind::Tracepoint { system, event } = &spec.kind else { return Vec::new() };
        match cx.facts.tracepoints(&system.text, &event.text) {
            Ok(found) if found.is_empty() => {
                let mut d = Diagnostic::error(spec.span, format!("unknown event `{}:{}`", system.text, event.text))
                    .with_label("no such tracepoint");
                let similar = cx.facts.similar(&system.text, &event.text);
                if !similar.is_empty() {
                    d = d.with_note(format!("did you mean {}?", similar.join(", ")));
                }
                cx.diags.push(d);
                Vec::new()
            }
            Ok(found) => found
                .into_iter()
                .map(|(system, event)| Point { attach: Attach::Tracepoint { system, event }, reads: Reads::Record { spec: spec.span } })
                .collect(),
            Err(e) => {
                cx.error(spec.span, e);
                Vec::new()
            }
        }
    }
}

fn parse_tracepoint(cx: &mut SpecCx<'_>, head: Piece, text: &str) -> Option<EventKind> {
    let Some(colon) = text.find(':') else {
        let d = Diagnostic::error(cx.span(head), format!("malformed event spec '{text}'"))
            .with_label("expected `system:event`")
            .with_note(FORMS);
        cx.diags.push(d);
        return None;
    };
    let system = sub(head, 0, colon);
    let event = sub(head, colon + 1, text.len());
    let mut ok = true;
    if system.start == system.end {
        cx.err(sub(head, 0, 1), "missing tracepoint system before ':'", "expected a system name or '*'");
        ok = false;
    }
    if event.start == event.end {
        cx.err(sub(head, colon, colon + 1), "missing tracepoint event after ':'", "expected an event name or '*'");
        ok = false;
    }
    if let Some(extra) = text[colon + 1..].find(':') {
        let at = colon + 1 + extra;
        let d = Diagnostic::error(cx.span(sub(head, at, at + 1)), "unexpected ':' in tracepoint spec")
            .with_label("a tracepoint is `system:event`")
            .with_note("uprobes are written `probe:/path/to/binary:symbol`");
        cx.diags.push(d);
        ok = false;
    } else if let Some(bad) = text.find(|c: char| !is_tracepoint_char(c)) {
        let ch = text[bad..].chars().next().unwrap_or('?');
        let mut d = Diagnostic::error(
            cx.span(sub(head, bad, bad + ch.len_utf8())),
            format!("invalid character '{}' in tracepoint spec", ch.escape_default()),
        )
        .with_label("tracepoint names are letters, digits, '_' and globs");
        if ch == '/' {
            d = d.with_note("a filter must be separated from the event spec by whitespace: `trace a:b /cond/ {`");
        }
        cx.diags.push(d);
        ok = false;
    }
    ok.then(|| EventKind::Tracepoint { system: cx.word(system), event: cx.word(event) })
}

/// Characters of tracepoint system and event names, globs included.
fn is_tracepoint_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?' | '[' | ']' | '!' | '-' | '.' | ':')
}

/// The record layouts of a probe's events. Reading a format file takes a
/// kernel lock, and a wildcard matches hundreds of events: they are read
/// only once the body or filter needs a field, `argN` or `argstr`.
enum Formats {
    /// Each event's fields after the common ones, in format order.
    Read(Vec<Vec<EventField>>),
    /// Not read yet: each event, with the span of the spec that named it.
    Unread(Vec<(String, String, Span)>),
}

/// What a body attached to tracepoints reads: their records.
pub struct EventArgs {
    formats: Formats,
    /// Set when the body or filter reads an event field: then it needs a
    /// classic tracepoint program (syscall events excepted).
    uses_fields: bool,
    /// The bytes of the record `argstr` copies: (offset, length); set
    /// when the formats are read.
    argstr_window: Option<(u32, u32)>,
    /// How many of the probe's events are syscall events, of how many.
    syscalls: (usize, usize),
}

impl EventArgs {
    /// The events `points` name (tracepoint attach points with the spans
    /// of their specs).
    pub fn new(points: &[Point]) -> EventArgs {
        let events: Vec<(String, String, Span)> = points
            .iter()
            .filter_map(|p| match (&p.attach, &p.reads) {
                (Attach::Tracepoint { system, event }, Reads::Record { spec }) => Some((system.clone(), event.clone(), *spec)),
                _ => None,
            })
            .collect();
        let syscalls = (events.iter().filter(|(s, _, _)| s == "syscalls").count(), events.len());
        EventArgs { formats: Formats::Unread(events), uses_fields: false, argstr_window: None, syscalls }
    }

    /// The events' fields; empty until `read_formats` ran.
    fn formats(&self) -> &[Vec<EventField>] {
        match &self.formats {
            Formats::Read(f) => f,
            Formats::Unread(_) => &[],
        }
    }

    /// Reads the formats of the probe's events, once: the fields after
    /// the common ones, and the window `argstr` copies. An unreadable
    /// format is an error at the spec that named the event.
    fn read_formats(&mut self, cx: &mut Cx<'_>) {
        let Formats::Unread(events) = &self.formats else { return };
        let mut formats = Vec::with_capacity(events.len());
        for (system, event, span) in events {
            match cx.facts.format(system, event) {
                Ok(f) => formats.push(f.into_iter().filter(|f| !f.common).collect()),
                Err(e) => {
                    cx.error(*span, format!("cannot read the format of {system}:{event}: {e}"));
                    formats.push(Vec::new());
                }
            }
        }
        self.argstr_window = argstr_window(&formats);
        self.formats = Formats::Read(formats);
    }
}

impl ProbeArgs for EventArgs {
    /// `argN`: the N-th field after the common ones, which must sit at the
    /// same place in every event of the probe.
    fn arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Expr> {
        self.read_formats(cx);
        if self.formats().is_empty() {
            cx.error(span, "`argN` needs a tracepoint event");
            return None;
        }
        self.uses_fields = true;
        let picked: Vec<Option<&EventField>> = self.formats().iter().map(|f| f.get(n)).collect();
        match agree(&picked) {
            Ok(f) => field_expr(cx, &f, span),
            Err(None) => {
                let fewest = self.formats().iter().map(Vec::len).min().unwrap_or(0);
                cx.error(span, format!("`arg{n}` does not exist: this event has {fewest} arguments (arg0..arg{})", fewest.saturating_sub(1)));
                None
            }
            Err(Some(_)) => {
                cx.error(span, format!("`arg{n}` differs between the events of this probe; split them into separate `trace` blocks"));
                None
            }
        }
    }

    fn element(&mut self, cx: &mut Cx<'_>, name: &str, index: i64, span: Span) -> Option<Option<Expr>> {
        self.read_formats(cx);
        let picked: Vec<Option<&EventField>> = self.formats().iter().map(|f| f.iter().find(|f| f.name == name)).collect();
        let Ok(f) = agree(&picked) else { return None };
        let FieldKind::IntArray { elem } = f.kind else { return None };
        self.uses_fields = true;
        let len = f.size / u32::from(elem);
        if index < 0 || index >= i64::from(len) {
            cx.diags.push(
                Diagnostic::error(span, format!("index {index} is past the end of `args.{name}`, an array of {len}"))
                    .with_label(format!("valid indexes are 0 to {}", len - 1)),
            );
            return Some(None);
        }
        let offset = f.offset + index as u32 * u32::from(elem);
        Some(Some(Expr { kind: ExprKind::CtxField { offset, size: u32::from(elem), signed: f.signed }, ty: Ty::Int, span: Some(span) }))
    }

    fn field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Expr> {
        self.read_formats(cx);
        if self.formats().is_empty() {
            cx.error(span, "event fields need a tracepoint event");
            return None;
        }
        self.uses_fields = true;
        let fields = &self.formats()[0];
        let picked: Vec<Option<&EventField>> = self.formats().iter().map(|f| f.iter().find(|f| f.name == name)).collect();
        match agree(&picked) {
            Ok(f) => field_expr(cx, &f, span),
            Err(Some(_)) => {
                cx.error(span, format!("field `{name}` differs between the events of this probe; split them into separate `trace` blocks"));
                None
            }
            Err(None) => {
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                let d = Diagnostic::error(span, format!("this event has no field `{name}`")).with_note(format!("its fields are: {}", names.join(", ")));
                cx.diags.push(d);
                None
            }
        }
    }

    /// In a filter, event field names are in scope directly.
    fn name(&mut self, cx: &mut Cx<'_>, name: &str, in_filter: bool, span: Span) -> Option<Option<Expr>> {
        if !in_filter {
            return None;
        }
        self.read_formats(cx);
        let is_field = self.formats().first().is_some_and(|fields| fields.iter().any(|f| f.name == name));
        is_field.then(|| self.field(cx, name, span))
    }

    fn argstr(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<Expr> {
        self.read_formats(cx);
        let Some((offset, len)) = self.argstr_window else {
            cx.unsupported(span, "`argstr`");
            return None;
        };
        self.uses_fields = true;
        Some(Expr { kind: ExprKind::ArgStr { offset }, ty: Ty::ArgStr { start: offset, len }, span: Some(span) })
    }

    fn only_syscalls(&self) -> bool {
        let (sys, all) = self.syscalls;
        sys == all && all > 0
    }

    /// The cheapest way to attach to each event that still gives the body
    /// what it reads.
    fn finish(self: Box<Self>, cx: &mut Cx<'_>, probe: usize, points: Vec<Attach>) -> Shape {
        // Fields are read from one record layout: with other events in
        // the probe, its syscall events keep their classic records too.
        let (syscalls, events) = self.syscalls;
        let ride = super::raw_syscalls::worth_riding(syscalls) && (!self.uses_fields || syscalls == events);
        let attach: Vec<Attach> = points
            .into_iter()
            .map(|a| match a {
                Attach::Tracepoint { system, event } => attach_point(cx, system, event, self.uses_fields, ride),
                other => other,
            })
            .collect();
        let maps = super::raw_syscalls::filter_maps(probe, &attach);
        let formats = match self.formats {
            Formats::Read(f) => f,
            Formats::Unread(_) => vec![Vec::new(); attach.len()],
        };
        Shape { attach, formats, maps }
    }
}

/// raw_syscalls for a syscall event of a probe worth riding it (its
/// program rebuilds the record when the body reads fields: every syscall
/// field is an argument register or the return value); else a classic
/// tracepoint for bodies that read fields (and for `ftrace` events, which
/// have no raw form), else a raw tracepoint.
fn attach_point(cx: &Cx<'_>, system: String, event: String, uses_fields: bool, ride_syscalls: bool) -> Attach {
    if system == "syscalls" {
        if !ride_syscalls {
            return Attach::Tracepoint { system, event };
        }
        return super::raw_syscalls::attach_point(cx, system, event);
    }
    if uses_fields {
        return Attach::Tracepoint { system, event };
    }
    if system == "ftrace" {
        return Attach::Tracepoint { system, event };
    }
    Attach::RawTracepoint { system, event }
}

fn field_expr(cx: &mut Cx<'_>, f: &EventField, span: Span) -> Option<Expr> {
    if matches!(f.kind, FieldKind::CharArray | FieldKind::DataLoc) && f.offset >= 8 {
        // A `char name[N]` or a `__data_loc char[]`: a string read from
        // the record.
        let data_loc = f.kind == FieldKind::DataLoc;
        let ptr = Expr { kind: ExprKind::CtxAddr { offset: f.offset, data_loc }, ty: Ty::Int, span: Some(span) };
        return Some(Expr { kind: ExprKind::ReadStr { ptr: Box::new(ptr), user: false }, ty: Ty::Str, span: Some(span) });
    }
    // An array of numbers of 1, 2, 4 or 8 bytes in all (`__u8 daddr[4]`)
    // reads whole as one unsigned number, as memory holds it (for
    // `net.ip4_str(args.daddr)`).
    if let FieldKind::IntArray { elem } = f.kind {
        if [1, 2, 4, 8].contains(&f.size) {
            let load = |offset, size| Expr { kind: ExprKind::CtxField { offset, size, signed: false }, ty: Ty::Int, span: Some(span) };
            if f.offset % f.size == 0 {
                return Some(load(f.offset, f.size));
            }
            // A context is read at its fields' alignment: element by
            // element, each shifted into place.
            let elem = u32::from(elem);
            let mut value = load(f.offset, elem);
            for i in 1..f.size / elem {
                let part = load(f.offset + i * elem, elem);
                let shifted = Expr::binary(crate::ir::BinOp::Mul, part, Expr::constant(1i64 << (8 * elem * i)), Some(span));
                value = Expr::binary(crate::ir::BinOp::Add, value, shifted, Some(span));
            }
            return Some(value);
        }
    }
    if f.kind != FieldKind::Int {
        cx.unsupported(span, &format!("reading the string or array field `{}`", f.name));
        return None;
    }
    Some(Expr { kind: ExprKind::CtxField { offset: f.offset, size: f.size, signed: f.signed }, ty: Ty::Int, span: Some(span) })
}

/// The field every event has in the same place; `Err(None)` when some
/// event lacks it, `Err(Some(_))` when they disagree.
fn agree(picked: &[Option<&EventField>]) -> Result<EventField, Option<EventField>> {
    let Some(Some(first)) = picked.first() else { return Err(None) };
    for p in picked {
        match p {
            None => return Err(None),
            Some(f) if (f.offset, f.size, f.signed, f.kind) != (first.offset, first.size, first.signed, first.kind) => {
                return Err(Some((*f).clone()))
            }
            Some(_) => {}
        }
    }
    Ok((*first).clone())
}

/// The span of event record bytes that `argstr` needs to render any of
/// the probe's events: all non-common fields, plus room for the dynamic
/// strings (`__data_loc`) that follow them.
fn argstr_window(formats: &[Vec<EventField>]) -> Option<(u32, u32)> {
    let fields = || formats.iter().flatten().filter(|f| !f.common);
    let start = fields().map(|f| f.offset).min()?;
    let end = fields().map(|f| f.offset + f.size).max()?;
    let dynamic = if fields().any(|f| f.kind == FieldKind::DataLoc) { ARGSTR_DYNAMIC_BYTES } else { 0 };
    let start = start & !7;
    let len = (end - start + dynamic).next_multiple_of(8).min(ARGSTR_MAX_BYTES);
    Some((start, len))
}
