//! The lexer and parser on raw bytes, then the printers and the
//! diagnostic renderer: no panic, diagnostics normalized, each with a
//! message and spans inside the input, no `Error` node without one.
#![no_main]

use ktap::frontend::{self, diag, print};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let src: &str = &src;
    let (program, diags) = frontend::parse(src);
    for d in &diags {
        ktap_fuzz::check_diag(d, 0, src.len() as u32, src);
    }
    let mut sorted = diags.clone();
    diag::normalize(&mut sorted);
    assert_eq!(sorted, diags, "diagnostics not normalized");
    let dump = print::program(&program);
    if diags.is_empty() {
        assert!(!dump.contains("Error @"), "an Error node without a diagnostic");
    }
    let text = diag::render("fuzz.kp", src, &diags, data.first().is_some_and(|b| b & 1 == 1));
    assert!(text.matches("error").count() >= diags.iter().filter(|d| d.is_error()).count(), "render lost errors");
    let _ = print::tokens(src);
    // The same source placed after another file (how tapsets are parsed).
    let (_, shifted) = frontend::parse_at(src, 1000);
    assert_eq!(shifted.len(), diags.len());
    for d in &shifted {
        ktap_fuzz::check_diag(d, 1000, src.len() as u32, src);
    }
});
