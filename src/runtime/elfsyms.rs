//! Reads what user probes need from ELF files: resolves short library names
//! (`libc`) through ld.so's cache and the usual directories, lists function
//! symbols (.symtab and .dynsym) with their file offsets, and parses USDT
//! notes (`.note.stapsdt`). Reads files only; never attaches anything and
//! never trusts the file's contents to be well formed.

use crate::facts::{glob_match, FileOffset, SdtMarker, SdtMarkers, UserSymbols};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where shared libraries live when ld.so's cache does not say.
const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
    "/usr/local/lib",
];

/// The file a binary spec names: a path as is, a short library name
/// (`libc`, `libz.so.1`) through `ldconfig -p`, then the usual directories.
pub fn resolve_binary(spec: &str) -> Result<PathBuf, String> {
    if spec.contains('/') {
        let p = Path::new(spec);
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())),
            Ok(_) => Err(format!("{spec} is not a regular file")),
            Err(e) => Err(format!("cannot open {spec}: {e}")),
        };
    }
    let wanted = |name: &str| name == spec || name.starts_with(&format!("{spec}.so")) || name.starts_with(&format!("{spec}-"));
    if let Ok(out) = Command::new("ldconfig").arg("-p").output() {
        let text = String::from_utf8_lossy(&out.stdout);
        let mut best: Option<(&str, &str)> = None;
        for line in text.lines().skip(1) {
            // "\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6"
            let Some((left, path)) = line.split_once(" => ") else { continue };
            let mut parts = left.trim().splitn(2, ' ');
            let (Some(name), flags) = (parts.next(), parts.next().unwrap_or("")) else { continue };
            if !wanted(name) || !flags.contains("x86-64") {
                continue;
            }
            if best.is_none_or(|(n, _)| name.len() < n.len()) {
                best = Some((name, path));
            }
        }
        if let Some((_, path)) = best {
            let p = Path::new(path);
            return Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
        }
    }
    for dir in LIB_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| wanted(n)).collect();
        names.sort_by_key(|n| (n.len(), n.clone()));
        if let Some(n) = names.first() {
            let p = Path::new(dir).join(n);
            return Ok(std::fs::canonicalize(&p).unwrap_or(p));
        }
    }
    Err(format!("cannot find library `{spec}` (not in `ldconfig -p` nor in {})", LIB_DIRS[..2].join(", ")))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `name` is what messages call the file.
fn parse<'d>(name: &str, data: &'d [u8]) -> Result<object::File<'d>, String> {
    let file = object::File::parse(data).map_err(|e| format!("{name} is not an ELF file ktap can read: {e}"))?;
    if file.format() != object::BinaryFormat::Elf || file.architecture() != object::Architecture::X86_64 {
        return Err(format!("{name} is not an x86-64 ELF file"));
    }
    Ok(file)
}

/// The file offset a virtual address is loaded from (via the PT_LOAD
/// program headers), if any segment maps it from the file (`len` bytes
/// long: a malformed segment may say it lies past the end, or past 2^64).
pub(crate) fn file_offset(file: &object::File<'_>, len: usize, addr: u64) -> Option<FileOffset> {
    file.segments().find_map(|seg| {
        let (off, size) = seg.file_range();
        let delta = addr.checked_sub(seg.address()).filter(|&d| d < size)?;
        off.checked_add(delta).filter(|&o| o < len as u64).map(FileOffset)
    })
}

/// Every defined function of `binary` whose name matches `glob`, once per
/// name, sorted; for a glob also once per address (aliases such as
/// `malloc`/`__libc_malloc` would fire twice).
pub fn functions(binary: &str, glob: &str) -> Result<UserSymbols, String> {
    let path = resolve_binary(binary)?;
    let data = read(&path)?;
    functions_in(&path.to_string_lossy(), &data, glob)
}

