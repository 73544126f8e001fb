//! `--metrics ADDR`: the tables and globals probes write, served while
//! tracing as Prometheus text exposition on `/metrics` (a family per table
//! named `ktap_NAME`, keys as the `key` label, counts as counters, other
//! numbers as gauges), plus ktap's own lost-event and map-failure counters.
//! The exposition is pure; the server answers only what is already waiting
//! and never blocks the tracing loop for long. Reads no kernel state itself.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::runtime::interp::Value;
use crate::ir::agg::{Bucket, Reading};
use crate::runtime::output::{Cell, Dump, DumpBody};

/// A metrics address that cannot be served.
#[derive(Debug)]
pub enum Error {
    Bind { addr: String, source: std::io::Error },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(f, "cannot serve metrics on {addr}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

/// The exposition format served.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// ktap's own counters.
pub struct Counters {
    pub lost_events: u64,
    pub map_failures: u64,
}

const LOST: &str = "ktap_lost_events_total";
const FAILURES: &str = "ktap_map_failures_total";

/// The family a dump is exported as, and its type.
fn family(d: &Dump) -> (String, &'static str) {
    let mut name = format!("ktap_{}", d.name);
    if d.counter {
        name.push_str("_total");
    }
    if name == LOST || name == FAILURES {
        // A table named like ktap's own counters keeps a distinct family.
        name = format!("ktap_table_{}", &name["ktap_".len()..]);
    }
    let buckets = |c: &Cell| matches!(c, Cell::Reading(Reading::Buckets(_)));
    let histogram = match &d.body {
        DumpBody::Table { entries, .. } => entries.iter().any(|(_, c)| buckets(c)),
        DumpBody::Global(c) => buckets(c),
    };
    (name, if histogram { "histogram" } else if d.counter { "counter" } else { "gauge" })
}

/// A histogram entry's samples: cumulative `_bucket`s with inclusive upper
/// bounds (`le`), always ending with `+Inf`, then `_count`. (The kernel
/// keeps no total of the values, so there is no `_sum`.)
fn histogram_samples(out: &mut String, name: &str, key: Option<&str>, buckets: &[Bucket]) {
    let key_label = key.map_or(String::new(), |k| format!("key=\"{k}\","));
    let count_labels = key.map_or(String::new(), |k| format!("{{key=\"{k}\"}}"));
    let mut seen = 0u64;
    let mut inf = false;
    for b in buckets {
        seen = seen.wrapping_add(b.count);
        let le = match b.max {
            Some(hi) => (hi - 1).to_string(),
            None => {
                inf = true;
                "+Inf".into()
            }
        };
        let _ = writeln!(out, "{name}_bucket{{{key_label}le=\"{le}\"}} {seen}");
    }
    if !inf {
        let _ = writeln!(out, "{name}_bucket{{{key_label}le=\"+Inf\"}} {seen}");
    }
    let _ = writeln!(out, "{name}_count{count_labels} {seen}");
}

/// A label value: backslash, quote and newline escaped; bytes that are not
/// UTF-8 become U+FFFD (the format is UTF-8).
fn label_value(v: &Value, stack: bool) -> String {
    let raw = match v {
        Value::Str(s) if stack => {
            // Frames root first, as folded stacks read.
            let text = String::from_utf8_lossy(s.as_bytes()).into_owned();
            let frames: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            frames.into_iter().rev().collect::<Vec<_>>().join(";")
        }
        Value::Str(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => String::from_utf8_lossy(&crate::runtime::format::value_text(other)).into_owned(),
    };
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The exposition of `dumps` and ktap's counters. Entries whose value is
/// not a number (a string table) are left out, and so are families left
/// without samples.
pub fn exposition(dumps: &[Dump], counters: &Counters) -> String {
    let mut out = String::new();
    for d in dumps {
        let (name, ty) = family(d);
        let kind = d.kind.map_or(String::new(), |k| format!(" ({k})"));
        let mut samples = String::new();
        match &d.body {
            DumpBody::Global(Cell::Reading(Reading::Buckets(b))) => histogram_samples(&mut samples, &name, None, b),
            DumpBody::Global(c) => {
                if let Some(v) = c.as_int() {
                    let _ = writeln!(samples, "{name} {v}");
                }
            }
            DumpBody::Table { stack_keys, entries } => {
                for (k, c) in entries {
                    if let Cell::Reading(Reading::Buckets(b)) = c {
                        histogram_samples(&mut samples, &name, Some(&label_value(k, *stack_keys)), b);
                    } else if let Some(v) = c.as_int() {
                        let _ = writeln!(samples, "{name}{{key=\"{}\"}} {v}", label_value(k, *stack_keys));
                    }
                }
            }
        }
        if samples.is_empty() {
            continue;
        }
        let what = if matches!(d.body, DumpBody::Global(_)) { "variable" } else { "table" };
        let _ = writeln!(out, "# HELP {name} ktap {what} {}{kind}", d.name);
        let _ = writeln!(out, "# TYPE {name} {ty}");
        out.push_str(&samples);
    }
    let _ = writeln!(out, "# HELP {LOST} Events lost because the ring buffer was full.\n# TYPE {LOST} counter\n{LOST} {}", counters.lost_events);
    let _ = writeln!(out, "# HELP {FAILURES} Table updates the kernel refused.\n# TYPE {FAILURES} counter\n{FAILURES} {}", counters.map_failures);
    out
}

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// The most of a request read.
const REQUEST_MAX: usize = 8192;
/// Connections answered per round of the tracing loop (every 10 ms).
const PER_ROUND: usize = 8;

/// The metrics endpoint: a listening socket answered from the tracing loop.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `addr` (`127.0.0.1:9464`, `[::]:9464`): done before attaching,
    /// so a bad address ends ktap before it traces.
    pub fn bind(addr: &str) -> Result<Server, Error> {
        let err = |source| Error::Bind { addr: addr.to_string(), source };
        let listener = TcpListener::bind(addr).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(Server { listener })
    }

    /// The address bound (the port the kernel chose for `:0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Answers the connections already waiting (a few at a time, so a
    /// flood of them cannot hold up tracing); `body` reads the metrics once
    /// per `/metrics` request. Failures of one client are its own.
    pub fn serve_pending(&self, body: &mut dyn FnMut() -> String) {
        for _ in 0..PER_ROUND {
            let Ok((stream, _)) = self.listener.accept() else { return };
            let _ = answer(stream, body);
        }
    }
}

/// Reads one request and answers it, then closes the connection.
fn answer(mut stream: TcpStream, body: &mut dyn FnMut() -> String) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < REQUEST_MAX {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = req.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or(&[]), words.next().unwrap_or(&[]));
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    let (status, kind, text) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", CONTENT_TYPE, body()),
        (b"GET" | b"HEAD", b"/") => ("200 OK", "text/plain; charset=utf-8", "ktap metrics: see /metrics\n".to_string()),
        (b"GET" | b"HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found: ktap serves /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "use GET\n".to_string()),
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", text.len());
    stream.write_all(head.as_bytes())?;
    if method != b"HEAD" {
        stream.write_all(text.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::agg::Reading;
    use crate::runtime::output::Cell;

    #[test]
    fn families_labels_and_types() {
        let dumps = [
            Dump {
                name: "s".into(),
                kind: Some("sum"),
                counter: true,
                body: DumpBody::Table {
                    stack_keys: false,
                    entries: vec![(Value::str("a\"b\\c\nd"), Cell::Reading(Reading::Int(3))), (Value::Int(7), Cell::Reading(Reading::Int(1)))],
                },
            },
            Dump { name: "who".into(), kind: None, counter: false, body: DumpBody::Table { stack_keys: false, entries: vec![(Value::Int(1), Cell::Value(Value::str("x")))] } },
            Dump { name: "n".into(), kind: None, counter: false, body: DumpBody::Global(Cell::Value(Value::Int(-4))) },
            Dump { name: "k".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: true, entries: vec![(Value::str("        leaf+0x1\n        main"), Cell::Reading(Reading::Int(2)))] } },
            Dump { name: "lost_events".into(), kind: Some("sum"), counter: true, body: DumpBody::Table { stack_keys: false, entries: vec![(Value::str("x"), Cell::Reading(Reading::Int(1)))] } },
        ];
        let text = exposition(&dumps, &Counters { lost_events: 5, map_failures: 0 });
        let expected = "\
# HELP ktap_s_total ktap table s (sum)
# TYPE ktap_s_total counter
ktap_s_total{key=\"a\\\"b\\\\c\\nd\"} 3
ktap_s_total{key=\"7\"} 1
# HELP ktap_n ktap variable n
# TYPE ktap_n gauge
ktap_n -4
# HELP ktap_k_total ktap table k (sum)
# TYPE ktap_k_total counter
ktap_k_total{key=\"main;leaf+0x1\"} 2
# HELP ktap_table_lost_events_total ktap table lost_events (sum)
# TYPE ktap_table_lost_events_total counter
ktap_table_lost_events_total{key=\"x\"} 1
# HELP ktap_lost_events_total Events lost because the ring buffer was full.
# TYPE ktap_lost_events_total counter
ktap_lost_events_total 5
# HELP ktap_map_failures_total Table updates the kernel refused.
# TYPE ktap_map_failures_total counter
ktap_map_failures_total 0
";
        assert_eq!(text, expected);
    }

    #[test]
    fn histograms_are_cumulative_buckets_with_inclusive_bounds() {
        use crate::ir::agg::Bucket;
        let b = |min, max, count| Bucket { min, max, count };
        let lat = vec![b(None, Some(0), 1), b(Some(0), Some(1), 2), b(Some(1), Some(2), 0), b(Some(2), Some(4), 3)];
        let over = vec![b(Some(100), None, 4)];
        let dumps = [Dump {
            name: "lat".into(),
            kind: Some("hist"),
            counter: false,
            body: DumpBody::Table {
                stack_keys: false,
                entries: vec![(Value::str("sh"), Cell::Reading(Reading::Buckets(lat))), (Value::Int(2), Cell::Reading(Reading::Buckets(over)))],
            },
        }];
        let text = exposition(&dumps, &Counters { lost_events: 0, map_failures: 0 });
        let family = text.split("# HELP ktap_lost").next().unwrap_or_default();
        let expected = "\
# HELP ktap_lat ktap table lat (hist)
# TYPE ktap_lat histogram
ktap_lat_bucket{key=\"sh\",le=\"-1\"} 1
ktap_lat_bucket{key=\"sh\",le=\"0\"} 3
ktap_lat_bucket{key=\"sh\",le=\"1\"} 3
ktap_lat_bucket{key=\"sh\",le=\"3\"} 6
ktap_lat_bucket{key=\"sh\",le=\"+Inf\"} 6
ktap_lat_count{key=\"sh\"} 6
ktap_lat_bucket{key=\"2\",le=\"+Inf\"} 4
ktap_lat_count{key=\"2\"} 4
";
        assert_eq!(family, expected);
        // A global histogram: no key label.
        let global = [Dump { name: "lat".into(), kind: Some("hist"), counter: false, body: DumpBody::Global(Cell::Reading(Reading::Buckets(vec![b(Some(2), Some(4), 3)]))) }];
        let text = exposition(&global, &Counters { lost_events: 0, map_failures: 0 });
        assert!(text.starts_with("# HELP ktap_lat ktap variable lat (hist)\n# TYPE ktap_lat histogram\nktap_lat_bucket{le=\"3\"} 3\nktap_lat_bucket{le=\"+Inf\"} 3\nktap_lat_count 3\n"), "{text}");
    }

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(request.as_bytes()).expect("send");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply");
        reply
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let server = Server::bind("127.0.0.1:0").expect("bind");
        let addr = server.local_addr().expect("address");
        let client = std::thread::spawn(move || {
            [get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), get(addr, "GET /x HTTP/1.1\r\n\r\n"), get(addr, "POST /metrics HTTP/1.1\r\n\r\n")]
        });
        let mut scrapes = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !client.is_finished() && std::time::Instant::now() < deadline {
            server.serve_pending(&mut || {
                scrapes += 1;
                "ktap_n 1\n".to_string()
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        let [ok, missing, post] = client.join().expect("client");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.contains(CONTENT_TYPE) && ok.ends_with("\r\n\r\nktap_n 1\n"), "{ok}");
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert_eq!(scrapes, 1);
        let taken = Server::bind(&addr.to_string()).expect_err("the port is taken");
        assert!(taken.to_string().starts_with(&format!("cannot serve metrics on {addr}: ")), "{taken}");
    }
}
