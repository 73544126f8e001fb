//! Debug info (DWARF) of user binaries, for `probe:BIN:FUNC` and
//! `probe:BIN:file.c:42`: finds it (in the binary, its `.gnu_debuglink`
//! file next to it, in `.debug/` or under /usr/lib/debug, or by build-id
//! under /usr/lib/debug/.build-id), reads only the compilation unit that
//! holds the place (`.debug_aranges`, else a scan of each unit's root DIE),
//! and answers in the facts' plain data ([`DebugScope`]): where to attach,
//! each variable's type (converted into a [`TypeTable`]) and its location
//! there (registers and frame slots; the CFA from `.eh_frame`). Reads files
//! only; never trusts their contents.

use crate::facts::{DebugScope, DebugVar, FileOffset, MemberDesc, RegOffset, TypeDesc, TypeId, TypeSource, TypeTable, VarLoc};
use gimli::{AttributeValue, EndianSlice, LittleEndian, Operation, UnitOffset, UnwindSection};
use object::{Object, ObjectSection, ObjectSymbol};
use std::collections::HashMap;
use super::mapped::Mapped;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type R<'a> = EndianSlice<'a, LittleEndian>;
type Dwarf<'a> = gimli::Dwarf<R<'a>>;
type Unit<'a> = gimli::Unit<R<'a>>;

/// Where separate debug files are installed.
const DEBUG_ROOT: &str = "/usr/lib/debug";
/// Type nesting followed when converting, at most.
const MAX_TYPE_DEPTH: u32 = 32;

/// A binary and the file holding its DWARF (itself, or a debug file).
pub struct Debug {
    binary: Mapped,
    debug: Option<Mapped>,
    pub debug_path: PathBuf,
}

fn parse<'d>(path: &Path, data: &'d [u8]) -> Result<object::File<'d>, String> {
    object::File::parse(data).map_err(|e| format!("{} is not an ELF file ktap can read: {e}", path.display()))
}

fn has_dwarf(file: &object::File<'_>) -> bool {
    file.section_by_name(".debug_info").is_some_and(|s| s.kind() != object::SectionKind::UninitializedData && s.size() > 0)
}

impl Debug {
    /// The binary at `path` and its debug info, or where it was looked for.
    pub fn open(path: &Path) -> Result<Debug, String> {
        Debug::open_in(path, Path::new(DEBUG_ROOT))
    }

    /// As [`Debug::open`], with separate debug files installed under `root`.
    fn open_in(path: &Path, root: &Path) -> Result<Debug, String> {
        let binary = Mapped::open(path)?;
        let (here, build_id, link) = {
            let file = parse(path, binary.data())?;
            let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
            let link = file.gnu_debuglink().ok().flatten().map(|(name, _crc)| String::from_utf8_lossy(name).into_owned());
            (has_dwarf(&file), build_id, link)
        };
        if here {
            return Ok(Debug { binary, debug: None, debug_path: path.to_path_buf() });
        }
        let mut looked = vec![format!("{} (no .debug_info)", path.display())];
        let mut candidates = Vec::new();
        if let Some(id) = build_id {
            if id.len() > 1 {
                let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
                candidates.push(root.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..])));
            }
        }
        if let Some(name) = link {
            let dir = path.parent().unwrap_or(Path::new("/"));
            candidates.push(dir.join(&name));
            candidates.push(dir.join(".debug").join(&name));
            candidates.push(root.join(dir.strip_prefix("/").unwrap_or(dir)).join(&name));
        } else {
            looked.push("no .gnu_debuglink".into());
        }
        for c in candidates {
            if c == path {
                continue;
            }
            let Ok(m) = Mapped::open(&c) else {
                looked.push(format!("{} (absent)", c.display()));
                continue;
            };
            if parse(&c, m.data()).is_ok_and(|f| has_dwarf(&f)) {
                return Ok(Debug { binary, debug: Some(m), debug_path: c });
            }
            looked.push(format!("{} (no .debug_info)", c.display()));
        }
        Err(format!("no debug info for {}: looked in {}", path.display(), looked.join(", ")))
    }

    fn debug_data(&self) -> &[u8] {
        self.debug.as_ref().unwrap_or(&self.binary).data()
    }
}

/// The DWARF of one debug file, with the binary it describes.
struct Reader<'a> {
    dwarf: Dwarf<'a>,
    binary: object::File<'a>,
    /// The binary's size in bytes (its file offsets lie below it).
    binary_len: usize,
    debug: object::File<'a>,
    path: String,
}

fn load<'a>(d: &'a Debug, path: &Path) -> Result<Reader<'a>, String> {
    reader(path, d.binary.data(), &d.debug_path, d.debug_data())
}

/// The reader of a binary (`path`, its bytes `binary`) whose DWARF is in
/// `debug` (the file at `debug_path`, or the binary itself).
fn reader<'a>(path: &Path, binary: &'a [u8], debug_path: &Path, debug: &'a [u8]) -> Result<Reader<'a>, String> {
    let binary_len = binary.len();
    let binary = parse(path, binary)?;
    let debug = parse(debug_path, debug)?;
    if let Some(s) = debug.section_by_name(".debug_info") {
        if s.compressed_file_range().is_ok_and(|r| r.format != object::CompressionFormat::None) {
            return Err(format!("{} has compressed debug sections, which ktap cannot read yet", debug_path.display()));
        }
    }
    let dwarf = gimli::Dwarf::load(|id| -> Result<R<'a>, String> {
        Ok(EndianSlice::new(debug.section_by_name(id.name()).and_then(|s| s.data().ok()).unwrap_or(&[]), LittleEndian))
    })?;
    Ok(Reader { dwarf, binary, binary_len, debug, path: debug_path.display().to_string() })
}

