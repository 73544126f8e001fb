//! Every sample script parses (without root), has a header saying what it
//! shows and how to run it, and compiles, its programs passing the kernel
//! verifier (`ktap -d` loads without attaching; needs root, says so when
//! skipped). A sample that can finish on its own says how in its header
//! (`# Test: [status=N] ARGS`: ktap -q SAMPLE ARGS, e.g. `-- ls /` or a
//! tick's duration) and what its output must contain (`# Expect: TEXT`,
//! one line each); those run against that workload. `# Needs: PATH` skips
//! a sample (saying so) on machines without PATH. The TCP samples run
//! against a connection this test makes.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn samples(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("samples dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            samples(&p, out);
        } else if p.extension().is_some_and(|x| x == "kp") {
            out.push(p);
        }
    }
}

/// What a sample's header says.
#[derive(Default)]
struct Header {
    run: bool,
    /// `# Test:`: the exit status and the arguments after the sample.
    test: Option<(i32, Vec<String>)>,
    expect: Vec<String>,
    needs: Vec<String>,
}

/// Words of a command line, with '...' and "..." quoting (no escapes).
fn split_args(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in {text:?}");
    words.extend(word);
    words
}

fn header(src: &str) -> Header {
    let mut h = Header::default();
    for line in src.lines().take_while(|l| l.starts_with('#')) {
        if line.starts_with("# Run: ktap scripts/samples/") {
            h.run = true;
        } else if let Some(rest) = line.strip_prefix("# Test:") {
            let mut args = split_args(rest);
            let mut status = 0;
            if let Some(n) = args.first().and_then(|a| a.strip_prefix("status=")) {
                status = n.parse().expect("status=N");
                args.remove(0);
            }
            h.test = Some((status, args));
        } else if let Some(text) = line.strip_prefix("# Expect: ") {
            h.expect.push(text.to_string());
        } else if let Some(path) = line.strip_prefix("# Needs: ") {
            h.needs.push(path.trim().to_string());
        }
    }
    h
}

fn all_samples() -> Vec<PathBuf> {
    let mut all = Vec::new();
    samples(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/samples"), &mut all);
    all.sort();
    all
}

#[test]
fn quoting() {
    assert_eq!(split_args(r#" -- sh -c "trap '' USR1; kill $$" x"#), ["--", "sh", "-c", "trap '' USR1; kill $$", "x"]);
    assert_eq!(split_args("status=1 -- cat ''"), ["status=1", "--", "cat", ""]);
    assert!(split_args("  ").is_empty());
}

#[test]
fn every_sample_loads() {
    let all = all_samples();
    assert!(all.len() >= 35, "{} samples: {all:?}", all.len());
    // The half without root: each parses cleanly and has its header
    // (compiling needs the machine's events).
    for s in &all {
        let src = std::fs::read_to_string(s).expect("read sample");
        let (_, diags) = ktap::frontend::parse(&src);
        assert!(diags.is_empty(), "{}: {diags:?}", s.display());
        let h = header(&src);
        assert!(src.starts_with("# ") && h.run, "{}: the header must say what it shows and `# Run: ktap scripts/samples/...`", s.display());
        assert!(h.test.is_some() || h.expect.is_empty(), "{}: `# Expect:` without `# Test:`", s.display());
    }
    let tested = all.iter().filter(|s| header(&std::fs::read_to_string(s).expect("read")).test.is_some()).count();
    assert!(tested >= 30, "only {tested} samples run against a workload");
    if !support::need_root() {
        return;
    }
    let mut failed = Vec::new();
    for s in &all {
        let h = header(&std::fs::read_to_string(s).expect("read"));
        if let Some(missing) = h.needs.iter().find(|p| !Path::new(p).exists()) {
            eprintln!("skipped loading {}: {missing} is not on this machine", s.display());
            continue;
        }
        let run = support::ktap(&["-d", s.to_str().expect("utf-8 path")]);
        if run.code != Some(0) {
            failed.push(format!("{}:\n{}", s.display(), run.stderr));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn samples_that_finish_run_against_a_workload() {
    if !support::need_root() {
        return;
    }
    let mut failed = Vec::new();
    for s in all_samples() {
        let h = header(&std::fs::read_to_string(&s).expect("read"));
        let Some((status, args)) = &h.test else { continue };
        if let Some(missing) = h.needs.iter().find(|p| !Path::new(p).exists()) {
            eprintln!("skipped running {}: {missing} is not on this machine", s.display());
            continue;
        }
        let mut argv = vec!["-q", s.to_str().expect("utf-8 path")];
        argv.extend(args.iter().map(String::as_str));
        let run = support::ktap(&argv);
        let missing: Vec<&String> = h.expect.iter().filter(|e| !run.stdout.contains(e.as_str())).collect();
        if run.code != Some(*status) || !missing.is_empty() {
            failed.push(format!(
                "ktap {}: exit {:?} (want {status}), missing {missing:?}\nstdout:\n{}\nstderr:\n{}",
                argv.join(" "),
                run.code,
                run.stdout,
                run.stderr
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// Starts a TCP sample, makes one connection on the loopback once it is
/// attached, stops it with SIGINT; what it printed and the two ports.
fn traced_connection(sample: &str) -> (String, u16, u16) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/samples/net").join(sample);
    let mut child = support::ktap_command(&[path.to_str().expect("utf-8 path")]).spawn().expect("start ktap");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut byte = [0u8];
    while !seen.ends_with(b"Ctrl-C to end.\n") {
        let n = stdout.read(&mut byte).expect("read the banner");
        assert_eq!(n, 1, "{sample} ended before its banner: {}", String::from_utf8_lossy(&seen));
        seen.push(byte[0]);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let server = listener.local_addr().expect("address").port();
    let client = std::net::TcpStream::connect(("127.0.0.1", server)).expect("connect");
    let (_conn, _) = listener.accept().expect("accept");
    let client_port = client.local_addr().expect("address").port();
    // Let the probes' records reach ktap (drained every 10 ms).
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling the ktap this test started, by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    child.stdout = Some(stdout);
    let run = support::finish(child, Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{sample}: {}", run.stderr);
    (run.stdout, server, client_port)
}

#[test]
fn tcp_samples_see_a_loopback_connection() {
    if !support::need_root() {
        return;
    }
    let (out, server, _) = traced_connection("tcp_connects.kp");
    assert!(out.contains(&format!("-> port {server}\n")), "{out}");
    let (out, server, client) = traced_connection("tcp_accepts.kp");
    assert!(out.contains(&format!("accept port {server} <- port {client} ")), "{out}");
}
