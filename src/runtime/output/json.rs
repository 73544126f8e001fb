//! ktap's JSON output (`-f json`): one JSON object a line on the output
//! stream for everything shown — records, tables, the banner, warnings and
//! errors — with stable field names (docs/output.md). Byte strings that
//! are not UTF-8 are escaped, never dropped. Decides nothing about when to
//! print.

use std::collections::HashSet;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value as Json};

use super::{Cell, Dump, DumpBody, Failure, Notice, Origin, Output};
use crate::frontend::diag::{Diagnostic, Severity};
use crate::ir::agg::Reading;
use crate::runtime::interp::{Table, Value};
use crate::span::Span;

/// Choices the command line makes for JSON output.
#[derive(Clone, Debug, Default)]
pub struct JsonOptions {
    /// The script's text, to give errors a line and column.
    pub script: Option<String>,
    /// Which probe each print/printf site belongs to (site span, probe).
    pub probes: Vec<(Span, String)>,
}

/// JSON lines to one stream.
pub struct JsonOutput {
    out: Box<dyn Write>,
    opts: JsonOptions,
    /// Each probe name of `opts.probes` as a JSON string, escaped once.
    probe_json: Vec<String>,
}

impl JsonOutput {
    pub fn new(out: Box<dyn Write>, opts: JsonOptions) -> JsonOutput {
        let probe_json = opts.probes.iter().map(|(_, p)| Json::from(p.as_str()).to_string()).collect();
        JsonOutput { out, opts, probe_json }
    }

    /// Starts a record's line, `{"type":KIND,"time_ns":N[,"probe":P]`,
    /// written straight out: records are the bulk of the output.
    fn head(&mut self, kind: &str, origin: &Origin) -> io::Result<()> {
        let t = origin.time.unwrap_or_else(SystemTime::now);
        let ns = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
        write!(self.out, "{{\"type\":\"{kind}\",\"time_ns\":{ns}")?;
        if let Some(i) = origin.site.and_then(|s| self.opts.probes.iter().position(|(at, _)| *at == s)) {
            self.out.write_all(b",\"probe\":")?;
            self.out.write_all(self.probe_json[i].as_bytes())?;
        }
        Ok(())
    }

    /// Ends a record's line with its last field.
    fn tail(&mut self, field: &str, value: &Json) -> io::Result<()> {
        write!(self.out, ",\"{field}\":")?;
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::other)?;
        self.out.write_all(b"}\n")
    }

    /// Writes one object as a line.
    fn line(&mut self, obj: Json) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &obj).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// A line whose failure has nowhere to be reported.
    fn message(&mut self, obj: Json) {
        let _ = self.line(obj);
        let _ = self.out.flush();
    }

    /// Line and column (from 1, bytes) of a span's start.
    fn position(&self, span: Span, m: &mut Map<String, Json>) {
        if let Some(src) = &self.opts.script {
            let (line, column) = line_column(src, span.start as usize);
            m.insert("line".into(), line.into());
            m.insert("column".into(), column.into());
        }
    }
}

impl Output for JsonOutput {
    fn print(&mut self, origin: &Origin, values: &[Value]) -> io::Result<()> {
        self.head("print", origin)?;
        self.tail("values", &values.iter().map(value).collect())
    }

    fn printf(&mut self, origin: &Origin, text: &[u8]) -> io::Result<()> {
        self.head("printf", origin)?;
        match std::str::from_utf8(text) {
            Ok(s) => {
                self.out.write_all(b",\"text\":")?;
                serde_json::to_writer(&mut self.out, s).map_err(io::Error::other)?;
                self.out.write_all(b"}\n")
            }
            Err(_) => self.tail("text", &bytes(text)),
        }
    }