/// The reader of a binary already read whose DWARF is in it (no debug
/// file is looked for).
fn reader_in<'a>(path: &str, data: &'a [u8]) -> Result<Reader<'a>, String> {
    let p = Path::new(path);
    if !has_dwarf(&parse(p, data)?) {
        return Err(format!("no debug info in {path} (no .debug_info)"));
    }
    reader(p, data, p, data)
}

fn dw_err(e: gimli::Error) -> String {
    format!("malformed DWARF: {e}")
}

/// The `struct pt_regs` slot of DWARF register `n` (x86-64 psABI numbering).
fn reg(n: gimli::Register) -> Option<RegOffset> {
    Some(match n.0 {
        0 => RegOffset::AX,
        1 => RegOffset::DX,
        2 => RegOffset::CX,
        3 => RegOffset::BX,
        4 => RegOffset::SI,
        5 => RegOffset::DI,
        6 => RegOffset::BP,
        7 => RegOffset::SP,
        8 => RegOffset::R8,
        9 => RegOffset::R9,
        10 => RegOffset::R10,
        11 => RegOffset::R11,
        12 => RegOffset::R12,
        13 => RegOffset::R13,
        14 => RegOffset::R14,
        15 => RegOffset::R15,
        _ => return None,
    })
}

/// A register's name, in messages.
pub fn reg_name(r: RegOffset) -> &'static str {
    const NAMES: [(RegOffset, &str); 16] = [
        (RegOffset::AX, "%ax"),
        (RegOffset::DX, "%dx"),
        (RegOffset::CX, "%cx"),
        (RegOffset::BX, "%bx"),
        (RegOffset::SI, "%si"),
        (RegOffset::DI, "%di"),
        (RegOffset::BP, "%bp"),
        (RegOffset::SP, "%sp"),
        (RegOffset::R8, "%r8"),
        (RegOffset::R9, "%r9"),
        (RegOffset::R10, "%r10"),
        (RegOffset::R11, "%r11"),
        (RegOffset::R12, "%r12"),
        (RegOffset::R13, "%r13"),
        (RegOffset::R14, "%r14"),
        (RegOffset::R15, "%r15"),
    ];
    NAMES.iter().find(|(o, _)| *o == r).map_or("%?", |(_, n)| n)
}

/// A variable's location as the fetch language spells it.
pub fn loc_text(loc: &VarLoc) -> String {
    match loc {
        VarLoc::Reg(r) => reg_name(*r).to_string(),
        VarLoc::Mem { base, offset } => format!("{offset:+}({})", reg_name(*base)),
        VarLoc::OptimizedOut => "optimised out".into(),
        VarLoc::Untranslatable(what) => format!("not readable: {what}"),
    }
}

/// The file offset of `addr` in the binary (inside the file, or none).
fn file_offset(r: &Reader<'_>, addr: u64) -> Option<FileOffset> {
    super::elfsyms::file_offset(&r.binary, r.binary_len, addr)
}

/// The address of function `name` (the binary's symbols, then the
/// debug file's).
fn symbol_address(r: &Reader<'_>, name: &str) -> Option<u64> {
    for file in [&r.binary, &r.debug] {
        for s in file.symbols().chain(file.dynamic_symbols()) {
            if s.kind() == object::SymbolKind::Text && s.address() != 0 && s.name() == Ok(name) {
                return Some(s.address());
            }
        }
    }
    None
}

/// The unit whose code holds `addr`: by `.debug_aranges`, else by each
/// unit's root DIE ranges.
fn unit_at<'a>(dwarf: &Dwarf<'a>, addr: u64) -> Result<Option<Unit<'a>>, String> {
    let mut headers = dwarf.debug_aranges.headers();
    while let Some(h) = headers.next().map_err(dw_err)? {
        let mut entries = h.entries();
        while let Some(e) = entries.next().map_err(dw_err)? {
            let r = e.range();
            if r.begin <= addr && addr < r.end {
                let header = dwarf.debug_info.header_from_offset(h.debug_info_offset()).map_err(dw_err)?;
                return dwarf.unit(header).map(Some).map_err(dw_err);
            }
        }
    }
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(dw_err)? {
        let unit = dwarf.unit(header).map_err(dw_err)?;
        let mut cursor = unit.entries();
        let Some((_, root)) = cursor.next_dfs().map_err(dw_err)? else { continue };
        if range_holding(dwarf, &unit, root, addr).map_err(dw_err)?.is_some() {
            return Ok(Some(unit));
        }
    }
    Ok(None)
}

fn name_of(dwarf: &Dwarf<'_>, unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>) -> Option<String> {
    let mut v = e.attr_value(gimli::DW_AT_name).ok().flatten();
    if v.is_none() {
        for origin in [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification] {
            if let Ok(Some(AttributeValue::UnitRef(off))) = e.attr_value(origin) {
                if let Ok(o) = unit.entry(off) {
                    v = o.attr_value(gimli::DW_AT_name).ok().flatten();
                }
            }
            if v.is_some() {
                break;
            }
        }
    }
    Some(dwarf.attr_string(unit, v?).ok()?.to_string_lossy().into_owned())
}

