//! The whole compiler against the fake kernel. Inputs starting with `#`
//! (a comment in ktap) are scripts as they are (seeded with the golden
//! and sample scripts); any other input drives the grammar-based
//! generator, so most inputs parse and reach lowering and codegen.
//! Checks: no panic, a refusal is an error diagnostic inside the script,
//! an accepted script's module passed the IR validator (`Internal` is a
//! crash).
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'#') {
        let outcome = ktap_fuzz::compile_and_check(&String::from_utf8_lossy(data));
        if std::env::var_os("KTAP_FUZZ_STATS").is_some() {
            eprintln!("outcome: {outcome:?}");
        }
        return;
    }
    let mut u = Unstructured::new(data);
    let Ok(script) = ktap_fuzz::Gen::new(&mut u).script() else { return };
    if std::env::var_os("KTAP_FUZZ_SHOW").is_some() {
        eprintln!("=== script\n{script}");
    }
    let outcome = ktap_fuzz::compile_and_check(&script);
    // (`-runs=0` over a corpus with this set: how far generated scripts get.)
    if std::env::var_os("KTAP_FUZZ_STATS").is_some() {
        eprintln!("outcome: {outcome:?}");
    }
});
