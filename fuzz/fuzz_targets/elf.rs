//! The ELF readers user probes use (function symbols with their file
//! offsets, USDT notes) on mutated binaries, and the USDT operand parser
//! on every note's arguments: an answer or an error, never a panic.
#![no_main]

use ktap::frontend::fetch;
use ktap::runtime::elfsyms;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for glob in ["*", "main", "app_*"] {
        if let Ok(syms) = elfsyms::functions_in("fuzz.elf", data, glob) {
            assert!(syms.symbols.windows(2).all(|w| w[0] <= w[1]), "symbols not sorted");
        }
    }
    if let Ok(m) = elfsyms::sdt_markers_in("fuzz.elf", data, "*") {
        for marker in &m.markers {
            for arg in marker.args.split_whitespace() {
                let _ = fetch::parse_sdt_arg(arg);
            }
        }
    }
});