/// `DW_AT_type` of an entry (or of its abstract origin).
fn type_of(unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>) -> Option<UnitOffset> {
    if let Ok(Some(AttributeValue::UnitRef(off))) = e.attr_value(gimli::DW_AT_type) {
        return Some(off);
    }
    if let Ok(Some(AttributeValue::UnitRef(off))) = e.attr_value(gimli::DW_AT_abstract_origin) {
        if let Ok(o) = unit.entry(off) {
            if let Ok(Some(AttributeValue::UnitRef(t))) = o.attr_value(gimli::DW_AT_type) {
                return Some(t);
            }
        }
    }
    None
}

/// Calls `f` on each child of the entry at `off` whose tag is `tag`.
fn children_tagged<'a>(unit: &Unit<'a>, off: UnitOffset, tag: gimli::DwTag, mut f: impl FnMut(&gimli::DebuggingInformationEntry<'_, '_, R<'a>>)) {
    let Ok(mut tree) = unit.entries_tree(Some(off)) else { return };
    let Ok(root) = tree.root() else { return };
    let mut children = root.children();
    while let Ok(Some(c)) = children.next() {
        if c.entry().tag() == tag {
            f(c.entry());
        }
    }
}

/// Converts the DWARF types variables name into a [`TypeTable`].
struct Types<'u, 'a> {
    dwarf: &'u Dwarf<'a>,
    unit: &'u Unit<'a>,
    table: TypeTable,
    seen: HashMap<UnitOffset, TypeId>,
}

impl Types<'_, '_> {
    fn ty(&mut self, off: Option<UnitOffset>, depth: u32) -> TypeId {
        let Some(off) = off else { return TypeId::VOID };
        if let Some(id) = self.seen.get(&off) {
            return *id;
        }
        let id = self.table.add(TypeDesc::Other { what: "type", name: String::new() }, "?".into());
        self.seen.insert(off, id);
        if depth > MAX_TYPE_DEPTH {
            return id;
        }
        let unit = self.unit;
        let Ok(e) = unit.entry(off) else { return id };
        let name = name_of(self.dwarf, self.unit, &e).unwrap_or_default();
        let inner = type_of(self.unit, &e);
        let udata = |at| e.attr_value(at).ok().flatten().and_then(|v| v.udata_value());
        let size = udata(gimli::DW_AT_byte_size).unwrap_or(0) as u32;
        let (desc, spelled) = match e.tag() {
            gimli::DW_TAG_base_type => {
                let enc = match e.attr_value(gimli::DW_AT_encoding) {
                    Ok(Some(AttributeValue::Encoding(enc))) => enc,
                    _ => gimli::DW_ATE_signed,
                };
                let desc = match enc {
                    gimli::DW_ATE_signed | gimli::DW_ATE_signed_char => TypeDesc::Int { size, signed: true },
                    gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char | gimli::DW_ATE_boolean | gimli::DW_ATE_UTF => {
                        TypeDesc::Int { size, signed: false }
                    }
                    gimli::DW_ATE_float => TypeDesc::Other { what: "floating-point number", name: name.clone() },
                    _ => TypeDesc::Other { what: "type", name: name.clone() },
                };
                (desc, name)
            }
            gimli::DW_TAG_pointer_type | gimli::DW_TAG_reference_type | gimli::DW_TAG_rvalue_reference_type => {
                let to = self.ty(inner, depth + 1);
                (TypeDesc::Ptr { to, tag: None }, format!("{} *", self.table.type_name(to)))
            }
            gimli::DW_TAG_typedef | gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type | gimli::DW_TAG_restrict_type | gimli::DW_TAG_atomic_type => {
                // Another name of `to`, described as it is when asked (its
                // members are not copied here).
                let to = self.ty(inner, depth + 1);
                let spelled = match e.tag() {
                    gimli::DW_TAG_typedef => name,
                    gimli::DW_TAG_const_type => format!("const {}", self.table.type_name(to)),
                    gimli::DW_TAG_volatile_type => format!("volatile {}", self.table.type_name(to)),
                    _ => self.table.type_name(to),
                };
                self.table.set_alias(id, to, spelled);
                return id;
            }
            tag @ (gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type | gimli::DW_TAG_class_type) => {
                let union = tag == gimli::DW_TAG_union_type;
                let kw = if union { "union" } else { "struct" };
                let spelled = if name.is_empty() { format!("{kw} (anonymous)") } else { format!("{kw} {name}") };
                if matches!(e.attr_value(gimli::DW_AT_declaration), Ok(Some(AttributeValue::Flag(true)))) {
                    (TypeDesc::Other { what: "declared but not defined type", name: spelled.clone() }, spelled)
                } else {
                    let members = self.members(off, depth);
                    (TypeDesc::Composite { union, name, size, members }, spelled)
                }
            }
            gimli::DW_TAG_enumeration_type => {
                let mut values = Vec::new();
                let mut signed = false;
                children_tagged(unit, off, gimli::DW_TAG_enumerator, |c| {
                    let n = name_of(self.dwarf, self.unit, c).unwrap_or_default();
                    let v = match c.attr_value(gimli::DW_AT_const_value) {
                        Ok(Some(AttributeValue::Sdata(v))) => {
                            signed |= v < 0;
                            v
                        }
                        Ok(Some(v)) => v.udata_value().unwrap_or(0) as i64,
                        _ => 0,
                    };
                    values.push((n, v));
                });
                let spelled = format!("enum {name}");
                (TypeDesc::Enum { name, size: size.max(1), signed, values }, spelled)
            }
            gimli::DW_TAG_array_type => {
                let elem = self.ty(inner, depth + 1);
                let mut dims = Vec::new();
                children_tagged(unit, off, gimli::DW_TAG_subrange_type, |c| {
                    let count = c.attr_value(gimli::DW_AT_count).ok().flatten().and_then(|v| v.udata_value());
                    let upper = c.attr_value(gimli::DW_AT_upper_bound).ok().flatten().and_then(|v| v.udata_value());
                    dims.push(count.or(upper.map(|u| u + 1)).unwrap_or(0) as u32);
                });
                if dims.is_empty() {
                    dims.push(0);
                }
                let mut elem = elem;
                for &len in dims[1..].iter().rev() {
                    let spelled = format!("{}[{len}]", self.table.type_name(elem));
                    elem = self.table.add(TypeDesc::Array { elem, len }, spelled);
                }
                let spelled = format!("{}[{}]", self.table.type_name(elem), dims[0]);
                (TypeDesc::Array { elem, len: dims[0] }, spelled)
            }
            gimli::DW_TAG_subroutine_type => (TypeDesc::Other { what: "function", name: String::new() }, "function".into()),
            gimli::DW_TAG_unspecified_type => (TypeDesc::Void, name),
            _ => (TypeDesc::Other { what: "type", name: name.clone() }, name),
        };
        self.table.set(id, desc, spelled);
        id
    }

