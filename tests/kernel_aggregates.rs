//! Aggregates end to end: every kind updated in the live kernel by a
//! workload with known values (the n-th getppid call folds in n), read
//! back merged across CPUs, rendered as text and JSON, printed and cleared
//! by ticks; and the scripts the compiler refuses, with their spans.
//! The kernel parts need root and say so when they skip.

mod support;
use support::{compiles, need_root, traced, traced_with};

use ktap::ir::MapKind;
use serde_json::{json, Value as Json};

/// The n-th call of a one-thread workload folds in n (1..=100).
const EVERY_KIND: &str = "var n = 0\n\
    var c = {}\nvar s = {}\nvar a = {}\nvar mn = {}\nvar mx = {}\nvar st = {}\nvar h = {}\nvar l = {}\nvar neg = {}\n\
    trace syscalls:sys_enter_getppid /pid == {PID}/ {\n\
      n += 1\n\
      c[execname] = count() s[1] = sum(n) a[1] = avg(n) mn[1] = min(n) mx[1] = max(n) st[1] = stats(n)\n\
      h[1] = hist(n) l[1] = lhist(n, 0, 100, 25) neg[1] = hist(n - 50)\n\
    }\n";

#[test]
fn every_kind_reads_back_exactly() {
    let script = format!(
        "{EVERY_KIND}trace_end {{\n\
           print(c[\"ktap-workload\"], s[1], a[1], mn[1], mx[1])\n\
           print(st[1])\n\
           print(count(a[1]), sum(a[1]), avg(st[1]), count(h[1]), count(l[1]))\n\
           print(h[1])\n print(l[1])\n print(neg[1])\n\
         }}"
    );
    let c = compiles(&script);
    for t in ["c", "s", "a", "mn", "mx", "st", "h", "l", "neg"] {
        let map = c.module.maps.iter().find(|m| m.table.as_ref().is_some_and(|i| i.var == t)).expect("a map");
        assert_eq!(map.kind, MapKind::PercpuHash, "{t}: only updated in probes");
    }
    if !need_root() {
        return;
    }
    let run = traced(&script, 1, 100, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let expected = "\
100\t5050\t50\t1\t100
count 100, average 50, total 5050
100\t5050\t50\t100\t100
[1]           1 |@                                       |
[2, 4)        2 |@@                                      |
[4, 8)        4 |@@@@                                    |
[8, 16)       8 |@@@@@@@@                                |
[16, 32)     16 |@@@@@@@@@@@@@@@@@                       |
[32, 64)     32 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@      |
[64, 128)    37 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[0, 25)       24 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@  |
[25, 50)      25 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[50, 75)      25 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[75, 100)     25 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[100, ...)     1 |@                                       |
(..., 0)    49 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[0]          1 |@                                       |
[1]          1 |@                                       |
[2, 4)       2 |@                                       |
[4, 8)       4 |@@@                                     |
[8, 16)      8 |@@@@@@                                  |
[16, 32)    16 |@@@@@@@@@@@@@                           |
[32, 64)    19 |@@@@@@@@@@@@@@@                         |
";
    assert_eq!(run.stdout, expected, "stderr: {}", run.stderr);
}

#[test]
fn histograms_in_json_and_tables_printed_without_trace_end() {
    let script = EVERY_KIND;
    compiles(script);
    if !need_root() {
        return;
    }
    let run = traced_with(&["-f", "json"], &[], script, 1, 100, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<Json> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let table = |name: &str| lines.iter().find(|l| l["type"] == "table" && l["name"] == name).unwrap_or_else(|| panic!("no table {name}: {}", run.stdout)).clone();
    assert_eq!(table("c"), json!({"type": "table", "name": "c", "kind": "count", "entries": [{"key": "ktap-workload", "value": 100}]}));
    assert_eq!(table("a")["entries"][0]["value"], json!({"count": 100, "total": 5050, "average": 50}));
    assert_eq!(table("st")["kind"], "stats");
    assert_eq!(table("mn")["entries"][0]["value"], 1);
    assert_eq!(table("mx")["entries"][0]["value"], 100);
    assert_eq!(
        table("l")["entries"][0]["value"],
        json!({"buckets": [
            {"min": 0, "max": 24, "count": 24}, {"min": 25, "max": 49, "count": 25}, {"min": 50, "max": 74, "count": 25},
            {"min": 75, "max": 99, "count": 25}, {"min": 100, "max": null, "count": 1}]})
    );
    let neg = &table("neg")["entries"][0]["value"]["buckets"];
    assert_eq!(neg[0], json!({"min": null, "max": -1, "count": 49}));
    assert_eq!(neg[1], json!({"min": 0, "max": 0, "count": 1}));
    assert_eq!(neg[7], json!({"min": 32, "max": 63, "count": 19}));
}

#[test]
fn ticks_print_and_clear_aggregates() {
    // Each tick shows what came since the last one and clears it;
    // together with what is left at the end, they saw the calls at most
    // once each.
    let script = "var h = {}\nvar seen = 0\n\
        trace syscalls:sys_enter_getppid /pid == {PID}/ { h[1] = lhist(7, 0, 10, 5) }\n\
        tick-10ms { if (h[1] != nil) { seen += count(h[1]) print(h[1]) } delete(h) }\n\
        trace_end { if (h[1] != nil) { seen += count(h[1]) } print(\"seen\", seen) }";
    compiles(script);
    if !need_root() {
        return;
    }
    let run = traced(script, 2, 400_000, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    // Calls between a tick's read and its delete are lost (no map can be
    // read and cleared at once), so a few may be missing, never extra.
    let seen: u64 = lines.last().and_then(|l| l.strip_prefix("seen\t")).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!((700_000..=800_000).contains(&seen), "{}", run.stdout);
    assert!(lines.len() >= 2, "no tick saw the calls: {}", run.stdout);
    for l in &lines[..lines.len() - 1] {
        assert!(l.starts_with("[5, 10)") && l.ends_with("|@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|"), "{l}");
    }
}

/// The compiler's diagnostics for `script`, rendered.
fn refused(script: &str) -> String {
    match ktap::compile(script, support::fake_kernel()) {
        Ok(_) => panic!("compiled: {script}"),
        Err(ktap::CompileError::Diagnostics(d)) => ktap::frontend::diag::render("t.kp", script, &d, false),
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn bad_aggregates_are_errors_at_their_spans() {
    let mixed = refused("var h = {}\ntrace syscalls:sys_enter_getppid { h[1] = hist(pid) }\ntrace syscalls:sys_enter_getpid { h[1] = avg(pid) }");
    assert!(mixed.contains("table `h` is made an avg aggregate here but a hist aggregate elsewhere"), "{mixed}");
    assert!(mixed.contains("^^^^^^^^ an avg") && mixed.contains("--------- a hist here"), "both uses shown: {mixed}");
    let number = refused("var c = {}\ntrace syscalls:sys_enter_getppid { c[1] = count() if (c[1] > 3) { print(\"x\") } }");
    assert!(number.contains("table `c` holds count aggregates: probes can only update them"), "{number}");
    assert!(number.contains("^^^^ used as a number"), "{number}");
    let step = refused("var l = {}\ntrace syscalls:sys_enter_getppid { l[1] = lhist(pid, 0, 10, 0) }");
    assert!(step.contains("lhist()'s step must be above zero, not 0") && step.contains("^ the bucket width"), "{step}");
    let bounds = refused("var l = {}\ntrace syscalls:sys_enter_getppid { l[1] = lhist(pid, 10, 10, 1) }");
    assert!(bounds.contains("lhist()'s minimum (10) must be below its maximum (10)"), "{bounds}");
    let local = refused("trace syscalls:sys_enter_getppid { var x = hist(pid) }");
    assert!(local.contains("`hist()` makes an aggregate: assign it to a table element"), "{local}");
    let literal = refused("var l = {}\nvar w = 5\ntrace syscalls:sys_enter_getppid { l[1] = lhist(pid, 0, 10, w) }");
    assert!(literal.contains("lhist()'s step must be a number written in the script"), "{literal}");
}

#[test]
fn timestamps_are_the_events_kernel_time() {
    // Each record prints the wall clock the probe read; with -T its
    // stamp is that same moment (the event's), not when a batch was read.
    let script = "trace syscalls:sys_enter_getppid /pid == {PID}/ { print(gettimeofday_ns()) }";
    compiles(script);
    if !need_root() {
        return;
    }
    let run = traced_with(&["-T", "-f", "json"], &[], script, 2, 200, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<Json> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let records: Vec<&Json> = lines.iter().filter(|l| l["type"] == "print").collect();
    assert_eq!(records.len(), 400, "{}", run.stdout);
    for r in records {
        let (stamp, probe) = (r["time_ns"].as_i64().unwrap_or(0), r["values"][0].as_i64().unwrap_or(0));
        assert!((stamp - probe).abs() < 50_000, "stamped {stamp}, the probe read {probe}: {r}");
    }
    // In text, the stamp prefixes each line; exit and delete print nothing.
    let text = "var t = {}\ntrace syscalls:sys_enter_getppid /pid == {PID}/ { t[1] += 1 print(\"x\") delete(t) }";
    let run = traced_with(&["-T"], &[], text, 1, 3, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for l in lines {
        let (stamp, rest) = l.split_once(' ').unwrap_or(("", l));
        assert_eq!(rest, "x", "{l}");
        assert!(stamp.len() == 15 && stamp.as_bytes()[2] == b':' && stamp.as_bytes()[8] == b'.', "{l}");
    }
}

#[test]
fn histograms_are_served_as_prometheus_histograms() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let script = "var n = 0\nvar lat = {}\ntrace syscalls:sys_enter_getppid /pid == {PID}/ { n += 1 lat[execname] = hist(n) }";
    compiles(script);
    if !need_root() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
    let addr = format!("127.0.0.1:{port}");
    let mut work = Command::new(support::workload()).args(["1", "100"]).stdin(Stdio::piped()).spawn().expect("start workload");
    let script = script.replace("{PID}", &work.id().to_string());
    let mut ktap = support::ktap_command(&["--metrics", &addr, "-e", &script]).spawn().expect("start ktap");
    // Attached once the banner is out.
    let mut out = std::io::BufReader::new(ktap.stdout.take().expect("stdout"));
    let mut banner = String::new();
    let _ = std::io::BufRead::read_line(&mut out, &mut banner);
    assert!(banner.starts_with("Tracing"), "{banner}");
    work.stdin.take().expect("stdin").write_all(b"go\n").expect("start workload");
    assert!(work.wait().expect("workload").success());
    let mut reply = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
        let _ = write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let _ = s.read_to_string(&mut reply);
    }
    // SAFETY: kill on the pid of our own child, not yet reaped.
    unsafe { libc::kill(ktap.id() as i32, libc::SIGINT) };
    let status = ktap.wait().expect("ktap ends");
    assert!(status.success(), "{status}");
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let expected = "\
# HELP ktap_lat ktap table lat (hist)
# TYPE ktap_lat histogram
ktap_lat_bucket{key=\"ktap-workload\",le=\"1\"} 1
ktap_lat_bucket{key=\"ktap-workload\",le=\"3\"} 3
ktap_lat_bucket{key=\"ktap-workload\",le=\"7\"} 7
ktap_lat_bucket{key=\"ktap-workload\",le=\"15\"} 15
ktap_lat_bucket{key=\"ktap-workload\",le=\"31\"} 31
ktap_lat_bucket{key=\"ktap-workload\",le=\"63\"} 63
ktap_lat_bucket{key=\"ktap-workload\",le=\"127\"} 100
ktap_lat_bucket{key=\"ktap-workload\",le=\"+Inf\"} 100
ktap_lat_count{key=\"ktap-workload\"} 100
";
    assert!(body.contains(expected), "{body}");
    if Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        let mut check = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("promtool");
        check.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("feed promtool");
        let out = check.wait_with_output().expect("promtool ran");
        assert!(out.status.success(), "promtool: {}{}\n{body}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_global_aggregate_is_printed_counted_and_cleared() {
    // `lat = hist(n)`: the variable is the aggregate. A tick after the
    // workload (its calls are all in by then) prints and clears it; the
    // end sees it empty, and the calls were counted once.
    let script = "var n = 0\nvar lat = 0\nvar avg_n = 0\nvar ticks = 0\n\
        trace syscalls:sys_enter_getppid /execname == \"agg-global\"/ { n += 1 lat = hist(n) avg_n = avg(n) }\n\
        tick-20ms { if (count(lat) == 100) { print(lat) print(count(lat), avg(avg_n)) delete(lat) ticks += 1 } }\n\
        trace_end { print(\"end\", count(lat), ticks) print(lat) }";
    let c = compiles(script);
    let map = c.module.maps.iter().find(|m| m.table.as_ref().is_some_and(|i| i.var == "lat")).expect("lat's map");
    assert!(map.table.as_ref().is_some_and(|t| t.single) && map.max_entries == 1 && map.kind == MapKind::PercpuHash);
    if !need_root() {
        return;
    }
    // Threads named apart from the other tests' workloads (the filter
    // cannot be the pid: the workload runs under a shell that waits after
    // it, so that ticks run before ktap is interrupted).
    let args = ["1".into(), "100".into(), "agg-global".into()];
    let run = support::traced_workload(&[], &["sh", "-c", "\"$0\" \"$@\"; sleep 0.3"], script, &args, true);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let expected = "\
[1]           1 |@                                       |
[2, 4)        2 |@@                                      |
[4, 8)        4 |@@@@                                    |
[8, 16)       8 |@@@@@@@@                                |
[16, 32)     16 |@@@@@@@@@@@@@@@@@                       |
[32, 64)     32 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@      |
[64, 128)    37 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
100\t50
end\t0\t1
(no values)
";
    assert_eq!(run.stdout, expected, "stderr: {}", run.stderr);
}

#[test]
fn a_global_aggregate_is_not_a_number_in_probes() {
    let read = refused("var lat = 0\ntrace syscalls:sys_enter_getppid { lat = hist(pid) if (lat > 3) { print(\"x\") } }");
    assert!(read.contains("`lat` holds a hist aggregate: probes can only update it"), "{read}");
    let mixed = refused("var lat = 0\ntrace syscalls:sys_enter_getppid { lat = hist(pid) }\ntrace syscalls:sys_enter_getpid { lat = max(pid) }");
    assert!(mixed.contains("is made a max aggregate here but a hist aggregate elsewhere"), "{mixed}");
}

#[test]
fn random_aggregate_updates_pass_the_verifier() {
    // Every kind, in tables keyed by numbers, task names, strings and
    // probe names and in globals, inside conditions and loops, with
    // values of every sign: each script loads (`ktap -d`).
    let (seed, scripts) = support::fuzz_params("KTAP_AGG_FUZZ", 0x5eed_a66e, 40);
    let mut rng = support::Rng(seed);
    let kinds = ["count()", "sum(V)", "avg(V)", "min(V)", "max(V)", "stats(V)", "hist(V)", "lhist(V, -100, 1000, 7)", "lhist(V, 0, 1, 1)"];
    let values = ["pid", "tid", "ktime_ns() % 5000", "pid - tid * 3", "-5", "0", "1099511627776", "ktime_ns()"];
    let keys = ["execname", "tid", "probename", "1", "\"a string key\""];
    let mut all = Vec::new();
    for _ in 0..scripts {
        let mut decls = String::new();
        let mut body = String::new();
        for i in 0..1 + rng.below(5) {
            let kind = kinds[rng.below(kinds.len())].replace('V', values[rng.below(values.len())]);
            let target = if rng.below(4) == 0 {
                decls.push_str(&format!("var g{i} = 0\n"));
                format!("g{i}")
            } else {
                decls.push_str(&format!("var t{i} = {{}}\n"));
                format!("t{i}[{}]", keys[rng.below(keys.len())])
            };
            let stmt = format!("{target} = {kind}");
            body.push_str(&match rng.below(3) {
                0 => format!("  if (pid % 2 == 0) {{ {stmt} }} else {{ print(1) }}\n"),
                1 => format!("  for (i = 1, {}) {{ {stmt} }}\n", 1 + rng.below(8)),
                _ => format!("  {stmt}\n"),
            });
        }
        let event = ["syscalls:sys_enter_getppid", "syscalls:sys_enter_write", "sched:sched_process_exec"][rng.below(3)];
        all.push(format!("{decls}trace {event} {{\n{body}}}\n"));
    }
    for script in &all {
        compiles(script);
    }
    if !need_root() {
        return;
    }
    let mut failures = Vec::new();
    for script in &all {
        let run = support::ktap(&["-d", "-e", script]);
        if run.code != Some(0) {
            failures.push(format!("--- script:\n{script}--- stderr:\n{}", run.stderr));
        }
    }
    assert!(failures.is_empty(), "{} of {scripts} scripts failed:\n{}", failures.len(), failures.join("\n"));
}
