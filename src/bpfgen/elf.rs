//! ELF writer: packs programs, BTF-defined maps, globals and their BTF into
//! a relocatable BPF object that libbpf opens. Pure: returns bytes, never
//! does IO, never panics.
//!
//! The layout mirrors what clang emits and libbpf expects
//! (tools/lib/bpf/libbpf.c: bpf_object__elf_collect, bpf_object__init_user_btf_maps,
//! bpf_program__record_reloc, btf_fixup_datasec):
//! * one executable section per distinct `Program::section` (named by
//!   libbpf's conventions; programs sharing a name follow one another in
//!   it), each program a GLOBAL FUNC symbol of its name;
//! * `license` with a `_license` symbol;
//! * `.maps`: one zero-filled struct per map, described in BTF as a VAR of
//!   an anonymous struct whose members are `int (*type)[N]`-style pointers
//!   to arrays (libbpf's `__uint`) and `T *key`/`T *value` (`__type`);
//! * `.data`/`.rodata`/`.bss`: globals, each with a DATASEC of VARs;
//! * every map and global has a GLOBAL OBJECT symbol named like its VAR;
//! * `.rel<section>`: R_BPF_64_64 on ld_imm64 slots against those symbols,
//!   R_BPF_64_32 on calls into `.text` subprograms;
//! * `.BTF.ext`: func_info giving every program and subprogram its BTF
//!   FUNC, which the verifier needs for callbacks (bpf_loop), and line info
//!   ([`DebugInfo`]) that the verifier prints in its log.
//!
//! Programs whose section is `.text` are subprograms: libbpf appends the
//! ones a program calls to it (libbpf only looks for callees in `.text`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};

use super::insn::{code, Insn, Reg};
use crate::btf::write::{btf_ext_bytes, BtfBuilder, BtfMember, DatasecVar, ExtSection, FuncInfo, LineInfo};
use super::core::LocalTypes;
use crate::btf::{FuncLinkage, TypeId, VarLinkage};

/// A whole BPF object: what one `write_object` call packs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BpfObject {
    /// The license string, e.g. "GPL" (NUL-terminated in the object).
    pub license: String,
    pub programs: Vec<Program>,
    pub maps: Vec<MapDef>,
    pub globals: Vec<Global>,
    /// What the object was compiled from (a digest of the script's text
    /// and ktap's version), in a `.ktap.digest` section: a saved object
    /// (`--emit obj`) is run only with the script it came from.
    pub digest: Option<u64>,
}

/// The section holding [`BpfObject::digest`] (8 bytes, little-endian).
pub const DIGEST_SECTION: &str = ".ktap.digest";

/// One BPF program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The ELF function symbol, also libbpf's program name.
    pub name: String,
    /// The ELF section, by libbpf convention: "tracepoint/syscalls/sys_enter_getppid",
    /// "raw_tp/sys_enter", "perf_event", "uprobe", "kprobe/vfs_read", ...
    pub section: String,
    pub insns: Vec<Insn>,
    pub relocs: Vec<Reloc>,
    /// CO-RE field records, each on the instruction holding its offset.
    pub core: Vec<CoreReloc>,
}

/// A kernel field offset held by instruction `insn` (an index into
/// `Program::insns`), recorded for a CO-RE relocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreReloc {
    pub insn: usize,
    pub field: crate::ir::core::CoreField,
    /// What the loader rewrites (`bpf_core_relo_kind`: `core::FIELD_*`).
    pub kind: u32,
}

/// A relocation on the first slot of an ld_imm64.
///
/// For a map the slot becomes `BPF_PSEUDO_MAP_FD` at load. For a global it
/// becomes `BPF_PSEUDO_MAP_VALUE` of the section's map, and libbpf adds the
/// first slot's `imm` to the global's offset: leave it 0 to address the
/// global's first byte, or set it to a byte offset inside the global.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reloc {
    /// Index of the ld_imm64's first slot in `Program::insns`.
    pub insn: usize,
    pub target: RelocTarget,
}

/// What a relocation refers to, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocTarget {
    Map(String),
    Global(String),
    /// A subprogram (a [`Program`] in section `.text`). On a call slot
    /// (`Insn::call_local`) it makes a BPF-to-BPF call; on an ld_imm64 it
    /// loads the function's address (`BPF_PSEUDO_FUNC`, for callbacks such
    /// as bpf_loop's). The writer sets the slot's src_reg and imm itself.
    Func(String),
}

/// A BTF-defined map. Sizes of 0 are omitted (ring buffers have none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    pub name: String,
    /// `enum bpf_map_type` value (1 = HASH, 2 = ARRAY, 27 = RINGBUF, ...).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

/// Which data section a global lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GlobalSection {
    Data,
    Bss,
    Rodata,
}

impl GlobalSection {
    /// The ELF (and DATASEC) name.
    pub fn name(self) -> &'static str {
        match self {
            GlobalSection::Data => ".data",
            GlobalSection::Bss => ".bss",
            GlobalSection::Rodata => ".rodata",
        }
    }
}

/// A kernel-visible global variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub name: String,
    pub section: GlobalSection,
    pub size: u32,
    /// Empty for Bss; otherwise exactly `size` bytes.
    pub init: Vec<u8>,
}

