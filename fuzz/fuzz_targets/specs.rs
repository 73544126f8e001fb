//! The fetch-argument parser (`+8(%di)`, `$stack2`, `@sym+4`), fetch
//! types and USDT operands, and the event-spec parsers of every provider
//! (`trace` headers split into specs): no panic, every rejection a
//! diagnostic with a span inside the text.
#![no_main]

use ktap::frontend::diag::{Diagnostic, Span};
use ktap::frontend::fetch;
use ktap::frontend::providers::spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text: &str = &text;
    let len = text.len() as u32;
    let base = 7u32;
    if let Err(d) = fetch::parse_fetch(text, base) {
        ktap_fuzz::check_diag(&d, base, len, text);
    }
    if let Err(d) = fetch::parse_type(text, Span { start: base, end: base + len }) {
        ktap_fuzz::check_diag(&d, base, len, text);
    }
    let _ = fetch::parse_sdt_arg(text);
    let mut diags: Vec<Diagnostic> = Vec::new();
    let specs = spec::event_specs(&mut diags, text, base as usize, (base + len) as usize);
    for d in &diags {
        ktap_fuzz::check_diag(d, base, len, text);
    }
    let _ = specs;
});