    fn hist(&mut self, origin: &Origin, table: &Table, rows: usize) -> io::Result<()> {
        self.head("print_hist", origin)?;
        let mut entries: Vec<(&Value, i64)> = table
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Int(i) => Some((k, *i)),
                // An average reads as its mean.
                Value::Agg(r) => r.borrow().as_int().map(|i| (k, i)),
                _ => None,
            })
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.1));
        write!(self.out, ",\"total_entries\":{}", entries.len())?;
        let shown = entries.iter().take(rows).map(|(k, v)| json!({"key": value(k), "value": v})).collect();
        self.tail("entries", &Json::Array(shown))
    }

    fn dump(&mut self, d: &Dump) -> io::Result<()> {
        let mut m = Map::new();
        match &d.body {
            DumpBody::Global(c) => {
                m.insert("type".into(), "global".into());
                m.insert("name".into(), d.name.clone().into());
                m.insert("kind".into(), d.kind.into());
                m.insert("value".into(), cell(c));
            }
            DumpBody::Table { stack_keys, entries } => {
                m.insert("type".into(), "table".into());
                m.insert("name".into(), d.name.clone().into());
                m.insert("kind".into(), d.kind.into());
                let rows = entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Value::Str(s) if *stack_keys => stack(s.as_bytes()),
                            other => value(other),
                        };
                        json!({"key": key, "value": cell(v)})
                    })
                    .collect();
                m.insert("entries".into(), Json::Array(rows));
            }
        }
        self.line(Json::Object(m))
    }

    fn terminal(&mut self, _text: &[u8]) -> io::Result<()> {
        // Colors and screen control mean nothing to a program reading JSON.
        Ok(())
    }

    fn attached(&mut self) {
        self.message(json!({"type": "attached"}));
    }

    fn loaded_only(&mut self, programs: usize) {
        self.message(json!({"type": "loaded", "programs": programs}));
    }

    fn notice(&mut self, notice: &Notice<'_>) {
        let mut m = Map::new();
        m.insert("type".into(), notice.level().name().into());
        m.insert("kind".into(), notice.kind().into());
        m.insert("message".into(), notice.message().into());
        match notice {
            Notice::LostEvents(n) => {
                m.insert("count".into(), (*n).into());
            }
            Notice::MapFailures { count, full } => {
                m.insert("count".into(), (*count).into());
                m.insert("full_tables".into(), full.iter().map(|(name, size)| json!({"name": name, "max_entries": size})).collect());
            }
            Notice::NotAttached(events) => {
                m.insert("events".into(), events.iter().map(|e| Json::from(e.as_str())).collect());
            }
            Notice::FdLimit { limit, hard } => {
                m.insert("limit".into(), (*limit).into());
                m.insert("hard_limit".into(), (*hard).into());
            }
            _ => {}
        }
        self.message(Json::Object(m));
    }

    fn libbpf_log(&mut self, text: &str) {
        self.message(json!({"type": "libbpf", "text": text}));
    }

    fn error(&mut self, failure: &Failure<'_>) {
        let mut m = Map::new();
        m.insert("type".into(), "error".into());
        m.insert("message".into(), failure.message.into());
        if let Some(span) = failure.span {
            self.position(span, &mut m);
        }
        m.insert("notes".into(), failure.notes.iter().map(|n| Json::from(n.as_str())).collect());
        self.message(Json::Object(m));
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Which probe each record site belongs to, for `JsonOptions::probes`:
/// the probe as the script spells it (`syscalls:sys_enter_*`,
/// `profile-1ms`), without `trace` and the filter.
pub fn probe_sites(module: &crate::ir::Module, src: &str) -> Vec<(Span, String)> {
    let mut out = Vec::new();
    for p in &module.probes {
        let text = src.get(p.span.range()).unwrap_or("");
        let head = text.split('{').next().unwrap_or("");
        let head = head.split(" /").next().unwrap_or(head).trim();
        let name = head.strip_prefix("trace").map_or(head, str::trim_start).to_string();
        for site in crate::ir::written::sites(p) {
            if let Some(s) = module.sites.get(site.index()) {
                if !out.iter().any(|(at, _)| *at == s.span) {
                    out.push((s.span, name.clone()));
                }
            }
        }
    }
    out
}

/// A compile diagnostic as a JSON line (without the newline), for the
/// command line to print before anything runs.
pub fn diagnostic(src: &str, d: &Diagnostic) -> String {
    let (line, column) = line_column(src, d.span.start as usize);
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    json!({"type": severity, "message": d.message, "line": line, "column": column, "label": d.label, "notes": d.notes}).to_string()
}

/// A failure of the command line itself (no script ran) as a JSON line.
pub fn failure(message: &str) -> String {
    json!({"type": "error", "message": message, "notes": []}).to_string()
}

/// Line and column (from 1; the column counts bytes) of byte `at`.
fn line_column(src: &str, at: usize) -> (usize, usize) {
    let before = src.as_bytes().get(..at).unwrap_or(src.as_bytes());
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.len() - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// A byte string: a JSON string when it is UTF-8, otherwise an object with
/// its text (invalid bytes as U+FFFD) and every byte in hex.
pub fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::from(s),
        Err(_) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            json!({"lossy": String::from_utf8_lossy(b), "hex": hex})
        }
    }
}

