//! Deterministic fuzzing of the frontend: ~20k generated inputs (random
//! bytes, token soup, mutated golden inputs, deep nesting) that the lexer,
//! parser, printers and renderer must survive without panicking, quickly,
//! with well-formed diagnostics. Uses no randomness source but the tests'
//! seeded xorshift (`support::Rng`), so every failure reproduces.

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ktap::frontend::{self, diag, print};
use support::Rng;

const FRAGMENTS: &[&str] = &[
    "var", "function", "if", "else", "elseif", "while", "for", "in", "break", "return", "trace", "trace_end",
    "nil", "true", "false", "a", "b", "t", "pairs", "print", "kdebug", "_x1", "0", "1", "42", "0x", "0xff",
    "0xffffffffffffffff", "18446744073709551616", "\"s\"", "'q'", "\"", "'", "\\", "\\x", "\\777", "\"a\\q\"",
    "+", "-", "*", "/", "%", "..", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "=", "+=", "(", ")", "{",
    "}", "[", "]", ",", ".", ":", ";", "#", "# comment\n", "\n", " ", "\t", "tick-1s", "tick-0s", "tick-9h",
    "profile-10us", "tick-", "syscalls:sys_enter_*", "probe:/bin/sh:f%return", "probe:f a=%di:u32", "sdt:/x:m",
    "sdt:", "probe:", "*:*", "x=", "$stack", "+4($stack)", "é", "\u{1F600}", "\u{0}", "\u{7f}", "\r\n", "@",
    "`", "~", "?",
];

fn golden_inputs() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for stage in ["tokens", "ast", "diag"] {
        let Ok(dir) = fs::read_dir(root.join(stage)) else { continue };
        let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|x| x == "kp") {
                if let Ok(s) = fs::read_to_string(&p) {
                    out.push(s);
                }
            }
        }
    }
    out.push("trace syscalls:sys_enter_write /arg1 / 2 == 3/ { print(argstr) }\n".into());
    out
}