/// Why an object could not be written. Each is a bug in the caller (the
/// validator should have caught it) or a format limit.
#[derive(Debug)]
pub enum Error {
    /// A program, map or global name is not a C identifier (BTF and
    /// libbpf require one).
    BadName { what: &'static str, name: String },
    /// Two programs, maps or globals share an ELF symbol name.
    DuplicateName { name: String },
    /// A program's section name is empty, contains NUL, or is one of the
    /// sections this writer owns.
    BadSection { program: String, section: String },
    /// The license is empty or contains NUL.
    BadLicense,
    /// A program without instructions.
    EmptyProgram { program: String },
    /// The last slot is the first half of an ld_imm64.
    TruncatedWide { program: String },
    /// A relocation's index is past the end, or not on an ld_imm64 (or,
    /// for a function, a call).
    BadRelocSlot { program: String, insn: usize },
    /// A BPF-to-BPF call outside `.text` without a [`RelocTarget::Func`]:
    /// libbpf resolves such calls only inside `.text`.
    UnrelocatedCall { program: String, insn: usize },
    /// Line info names a program that does not exist.
    UnknownProgram { name: String },
    /// Line info points past the program or into the middle of an ld_imm64.
    BadLineSlot { program: String, insn: usize },
    /// A relocation names a subprogram that does not exist in `.text`.
    UnknownFunc { program: String, name: String },
    /// A relocation names a map that does not exist.
    UnknownMap { program: String, name: String },
    /// A relocation names a global that does not exist.
    UnknownGlobal { program: String, name: String },
    /// A global's initializer does not match its section and size.
    BadInit {
        name: String,
        size: u32,
        init_len: usize,
    },
    /// A zero-sized global.
    EmptyGlobal { name: String },
    /// A section or BTF grew past what 32-bit fields hold.
    TooLarge { what: &'static str },
    /// The BTF builder refused the types.
    Btf(crate::btf::write::Error),
    /// The `object` crate refused to write.
    Object(object::write::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadName { what, name } => {
                write!(f, "{what} name {name:?} is not a C identifier")
            }
            Error::DuplicateName { name } => write!(f, "symbol {name:?} defined twice"),
            Error::BadSection { program, section } => {
                write!(f, "program {program}: bad section name {section:?}")
            }
            Error::BadLicense => write!(f, "license must be non-empty and contain no NUL"),
            Error::EmptyProgram { program } => write!(f, "program {program} has no instructions"),
            Error::TruncatedWide { program } => {
                write!(f, "program {program} ends inside an ld_imm64")
            }
            Error::BadRelocSlot { program, insn } => {
                write!(
                    f,
                    "program {program}: relocation at insn {insn} is not on an ld_imm64"
                )
            }
            Error::UnknownMap { program, name } => {
                write!(
                    f,
                    "program {program}: relocation against unknown map {name}"
                )
            }
            Error::UnrelocatedCall { program, insn } => write!(
                f,
                "program {program}: BPF-to-BPF call at insn {insn} needs a function relocation"
            ),
            Error::UnknownProgram { name } => write!(f, "line info for unknown program {name}"),
            Error::BadLineSlot { program, insn } => {
                write!(
                    f,
                    "program {program}: line info on slot {insn}, which starts no instruction"
                )
            }
            Error::UnknownFunc { program, name } => {
                write!(
                    f,
                    "program {program}: call to unknown .text subprogram {name}"
                )
            }
            Error::UnknownGlobal { program, name } => {
                write!(
                    f,
                    "program {program}: relocation against unknown global {name}"
                )
            }
            Error::BadInit {
                name,
                size,
                init_len,
            } => write!(
                f,
                "global {name}: initializer of {init_len} bytes for a {size}-byte variable"
            ),
            Error::EmptyGlobal { name } => write!(f, "global {name} has size 0"),
            Error::TooLarge { what } => write!(f, "{what} too large for a BPF object"),
            Error::Btf(e) => write!(f, "BTF: {e}"),
            Error::Object(e) => write!(f, "ELF: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Btf(e) => Some(e),
            Error::Object(e) => Some(e),
            _ => None,
        }
    }
}

impl From<object::write::Error> for Error {
    fn from(e: object::write::Error) -> Error {
        Error::Object(e)
    }
}

/// Sections this writer creates itself; programs may not use them.
const RESERVED_SECTIONS: &[&str] = &[
    "license",
    ".maps",
    ".data",
    ".bss",
    ".rodata",
    ".BTF",
    ".BTF.ext",
    ".symtab",
    ".strtab",
    ".shstrtab",
    "version",
    ".kconfig",
    ".ksyms",
];

/// The section of subprograms.
pub const TEXT: &str = ".text";

/// True for `call imm` (helper or BPF-to-BPF).
fn is_call(i: &Insn) -> bool {
    i.code == code::CLASS_JMP | code::OP_CALL
}

/// Alignment of every global inside its section.
const GLOBAL_ALIGN: u32 = 8;

/// True for a C identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(what: &'static str, name: &str, seen: &mut HashSet<String>) -> Result<(), Error> {
    if !is_identifier(name) {
        return Err(Error::BadName {
            what,
            name: name.to_owned(),
        });
    }
    if !seen.insert(name.to_owned()) {
        return Err(Error::DuplicateName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

fn check_program(p: &Program, obj: &BpfObject) -> Result<(), Error> {
    if p.section.is_empty()
        || p.section.contains('\0')
        || RESERVED_SECTIONS.contains(&p.section.as_str())
        || p.section.starts_with(".rel")
    {
        return Err(Error::BadSection {
            program: p.name.clone(),
            section: p.section.clone(),
        });
    }
    if p.insns.is_empty() {
        return Err(Error::EmptyProgram {
            program: p.name.clone(),
        });
    }
    // Walk slots so the second half of an ld_imm64 is not mistaken for an
    // instruction.
    let mut i = 0;
    while i < p.insns.len() {
        if p.insns[i].is_wide() {
            if i + 1 >= p.insns.len() {
                return Err(Error::TruncatedWide {
                    program: p.name.clone(),
                });
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    if p.section != TEXT {
        for (i, insn) in p.insns.iter().enumerate() {
            let local_call = is_call(insn) && insn.src.0 == code::PSEUDO_CALL;
            let has_reloc = p
                .relocs
                .iter()
                .any(|r| r.insn == i && matches!(r.target, RelocTarget::Func(_)));
            if local_call && !has_reloc {
                return Err(Error::UnrelocatedCall {
                    program: p.name.clone(),
                    insn: i,
                });
            }
        }
    }
    for r in &p.relocs {
        let slot = p.insns.get(r.insn);
        let slot_ok = match r.target {
            RelocTarget::Func(_) => slot.is_some_and(|i| i.is_wide() || is_call(i)),
            _ => slot.is_some_and(Insn::is_wide),
        };
        if !slot_ok {
            return Err(Error::BadRelocSlot {
                program: p.name.clone(),
                insn: r.insn,
            });
        }
        match &r.target {
            RelocTarget::Map(name) => {
                if !obj.maps.iter().any(|m| &m.name == name) {
                    return Err(Error::UnknownMap {
                        program: p.name.clone(),
                        name: name.clone(),
                    });
                }
            }
            RelocTarget::Global(name) => {
                if !obj.globals.iter().any(|g| &g.name == name) {
                    return Err(Error::UnknownGlobal {
                        program: p.name.clone(),
                        name: name.clone(),
                    });
                }
            }
            RelocTarget::Func(name) => {
                if !obj
                    .programs
                    .iter()
                    .any(|q| &q.name == name && q.section == TEXT)
                {
                    return Err(Error::UnknownFunc {
                        program: p.name.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn check(obj: &BpfObject) -> Result<(), Error> {
    if obj.license.is_empty() || obj.license.contains('\0') {
        return Err(Error::BadLicense);
    }
    // ELF symbol names share one namespace; `_license` is ours.
    let mut seen = HashSet::new();
    seen.insert("_license".to_owned());
    for p in &obj.programs {
        check_name("program", &p.name, &mut seen)?;
    }
    for m in &obj.maps {
        check_name("map", &m.name, &mut seen)?;
    }
    for g in &obj.globals {
        check_name("global", &g.name, &mut seen)?;
        if g.size == 0 {
            return Err(Error::EmptyGlobal {
                name: g.name.clone(),
            });
        }
        let init_ok = match g.section {
            GlobalSection::Bss => g.init.is_empty(),
            GlobalSection::Data | GlobalSection::Rodata => g.init.len() == g.size as usize,
        };
        if !init_ok {
            return Err(Error::BadInit {
                name: g.name.clone(),
                size: g.size,
                init_len: g.init.len(),
            });
        }
    }
    for p in &obj.programs {
        check_program(p, obj)?;
    }
    Ok(())
}

/// Shared BTF types, created on first use.
struct BtfTypes {
    b: BtfBuilder,
    int: Option<TypeId>,
    long: Option<TypeId>,
    index: Option<TypeId>,
    uints: [Option<TypeId>; 4],
}

impl BtfTypes {
    fn new() -> BtfTypes {
        BtfTypes {
            b: BtfBuilder::new(),
            int: None,
            long: None,
            index: None,
            uints: [None; 4],
        }
    }

    fn int(&mut self) -> TypeId {
        if let Some(t) = self.int {
            return t;
        }
        let t = self.b.add_int("int", 4, true);
        self.int = Some(t);
        t
    }

    /// clang's `__ARRAY_SIZE_TYPE__`, the index type of every array.
    fn index(&mut self) -> TypeId {
        if let Some(t) = self.index {
            return t;
        }
        let t = self.b.add_int("__ARRAY_SIZE_TYPE__", 4, false);
        self.index = Some(t);
        t
    }

    fn uint(&mut self, slot: usize, name: &str, size: u32) -> TypeId {
        if let Some(Some(t)) = self.uints.get(slot) {
            return *t;
        }
        let t = self.b.add_int(name, size, false);
        if let Some(s) = self.uints.get_mut(slot) {
            *s = Some(t);
        }
        t
    }

    /// A type of exactly `size` bytes: `__u8`..`__u64` for 1/2/4/8,
    /// otherwise `__u8[size]`.
    fn sized(&mut self, size: u32) -> TypeId {
        match size {
            1 => self.uint(0, "__u8", 1),
            2 => self.uint(1, "__u16", 2),
            4 => self.uint(2, "__u32", 4),
            8 => self.uint(3, "__u64", 8),
            n => {
                let u8t = self.uint(0, "__u8", 1);
                let idx = self.index();
                self.b.add_array(u8t, idx, n)
            }
        }
    }

    /// A BTF FUNC for a program: `int name(void)` with global linkage for
    /// entry programs; `long name(void)` with static linkage for
    /// subprograms. The verifier hands r1 (ctx) to an entry program and
    /// copies r1-r5 into a static callee whatever the prototype says;
    /// spelling out `void *ctx` would only add "arg#0 reference type
    /// ('UNKNOWN ') size cannot be determined" to every verifier log.
    fn func(&mut self, name: &str, subprogram: bool) -> TypeId {
        if subprogram {
            let long = self.long();
            let proto = self.b.add_func_proto::<&str>(long, &[]);
            self.b.add_func(name, proto, FuncLinkage::Static)
        } else {
            let int = self.int();
            let proto = self.b.add_func_proto::<&str>(int, &[]);
            self.b.add_func(name, proto, FuncLinkage::Global)
        }
    }

    fn long(&mut self) -> TypeId {
        if let Some(t) = self.long {
            return t;
        }
        let t = self.b.add_int("long", 8, true);
        self.long = Some(t);
        t
    }

    /// libbpf's `__uint(name, n)`: `int (*name)[n]`.
    fn uint_field(&mut self, n: u32) -> TypeId {
        let int = self.int();
        let idx = self.index();
        let arr = self.b.add_array(int, idx, n);
        self.b.add_ptr(arr)
    }

    /// The anonymous struct of one BTF-defined map; returns (type, size).
    fn map_struct(&mut self, m: &MapDef) -> (TypeId, u32) {
        let mut fields: Vec<(&'static str, TypeId)> = Vec::new();
        let ty = self.uint_field(m.map_type);
        fields.push(("type", ty));
        if m.key_size != 0 {
            let k = self.sized(m.key_size);
            fields.push(("key", self.b.add_ptr(k)));
        }
        if m.value_size != 0 {
            let v = self.sized(m.value_size);
            fields.push(("value", self.b.add_ptr(v)));
        }
        let ty = self.uint_field(m.max_entries);
        fields.push(("max_entries", ty));
        if m.flags != 0 {
            let ty = self.uint_field(m.flags);
            fields.push(("map_flags", ty));
        }
        let members: Vec<BtfMember<&str>> = fields
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| BtfMember {
                name: *name,
                ty: *ty,
                bit_offset: i as u32 * 64,
            })
            .collect();
        let size = members.len() as u32 * 8;
        (self.b.add_struct("", size, &members), size)
    }
}

fn align_up(v: u32, a: u32) -> Option<u32> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// Where each global of one section sits.
struct SectionLayout {
    section: GlobalSection,
    /// (index into obj.globals, offset)
    vars: Vec<(usize, u32)>,
    size: u32,
}

fn layout_globals(obj: &BpfObject, section: GlobalSection) -> Result<SectionLayout, Error> {
    let mut vars = Vec::new();
    let mut size = 0u32;
    for (i, g) in obj.globals.iter().enumerate() {
        if g.section != section {
            continue;
        }
        let off = align_up(size, GLOBAL_ALIGN).ok_or(Error::TooLarge {
            what: section.name(),
        })?;
        vars.push((i, off));
        size = off.checked_add(g.size).ok_or(Error::TooLarge {
            what: section.name(),
        })?;
    }
    if size > MAX_DATA_SECTION {
        return Err(Error::TooLarge {
            what: section.name(),
        });
    }
    Ok(SectionLayout {
        section,
        vars,
        size,
    })
}

/// A guard against building gigabyte sections from a bad size; the kernel's
/// own limit on array map values (which data sections become) is lower and
/// is reported by libbpf at load.
const MAX_DATA_SECTION: u32 = 1 << 30;

fn object_symbol(
    name: &str,
    value: u64,
    size: u64,
    kind: SymbolKind,
    scope: SymbolScope,
    section: SectionId,
) -> Symbol {
    Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind,
        scope,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    }
}

/// Largest line and column a `bpf_line_info.line_col` holds (22/10 bits).
const MAX_LINE: u32 = (1 << 22) - 1;
const MAX_COL: u32 = (1 << 10) - 1;

/// STB_GLOBAL with STV_DEFAULT. (`SymbolScope::Linkage` would be hidden,
/// which libbpf turns into static BTF linkage.)
const GLOBAL: SymbolScope = SymbolScope::Dynamic;
/// STB_GLOBAL with STV_HIDDEN: what subprograms get, so libbpf treats them
/// as subprograms for ld_imm64 (sym_is_subprog wants a GLOBAL FUNC) while
/// the BTF says static.
const HIDDEN: SymbolScope = SymbolScope::Linkage;

/// A program's instructions with the slots of function relocations set the
/// way libbpf reads them: calls get src = BPF_PSEUDO_CALL and imm = -1
/// (callee = symbol offset / 8 + imm + 1), loads get src = BPF_PSEUDO_FUNC
/// and imm = 0 (callee = (symbol offset + imm) / 8).
fn patched_insns(p: &Program) -> Vec<Insn> {
    let mut insns = p.insns.clone();
    for r in &p.relocs {
        if !matches!(r.target, RelocTarget::Func(_)) {
            continue;
        }
        let Some(slot) = insns.get_mut(r.insn) else {
            continue;
        };
        if slot.is_wide() {
            slot.src = Reg(code::PSEUDO_FUNC);
            slot.imm = 0;
            if let Some(next) = insns.get_mut(r.insn + 1) {
                next.imm = 0;
            }
        } else {
            slot.src = Reg(code::PSEUDO_CALL);
            slot.imm = -1;
        }
    }
    insns
}

/// One ELF section of programs, in the order of first use.
struct CodeSection {
    name: String,
    id: SectionId,
    /// (index into obj.programs, byte offset in the section)
    programs: Vec<(usize, u64)>,
}

/// A source position of one instruction, for `.BTF.ext` line info: the
/// verifier prints `; text @ file:line` in its log before the instructions
/// it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// Slot index in `Program::insns` (not the second half of an ld_imm64).
    pub insn: usize,
    pub file: String,
    /// 1-based line; values above 2^22 - 1 are clamped.
    pub line: u32,
    /// 1-based column; values above 1023 are clamped.
    pub col: u32,
    /// The source line's text.
    pub text: String,
}

/// Line info of one program, named by `Program::name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramLines {
    pub program: String,
    pub lines: Vec<SourceLine>,
}

/// Debug information: it changes the object's `.BTF.ext`, never the code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugInfo {
    pub lines: Vec<ProgramLines>,
}

/// Slots that are the second half of an ld_imm64.
fn second_halves(insns: &[Insn]) -> Vec<bool> {
    let mut out = vec![false; insns.len()];
    let mut i = 0;
    while i < insns.len() {
        if insns[i].is_wide() {
            if let Some(x) = out.get_mut(i + 1) {
                *x = true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// The line records of program `p`, sorted, one per slot, with one at the
/// program's first slot (the kernel wants every function to start with
/// one; a default empty record is used when the caller has none).
fn program_lines<'a>(p: &Program, debug: &'a DebugInfo) -> Result<Vec<Cow<'a, SourceLine>>, Error> {
    let halves = second_halves(&p.insns);
    let mut lines: Vec<Cow<'a, SourceLine>> = Vec::new();
    for pl in debug.lines.iter().filter(|pl| pl.program == p.name) {
        for l in &pl.lines {
            if halves.get(l.insn).is_none_or(|h| *h) {
                return Err(Error::BadLineSlot {
                    program: p.name.clone(),
                    insn: l.insn,
                });
            }
            lines.push(Cow::Borrowed(l));
        }
    }
    lines.sort_by_key(|l| l.insn);
    lines.dedup_by_key(|l| l.insn);
    if lines.first().is_none_or(|l| l.insn != 0) {
        lines.insert(
            0,
            Cow::Owned(SourceLine {
                insn: 0,
                file: String::new(),
                line: 0,
                col: 0,
                text: String::new(),
            }),
        );
    }
    Ok(lines)
}

/// Packs `obj` into a relocatable little-endian BPF ELF object.
pub fn write_object(obj: &BpfObject) -> Result<Vec<u8>, Error> {
    write_object_with(obj, &DebugInfo::default())
}

/// [`write_object`] with line info for the verifier's log.
pub fn write_object_with(obj: &BpfObject, debug: &DebugInfo) -> Result<Vec<u8>, Error> {
    check(obj)?;
    for pl in &debug.lines {
        if !obj.programs.iter().any(|p| p.name == pl.program) {
            return Err(Error::UnknownProgram {
                name: pl.program.clone(),
            });
        }
    }
    let mut elf = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let mut btf = BtfTypes::new();

    // Programs first, so their sections lead like clang's output. Programs
    // sharing a section name share the section, one after another.
    let mut sections: Vec<CodeSection> = Vec::new();
    let mut func_syms: Vec<(String, SymbolId)> = Vec::new();
    for (pi, p) in obj.programs.iter().enumerate() {
        let si = match sections.iter().position(|s| s.name == p.section) {
            Some(si) => si,
            None => {
                let id =
                    elf.add_section(Vec::new(), p.section.as_bytes().to_vec(), SectionKind::Text);
                sections.push(CodeSection {
                    name: p.section.clone(),
                    id,
                    programs: Vec::new(),
                });
                sections.len() - 1
            }
        };
        let Some(sec) = sections.get_mut(si) else {
            continue;
        };
        let code = Insn::encode_all(&patched_insns(p));
        let off = elf.append_section_data(sec.id, &code, 8);
        sec.programs.push((pi, off));
        let scope = if p.section == TEXT { HIDDEN } else { GLOBAL };
        let sym = elf.add_symbol(object_symbol(
            &p.name,
            off,
            code.len() as u64,
            SymbolKind::Text,
            scope,
            sec.id,
        ));
        func_syms.push((p.name.clone(), sym));
    }

    // BTF FUNCs and .BTF.ext func_info and line_info, per section sorted
    // by offset.
    let mut func_info = Vec::new();
    let mut line_info = Vec::new();
    let mut core_info = Vec::new();
    let mut locals = LocalTypes::default();
    for p in &obj.programs {
        for r in &p.core {
            locals.add(&r.field);
        }
    }
    if obj.programs.iter().any(|p| !p.core.is_empty()) {
        let index = btf.index();
        locals.write(&mut btf.b, index);
    }
    for sec in &sections {
        let mut core_records = Vec::new();
        for (pi, off) in &sec.programs {
            let Some(p) = obj.programs.get(*pi) else { continue };
            for r in &p.core {
                let at = u32::try_from(off + r.insn as u64 * 8).map_err(|_| Error::TooLarge { what: "program section" })?;
                if let Some(relo) = locals.relo(&mut btf.b, &r.field, at, r.kind) {
                    core_records.push(relo);
                }
            }
        }
        core_info.push(ExtSection { sec_name: btf.b.add_string(&sec.name), records: core_records });
    }
    for sec in &sections {
        let mut records = Vec::new();
        let mut line_records = Vec::new();
        for (pi, off) in &sec.programs {
            let Some(p) = obj.programs.get(*pi) else {
                continue;
            };
            let func = btf.func(&p.name, p.section == TEXT);
            let insn_byte_off = u32::try_from(*off).map_err(|_| Error::TooLarge {
                what: "program section",
            })?;
            records.push(FuncInfo {
                insn_byte_off,
                func,
            });
            for l in program_lines(p, debug)? {
                let at = off + l.insn as u64 * 8;
                line_records.push(LineInfo {
                    insn_byte_off: u32::try_from(at).map_err(|_| Error::TooLarge {
                        what: "program section",
                    })?,
                    file_name: btf.b.add_string(&l.file),
                    line_text: btf.b.add_string(&l.text),
                    line: l.line.min(MAX_LINE),
                    col: l.col.min(MAX_COL),
                });
            }
        }
        let sec_name = btf.b.add_string(&sec.name);
        func_info.push(ExtSection { sec_name, records });
        line_info.push(ExtSection {
            sec_name,
            records: line_records,
        });
    }

    // license
    let lic_sec = elf.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
    let mut lic = obj.license.as_bytes().to_vec();
    lic.push(0);
    let lic_off = elf.append_section_data(lic_sec, &lic, 1);
    elf.add_symbol(object_symbol(
        "_license",
        lic_off,
        lic.len() as u64,
        SymbolKind::Data,
        GLOBAL,
        lic_sec,
    ));

    // .maps
    let mut map_syms: Vec<(String, SymbolId)> = Vec::new();
    if !obj.maps.is_empty() {
        let sec = elf.add_section(Vec::new(), b".maps".to_vec(), SectionKind::Data);
        let mut vars = Vec::new();
        let mut end = 0u32;
        for m in &obj.maps {
            let (st, size) = btf.map_struct(m);
            let var = btf.b.add_var(&m.name, st, VarLinkage::GlobalAllocated);
            let off = elf.append_section_data(sec, &vec![0u8; size as usize], 8);
            let off32 = u32::try_from(off).map_err(|_| Error::TooLarge { what: ".maps" })?;
            vars.push(DatasecVar {
                var,
                offset: off32,
                size,
            });
            end = off32 + size;
            let sym = elf.add_symbol(object_symbol(
                &m.name,
                off,
                size as u64,
                SymbolKind::Data,
                GLOBAL,
                sec,
            ));
            map_syms.push((m.name.clone(), sym));
        }
        btf.b.add_datasec(".maps", end, &vars);
    }

    // .data, .rodata, .bss
    let mut global_syms: Vec<(String, SymbolId)> = Vec::new();
    for section in [
        GlobalSection::Data,
        GlobalSection::Rodata,
        GlobalSection::Bss,
    ] {
        let layout = layout_globals(obj, section)?;
        if layout.vars.is_empty() {
            continue;
        }
        let kind = match layout.section {
            GlobalSection::Data => SectionKind::Data,
            GlobalSection::Rodata => SectionKind::ReadOnlyData,
            GlobalSection::Bss => SectionKind::UninitializedData,
        };
        let sec = elf.add_section(Vec::new(), section.name().as_bytes().to_vec(), kind);
        if section == GlobalSection::Bss {
            elf.append_section_bss(sec, layout.size as u64, GLOBAL_ALIGN as u64);
        } else {
            let mut data = vec![0u8; layout.size as usize];
            for (gi, off) in &layout.vars {
                if let Some(g) = obj.globals.get(*gi) {
                    let start = *off as usize;
                    if let Some(dst) = data.get_mut(start..start + g.init.len()) {
                        dst.copy_from_slice(&g.init);
                    }
                }
            }
            elf.append_section_data(sec, &data, GLOBAL_ALIGN as u64);
        }
        let mut vars = Vec::new();
        for (gi, off) in &layout.vars {
            let Some(g) = obj.globals.get(*gi) else {
                continue;
            };
            let ty = btf.sized(g.size);
            let var = btf.b.add_var(&g.name, ty, VarLinkage::GlobalAllocated);
            vars.push(DatasecVar {
                var,
                offset: *off,
                size: g.size,
            });
            let sym = elf.add_symbol(object_symbol(
                &g.name,
                *off as u64,
                g.size as u64,
                SymbolKind::Data,
                GLOBAL,
                sec,
            ));
            global_syms.push((g.name.clone(), sym));
        }
        btf.b.add_datasec(section.name(), layout.size, &vars);
    }

    if let Some(digest) = obj.digest {
        let sec = elf.add_section(Vec::new(), DIGEST_SECTION.as_bytes().to_vec(), SectionKind::Metadata);
        elf.append_section_data(sec, &digest.to_le_bytes(), 8);
    }

    // .BTF and .BTF.ext (non-allocated metadata).
    btf.int();
    btf.b.validate().map_err(Error::Btf)?;
    let btf_bytes = btf.b.to_bytes();
    let btf_sec = elf.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::Metadata);
    elf.append_section_data(btf_sec, &btf_bytes, 4);
    if func_info.iter().any(|s| !s.records.is_empty()) {
        let ext = btf_ext_bytes(&func_info, &line_info, &core_info);
        let ext_sec = elf.add_section(Vec::new(), b".BTF.ext".to_vec(), SectionKind::Metadata);
        elf.append_section_data(ext_sec, &ext, 4);
    }

    // Relocations.
    for sec in &sections {
        for (pi, base) in &sec.programs {
            let Some(p) = obj.programs.get(*pi) else {
                continue;
            };
            for r in &p.relocs {
                let (name, syms) = match &r.target {
                    RelocTarget::Map(n) => (n, &map_syms),
                    RelocTarget::Global(n) => (n, &global_syms),
                    RelocTarget::Func(n) => (n, &func_syms),
                };
                let Some((_, symbol)) = syms.iter().find(|(n, _)| n == name) else {
                    // check() proved every target exists.
                    continue;
                };
                let is_call_slot = p.insns.get(r.insn).is_some_and(is_call);
                let r_type = if is_call_slot {
                    object::elf::R_BPF_64_32
                } else {
                    object::elf::R_BPF_64_64
                };
                elf.add_relocation(
                    sec.id,
                    Relocation {
                        offset: base + r.insn as u64 * 8,
                        symbol: *symbol,
                        addend: 0,
                        flags: RelocationFlags::Elf { r_type },
                    },
                )?;
            }
        }
    }

    Ok(elf.write()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::ElfFile64;
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

    fn prog(name: &str, section: &str, insns: Vec<Insn>, relocs: Vec<Reloc>) -> Program {
        Program {
            core: Vec::new(),
            name: name.into(),
            section: section.into(),
            insns,
            relocs,
        }
    }

    fn ret0() -> Vec<Insn> {
        vec![Insn::mov64_imm(Reg(0), 0), Insn::exit()]
    }

    fn ld_then_ret() -> Vec<Insn> {
        let mut v = Insn::ld_imm64(Reg(1), 0).to_vec();
        v.extend(ret0());
        v
    }

    fn sample() -> BpfObject {
        BpfObject {
            license: "GPL".into(),
            programs: vec![
                prog(
                    "p",
                    "kprobe/vfs_read",
                    ld_then_ret(),
                    vec![Reloc {
                        insn: 0,
                        target: RelocTarget::Map("m".into()),
                    }],
                ),
                prog(
                    "q",
                    "kprobe/vfs_read",
                    ld_then_ret(),
                    vec![Reloc {
                        insn: 0,
                        target: RelocTarget::Global("g".into()),
                    }],
                ),
                prog("sub", TEXT, ret0(), vec![]),
            ],
            maps: vec![MapDef {
                name: "m".into(),
                map_type: 1,
                key_size: 4,
                value_size: 16,
                max_entries: 8,
                flags: 1,
            }],
            globals: vec![
                Global {
                    name: "g".into(),
                    section: GlobalSection::Data,
                    size: 3,
                    init: vec![1, 2, 3],
                },
                Global {
                    name: "h".into(),
                    section: GlobalSection::Data,
                    size: 8,
                    init: vec![4; 8],
                },
                Global {
                    name: "z".into(),
                    section: GlobalSection::Bss,
                    size: 4,
                    init: vec![],
                },
            ],
            digest: None,
        }
    }

    #[test]
    fn layout_parses_back() {
        let bytes = write_object(&sample()).expect("write");
        let elf = ElfFile64::<object::Endianness>::parse(&*bytes).expect("parse");
        assert_eq!(elf.kind(), object::ObjectKind::Relocatable);
        assert_eq!(elf.architecture(), Architecture::Bpf);
        assert!(elf.is_little_endian());
        let header = elf.elf_header();
        assert_eq!(header.e_machine.get(elf.endian()), object::elf::EM_BPF);
        assert_eq!(header.e_type.get(elf.endian()), object::elf::ET_REL);

        // Two programs share one section; .text holds the subprogram.
        let names: Vec<&str> = elf.sections().filter_map(|s| s.name().ok()).collect();
        for want in [
            "kprobe/vfs_read",
            ".relkprobe/vfs_read",
            ".text",
            "license",
            ".maps",
            ".data",
            ".bss",
            ".BTF",
            ".BTF.ext",
        ] {
            assert_eq!(
                names.iter().filter(|n| **n == want).count(),
                1,
                "{want}: {names:?}"
            );
        }
        let progs = elf.section_by_name("kprobe/vfs_read").expect("progs");
        assert_eq!(progs.size(), 2 * 4 * 8);
        let data = elf.section_by_name(".data").expect(".data");
        assert_eq!(
            data.data().expect("data"),
            &[1, 2, 3, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4]
        );
        let lic = elf.section_by_name("license").expect("license");
        assert_eq!(lic.data().expect("license"), b"GPL\0");

        let sym = |name: &str| {
            elf.symbols()
                .find(|s| s.name() == Ok(name))
                .unwrap_or_else(|| panic!("no symbol {name}"))
        };
        let q = sym("q");
        assert_eq!((q.address(), q.size()), (32, 32));
        assert!(q.is_global());
        assert_eq!(q.kind(), SymbolKind::Text);
        let sub = sym("sub");
        assert!(sub.is_global());
        assert_eq!(
            sub.section_index(),
            elf.section_by_name(".text").map(|s| s.index())
        );
        let m = sym("m");
        // type, key, value, max_entries, map_flags
        assert_eq!((m.address(), m.size(), m.kind()), (0, 40, SymbolKind::Data));
        let h = sym("h");
        assert_eq!((h.address(), h.size()), (8, 8));
        let z = sym("z");
        assert_eq!(
            z.section_index(),
            elf.section_by_name(".bss").map(|s| s.index())
        );
        assert_eq!(sym("_license").size(), 4);

        let relocs: Vec<(u64, object::elf::RelocationType, String)> = progs
            .relocations()
            .map(|(off, r)| {
                let object::RelocationFlags::Elf { r_type } = r.flags() else {
                    panic!("not an ELF relocation");
                };
                let object::RelocationTarget::Symbol(si) = r.target() else {
                    panic!("not a symbol relocation");
                };
                let name = elf
                    .symbol_by_index(si)
                    .and_then(|s| s.name().map(str::to_owned));
                (off, r_type, name.unwrap_or_default())
            })
            .collect();
        assert_eq!(
            relocs,
            [
                (0, object::elf::R_BPF_64_64, "m".to_owned()),
                (32, object::elf::R_BPF_64_64, "g".to_owned())
            ]
        );
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(write_object(&sample()).ok(), write_object(&sample()).ok());
    }

    fn err(obj: &BpfObject) -> Error {
        match write_object(obj) {
            Ok(_) => panic!("accepted a bad object"),
            Err(e) => e,
        }
    }

    #[test]
    fn rejects_bad_objects() {
        let mut o = sample();
        o.license = String::new();
        assert!(matches!(err(&o), Error::BadLicense));

        let mut o = sample();
        o.programs[0].name = "a-b".into();
        assert!(matches!(
            err(&o),
            Error::BadName {
                what: "program",
                ..
            }
        ));

        let mut o = sample();
        o.globals[0].name = "m".into();
        assert!(matches!(err(&o), Error::DuplicateName { name } if name == "m"));

        let mut o = sample();
        o.maps[0].name = "_license".into();
        assert!(matches!(err(&o), Error::DuplicateName { .. }));

        for bad in ["", ".maps", ".BTF", ".relfoo", "license"] {
            let mut o = sample();
            o.programs[0].section = bad.into();
            assert!(matches!(err(&o), Error::BadSection { .. }), "{bad:?}");
        }

        let mut o = sample();
        o.programs[2].insns.clear();
        assert!(matches!(err(&o), Error::EmptyProgram { .. }));

        let mut o = sample();
        o.programs[2].insns = vec![Insn::ld_imm64(Reg(1), 0)[0]];
        assert!(matches!(err(&o), Error::TruncatedWide { .. }));

        let mut o = sample();
        o.programs[0].relocs[0].insn = 2;
        assert!(matches!(err(&o), Error::BadRelocSlot { insn: 2, .. }));
        o.programs[0].relocs[0].insn = 99;
        assert!(matches!(err(&o), Error::BadRelocSlot { insn: 99, .. }));

        let mut o = sample();
        o.programs[0].relocs[0].target = RelocTarget::Map("nope".into());
        assert!(matches!(err(&o), Error::UnknownMap { .. }));

        let mut o = sample();
        o.programs[0].relocs[0].target = RelocTarget::Global("m".into());
        assert!(matches!(err(&o), Error::UnknownGlobal { .. }));

        let mut o = sample();
        o.programs[0].relocs[0].target = RelocTarget::Func("p".into());
        assert!(
            matches!(err(&o), Error::UnknownFunc { .. }),
            "entry programs are not callees"
        );

        let mut o = sample();
        o.programs[0].insns.insert(2, Insn::call_local(3));
        assert!(matches!(err(&o), Error::UnrelocatedCall { insn: 2, .. }));
        // Inside .text a direct call needs no relocation.
        let mut o = sample();
        o.programs[2].insns.insert(0, Insn::call_local(-1));
        assert!(write_object(&o).is_ok());

        let mut o = sample();
        o.globals[0].init.pop();
        assert!(matches!(err(&o), Error::BadInit { init_len: 2, .. }));

        let mut o = sample();
        o.globals[2].init = vec![0; 4];
        assert!(matches!(err(&o), Error::BadInit { .. }));

        let mut o = sample();
        o.globals[1].size = 0;
        o.globals[1].init.clear();
        assert!(matches!(err(&o), Error::EmptyGlobal { .. }));
    }

    #[test]
    fn func_relocs_patch_slots() {
        let mut o = sample();
        let mut insns = Insn::ld_pseudo(Reg(2), 0, 77, 5).to_vec();
        insns.push(Insn::call_local(123));
        insns.extend(ret0());
        o.programs[0] = prog(
            "p",
            "kprobe/vfs_read",
            insns,
            vec![
                Reloc {
                    insn: 0,
                    target: RelocTarget::Func("sub".into()),
                },
                Reloc {
                    insn: 2,
                    target: RelocTarget::Func("sub".into()),
                },
            ],
        );
        let bytes = write_object(&o).expect("write");
        let elf = ElfFile64::<object::Endianness>::parse(&*bytes).expect("parse");
        let sec = elf.section_by_name("kprobe/vfs_read").expect("section");
        let code = Insn::decode_all(sec.data().expect("data"));
        assert_eq!(code[0], Insn::ld_pseudo(Reg(2), code::PSEUDO_FUNC, 0, 0)[0]);
        assert_eq!(code[1].imm, 0);
        assert_eq!(code[2], Insn::call_local(-1));
        let types: Vec<object::elf::RelocationType> = sec
            .relocations()
            .map(|(_, r)| match r.flags() {
                object::RelocationFlags::Elf { r_type } => r_type,
                _ => object::elf::R_BPF_NONE,
            })
            .collect();
        assert_eq!(
            types,
            [
                object::elf::R_BPF_64_64,
                object::elf::R_BPF_64_32,
                object::elf::R_BPF_64_64
            ]
        );
    }

    #[test]
    fn line_info_is_checked() {
        let o = sample();
        let line = |insn| SourceLine {
            insn,
            file: "f.kp".into(),
            line: 1,
            col: 1,
            text: "x".into(),
        };
        let with = |program: &str, insn| DebugInfo {
            lines: vec![ProgramLines {
                program: program.into(),
                lines: vec![line(insn)],
            }],
        };
        assert!(write_object_with(&o, &with("p", 2)).is_ok());
        assert!(matches!(
            write_object_with(&o, &with("p", 1)),
            Err(Error::BadLineSlot { insn: 1, .. })
        ));
        assert!(matches!(
            write_object_with(&o, &with("p", 4)),
            Err(Error::BadLineSlot { insn: 4, .. })
        ));
        assert!(matches!(
            write_object_with(&o, &with("nope", 0)),
            Err(Error::UnknownProgram { .. })
        ));
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("_a1"));
        assert!(is_identifier("counts"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("a.b"));
        assert!(!is_identifier("é"));
    }
}
