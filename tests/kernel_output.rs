//! End-to-end tests of what ktap shows besides printed text: `-f json`
//! lines, the tables a script without trace_end prints when tracing ends,
//! flame graphs of profiled stacks, and metrics scraped by a real
//! Prometheus. They need root to load BPF and say so when they skip.

mod support;
use support::{compiles, finish, ktap_command, need_root, traced, traced_with, traced_workload};

use serde_json::{json, Value as Json};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every line of `text` parsed as JSON; a line that is not JSON fails.
fn json_lines(text: &str) -> Vec<Json> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nall:\n{text}"))).collect()
}

/// A temporary path for this test process.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ktap-{}-{name}", std::process::id()))
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Signals our own child by its pid.
fn interrupt(child: &Child) {
    // SAFETY: kill on the pid of a child we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

/// Starts ktap and waits for its banner on stdout; the rest of stdout is
/// collected by a thread.
fn start_ktap(args: &[&str]) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = ktap_command(args).spawn().expect("start ktap");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("Tracing...") {
                let _ = tx.send(());
                continue;
            }
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let run = finish(child, Duration::from_secs(5));
        panic!("ktap never attached: {}", run.stderr);
    }
    (child, reader)
}

#[test]
fn json_lines_for_records_and_the_tables_probes_wrote() {
    let script = "var n = 0\nvar s = {}\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ { s[execname] += 1 n += 1 printf(\"call %d\\n\", tid) }";
    compiles(script);
    if !need_root() {
        return;
    }
    let run = traced_with(&["-f", "json"], &[], script, 2, 50, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stderr, "", "everything is on the output stream");
    let lines = json_lines(&run.stdout);
    let printf: Vec<&Json> = lines.iter().filter(|l| l["type"] == "printf").collect();
    assert_eq!(printf.len(), 100, "{}", run.stdout);
    for l in &printf {
        assert_eq!(l["probe"], "syscalls:sys_enter_getppid", "{l}");
        assert!(l["text"].as_str().is_some_and(|t| t.starts_with("call ") && t.ends_with('\n')), "{l}");
        assert!(l["time_ns"].as_u64().is_some_and(|t| t > 1_600_000_000_000_000_000), "{l}");
    }
    let tail: Vec<&Json> = lines.iter().filter(|l| l["type"] != "printf").collect();
    assert_eq!(
        tail,
        [
            &json!({"type": "global", "name": "n", "kind": "sum", "value": 100}),
            &json!({"type": "table", "name": "s", "kind": "sum", "entries": [{"key": "ktap-workload", "value": 100}]}),
        ],
        "{}",
        run.stdout
    );
    // Field order is stable: `type` first.
    assert!(run.stdout.lines().all(|l| l.starts_with("{\"type\":")), "{}", run.stdout);
}