    fn members(&mut self, off: UnitOffset, depth: u32) -> Vec<MemberDesc> {
        let mut out = Vec::new();
        let mut found = Vec::new();
        children_tagged(self.unit, off, gimli::DW_TAG_member, |c| {
            let name = name_of(self.dwarf, self.unit, c).unwrap_or_default();
            let ty = type_of(self.unit, c);
            let bits = c.attr_value(gimli::DW_AT_bit_size).ok().flatten().and_then(|v| v.udata_value()).unwrap_or(0) as u32;
            let bit_offset = match c.attr_value(gimli::DW_AT_data_bit_offset).ok().flatten().and_then(|v| v.udata_value()) {
                Some(b) => b as u32,
                None => match c.attr_value(gimli::DW_AT_data_member_location) {
                    Ok(Some(AttributeValue::Exprloc(expr))) => {
                        let mut ops = expr.operations(self.unit.encoding());
                        match ops.next() {
                            Ok(Some(Operation::PlusConstant { value })) => value as u32 * 8,
                            _ => 0,
                        }
                    }
                    Ok(Some(v)) => v.udata_value().unwrap_or(0) as u32 * 8,
                    _ => 0,
                },
            };
            found.push((name, ty, bit_offset, bits));
        });
        for (name, ty, bit_offset, bits) in found {
            let ty = self.ty(ty, depth + 1);
            out.push(MemberDesc { name, ty, bit_offset, bits });
        }
        out
    }
}

/// The frame base of a function at an address: a register plus an offset.
#[derive(Clone, Debug)]
enum FrameBase {
    At(RegOffset, i64),
    Unknown(String),
}

/// The CFA at `addr` from the binary's `.eh_frame` (else the debug
/// file's `.debug_frame`).
fn cfa_at(r: &Reader<'_>, addr: u64) -> Result<(RegOffset, i64), String> {
    let mut ctx = Box::new(gimli::UnwindContext::new());
    let found = if let Some(sec) = r.binary.section_by_name(".eh_frame").filter(|s| s.size() > 0) {
        let data = sec.data().map_err(|e| e.to_string())?;
        let eh = gimli::EhFrame::new(data, LittleEndian);
        let mut bases = gimli::BaseAddresses::default().set_eh_frame(sec.address());
        if let Some(text) = r.binary.section_by_name(".text") {
            bases = bases.set_text(text.address());
        }
        eh.unwind_info_for_address(&bases, &mut *ctx, addr, gimli::EhFrame::cie_from_offset).map(|row| row.cfa().clone())
    } else if let Some(sec) = r.debug.section_by_name(".debug_frame") {
        let data = sec.data().map_err(|e| e.to_string())?;
        let df = gimli::DebugFrame::new(data, LittleEndian);
        let bases = gimli::BaseAddresses::default();
        df.unwind_info_for_address(&bases, &mut *ctx, addr, gimli::DebugFrame::cie_from_offset).map(|row| row.cfa().clone())
    } else {
        return Err("no call frame information (.eh_frame)".into());
    };
    match found {
        Ok(gimli::CfaRule::RegisterAndOffset { register, offset }) => match reg(register) {
            Some(r) => Ok((r, offset)),
            None => Err(format!("a CFA based on DWARF register {}", register.0)),
        },
        Ok(gimli::CfaRule::Expression(_)) => Err("a CFA computed by an expression".into()),
        Err(e) => Err(format!("no call frame information at {addr:#x}: {e}")),
    }
}

fn ops_of<'a>(unit: &Unit<'a>, expr: gimli::Expression<R<'a>>) -> Result<Vec<Operation<R<'a>>>, String> {
    let mut ops = Vec::new();
    let mut it = expr.operations(unit.encoding());
    while let Some(op) = it.next().map_err(dw_err)? {
        ops.push(op);
        if ops.len() > 32 {
            break;
        }
    }
    Ok(ops)
}