fn random_bytes(rng: &mut Rng) -> String {
    let len = rng.below(120);
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_ascii(rng: &mut Rng) -> String {
    let len = rng.below(120);
    (0..len).map(|_| (rng.below(95) as u8 + 32) as char).collect()
}

fn token_soup(rng: &mut Rng) -> String {
    let n = rng.below(48);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(FRAGMENTS));
        if rng.below(3) == 0 {
            s.push(' ');
        }
    }
    s
}

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(5) {
            0 => bytes.truncate(rng.below(len + 1)),
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            2 => {
                let i = rng.below(len + 1);
                let frag = rng.pick(FRAGMENTS).as_bytes().to_vec();
                bytes.splice(i..i, frag);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + rng.below(12)).min(len);
                bytes.drain(i..j);
            }
            _ => {
                let i = rng.below(len + 1);
                bytes.insert(i, rng.next() as u8);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses one input and checks what must hold for any input; returns its
/// diagnostics' count.
fn check(src: &str, render: bool) -> usize {
    let (program, diags) = frontend::parse(src);
    let len = src.len() as u32;
    for d in &diags {
        assert!(d.span.start <= d.span.end && d.span.end <= len, "bad span {:?} in {src:?}", d.span);
        assert!(!d.message.is_empty(), "empty message for {src:?}");
    }
    let mut sorted = diags.clone();
    diag::normalize(&mut sorted);
    assert_eq!(sorted, diags, "diagnostics not normalized for {src:?}");
    let dump = print::program(&program);
    if diags.is_empty() && !src.trim().is_empty() {
        assert!(!dump.contains("Error @"), "Error node without a diagnostic for {src:?}");
    }
    if render {
        let text = diag::render("fuzz.kp", src, &diags, false);
        assert!(text.matches("error").count() >= diags.len(), "render lost diagnostics for {src:?}");
    }
    let _ = print::tokens(src);
    diags.len()
}

#[test]
fn frontend_survives_generated_inputs() {
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bases = golden_inputs();
    assert!(!bases.is_empty(), "no golden inputs found");
    // Per generator: inputs refused with diagnostics, and inputs that parsed
    // cleanly. A fuzzer whose inputs all fail (or all pass) at once
    // exercises one path of the parser only.
    let mut outcomes = [(0, 0); 4];
    for i in 0..20_000 {
        let kind = i % 4;
        let src = match kind {
            0 => random_bytes(&mut rng),
            1 => random_ascii(&mut rng),
            2 => token_soup(&mut rng),
            _ => {
                let base = &bases[rng.below(bases.len())];
                mutate(&mut rng, base)
            }
        };
        if check(&src, i % 16 == 0) > 0 {
            outcomes[kind].0 += 1;
        } else if !src.trim().is_empty() {
            outcomes[kind].1 += 1;
        }
    }
    eprintln!("refused, clean per generator (bytes, ascii, tokens, mutations): {outcomes:?}");
    let [_, (ascii_refused, _), (soup_refused, _), (mutants_refused, mutants_clean)] = outcomes;
    assert!(ascii_refused >= 2_500 && soup_refused >= 2_500, "random text mostly parses? {outcomes:?}");
    assert!(mutants_refused >= 1_000 && mutants_clean >= 250, "mutated scripts all fail or all pass: {outcomes:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "fuzzing took {:?}", started.elapsed());
}

#[test]
fn every_prefix_of_golden_inputs() {
    let bases = golden_inputs();
    assert!(bases.len() > 10, "only {} golden inputs found", bases.len());
    for base in bases {
        let mut cut = 0;
        while cut <= base.len() {
            if base.is_char_boundary(cut) {
                check(&base[..cut], false);
            }
            cut += 1;
        }
    }
}

#[test]
fn deep_nesting_is_rejected_not_crashed() {
    let n = 5_000;
    let cases = [
        format!("x = {}1{}", "(".repeat(n), ")".repeat(n)),
        format!("x = {}1", "-".repeat(n)),
        format!("x = {}1", "!".repeat(n)),
        format!("x = 1{}", " + 1".repeat(n)),
        format!("x = 1{}", " .. 1".repeat(n)),
        format!("x = {}{}", "{".repeat(n), "}".repeat(n)),
        format!("{}{}", "{".repeat(n), "}".repeat(n)),
        format!("x = a{}", "[1]".repeat(n)),
        format!("x = f{}", "()".repeat(n)),
        "if (a) {".repeat(n),
    ];
    for src in &cases {
        assert!(check(src, false) > 0, "no diagnostic for a {}-byte deep input", src.len());
    }
    // Ordinary depth is fine.
    let (_, diags) = frontend::parse(&format!("x = {}1{}", "(".repeat(50), ")".repeat(50)));
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn clean_inputs_have_no_diagnostics() {
    let ok = [
        "",
        "# only a comment",
        ";;;",
        "var a",
        "trace *:* { }",
        "trace probe:/lib/libc.so.6:malloc%return { }",
        "for (;;) { break }",
        "function f() { return }",
        "if (a) { } else if (b) { } elseif (c) { } else { }",
        "t = {[1] = 2, x = 3, 4;}",
        "a.trace(1)",
        "tick-1s { print(1) }",
    ];
    for src in ok {
        let (_, d) = frontend::parse(src);
        assert!(d.is_empty(), "{src:?}: {d:?}");
    }
}


/// Found by the `specs` fuzz target: the fetch parser put the "missing
/// fetch location" error of an empty text one byte past its end.
#[test]
fn fetch_diagnostics_stay_inside_the_text() {
    use ktap::frontend::fetch;
    for text in ["", "+", "+8(", "%", "%zz", "$", "@", "@sym+", "-4(%di", "+8(%di)x"] {
        let start = 100;
        let d = fetch::parse_fetch(text, start).expect_err(text);
        let end = start + text.len() as u32;
        assert!(d.span.start >= start && d.span.end <= end && d.span.start <= d.span.end, "{text:?}: span {:?} outside {start}..{end}", d.span);
    }
}