#[test]
fn json_keys_that_are_not_utf8_are_escaped() {
    let script = "var s = {}\ntrace syscalls:sys_enter_getppid /pid == {PID}/ { s[execname] += 1 }";
    compiles(script);
    if !need_root() {
        return;
    }
    let name = OsString::from_vec(b"bad\xff\xfename".to_vec());
    let run = traced_workload(&["-f", "json"], &[], script, &["1".into(), "7".into(), name], true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines = json_lines(&run.stdout);
    assert_eq!(
        lines,
        [json!({"type": "table", "name": "s", "kind": "sum", "entries": [
            {"key": {"lossy": "bad\u{fffd}\u{fffd}name", "hex": "626164fffe6e616d65"}, "value": 7}]})],
        "{}",
        run.stdout
    );
}

#[test]
fn json_reports_lost_events_on_the_output_stream() {
    let script = "trace syscalls:sys_enter_getppid /pid == {PID}/ { printf(\"%d\\n\", pid) }";
    compiles(script);
    if !need_root() {
        return;
    }
    let count = 100_000;
    let run = traced_with(&["-f", "json", "-b", "4K"], &[], script, 1, count, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines = json_lines(&run.stdout);
    let printed = lines.iter().filter(|l| l["type"] == "printf").count() as u64;
    let lost = lines.iter().find(|l| l["type"] == "warning" && l["kind"] == "lost_events").expect("a lost-events warning");
    let lost = lost["count"].as_u64().expect("a count");
    assert!(lost > 0 && printed > 0, "lost {lost}, printed {printed}");
    assert_eq!(printed + lost, count);
}

#[test]
fn json_errors_carry_their_line() {
    if !need_root() {
        return;
    }
    let run = support::ktap(&["-f", "json", "-e", "var s = {}\ntrace syscalls:sys_enter_getppid { t[1] += 1 }"]);
    assert_eq!(run.code, Some(1));
    let lines = json_lines(&run.stdout);
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert_eq!((lines[0]["type"].as_str(), lines[0]["line"].as_u64()), (Some("error"), Some(2)), "{}", run.stdout);
    assert!(lines[0]["message"].as_str().is_some_and(|m| m.contains("`t`")), "{}", run.stdout);
}

#[test]
fn without_trace_end_what_probes_wrote_is_printed() {
    let script = "var n = 0\nvar s = {}\nvar unused = {}\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ { s[execname] += 1 s[\"x\"] += 2 n += 1 }";
    compiles(script);
    if !need_root() {
        return;
    }
    let run = traced(script, 2, 30, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "n: 60\ns:\n  ktap-workload  60\n  x              120\n\n");
    // With a trace_end, the script decides what is printed.
    let run = traced(&format!("{script}\ntrace_end {{ print(n) }}"), 1, 5, true);
    assert_eq!(run.stdout, "5\n", "stderr: {}", run.stderr);
}

/// Runs the spinning program; profiles it with `profile-1ms` for a second
/// with `options`; returns ktap's run.
fn profile_spin(options: &[&str]) -> support::Run {
    let prog = support::c_program("spin", &["-O1", "-fno-omit-frame-pointer"]);
    let mut spin = Command::new(&prog).stdin(Stdio::null()).spawn().expect("start spin");
    let script = format!("var s = {{}}\nprofile-1ms {{ if (pid == {}) {{ s[ustack()] += 1 }} }}", spin.id());
    let mut args = options.to_vec();
    args.extend(["-e", &script]);
    let (ktap, reader) = start_ktap(&args);
    std::thread::sleep(Duration::from_millis(1200));
    interrupt(&ktap);
    let mut run = finish(ktap, Duration::from_secs(30));
    run.stdout = reader.join().expect("reader");
    // Symbolized before this: the process had to be alive.
    let _ = spin.kill();
    let _ = spin.wait();
    run
}

/// Whether `text` is well-formed XML.
fn parses_as_xml(text: &str) -> Result<usize, String> {
    let mut r = quick_xml::Reader::from_str(text);
    let mut elements = 0;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => return Ok(elements),
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => elements += 1,
            Ok(_) => {}
            Err(e) => return Err(format!("at {}: {e}", r.buffer_position())),
        }
    }
}

#[test]
fn flame_graph_of_a_profiled_process_holds_its_hottest_function() {
    compiles("var s = {}\nprofile-1ms { if (pid == 1) { s[ustack()] += 1 } }");
    if !need_root() {
        return;
    }
    let (svg, folded) = (temp("flame.svg"), temp("flame.folded"));
    let run = profile_spin(&["--flamegraph", svg.to_str().expect("utf8"), "--folded", folded.to_str().expect("utf8")]);
    let svg_text = std::fs::read_to_string(&svg).unwrap_or_default();
    let folded_text = std::fs::read_to_string(&folded).unwrap_or_default();
    let _ = (std::fs::remove_file(&svg), std::fs::remove_file(&folded));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // The hottest stack, by its count, ends in the spinning function,
    // called from main, each frame after its binary.
    let (hottest, samples) = folded_text
        .lines()
        .filter_map(|l| l.rsplit_once(' ').and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?))))
        .max_by_key(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no folded stacks: {folded_text}"));
    // 1.2 s at 1 kHz: ~1,200 samples on an idle machine, fewer on a busy one.
    assert!(samples >= 20, "{samples} samples in 1.2 s at 1 kHz: {folded_text}");
    let frames: Vec<&str> = hottest.split(';').collect();
    assert_eq!(frames.last(), Some(&"ktap-probe-spin`ktap_hot_spin"), "{folded_text}");
    assert!(frames.contains(&"ktap-probe-spin`main"), "{folded_text}");
    // Frames below main are the C library's, by name or by file offset.
    assert!(frames[0].starts_with("libc.so.6`"), "{folded_text}");
    let elements = parses_as_xml(&svg_text).unwrap_or_else(|e| panic!("the SVG does not parse: {e}"));
    assert!(elements > 10 && svg_text.contains("<svg"), "{svg_text}");
    assert!(svg_text.contains("ktap_hot_spin"), "the hottest function is drawn");
    // Without trace_end the table is printed too, one frame a line.
    assert!(run.stdout.starts_with("s:\n") && run.stdout.contains("ktap_hot_spin"), "{}", run.stdout);
}