fn frame_base(r: &Reader<'_>, unit: &Unit<'_>, func: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, addr: u64) -> FrameBase {
    let Ok(Some(AttributeValue::Exprloc(expr))) = func.attr_value(gimli::DW_AT_frame_base) else {
        return FrameBase::Unknown("a frame base that is no single expression".into());
    };
    let Ok(ops) = ops_of(unit, expr) else { return FrameBase::Unknown("a malformed frame base".into()) };
    match ops.as_slice() {
        [Operation::CallFrameCFA] => match cfa_at(r, addr) {
            Ok((reg, off)) => FrameBase::At(reg, off),
            Err(e) => FrameBase::Unknown(e),
        },
        [Operation::Register { register }] => match reg(*register) {
            Some(rg) => FrameBase::At(rg, 0),
            None => FrameBase::Unknown(format!("a frame base in DWARF register {}", register.0)),
        },
        [Operation::RegisterOffset { register, offset, .. }] => match reg(*register) {
            Some(rg) => FrameBase::At(rg, *offset),
            None => FrameBase::Unknown(format!("a frame base in DWARF register {}", register.0)),
        },
        _ => FrameBase::Unknown("a frame base computed by an expression".into()),
    }
}

/// A location expression as a place ktap can read.
fn translate(ops: &[Operation<R<'_>>], frame: &FrameBase) -> VarLoc {
    let untranslatable = |s: &str| VarLoc::Untranslatable(s.to_string());
    match ops {
        [] => VarLoc::OptimizedOut,
        [Operation::Register { register }] => reg(*register).map_or_else(|| untranslatable("a register BPF cannot see"), VarLoc::Reg),
        [Operation::RegisterOffset { register, offset, .. }] => match reg(*register) {
            Some(base) => VarLoc::Mem { base, offset: *offset },
            None => untranslatable("memory at a register BPF cannot see"),
        },
        [Operation::FrameOffset { offset }] => match frame {
            FrameBase::At(base, off) => VarLoc::Mem { base: *base, offset: off + offset },
            FrameBase::Unknown(why) => VarLoc::Untranslatable(format!("DW_OP_fbreg with {why}")),
        },
        _ if ops.iter().any(|o| matches!(o, Operation::EntryValue { .. })) => untranslatable("DW_OP_entry_value: its value on entry, which the function no longer holds"),
        _ if ops.iter().any(|o| matches!(o, Operation::Piece { .. })) => untranslatable("DW_OP_piece: a value split over several places"),
        _ if ops.iter().any(|o| matches!(o, Operation::ImplicitValue { .. } | Operation::StackValue)) => untranslatable("DW_OP_stack_value: a value computed, not stored"),
        _ if ops.iter().any(|o| matches!(o, Operation::Address { .. })) => untranslatable("DW_OP_addr: a static address"),
        _ => untranslatable("a DWARF expression of several operations"),
    }
}

/// The location of a variable DIE at `addr`.
fn var_loc(r: &Reader<'_>, unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, addr: u64, frame: &FrameBase) -> VarLoc {
    let attr = match e.attr_value(gimli::DW_AT_location) {
        Ok(Some(a)) => a,
        Ok(None) => return VarLoc::OptimizedOut,
        Err(e) => return VarLoc::Untranslatable(dw_err(e)),
    };
    let expr = match attr {
        AttributeValue::Exprloc(expr) => expr,
        other => match r.dwarf.attr_locations(unit, other) {
            Ok(Some(mut locs)) => {
                let mut hit = None;
                while let Ok(Some(l)) = locs.next() {
                    if l.range.begin <= addr && addr < l.range.end {
                        hit = Some(l.data);
                        break;
                    }
                }
                match hit {
                    Some(expr) => expr,
                    None => return VarLoc::OptimizedOut,
                }
            }
            Ok(None) => return VarLoc::Untranslatable("a location of an unknown form".into()),
            Err(e) => return VarLoc::Untranslatable(dw_err(e)),
        },
    };
    match ops_of(unit, expr) {
        Ok(ops) => translate(&ops, frame),
        Err(e) => VarLoc::Untranslatable(e),
    }
}

fn ranges_hold(r: &Reader<'_>, unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, addr: u64) -> Option<(u64, u64)> {
    range_holding(&r.dwarf, unit, e, addr).ok().flatten()
}

/// The range of a DIE's code that holds `addr`.
fn range_holding(dwarf: &Dwarf<'_>, unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, addr: u64) -> Result<Option<(u64, u64)>, gimli::Error> {
    let mut found = None;
    each_range(dwarf, unit, e, |lo, hi| {
        let hit = lo <= addr && addr < hi;
        if hit {
            found = Some((lo, hi));
        }
        hit
    })?;
    Ok(found)
}

/// Visits the ranges of a DIE's code (`DW_AT_ranges`, else
/// `DW_AT_low_pc` and `DW_AT_high_pc`) until `visit` returns true. As
/// gimli's `Dwarf::die_ranges`, except that a range ending past 2^64 is
/// none: gimli 0.32 adds `DW_AT_high_pc`'s size to `DW_AT_low_pc`
/// unchecked (a panic in debug builds; gimli-rs/gimli#895).
fn each_range(dwarf: &Dwarf<'_>, unit: &Unit<'_>, e: &gimli::DebuggingInformationEntry<'_, '_, R<'_>>, mut visit: impl FnMut(u64, u64) -> bool) -> Result<(), gimli::Error> {
    let (mut low, mut high, mut size) = (None, None, None);
    let mut attrs = e.attrs();
    while let Some(a) = attrs.next()? {
        match a.name() {
            gimli::DW_AT_low_pc => low = dwarf.attr_address(unit, a.value())?,
            gimli::DW_AT_high_pc => match a.value() {
                AttributeValue::Udata(n) => size = Some(n),
                v => high = dwarf.attr_address(unit, v)?,
            },
            gimli::DW_AT_ranges => {
                if let Some(mut list) = dwarf.attr_ranges(unit, a.value())? {
                    while let Some(range) = list.next()? {
                        if visit(range.begin, range.end) {
                            break;
                        }
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
    }
    let Some(begin) = low else { return Ok(()) };
    let end = match size {
        Some(n) => begin.checked_add(n),
        None => high,
    };
    if let Some(end) = end {
        visit(begin, end);
    }
    Ok(())
}

/// The code ranges of a unit's subprograms, in the order of their DIEs
/// (for many addresses: one walk of the unit, not one per address).
fn subprogram_ranges(r: &Reader<'_>, unit: &Unit<'_>) -> Result<Vec<(u64, u64, UnitOffset)>, String> {
    let mut out = Vec::new();
    let mut cursor = unit.entries();
    while let Some((_, e)) = cursor.next_dfs().map_err(dw_err)? {
        if e.tag() == gimli::DW_TAG_subprogram {
            let off = e.offset();
            // (A malformed range list ends the function's ranges.)
            let _ = each_range(&r.dwarf, unit, e, |lo, hi| {
                out.push((lo, hi, off));
                false
            });
        }
    }
    Ok(out)
}

/// The subprogram DIE whose code holds `addr`, with its range.
fn subprogram_at(r: &Reader<'_>, unit: &Unit<'_>, addr: u64) -> Result<Option<(UnitOffset, u64, u64)>, String> {
    let mut cursor = unit.entries();
    while let Some((_, e)) = cursor.next_dfs().map_err(dw_err)? {
        if e.tag() != gimli::DW_TAG_subprogram {
            continue;
        }
        if let Some((lo, hi)) = ranges_hold(r, unit, e, addr) {
            return Ok(Some((e.offset(), lo, hi)));
        }
    }
    Ok(None)
}

/// DIEs of the parameters (and, for lines, locals in scope at `addr`).
fn scope_vars(r: &Reader<'_>, unit: &Unit<'_>, func: UnitOffset, addr: u64, locals: bool) -> Result<Vec<(UnitOffset, bool)>, String> {
    fn walk(
        r: &Reader<'_>,
        unit: &Unit<'_>,
        node: gimli::EntriesTreeNode<'_, '_, '_, R<'_>>,
        addr: u64,
        locals: bool,
        out: &mut Vec<(UnitOffset, bool)>,
        depth: u32,
    ) -> Result<(), String> {
        let mut children = node.children();
        while let Some(child) = children.next().map_err(dw_err)? {
            let e = child.entry();
            let (tag, off) = (e.tag(), e.offset());
            let inner = tag == gimli::DW_TAG_lexical_block && locals && depth < 16 && ranges_hold(r, unit, e, addr).is_some();
            match tag {
                gimli::DW_TAG_formal_parameter if depth == 0 => out.push((off, true)),
                gimli::DW_TAG_variable if locals => out.push((off, false)),
                _ if inner => walk(r, unit, child, addr, locals, out, depth + 1)?,
                _ => {}
            }
        }
        Ok(())
    }
    let mut tree = unit.entries_tree(Some(func)).map_err(dw_err)?;
    let root = tree.root().map_err(dw_err)?;
    let mut out = Vec::new();
    walk(r, unit, root, addr, locals, &mut out, 0)?;
    Ok(out)
}

/// Rows of the unit's line table: (address, file path, line, is_stmt).
fn line_rows(r: &Reader<'_>, unit: &Unit<'_>) -> Result<Vec<(u64, String, u32, bool)>, String> {
    let Some(program) = unit.line_program.clone() else { return Ok(Vec::new()) };
    let mut rows = program.rows();
    let mut out = Vec::new();
    let mut names: HashMap<u64, String> = HashMap::new();
    while let Some((header, row)) = rows.next_row().map_err(dw_err)? {
        if row.end_sequence() {
            continue;
        }
        let Some(line) = row.line() else { continue };
        let file = row.file_index();
        let name = names
            .entry(file)
            .or_insert_with(|| {
                let Some(f) = row.file(header) else { return String::new() };
                let n = r.dwarf.attr_string(unit, f.path_name()).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let dir = f.directory(header).and_then(|d| r.dwarf.attr_string(unit, d).ok()).map(|s| s.to_string_lossy().into_owned());
                match dir {
                    Some(d) if !n.starts_with('/') && !d.is_empty() => format!("{d}/{n}"),
                    _ => n,
                }
            })
            .clone();
        out.push((row.address(), name, line.get() as u32, row.is_stmt()));
    }
    Ok(out)
}

/// Whether a line table's file path names `file` (`prog.c`,
/// `src/prog.c` or the whole path).
fn names_file(path: &str, file: &str) -> bool {
    path == file || path.ends_with(&format!("/{file}"))
}

/// The first statement after a function's prologue: the second row of
/// its line table (as gdb and perf probe find it), else its entry.
fn after_prologue(rows: &[(u64, String, u32, bool)], lo: u64, hi: u64) -> u64 {
    let mut mine: Vec<&(u64, String, u32, bool)> = rows.iter().filter(|r| r.0 >= lo && r.0 < hi).collect();
    mine.sort_by_key(|r| r.0);
    let first_line = mine.iter().find(|r| r.0 == lo).map(|r| r.2);
    mine.iter().find(|r| r.0 > lo && Some(r.2) != first_line).or_else(|| mine.iter().find(|r| r.0 > lo)).map_or(lo, |r| r.0)
}

/// Builds the scope of function `func_off` at `addr`.
fn scope(r: &Reader<'_>, unit: &Unit<'_>, func_off: UnitOffset, addr: u64, locals: bool, bin_offset: FileOffset) -> Result<DebugScope, String> {
    let func = unit.entry(func_off).map_err(dw_err)?;
    let function = name_of(&r.dwarf, unit, &func).unwrap_or_else(|| format!("{addr:#x}"));
    let frame = frame_base(r, unit, &func, addr);
    let mut types = Types { dwarf: &r.dwarf, unit, table: TypeTable::new(), seen: HashMap::new() };
    let ret = types.ty(type_of(unit, &func), 0);
    let mut vars = Vec::new();
    for (off, param) in scope_vars(r, unit, func_off, addr, locals)? {
        let e = unit.entry(off).map_err(dw_err)?;
        let Some(name) = name_of(&r.dwarf, unit, &e) else { continue };
        let ty = types.ty(type_of(unit, &e), 0);
        let loc = var_loc(r, unit, &e, addr, &frame);
        // An inner scope's variable hides an outer one of the same name.
        vars.retain(|v: &DebugVar| v.name != name);
        vars.push(DebugVar { name, ty, loc, param });
    }
    Ok(DebugScope { debug_file: r.path.clone(), function, offset: bin_offset, address: addr, vars, ret, types: Arc::new(types.table) })
}

/// Whether a scope's parameters are only readable once the prologue ran
/// (they live in the frame, as at -O0).
fn in_frame(r: &Reader<'_>, unit: &Unit<'_>, func_off: UnitOffset) -> bool {
    let Ok(vars) = scope_vars(r, unit, func_off, 0, false) else { return false };
    vars.iter().any(|(off, _)| {
        let Ok(e) = unit.entry(*off) else { return false };
        let Ok(Some(AttributeValue::Exprloc(expr))) = e.attr_value(gimli::DW_AT_location) else { return false };
        ops_of(unit, expr).is_ok_and(|ops| ops.iter().any(|o| matches!(o, Operation::FrameOffset { .. })))
    })
}

/// What the debug info says of function `func` of the binary at `path`.
pub fn function(path: &str, func: &str) -> Result<DebugScope, String> {
    let p = Path::new(path);
    let d = Debug::open(p)?;
    function_of(&load(&d, p)?, path, func)
}

/// [`function`] of a binary already read, with its DWARF in it: `data`
/// are its bytes, `path` its name (in messages). Any bytes give an answer
/// or an error, never a panic.
pub fn function_in(path: &str, data: &[u8], func: &str) -> Result<DebugScope, String> {
    function_of(&reader_in(path, data)?, path, func)
}

fn function_of(r: &Reader<'_>, path: &str, func: &str) -> Result<DebugScope, String> {
    let addr = symbol_address(r, func).ok_or_else(|| format!("no function `{func}` in the symbols of {path}"))?;
    let unit = unit_at(&r.dwarf, addr)?.ok_or_else(|| format!("the debug info in {} does not cover `{func}` (at {addr:#x})", r.path))?;
    let (func_off, lo, hi) = subprogram_at(r, &unit, addr)?.ok_or_else(|| format!("the debug info in {} has no function at {addr:#x} (`{func}`)", r.path))?;
    let at = if in_frame(r, &unit, func_off) { after_prologue(&line_rows(r, &unit)?, lo, hi) } else { addr };
    let offset = file_offset(r, at).ok_or_else(|| format!("{at:#x} is not mapped from {path}"))?;
    let mut s = scope(r, &unit, func_off, at, false, offset)?;
    // The name the probe uses, even for an alias.
    s.function = func.to_string();
    Ok(s)
}

/// The units whose name is `file` (or whose line table names it).
fn units_of<'a>(r: &Reader<'a>, file: &str) -> Result<Vec<Unit<'a>>, String> {
    let mut out = Vec::new();
    let mut units = r.dwarf.units();
    while let Some(header) = units.next().map_err(dw_err)? {
        let unit = r.dwarf.unit(header).map_err(dw_err)?;
        let name = unit.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if names_file(&name, file) {
            out.push(unit);
        }
    }
    Ok(out)
}

/// A source line with code: its first statement's address and function.
pub struct CodeLine {
    pub line: u32,
    pub address: u64,
    pub function: String,
}

/// The lines of `file` with code, and the file the DWARF was read from.
pub fn lines(path: &str, file: &str) -> Result<(String, Vec<CodeLine>), String> {
    let p = Path::new(path);
    let d = Debug::open(p)?;
    lines_of(&load(&d, p)?, file)
}

/// [`lines`] of a binary already read, with its DWARF in it. Any bytes
/// give an answer or an error, never a panic.
pub fn lines_in(path: &str, data: &[u8], file: &str) -> Result<(String, Vec<CodeLine>), String> {
    lines_of(&reader_in(path, data)?, file)
}

fn lines_of(r: &Reader<'_>, file: &str) -> Result<(String, Vec<CodeLine>), String> {
    let mut found: HashMap<u32, u64> = HashMap::new();
    let units = units_of(r, file)?;
    if units.is_empty() {
        return Err(format!("the debug info in {} has no compilation unit `{file}`", r.path));
    }
    let mut out = Vec::new();
    for unit in &units {
        for (addr, name, line, stmt) in line_rows(r, unit)? {
            if stmt && names_file(&name, file) {
                let a = found.entry(line).or_insert(addr);
                *a = (*a).min(addr);
            }
        }
        let mut ls: Vec<(u32, u64)> = found.drain().collect();
        ls.sort();
        let funcs = subprogram_ranges(r, unit)?;
        for (line, addr) in ls {
            let holder = funcs.iter().find(|(lo, hi, _)| *lo <= addr && addr < *hi);
            let func = holder.and_then(|(_, _, off)| unit.entry(*off).ok().and_then(|e| name_of(&r.dwarf, unit, &e))).unwrap_or_default();
            out.push(CodeLine { line, address: addr, function: func });
        }
    }
    Ok((r.path.clone(), out))
}

/// What the debug info says at source line `line` of `file`.
pub fn line(path: &str, file: &str, line: u32) -> Result<DebugScope, String> {
    let p = Path::new(path);
    let d = Debug::open(p)?;
    line_of(&load(&d, p)?, path, file, line)
}

/// [`line`] of a binary already read, with its DWARF in it. Any bytes
/// give an answer or an error, never a panic.
pub fn line_in(path: &str, data: &[u8], file: &str, line: u32) -> Result<DebugScope, String> {
    line_of(&reader_in(path, data)?, path, file, line)
}

fn line_of(r: &Reader<'_>, path: &str, file: &str, line: u32) -> Result<DebugScope, String> {
    let units = units_of(r, file)?;
    if units.is_empty() {
        return Err(format!("the debug info in {} has no compilation unit `{file}`", r.path));
    }
    let mut near: Vec<u32> = Vec::new();
    for unit in &units {
        let rows = line_rows(r, unit)?;
        let addr = rows.iter().filter(|(_, n, l, stmt)| *stmt && *l == line && names_file(n, file)).map(|r| r.0).min();
        let Some(addr) = addr else {
            near.extend(rows.iter().filter(|(_, n, _, stmt)| *stmt && names_file(n, file)).map(|r| r.2));
            continue;
        };
        let (func_off, _, _) = subprogram_at(r, unit, addr)?.ok_or_else(|| format!("{file}:{line} is in no function the debug info describes"))?;
        let offset = file_offset(r, addr).ok_or_else(|| format!("{addr:#x} is not mapped from {path}"))?;
        return scope(r, unit, func_off, addr, true, offset);
    }
    near.sort_unstable();
    near.dedup();
    let before = near.iter().rev().find(|&&l| l < line);
    let after = near.iter().find(|&&l| l > line);
    let hint = match (before, after) {
        (Some(b), Some(a)) => format!("; the nearest lines with code are {b} and {a}"),
        (Some(x), None) | (None, Some(x)) => format!("; the nearest line with code is {x}"),
        _ => String::new(),
    };
    Err(format!("{file}:{line} has no code{hint}"))
}

/// A scope's variables as listing lines: `name: type  location`.
pub fn describe(s: &DebugScope) -> Vec<String> {
    s.vars
        .iter()
        .map(|v| format!("{}{}: {}  at {}", if v.param { "" } else { "local " }, v.name, s.types.type_name(v.ty), loc_text(&v.loc)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_match_by_their_end() {
        assert!(names_file("/src/x/prog.c", "prog.c"));
        assert!(names_file("prog.c", "prog.c"));
        assert!(names_file("/src/x/prog.c", "x/prog.c"));
        assert!(!names_file("/src/x/myprog.c", "prog.c"));
    }

    #[test]
    fn the_prologue_ends_at_the_second_line() {
        let rows = vec![(0x10, "a.c".to_string(), 5, true), (0x18, "a.c".into(), 6, true), (0x20, "a.c".into(), 7, true), (0x40, "a.c".into(), 9, true)];
        assert_eq!(after_prologue(&rows, 0x10, 0x30), 0x18);
        let one = vec![(0x10, "a.c".to_string(), 5, true), (0x14, "a.c".into(), 5, true)];
        assert_eq!(after_prologue(&one, 0x10, 0x30), 0x14);
        assert_eq!(after_prologue(&[], 0x10, 0x30), 0x10);
    }

    /// A debug file found by the binary's build-id under a debug root.
    #[test]
    fn separate_debug_files_are_found_by_build_id() {
        let dir = std::env::temp_dir().join(format!("ktap-dwarf-buildid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let src = dir.join("p.c");
        std::fs::write(&src, "int f(int x) { return x + 1; }\nint main(void) { return f(0) - 1; }\n").expect("write p.c");
        let bin = dir.join("p");
        let built = std::process::Command::new("gcc").args(["-g", "-Wl,--build-id=sha1", "-o"]).arg(&bin).arg(&src).status();
        if !built.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no gcc");
            return;
        }
        let id = {
            let m = Mapped::open(&bin).expect("map");
            let f = parse(&bin, m.data()).expect("parse");
            let id: String = f.build_id().expect("notes").expect("a build-id").iter().map(|b| format!("{b:02x}")).collect();
            id
        };
        let root = dir.join("debug");
        let at = root.join(".build-id").join(&id[..2]).join(format!("{}.debug", &id[2..]));
        std::fs::create_dir_all(at.parent().expect("dir")).expect("mkdir");
        let objcopy = |args: &[&std::ffi::OsStr]| std::process::Command::new("objcopy").args(args).status().is_ok_and(|s| s.success());
        assert!(objcopy(&["--only-keep-debug".as_ref(), bin.as_os_str(), at.as_os_str()]));
        assert!(objcopy(&["--strip-debug".as_ref(), bin.as_os_str()]));
        let d = Debug::open_in(&bin, &root).expect("found by build-id");
        assert_eq!(d.debug_path, at);
        let e = Debug::open_in(&bin, &dir.join("elsewhere")).err().expect("not found elsewhere");
        assert!(e.contains("elsewhere/.build-id/") && e.contains("(absent)") && e.contains("no .gnu_debuglink"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_debug_info_says_where_it_looked() {
        let Err(e) = Debug::open(Path::new("/bin/true")) else { return };
        assert!(e.contains("/bin/true"), "{e}");
        assert!(e.contains("looked in"), "{e}");
    }
}