/// A stack key: its frames, innermost first.
fn stack(b: &[u8]) -> Json {
    b.split(|&c| c == b'\n').map(|f| bytes(f.trim_ascii())).filter(|f| f != "").collect()
}

/// A script value: null, a boolean, a number, a string, a table (its
/// entries; one already being shown is named instead, so cycles end) or a
/// function's name.
pub fn value(v: &Value) -> Json {
    value_in(v, &mut HashSet::new())
}

fn value_in(v: &Value, open: &mut HashSet<usize>) -> Json {
    match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Str(s) => bytes(s.as_bytes()),
        Value::Table(t) => {
            let at = v.address().unwrap_or(0);
            if !open.insert(at) {
                return Json::from(format!("table: 0x{at:x}"));
            }
            let entries = t
                .borrow()
                .iter()
                .map(|(k, x)| json!({"key": value_in(k, open), "value": value_in(x, open)}))
                .collect::<Vec<_>>();
            open.remove(&at);
            json!({"table": entries})
        }
        Value::Func(_) => Json::from(format!("function: 0x{:x}", v.address().unwrap_or(0))),
        Value::Agg(r) => reading(&r.borrow()),
    }
}

/// What an aggregate entry reads back as (docs/output.md): a number; an
/// object `{"count", "total", "average"}` for `avg` and `stats`; histograms
/// as `{"buckets": [{"min", "max", "count"}]}`, bounds inclusive (`null`
/// where a bucket is open), lowest first.
pub fn reading(r: &Reading) -> Json {
    match r {
        Reading::Int(i) => Json::from(*i),
        Reading::Avg { count, total } | Reading::Stats { count, total } => {
            json!({"count": count, "total": total, "average": crate::ir::agg::mean(*count, *total)})
        }
        Reading::Buckets(b) => {
            let buckets: Vec<Json> = b.iter().map(|b| json!({"min": b.min, "max": b.max.map(|m| m - 1), "count": b.count})).collect();
            json!({ "buckets": buckets })
        }
    }
}