#[test]
fn flame_graph_needs_a_stack_table_and_metrics_a_free_address() {
    if !need_root() {
        return;
    }
    let svg = temp("none.svg");
    let run = support::ktap(&["--flamegraph", svg.to_str().expect("utf8"), "-e", "var n = 0\nprofile-1ms { n += 1 }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("--flamegraph draws tables keyed by stacks"), "{}", run.stderr);
    assert!(!run.stdout.contains("Tracing"), "refused before attaching: {}", run.stdout);
    assert!(!svg.exists());
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let run = support::ktap(&["--metrics", &addr, "-e", "var n = 0\nprofile-1ms { n += 1 }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains(&format!("cannot serve metrics on {addr}")), "{}", run.stderr);
    assert!(!run.stdout.contains("Tracing"), "refused before attaching: {}", run.stdout);
    let run = support::ktap(&["--metrics", "not an address", "-e", "var n = 0\nprofile-1ms { n += 1 }"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot serve metrics on not an address"), "{}", run.stderr);
}

/// The body of `GET path` on `addr`.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).ok()?;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Whether a program is on the PATH.
fn have(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A child we started, killed and reaped (by its own handle) if the test
/// fails before it is taken back.
struct Reaped(Option<Child>);

impl Reaped {
    fn child(&self) -> &Child {
        self.0.as_ref().expect("still held")
    }
    fn take(mut self) -> Child {
        self.0.take().expect("still held")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn prometheus_scrapes_the_workloads_counts() {
    let script = "var n = 0\nvar calls = {}\ntrace syscalls:sys_enter_getppid /pid == {PID}/ { calls[execname] += 1 n += 1 }";
    compiles(script);
    if !need_root() {
        return;
    }
    let mut work = Command::new(support::workload()).args(["2", "500"]).stdin(Stdio::piped()).spawn().expect("start workload");
    let addr = format!("127.0.0.1:{}", free_port());
    let script = script.replace("{PID}", &work.id().to_string());
    let (ktap, reader) = start_ktap(&["--metrics", &addr, "-e", &script]);
    let ktap = Reaped(Some(ktap));
    work.stdin.take().expect("stdin").write_all(b"go\n").expect("start workload");
    assert!(work.wait().expect("workload").success());

    let body = http_get(&addr, "/metrics").expect("a scrape");
    assert!(body.contains("# TYPE ktap_calls_total counter\nktap_calls_total{key=\"ktap-workload\"} 1000\n"), "{body}");
    assert!(body.contains("ktap_n_total 1000\n") && body.contains("ktap_lost_events_total 0\n"), "{body}");
    // (promtool's lint also judges names: a table called `s` would read as
    // seconds.)
    if have("promtool") {
        let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("promtool");
        check.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("feed promtool");
        let out = check.wait_with_output().expect("promtool ran");
        assert!(out.status.success(), "promtool: {}{}\n{body}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    } else {
        eprintln!("prometheus_scrapes_the_workloads_counts: promtool is not installed (scripts/setup.sh installs prometheus): exposition not linted");
    }

    if !have("prometheus") {
        eprintln!("prometheus_scrapes_the_workloads_counts: skipped the Prometheus server part: `prometheus` is not installed (scripts/setup.sh installs it)");
    } else {
        let dir = temp("prometheus");
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, format!("global:\n  scrape_interval: 250ms\nscrape_configs:\n  - job_name: ktap\n    static_configs:\n      - targets: ['{addr}']\n"))
            .expect("config");
        let web = format!("127.0.0.1:{}", free_port());
        let server = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let server = Reaped(Some(server));
        let answer = query_until(&web, "ktap_calls_total", Path::new(&dir), Duration::from_secs(30));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        let result = &answer["data"]["result"][0];
        assert_eq!(result["metric"]["key"], "ktap-workload", "{answer}");
        assert_eq!(result["metric"]["job"], "ktap", "{answer}");
        assert_eq!(result["value"][1], "1000", "{answer}");
    }
    interrupt(ktap.child());
    let mut run = finish(ktap.take(), Duration::from_secs(30));
    run.stdout = reader.join().expect("reader");
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "n: 1000\ncalls:\n  ktap-workload  1000\n\n");
}

/// Asks Prometheus's query API for `query` until it has a sample.
fn query_until(web: &str, query: &str, dir: &Path, limit: Duration) -> Json {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(body) = http_get(web, &format!("/api/v1/query?query={query}")) {
            if let Ok(j) = serde_json::from_str::<Json>(&body) {
                if j["data"]["result"].as_array().is_some_and(|r| !r.is_empty()) {
                    return j;
                }
            }
        }
        assert!(Instant::now() < deadline, "Prometheus (in {}) never had {query}", dir.display());
        std::thread::sleep(Duration::from_millis(200));
    }
}
