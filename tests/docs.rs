//! The examples of docs/language.md and docs/tutorial.md work: every
//! ```` ```ktap ```` block parses (without root); as root, each one loads
//! into the kernel (`ktap -d`), a block whose fence names a command
//! (```` ```ktap -- ls / ````) runs with it to its end (exiting with the
//! command's status, 0 unless the fence says `status=N`), and a block
//! followed by an ```` ```output ```` block prints exactly that.

mod support;

use std::path::Path;

/// One example: the script, the arguments after `ktap -q -e SCRIPT`, and
/// the output it must print, if given.
struct Example {
    line: usize,
    script: String,
    args: Vec<String>,
    output: Option<String>,
    status: i32,
}

/// The fenced blocks of a Markdown file: (info string, first line, text).
fn blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), i + 1, String::new())),
            (Some(_), Some(rest)) if rest.trim().is_empty() => out.extend(open.take()),
            (Some((_, _, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

fn examples(file: &str) -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let all = blocks(&text);
    let mut out = Vec::new();
    for (i, (info, line, body)) in all.iter().enumerate() {
        let Some(rest) = info.strip_prefix("ktap") else { continue };
        let mut status = 0;
        let mut args = Vec::new();
        for word in rest.split_whitespace() {
            match word.strip_prefix("status=") {
                Some(n) => status = n.parse().unwrap_or_else(|_| panic!("{file}:{line}: bad {word}")),
                None => args.push(word.to_string()),
            }
        }
        let output = all.get(i + 1).filter(|b| b.0 == "output").map(|b| b.2.clone());
        out.push(Example { line: *line, script: body.clone(), args, output, status });
    }
    out
}

fn check(file: &str, at_least: usize) {
    let examples = examples(file);
    assert!(examples.len() >= at_least, "{file}: only {} examples found", examples.len());
    for e in &examples {
        let (_, diags) = ktap::frontend::parse(&e.script);
        assert!(diags.is_empty(), "{file}:{}: {diags:?}", e.line);
    }
    if !support::need_root() {
        return;
    }
    let mut failed = Vec::new();
    for e in &examples {
        let mut args: Vec<&str> = vec!["-q", "-e", &e.script];
        if e.output.is_none() && e.args.is_empty() {
            args.insert(0, "-d");
        }
        args.extend(e.args.iter().map(String::as_str));
        let run = support::ktap(&args);
        let ok = run.code == Some(e.status) && e.output.as_ref().is_none_or(|want| *want == run.stdout);
        if !ok {
            failed.push(format!(
                "{file}:{}: ktap {}\nexit {:?}\nstdout:\n{}\nwanted:\n{}\nstderr:\n{}",
                e.line,
                args.join(" "),
                run.code,
                run.stdout,
                e.output.as_deref().unwrap_or("(anything)"),
                run.stderr
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn language_reference_examples_work() {
    check("docs/language.md", 5);
}

#[test]
fn tutorial_examples_work() {
    check("docs/tutorial.md", 10);
}