/// [`functions`] of a file already read: `data` are its bytes, `path`
/// its name (in messages and the result). Any bytes give an answer or an
/// error, never a panic.
pub fn functions_in(path: &str, data: &[u8], glob: &str) -> Result<UserSymbols, String> {
    let file = parse(path, data)?;
    let stripped = file.symbols().next().is_none();
    let mut found: Vec<(String, FileOffset)> = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.kind() != SymbolKind::Text || !sym.is_definition() || sym.address() == 0 {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        if name.is_empty() || !glob_match(glob, name) {
            continue;
        }
        if let Some(off) = file_offset(&file, data.len(), sym.address()) {
            found.push((name.to_string(), off));
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    if glob.contains(['*', '?']) {
        // Keep one name per address: the one with fewest leading '_'.
        let rank = |n: &str| (n.len() - n.trim_start_matches('_').len(), n.len());
        let mut by_addr: Vec<(String, FileOffset)> = found.clone();
        by_addr.sort_by(|a, b| a.1.cmp(&b.1).then(rank(&a.0).cmp(&rank(&b.0))).then(a.0.cmp(&b.0)));
        by_addr.dedup_by(|a, b| a.1 == b.1);
        by_addr.sort();
        found = by_addr;
    }
    Ok(UserSymbols { path: path.to_string(), symbols: found, stripped })
}

/// A raw stapsdt note (Documentation: systemtap's "UserSpaceProbeImplementation").
struct RawNote {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
    args: String,
}

/// NT_STAPSDT in a note named "stapsdt".
const NT_STAPSDT: u32 = 3;

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn parse_notes(data: &[u8]) -> Vec<RawNote> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let align = |n: usize| n.next_multiple_of(4);
    while at + 12 <= data.len() {
        let (Some(namesz), Some(descsz), Some(ty)) = (le_u32(data, at), le_u32(data, at + 4), le_u32(data, at + 8)) else { break };
        let name_at = at + 12;
        let desc_at = name_at + align(namesz as usize);
        let next = desc_at + align(descsz as usize);
        if next > data.len() {
            break;
        }
        let name = &data[name_at..name_at + namesz as usize];
        if ty == NT_STAPSDT && name.strip_suffix(b"\0").unwrap_or(name) == b"stapsdt" {
            let desc = &data[desc_at..desc_at + descsz as usize];
            if let (Some(pc), Some(base), Some(semaphore)) = (le_u64(desc, 0), le_u64(desc, 8), le_u64(desc, 16)) {
                let mut strings = desc.get(24..).unwrap_or(&[]).split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
                let provider = strings.next().unwrap_or_default();
                let name = strings.next().unwrap_or_default();
                let args = strings.next().unwrap_or_default();
                out.push(RawNote { pc, base, semaphore, provider, name, args });
            }
        }
        at = next;
    }
    out
}

/// The USDT markers of `binary` whose name (or `provider:name`) matches
/// `glob`, with their file offsets and semaphores.
pub fn sdt_markers(binary: &str, glob: &str) -> Result<SdtMarkers, String> {
    let path = resolve_binary(binary)?;
    let data = read(&path)?;
    sdt_markers_in(&path.to_string_lossy(), &data, glob)
}

/// [`sdt_markers`] of a file already read (`data`, called `path`). Any
/// bytes give an answer or an error, never a panic.
pub fn sdt_markers_in(path: &str, data: &[u8], glob: &str) -> Result<SdtMarkers, String> {
    let file = parse(path, data)?;
    let mut out = SdtMarkers { path: path.to_string(), ..Default::default() };
    let Some(notes) = file.section_by_name(".note.stapsdt") else { return Ok(out) };
    let notes = notes.data().map_err(|e| format!("cannot read .note.stapsdt of {path}: {e}"))?;
    // Prelink may move the binary: the note records where .stapsdt.base
    // was, the section says where it is (libbpf's usdt.c does the same).
    let base_now = file.section_by_name(".stapsdt.base").map(|s| s.address());
    for n in parse_notes(notes) {
        let full = format!("{}:{}", n.provider, n.name);
        out.all.push(full.clone());
        if !glob_match(glob, &n.name) && !glob_match(glob, &full) {
            continue;
        }
        let pc = match base_now {
            Some(now) if n.base != 0 => n.pc.wrapping_add(now).wrapping_sub(n.base),
            _ => n.pc,
        };
        let Some(offset) = file_offset(&file, data.len(), pc) else { continue };
        let semaphore = if n.semaphore == 0 { None } else { file_offset(&file, data.len(), n.semaphore) };
        out.markers.push(SdtMarker { provider: n.provider, name: n.name, offset, semaphore, args: n.args });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_parse_and_stop_at_garbage() {
        let mut note = Vec::new();
        let desc: Vec<u8> = [0x1000u64.to_le_bytes(), 0x2000u64.to_le_bytes(), 0u64.to_le_bytes()]
            .concat()
            .into_iter()
            .chain(b"prov\0mark\0-4@%eax 8@%rdx\0".iter().copied())
            .collect();
        note.extend(8u32.to_le_bytes());
        note.extend((desc.len() as u32).to_le_bytes());
        note.extend(NT_STAPSDT.to_le_bytes());
        note.extend(b"stapsdt\0");
        note.extend(&desc);
        note.resize(note.len().next_multiple_of(4), 0);
        note.extend([0xff; 7]);
        let notes = parse_notes(&note);
        assert_eq!(notes.len(), 1);
        assert_eq!((notes[0].pc, notes[0].base, notes[0].name.as_str(), notes[0].args.as_str()), (0x1000, 0x2000, "mark", "-4@%eax 8@%rdx"));
        assert!(parse_notes(&note[..20]).is_empty());
    }

    #[test]
    fn libc_resolves_and_has_malloc() {
        let Ok(path) = resolve_binary("libc") else { return };
        assert!(path.to_string_lossy().contains("libc.so"), "{}", path.display());
        let syms = functions("libc", "malloc").expect("reads libc");
        assert_eq!(syms.symbols.len(), 1, "{:?}", syms.symbols);
        assert!(resolve_binary("/no/such/file").expect_err("missing").contains("No such file"));
    }
}
