//! The readers of files ktap did not write (ELF binaries for user probes
//! and USDT markers) on malformed input: an answer or an error, never a
//! panic. Each case is a crash the `elf` fuzz target found (fuzz/,
//! docs/RELIABILITY.md), rebuilt here from the target's seed binary, a
//! small static x86-64 program with two functions and two USDT markers
//! (`fuzz/seeds/sdt.c`).

use ktap::runtime::elfsyms::{functions_in, sdt_markers_in};

const SEED: &[u8] = include_bytes!("../fuzz/seeds/elf/sdt.elf");

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The seed with field `field` (a byte offset in `Elf64_Phdr`) of its
/// first PT_LOAD program header set to `value`.
fn with_load_field(field: usize, value: u64) -> Vec<u8> {
    let mut b = SEED.to_vec();
    let (phoff, phentsize, phnum) = (u64_at(&b, 0x20) as usize, u16_at(&b, 0x36), u16_at(&b, 0x38));
    let load = (0..phnum).map(|i| phoff + i * phentsize).find(|&h| b[h..h + 4] == 1u32.to_le_bytes()).expect("a PT_LOAD");
    b[load + field..load + field + 8].copy_from_slice(&value.to_le_bytes());
    b
}

#[test]
fn the_seed_binary_reads_as_it_should() {
    let f = functions_in("sdt.elf", SEED, "app_*").expect("functions");
    assert_eq!(f.symbols.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["app_open", "app_read"]);
    let m = sdt_markers_in("sdt.elf", SEED, "*").expect("markers");
    assert_eq!(m.markers.iter().map(|m| (m.name.as_str(), m.args.as_str())).collect::<Vec<_>>(), [("request", "-4@%eax 8@-8(%rbp) 8@$12"), ("done", "8@%rdx")]);
}

/// Found by fuzzing: a segment whose file size (`p_filesz`, at 0x20) or
/// file offset (`p_offset`, at 0x08) runs past 2^64 overflowed the
/// address-to-offset arithmetic (a panic in debug builds, a wrong offset
/// in release ones), and offsets past the end of the file were made up.
/// Now a segment maps only bytes the file has.
#[test]
fn segments_past_the_end_of_the_address_space_do_not_overflow() {
    for (field, value) in [(0x20, u64::MAX - 0x100), (0x08, u64::MAX - 0x10)] {
        let b = with_load_field(field, value);
        let f = functions_in("bad.elf", &b, "*").expect("still an ELF file");
        let m = sdt_markers_in("bad.elf", &b, "*").expect("still an ELF file");
        // No offset outside the file is made up.
        let len = b.len() as u64;
        assert!(f.symbols.iter().all(|s| s.1 .0 < len), "{:?}", f.symbols);
        assert!(m.markers.iter().all(|m| m.offset.0 < len && m.semaphore.is_none_or(|s| s.0 < len)), "{:?}", m.markers);
        if field == 0x08 {
            assert!(f.symbols.is_empty() && m.markers.is_empty(), "{:?} {:?}", f.symbols, m.markers);
        }
    }
}
