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
    with_load_field_of(SEED, field, value)
}

/// ELF file `elf` with field `field` of its first PT_LOAD program header
/// set to `value`.
fn with_load_field_of(elf: &[u8], field: usize, value: u64) -> Vec<u8> {
    let mut b = elf.to_vec();
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

mod dwarf_seeds {
    //! The `dwarf` fuzz target's seeds (`fuzz/seeds/dwarf.c`, built as
    //! that file says) read as they should, and the crashes the target
    //! found, rebuilt from them.

    use super::with_load_field_of;
    use ktap::facts::{TypeDesc, TypeSource, VarLoc};
    use ktap::runtime::dwarf::{describe, function_in, line_in, lines_in};

    const O0: &[u8] = include_bytes!("../fuzz/seeds/dwarf/dwarf_O0.elf");
    const O2: &[u8] = include_bytes!("../fuzz/seeds/dwarf/dwarf_O2.elf");

    #[test]
    fn the_seed_binaries_read_as_they_should() {
        for (name, data) in [("O0", O0), ("O2", O2)] {
            let s = function_in(name, data, "fz_walk").expect("fz_walk");
            let t = &*s.types;
            let vars: Vec<(&str, String)> = s.vars.iter().map(|v| (v.name.as_str(), t.type_name(v.ty))).collect();
            assert_eq!(vars, [("n", "node_t *".to_string()), ("f", "visit_fn".into()), ("arg", "void *".into())], "{name}");
            assert!((s.offset.0 as usize) < data.len());
            let Ok(TypeDesc::Ptr { to, .. }) = t.describe(s.vars[0].ty) else { panic!("{name}: n is no pointer") };
            let Ok(TypeDesc::Composite { members, .. }) = t.describe(to) else { panic!("{name}: node_t is no struct") };
            let fl = members.iter().find(|m| m.name == "fl").expect("fl");
            let Ok(TypeDesc::Composite { members: bits, .. }) = t.describe(fl.ty) else { panic!("{name}: flags") };
            assert_eq!(bits.iter().map(|m| (m.name.as_str(), m.bits)).collect::<Vec<_>>(), [("ready", 1), ("mode", 3), ("level", 4), ("wide", 0)], "{name}");
            assert_eq!(describe(&s).len(), 3);
            let (_, lines) = lines_in(name, data, "dwarf.c").expect("lines");
            assert!(lines.iter().any(|l| l.function == "fz_word"), "{name}");
        }
        // At -O0 the parameters live in the frame.
        let s = function_in("O0", O0, "fz_mid").expect("fz_mid");
        assert!(s.vars.iter().all(|v| matches!(v.loc, VarLoc::Mem { .. })), "{:?}", s.vars);
        assert_eq!(s.types.type_name(s.ret), "struct point");
        // A local of a nested block, in scope at its line (`char last = s[n];`).
        let s = line_in("O0", O0, "dwarf.c", 55).expect("a line in the block");
        assert!(s.vars.iter().any(|v| v.name == "last" && !v.param), "{:?}", s.vars);
        assert!(line_in("O0", O0, "dwarf.c", 1).expect_err("no code").contains("nearest"));
    }

    /// Found by fuzzing: the DWARF reader mapped an address to a file
    /// offset without the checks the ELF reader has (crash 2 of `elf`): a
    /// PT_LOAD segment claiming bytes past the end of the file gave a
    /// probe an offset the file does not have (0x90000000010 in a file of
    /// 6 KB), and one running past 2^64 overflowed. Now both readers map
    /// addresses the same way, and only to bytes the file has.
    #[test]
    fn scopes_lie_inside_the_file() {
        for (field, value) in [(0x08, 0x900_0000_0000), (0x08, u64::MAX - 0x10), (0x20, u64::MAX - 0x100)] {
            for data in [O0, O2] {
                let b = with_load_field_of(data, field, value);
                for func in ["fz_walk", "fz_mid", "fz_word", "_start"] {
                    if let Ok(s) = function_in("bad", &b, func) {
                        assert!((s.offset.0 as usize) < b.len(), "{func}: {:#x}", s.offset.0);
                    }
                }
                if let Ok(s) = line_in("bad", &b, "dwarf.c", 55) {
                    assert!((s.offset.0 as usize) < b.len(), "{:#x}", s.offset.0);
                }
            }
        }
        let b = with_load_field_of(O0, 0x08, 0x900_0000_0000);
        assert!(function_in("bad", &b, "fz_walk").expect_err("outside the file").contains("not mapped"));
    }

    /// Found by fuzzing: a function whose code starts near the top of the
    /// address space, with a size (`DW_AT_high_pc` as an offset) running
    /// past 2^64, overflowed in gimli's `die_ranges` (a panic in debug
    /// builds, gimli-rs/gimli#895; a range ending below its start in
    /// release ones). ktap now computes a DIE's ranges itself: such a
    /// range holds nothing.
    #[test]
    fn code_ranges_past_the_end_of_the_address_space_do_not_overflow() {
        use object::{Object, ObjectSection, ObjectSymbol};
        let f = object::File::parse(O0).expect("an ELF file");
        let info = f.section_by_name(".debug_info").and_then(|s| s.file_range()).expect(".debug_info");
        let addr = f.symbols().find(|s| s.name() == Ok("fz_walk")).expect("fz_walk").address();
        // fz_walk's DW_AT_low_pc (DW_FORM_addr; its unit's too, the code
        // starts with fz_walk) in .debug_info, each followed by a size.
        let (start, end) = (info.0 as usize, (info.0 + info.1) as usize);
        let mut b = O0.to_vec();
        let mut patched = 0;
        for at in start..end - 8 {
            if b[at..at + 8] == addr.to_le_bytes() {
                b[at..at + 8].copy_from_slice(&(u64::MAX - 0x10).to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2, "fz_walk's and its unit's low_pc");
        // The other functions are still found.
        for func in ["fz_walk", "fz_mid", "fz_word", "_start"] {
            let _ = function_in("bad", &b, func);
        }
        assert!(function_in("bad", &b, "fz_word").is_ok());
        let (_, lines) = lines_in("bad", &b, "dwarf.c").expect("lines");
        for l in &lines {
            let _ = line_in("bad", &b, "dwarf.c", l.line);
        }
    }
}