fn cell(c: &Cell) -> Json {
    match c {
        Cell::Value(v) => value(v),
        Cell::Reading(r) => reading(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use super::super::test_sink::Sink;

    /// Every line written, parsed.
    fn lines(s: &Sink) -> Vec<Json> {
        let text = String::from_utf8(s.0.borrow().clone()).expect("JSON output is UTF-8");
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
    }

    #[test]
    fn records_carry_type_time_and_probe() {
        let sink = Sink::default();
        let site = Span::new(10, 20);
        let opts = JsonOptions { script: Some("x\ny".into()), probes: vec![(site, "syscalls:sys_enter_*".into())] };
        let mut o = JsonOutput::new(Box::new(sink.clone()), opts);
        let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        o.print(&Origin { site: Some(site), time: Some(at) }, &[Value::Int(-1), Value::str("a"), Value::Nil, Value::Bool(true)]).expect("written");
        o.printf(&Origin::default(), b"caf\xc3\xa9 \xff\n").expect("written");
        o.terminal(b"\x1b[0m").expect("nothing");
        o.notice(&Notice::LostEvents(3));
        o.error(&Failure { message: "boom", span: Some(Span::new(2, 3)), notes: &["why".to_string()] });
        o.notice(&Notice::MapFailures { count: 5, full: &[("t".into(), 100)] });
        let l = lines(&sink);
        assert_eq!(l.len(), 5, "{l:?}");
        assert_eq!(l[0], json!({"type": "print", "time_ns": 1_700_000_000_123_456_789u64, "probe": "syscalls:sys_enter_*", "values": [-1, "a", null, true]}));
        assert_eq!(l[1]["type"], "printf");
        assert!(l[1].get("probe").is_none());
        assert!(l[1]["time_ns"].as_u64().is_some_and(|t| t > 1_700_000_000_000_000_000));
        assert_eq!(l[1]["text"], json!({"lossy": "café \u{fffd}\n", "hex": "636166c3a920ff0a"}));
        assert_eq!(l[2], json!({"type": "warning", "kind": "lost_events", "count": 3, "message": "3 events lost (the ring buffer was full)"}));
        assert_eq!(l[3], json!({"type": "error", "message": "boom", "line": 2, "column": 1, "notes": ["why"]}));
        assert_eq!(l[4]["count"], 5);
        assert_eq!(l[4]["full_tables"], json!([{"name": "t", "max_entries": 100}]));
    }

    #[test]
    fn tables_keep_key_types_and_escape_bytes() {
        let sink = Sink::default();
        let mut o = JsonOutput::new(Box::new(sink.clone()), JsonOptions::default());
        let entries = vec![
            (Value::str(b"ok"), Cell::Reading(Reading::Int(2))),
            (Value::str(b"\xfe\x01"), Cell::Reading(Reading::Int(1))),
            (Value::Int(42), Cell::Value(Value::str("v"))),
        ];
        o.dump(&Dump { name: "t".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: false, entries } }).expect("written");
        let stacks = vec![(Value::str("        f+0x1\n        main\n"), Cell::Reading(Reading::Int(5)))];
        o.dump(&Dump { name: "s".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: true, entries: stacks } }).expect("written");
        o.dump(&Dump { name: "n".into(), kind: None, counter: false, body: DumpBody::Global(Cell::Value(Value::Int(9))) }).expect("written");
        let l = lines(&sink);
        assert_eq!(
            l[0],
            json!({"type": "table", "name": "t", "kind": "sum", "entries": [
                {"key": "ok", "value": 2},
                {"key": {"lossy": "\u{fffd}\u{1}", "hex": "fe01"}, "value": 1},
                {"key": 42, "value": "v"}]})
        );
        assert_eq!(l[1]["entries"][0], json!({"key": ["f+0x1", "main"], "value": 5}));
        assert_eq!(l[2], json!({"type": "global", "name": "n", "kind": null, "value": 9}));
    }

    #[test]
    fn aggregates_are_numbers_objects_and_bucket_arrays() {
        use crate::ir::agg::Bucket;
        assert_eq!(reading(&Reading::Int(-3)), json!(-3));
        assert_eq!(reading(&Reading::Avg { count: 4, total: 10 }), json!({"count": 4, "total": 10, "average": 2}));
        assert_eq!(reading(&Reading::Stats { count: 0, total: 0 }), json!({"count": 0, "total": 0, "average": 0}));
        let b = vec![Bucket { min: None, max: Some(0), count: 1 }, Bucket { min: Some(0), max: Some(1), count: 0 }, Bucket { min: Some(4), max: None, count: 7 }];
        assert_eq!(
            reading(&Reading::Buckets(b)),
            json!({"buckets": [{"min": null, "max": -1, "count": 1}, {"min": 0, "max": 0, "count": 0}, {"min": 4, "max": null, "count": 7}]})
        );
    }

    #[test]
    fn print_hist_shows_the_largest_first() {
        let sink = Sink::default();
        let mut o = JsonOutput::new(Box::new(sink.clone()), JsonOptions::default());
        let mut t = Table::new();
        for (k, v) in [("a", 1), ("b", 5), ("c", 3)] {
            t.set(Value::str(k), Value::Int(v));
        }
        o.hist(&Origin::default(), &t, 2).expect("written");
        let l = lines(&sink);
        assert_eq!(l[0]["type"], "print_hist");
        assert_eq!(l[0]["total_entries"], 3);
        assert_eq!(l[0]["entries"], json!([{"key": "b", "value": 5}, {"key": "c", "value": 3}]));
    }

    #[test]
    fn cyclic_tables_end() {
        let t = Value::Table(Rc::new(RefCell::new(Table::new())));
        if let Value::Table(inner) = &t {
            inner.borrow_mut().set(Value::Int(1), t.clone());
        }
        let j = value(&t);
        assert_eq!(j["table"][0]["key"], 1);
        assert!(j["table"][0]["value"].as_str().is_some_and(|s| s.starts_with("table: 0x")), "{j}");
        if let Value::Table(inner) = &t {
            inner.borrow_mut().clear();
        }
    }

    #[test]
    fn diagnostics_have_positions() {
        let d = Diagnostic::error(Span::new(4, 5), "bad").with_note("a note");
        let j: Json = serde_json::from_str(&diagnostic("ab\ncde", &d)).expect("JSON");
        assert_eq!((j["type"].as_str(), j["line"].as_u64(), j["column"].as_u64()), (Some("error"), Some(2), Some(2)));
        assert_eq!(j["notes"], json!(["a note"]));
    }
}
