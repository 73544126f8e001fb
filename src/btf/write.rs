//! BTF writer: a builder of types and strings that serialises to the `.BTF`
//! section bytes, and the `.BTF.ext` function and line info. bpfgen uses
//! it for the object it emits. Pure; no IO, never panics, never casts
//! structs to bytes.
//!
//! Format: the kernel's Documentation/bpf/btf.rst and include/uapi/linux/btf.h
//! (`struct btf_header`, `struct btf_type`, one trailing record per kind).
//! Invariants set by [`BtfBuilder::new`]: the string table starts with "\0"
//! (offset 0 is the empty name) and type id 0 is `void`.

use super::{FuncLinkage, Kind, StrOff, TypeId, VarLinkage, BTF_HEADER_LEN, BTF_INT_SIGNED, BTF_MAGIC, BTF_VERSION};
use std::collections::HashMap;
use std::fmt;

/// A struct or union member as given to [`BtfBuilder::add_struct`]. The
/// name may be `&str` or `String`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfMember<S = String> {
    pub name: S,
    pub ty: TypeId,
    /// Offset of the member from the start of the struct, in bits.
    pub bit_offset: u32,
}

/// One variable of a DATASEC: the VAR type, its byte offset and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasecVar {
    pub var: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// Problems [`BtfBuilder::validate`] finds before the kernel would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A type refers to an id that does not exist (yet).
    DanglingType { from: TypeId, to: TypeId },
    /// More members, params or vars than the 16-bit vlen holds.
    TooManyEntries { ty: TypeId, count: usize },
    /// The string table outgrew BTF's 24-bit name offsets.
    StringsTooLarge { len: usize },
    /// More types than a BTF blob may hold.
    TooManyTypes { count: usize },
    /// An INT whose size is not 1, 2, 4, 8 or 16 bytes.
    BadIntSize { ty: TypeId, size: u32 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DanglingType { from, to } => {
                write!(f, "BTF type {} refers to missing type {}", from.0, to.0)
            }
            Error::TooManyEntries { ty, count } => {
                write!(f, "BTF type {} has {count} entries, more than 65535", ty.0)
            }
            Error::StringsTooLarge { len } => write!(f, "BTF string table too large ({len} bytes)"),
            Error::TooManyTypes { count } => write!(f, "too many BTF types ({count})"),
            Error::BadIntSize { ty, size } => {
                write!(
                    f,
                    "BTF int {} has size {size}; the kernel takes 1, 2, 4, 8 or 16",
                    ty.0
                )
            }
        }
    }
}

impl std::error::Error for Error {}

// ---- One small struct per kind -------------------------------------------

/// BTF_KIND_INT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Int {
    pub name: StrOff,
    pub size: u32,
    pub signed: bool,
}

/// BTF_KIND_PTR, BTF_KIND_TYPEDEF, BTF_KIND_CONST, BTF_KIND_VOLATILE: a
/// name (empty except for typedefs) and the type referred to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub name: StrOff,
    pub ty: TypeId,
}

/// BTF_KIND_ARRAY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Array {
    pub elem: TypeId,
    pub index: TypeId,
    pub nelems: u32,
}

/// One member as stored: name offset resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: StrOff,
    pub ty: TypeId,
    pub bit_offset: u32,
    /// A bitfield's width in bits; 0 for a whole member.
    pub bits: u32,
}

/// BTF_KIND_STRUCT and BTF_KIND_UNION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Composite {
    pub name: StrOff,
    pub size: u32,
    pub members: Vec<Member>,
}

/// One enumerator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerator {
    pub name: StrOff,
    pub value: i32,
}

/// BTF_KIND_ENUM (32-bit values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enum {
    pub name: StrOff,
    pub size: u32,
    pub values: Vec<Enumerator>,
}

/// BTF_KIND_FUNC_PROTO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncProto {
    pub ret: TypeId,
    pub params: Vec<(StrOff, TypeId)>,
}

/// BTF_KIND_FUNC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Func {
    pub name: StrOff,
    pub proto: TypeId,
    pub linkage: FuncLinkage,
}

/// BTF_KIND_VAR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: StrOff,
    pub ty: TypeId,
    pub linkage: VarLinkage,
}

/// BTF_KIND_DATASEC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasec {
    pub name: StrOff,
    pub size: u32,
    pub vars: Vec<DatasecVar>,
}

/// Any BTF type this builder can write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtfType {
    Int(Int),
    Ptr(Ref),
    Array(Array),
    Struct(Composite),
    Union(Composite),
    Enum(Enum),
    Typedef(Ref),
    Volatile(Ref),
    Const(Ref),
    Func(Func),
    FuncProto(FuncProto),
    Var(Var),
    Datasec(Datasec),
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `btf_type.info`: vlen in bits 0-15, kind in 24-28, kind_flag in 31.
fn info(kind: Kind, vlen: usize) -> u32 {
    // vlen overflow is reported by validate(); truncate here to stay total.
    ((kind.0 & 0x1f) << 24) | (vlen as u32 & 0xffff)
}

/// Writes the common 12-byte `struct btf_type`.
fn put_head(out: &mut Vec<u8>, name: StrOff, kind: Kind, vlen: usize, size_or_type: u32) {
    put_u32(out, name.0);
    put_u32(out, info(kind, vlen));
    put_u32(out, size_or_type);
}

impl BtfType {
    /// The BTF_KIND_* number.
    pub fn kind(&self) -> Kind {
        match self {
            BtfType::Int(_) => Kind::INT,
            BtfType::Ptr(_) => Kind::PTR,
            BtfType::Array(_) => Kind::ARRAY,
            BtfType::Struct(_) => Kind::STRUCT,
            BtfType::Union(_) => Kind::UNION,
            BtfType::Enum(_) => Kind::ENUM,
            BtfType::Typedef(_) => Kind::TYPEDEF,
            BtfType::Volatile(_) => Kind::VOLATILE,
            BtfType::Const(_) => Kind::CONST,
            BtfType::Func(_) => Kind::FUNC,
            BtfType::FuncProto(_) => Kind::FUNC_PROTO,
            BtfType::Var(_) => Kind::VAR,
            BtfType::Datasec(_) => Kind::DATASEC,
        }
    }

    /// Number of trailing entries (the vlen field's meaning per kind).
    fn entries(&self) -> usize {
        match self {
            BtfType::Struct(c) | BtfType::Union(c) => c.members.len(),
            BtfType::Enum(e) => e.values.len(),
            BtfType::FuncProto(p) => p.params.len(),
            BtfType::Datasec(d) => d.vars.len(),
            _ => 0,
        }
    }

    /// Type ids this type refers to.
    fn refs(&self) -> Vec<TypeId> {
        match self {
            BtfType::Int(_) | BtfType::Enum(_) => Vec::new(),
            BtfType::Ptr(r) | BtfType::Typedef(r) | BtfType::Volatile(r) | BtfType::Const(r) => {
                vec![r.ty]
            }
            BtfType::Array(a) => vec![a.elem, a.index],
            BtfType::Struct(c) | BtfType::Union(c) => c.members.iter().map(|m| m.ty).collect(),
            BtfType::FuncProto(p) => std::iter::once(p.ret)
                .chain(p.params.iter().map(|p| p.1))
                .collect(),
            BtfType::Func(f) => vec![f.proto],
            BtfType::Var(v) => vec![v.ty],
            BtfType::Datasec(d) => d.vars.iter().map(|v| v.var).collect(),
        }
    }

    /// Appends this type's bytes: `struct btf_type` plus its trailer.
    pub fn write(&self, out: &mut Vec<u8>) {
        let k = self.kind();
        match self {
            BtfType::Int(i) => {
                put_head(out, i.name, k, 0, i.size);
                let enc = if i.signed { BTF_INT_SIGNED } else { 0 };
                // encoding:4 (bits 24-27), offset:8 (16-23), nr_bits:8 (0-7).
                put_u32(out, (enc << 24) | (i.size.saturating_mul(8) & 0xff));
            }
            BtfType::Ptr(r) | BtfType::Typedef(r) | BtfType::Volatile(r) | BtfType::Const(r) => {
                put_head(out, r.name, k, 0, r.ty.0);
            }
            BtfType::Array(a) => {
                put_head(out, StrOff::EMPTY, k, 0, 0);
                put_u32(out, a.elem.0);
                put_u32(out, a.index.0);
                put_u32(out, a.nelems);
            }
            BtfType::Struct(c) | BtfType::Union(c) => {
                // With a bitfield, kind_flag is set and each member's
                // offset word holds its width in the top 8 bits.
                let flagged = c.members.iter().any(|m| m.bits != 0);
                put_head(out, c.name, k, c.members.len(), c.size);
                if flagged {
                    let at = out.len() - 8;
                    let info = u32::from_le_bytes(out[at..at + 4].try_into().unwrap_or_default()) | 1 << 31;
                    out[at..at + 4].copy_from_slice(&info.to_le_bytes());
                }
                for m in &c.members {
                    put_u32(out, m.name.0);
                    put_u32(out, m.ty.0);
                    put_u32(out, if flagged { (m.bits.min(0xff) << 24) | (m.bit_offset & 0x00ff_ffff) } else { m.bit_offset });
                }
            }
            BtfType::Enum(e) => {
                put_head(out, e.name, k, e.values.len(), e.size);
                for v in &e.values {
                    put_u32(out, v.name.0);
                    put_u32(out, v.value as u32);
                }
            }
            BtfType::FuncProto(p) => {
                put_head(out, StrOff::EMPTY, k, p.params.len(), p.ret.0);
                for (name, ty) in &p.params {
                    put_u32(out, name.0);
                    put_u32(out, ty.0);
                }
            }
            BtfType::Func(f) => {
                // For FUNC, vlen holds the linkage.
                put_head(out, f.name, k, f.linkage.code() as usize, f.proto.0);
            }
            BtfType::Var(v) => {
                put_head(out, v.name, k, 0, v.ty.0);
                put_u32(out, v.linkage.code());
            }
            BtfType::Datasec(d) => {
                put_head(out, d.name, k, d.vars.len(), d.size);
                for v in &d.vars {
                    put_u32(out, v.var.0);
                    put_u32(out, v.offset);
                    put_u32(out, v.size);
                }
            }
        }
    }
}

/// Builds a BTF blob: strings and types, then [`BtfBuilder::to_bytes`].
#[derive(Clone, Debug)]
pub struct BtfBuilder {
    strings: Vec<u8>,
    string_index: HashMap<String, StrOff>,
    /// Types 1..; index i holds type id i + 1.
    types: Vec<BtfType>,
}

impl Default for BtfBuilder {
    fn default() -> Self {
        BtfBuilder::new()
    }
}

impl BtfBuilder {
    /// An empty BTF: string table "\0", only type 0 (void).
    pub fn new() -> BtfBuilder {
        let mut string_index = HashMap::new();
        string_index.insert(String::new(), StrOff::EMPTY);
        BtfBuilder {
            strings: vec![0],
            string_index,
            types: Vec::new(),
        }
    }

    /// Interns `s` (deduplicated) and returns its offset. The empty string
    /// is offset 0. Interior NULs end the stored string early, as C would.
    pub fn add_string(&mut self, s: &str) -> StrOff {
        let s = s.split('\0').next().unwrap_or("");
        if let Some(off) = self.string_index.get(s) {
            return *off;
        }
        let off = StrOff(self.strings.len() as u32);
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_index.insert(s.to_owned(), off);
        off
    }

    /// Appends a type and returns its id.
    pub fn add_type(&mut self, ty: BtfType) -> TypeId {
        self.types.push(ty);
        TypeId(self.types.len() as u32)
    }

    /// Sets the type of member `index` of struct or union `id` (a struct
    /// whose members name types added after it).
    pub fn set_member_type(&mut self, id: TypeId, index: usize, ty: TypeId) {
        let t = (id.0 as usize).checked_sub(1).and_then(|i| self.types.get_mut(i));
        if let Some(BtfType::Struct(c) | BtfType::Union(c)) = t {
            if let Some(m) = c.members.get_mut(index) {
                m.ty = ty;
            }
        }
    }

    /// Makes member `index` of struct or union `id` a bitfield of `bits`
    /// bits (at its bit offset).
    pub fn set_member_bits(&mut self, id: TypeId, index: usize, bits: u32) {
        let t = (id.0 as usize).checked_sub(1).and_then(|i| self.types.get_mut(i));
        if let Some(BtfType::Struct(c) | BtfType::Union(c)) = t {
            if let Some(m) = c.members.get_mut(index) {
                m.bits = bits;
            }
        }
    }

    /// The type with id `id` (None for void or unknown ids).
    pub fn get(&self, id: TypeId) -> Option<&BtfType> {
        (id.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.types.get(i))
    }

    /// Number of types, not counting void.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// The string at `off`, if it starts a string.
    pub fn string_at(&self, off: StrOff) -> Option<&str> {
        let rest = self.strings.get(off.0 as usize..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// A signed or unsigned integer of `size_bytes` bytes.
    pub fn add_int(&mut self, name: &str, size_bytes: u32, signed: bool) -> TypeId {
        let name = self.add_string(name);
        self.add_type(BtfType::Int(Int {
            name,
            size: size_bytes,
            signed,
        }))
    }

    /// A pointer to `ty`.
    pub fn add_ptr(&mut self, ty: TypeId) -> TypeId {
        self.add_type(BtfType::Ptr(Ref {
            name: StrOff::EMPTY,
            ty,
        }))
    }

    /// `elem[nelems]`, indexed by `index` (an integer type).
    pub fn add_array(&mut self, elem: TypeId, index: TypeId, nelems: u32) -> TypeId {
        self.add_type(BtfType::Array(Array {
            elem,
            index,
            nelems,
        }))
    }

    fn members<S: AsRef<str>>(&mut self, members: &[BtfMember<S>]) -> Vec<Member> {
        members
            .iter()
            .map(|m| Member {
                name: self.add_string(m.name.as_ref()),
                ty: m.ty,
                bit_offset: m.bit_offset,
                bits: 0,
            })
            .collect()
    }

    /// A struct of `size` bytes (empty name = anonymous).
    pub fn add_struct<S: AsRef<str>>(
        &mut self,
        name: &str,
        size: u32,
        members: &[BtfMember<S>],
    ) -> TypeId {
        let name = self.add_string(name);
        let members = self.members(members);
        self.add_type(BtfType::Struct(Composite {
            name,
            size,
            members,
        }))
    }

    /// A union of `size` bytes (empty name = anonymous).
    pub fn add_union<S: AsRef<str>>(
        &mut self,
        name: &str,
        size: u32,
        members: &[BtfMember<S>],
    ) -> TypeId {
        let name = self.add_string(name);
        let members = self.members(members);
        self.add_type(BtfType::Union(Composite {
            name,
            size,
            members,
        }))
    }

    /// A 4-byte enum with the given enumerators.
    pub fn add_enum<S: AsRef<str>>(&mut self, name: &str, values: &[(S, i32)]) -> TypeId {
        let name = self.add_string(name);
        let values = values
            .iter()
            .map(|(n, v)| Enumerator {
                name: self.add_string(n.as_ref()),
                value: *v,
            })
            .collect();
        self.add_type(BtfType::Enum(Enum {
            name,
            size: 4,
            values,
        }))
    }

    /// `typedef ty name`.
    pub fn add_typedef(&mut self, name: &str, ty: TypeId) -> TypeId {
        let name = self.add_string(name);
        self.add_type(BtfType::Typedef(Ref { name, ty }))
    }

    /// `const ty`.
    pub fn add_const(&mut self, ty: TypeId) -> TypeId {
        self.add_type(BtfType::Const(Ref {
            name: StrOff::EMPTY,
            ty,
        }))
    }

    /// `volatile ty`.
    pub fn add_volatile(&mut self, ty: TypeId) -> TypeId {
        self.add_type(BtfType::Volatile(Ref {
            name: StrOff::EMPTY,
            ty,
        }))
    }

    /// A function signature; `ret` may be void.
    pub fn add_func_proto<S: AsRef<str>>(&mut self, ret: TypeId, params: &[(S, TypeId)]) -> TypeId {
        let params = params
            .iter()
            .map(|(n, t)| (self.add_string(n.as_ref()), *t))
            .collect();
        self.add_type(BtfType::FuncProto(FuncProto { ret, params }))
    }

    /// A function named `name` of signature `proto`.
    pub fn add_func(&mut self, name: &str, proto: TypeId, linkage: FuncLinkage) -> TypeId {
        let name = self.add_string(name);
        self.add_type(BtfType::Func(Func {
            name,
            proto,
            linkage,
        }))
    }

    /// A variable named `name` of type `ty`.
    pub fn add_var(&mut self, name: &str, ty: TypeId, linkage: VarLinkage) -> TypeId {
        let name = self.add_string(name);
        self.add_type(BtfType::Var(Var { name, ty, linkage }))
    }

    /// A data section of `size` bytes holding `vars` (sorted by offset,
    /// as the kernel requires, by the caller).
    pub fn add_datasec(&mut self, name: &str, size: u32, vars: &[DatasecVar]) -> TypeId {
        let name = self.add_string(name);
        self.add_type(BtfType::Datasec(Datasec {
            name,
            size,
            vars: vars.to_vec(),
        }))
    }

    /// Checks the limits the encoding cannot express and dangling ids.
    pub fn validate(&self) -> Result<(), Error> {
        // BTF_MAX_TYPE in kernel/bpf/btf.c.
        if self.types.len() >= 0x000f_ffff {
            return Err(Error::TooManyTypes {
                count: self.types.len(),
            });
        }
        // BTF_MAX_NAME_OFFSET in kernel/bpf/btf.c.
        if self.strings.len() > 0x00ff_ffff {
            return Err(Error::StringsTooLarge {
                len: self.strings.len(),
            });
        }
        let count = self.types.len() as u32;
        for (i, t) in self.types.iter().enumerate() {
            let id = TypeId(i as u32 + 1);
            if t.entries() > 0xffff {
                return Err(Error::TooManyEntries {
                    ty: id,
                    count: t.entries(),
                });
            }
            if let BtfType::Int(i) = t {
                if !matches!(i.size, 1 | 2 | 4 | 8 | 16) {
                    return Err(Error::BadIntSize {
                        ty: id,
                        size: i.size,
                    });
                }
            }
            for r in t.refs() {
                if r.0 > count {
                    return Err(Error::DanglingType { from: id, to: r });
                }
            }
        }
        Ok(())
    }

    /// The `.BTF` section bytes: header, type section, string section.
    pub fn to_bytes(&self) -> Vec<u8> {
        blob_bytes(&self.types, &self.strings)
    }

    /// Where the types and strings added so far end ([`BtfBuilder::split_bytes`]).
    pub fn split_mark(&self) -> SplitMark {
        SplitMark { types: self.types.len(), strings: self.strings.len() }
    }

    /// The types added after `mark` as split BTF (a kernel module's) on
    /// the blob [`BtfBuilder::to_bytes`] wrote at `mark`: their ids and
    /// string offsets continue that blob's, and they refer to its types
    /// by their ids.
    pub fn split_bytes(&self, mark: SplitMark) -> Vec<u8> {
        blob_bytes(self.types.get(mark.types..).unwrap_or_default(), self.strings.get(mark.strings..).unwrap_or_default())
    }
}

/// The end of a [`BtfBuilder`]'s types and strings at one moment.
#[derive(Clone, Copy, Debug)]
pub struct SplitMark {
    types: usize,
    strings: usize,
}

/// A BTF blob: header, then `types` written, then `strings`.
fn blob_bytes(types: &[BtfType], strings: &[u8]) -> Vec<u8> {
    let mut section = Vec::new();
    for t in types {
        t.write(&mut section);
    }
    let mut out = Vec::with_capacity(BTF_HEADER_LEN as usize + section.len() + strings.len());
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.push(BTF_VERSION);
    out.push(0); // flags
    put_u32(&mut out, BTF_HEADER_LEN);
    put_u32(&mut out, 0); // type_off, relative to the header's end
    put_u32(&mut out, section.len() as u32);
    put_u32(&mut out, section.len() as u32); // str_off
    put_u32(&mut out, strings.len() as u32);
    out.extend_from_slice(&section);
    out.extend_from_slice(strings);
    out
}

// ---- .BTF.ext -------------------------------------------------------------

/// `.BTF.ext` header length written here: the version-1 header including
/// the optional CO-RE relocation fields (tools/lib/bpf/libbpf_internal.h
/// `struct btf_ext_header`).
pub const BTF_EXT_HEADER_LEN: u32 = 32;

/// One `struct bpf_func_info` as stored in an object file: the function's
/// first instruction as a byte offset in its ELF section (libbpf divides by
/// 8 at load), and its BTF FUNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    pub insn_byte_off: u32,
    pub func: TypeId,
}

/// One `struct bpf_line_info` as stored in an object file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    pub insn_byte_off: u32,
    pub file_name: StrOff,
    pub line_text: StrOff,
    pub line: u32,
    pub col: u32,
}

/// One `struct bpf_core_relo`: the instruction (a byte offset in its ELF
/// section) whose offset or immediate a loader rewrites, the local root
/// type, the access string (`0:3:1`) and the relocation kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    pub insn_byte_off: u32,
    pub type_id: TypeId,
    pub access: StrOff,
    pub kind: u32,
}

/// The records of one ELF section, named by a string of the `.BTF` blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtSection<T> {
    pub sec_name: StrOff,
    pub records: Vec<T>,
}

/// Appends `rec_size` then, per section, `btf_ext_info_sec` and records.
/// Sections without records are skipped (libbpf rejects them).
fn put_ext_info<T>(
    out: &mut Vec<u8>,
    rec_size: u32,
    secs: &[ExtSection<T>],
    put: impl Fn(&mut Vec<u8>, &T),
) {
    if secs.iter().all(|s| s.records.is_empty()) {
        return;
    }
    put_u32(out, rec_size);
    for s in secs.iter().filter(|s| !s.records.is_empty()) {
        put_u32(out, s.sec_name.0);
        put_u32(out, s.records.len() as u32);
        for r in &s.records {
            put(out, r);
        }
    }
}

/// The `.BTF.ext` section bytes: function and line info and CO-RE
/// relocations. Offsets in the header are relative to its end.
pub fn btf_ext_bytes(
    func_info: &[ExtSection<FuncInfo>],
    line_info: &[ExtSection<LineInfo>],
    core_relo: &[ExtSection<CoreRelo>],
) -> Vec<u8> {
    let mut funcs = Vec::new();
    put_ext_info(&mut funcs, 8, func_info, |out, r| {
        put_u32(out, r.insn_byte_off);
        put_u32(out, r.func.0);
    });
    let mut lines = Vec::new();
    put_ext_info(&mut lines, 16, line_info, |out, r| {
        put_u32(out, r.insn_byte_off);
        put_u32(out, r.file_name.0);
        put_u32(out, r.line_text.0);
        // line_col: line number in the upper 22 bits, column in the lower 10.
        put_u32(out, (r.line << 10) | (r.col.min(0x3ff)));
    });
    let mut cores = Vec::new();
    put_ext_info(&mut cores, 16, core_relo, |out, r| {
        put_u32(out, r.insn_byte_off);
        put_u32(out, r.type_id.0);
        put_u32(out, r.access.0);
        put_u32(out, r.kind);
    });
    let mut out = Vec::with_capacity(BTF_EXT_HEADER_LEN as usize + funcs.len() + lines.len() + cores.len());
    out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    out.push(BTF_VERSION);
    out.push(0); // flags
    put_u32(&mut out, BTF_EXT_HEADER_LEN);
    put_u32(&mut out, 0); // func_info_off
    put_u32(&mut out, funcs.len() as u32);
    put_u32(&mut out, funcs.len() as u32); // line_info_off
    put_u32(&mut out, lines.len() as u32);
    put_u32(&mut out, (funcs.len() + lines.len()) as u32); // core_relo_off
    put_u32(&mut out, cores.len() as u32); // core_relo_len
    out.extend_from_slice(&funcs);
    out.extend_from_slice(&lines);
    out.extend_from_slice(&cores);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(b: &[u8]) -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn empty_builder() {
        let b = BtfBuilder::new();
        let bytes = b.to_bytes();
        assert_eq!(
            bytes,
            [0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert!(b.validate().is_ok());
    }

    #[test]
    fn strings_dedup_and_offsets() {
        let mut b = BtfBuilder::new();
        assert_eq!(b.add_string(""), StrOff(0));
        assert_eq!(b.add_string("int"), StrOff(1));
        assert_eq!(b.add_string("key"), StrOff(5));
        assert_eq!(b.add_string("int"), StrOff(1));
        assert_eq!(b.string_at(StrOff(5)), Some("key"));
        assert_eq!(b.string_at(StrOff(0)), Some(""));
    }

    #[test]
    fn small_type_set_layout() {
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true); // 1
        let uint = b.add_int("unsigned int", 4, false); // 2
        let arr = b.add_array(int, uint, 3); // 3
        let ptr = b.add_ptr(arr); // 4
        let st = b.add_struct(
            "",
            16,
            &[
                BtfMember {
                    name: "type",
                    ty: ptr,
                    bit_offset: 0,
                },
                BtfMember {
                    name: "key",
                    ty: ptr,
                    bit_offset: 64,
                },
            ],
        ); // 5
        let proto = b.add_func_proto(int, &[("ctx", ptr)]); // 6
        let func = b.add_func("prog", proto, FuncLinkage::Global); // 7
        let var = b.add_var("m", st, VarLinkage::GlobalAllocated); // 8
        let sec = b.add_datasec(
            ".maps",
            16,
            &[DatasecVar {
                var,
                offset: 0,
                size: 16,
            }],
        ); // 9
        assert_eq!(
            [int, uint, arr, ptr, st, proto, func, var, sec],
            [1, 2, 3, 4, 5, 6, 7, 8, 9].map(TypeId)
        );
        assert!(b.validate().is_ok());

        // Strings: \0 int\0 unsigned int\0 type\0 key\0 ctx\0 prog\0 m\0 .maps\0
        let strings = b"\0int\0unsigned int\0type\0key\0ctx\0prog\0m\0.maps\0";
        let (o_int, o_uint, o_type, o_key, o_ctx, o_prog, o_m, o_maps) =
            (1, 5, 18, 23, 27, 31, 36, 38);
        #[rustfmt::skip]
        let expect_types: Vec<u32> = vec![
            // 1: INT "int" size 4, signed, 32 bits
            o_int, 1 << 24, 4, (1 << 24) | 32,
            // 2: INT "unsigned int"
            o_uint, 1 << 24, 4, 32,
            // 3: ARRAY of 1 indexed by 2, 3 elems
            0, 3 << 24, 0, 1, 2, 3,
            // 4: PTR to 3
            0, 2 << 24, 3,
            // 5: STRUCT anon, vlen 2, size 16
            0, (4 << 24) | 2, 16, o_type, 4, 0, o_key, 4, 64,
            // 6: FUNC_PROTO vlen 1 returning 1
            0, (13 << 24) | 1, 1, o_ctx, 4,
            // 7: FUNC "prog", linkage global in vlen, proto 6
            o_prog, (12 << 24) | 1, 6,
            // 8: VAR "m" of 5, global allocated
            o_m, 14 << 24, 5, 1,
            // 9: DATASEC ".maps" vlen 1 size 16
            o_maps, (15 << 24) | 1, 16, 8, 0, 16,
        ];
        let bytes = b.to_bytes();
        let type_len = expect_types.len() as u32 * 4;
        let hdr = words(&bytes[4..24]);
        assert_eq!(&bytes[..4], &[0x9f, 0xeb, 1, 0]);
        assert_eq!(hdr, vec![24, 0, type_len, type_len, strings.len() as u32]);
        let tend = 24 + type_len as usize;
        assert_eq!(words(&bytes[24..tend]), expect_types);
        assert_eq!(&bytes[tend..], &strings[..]);
    }

    #[test]
    fn validate_catches_dangling_and_vlen() {
        let mut b = BtfBuilder::new();
        b.add_ptr(TypeId(5));
        assert_eq!(
            b.validate(),
            Err(Error::DanglingType {
                from: TypeId(1),
                to: TypeId(5)
            })
        );
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        let params: Vec<(String, TypeId)> = (0..70000).map(|_| (String::new(), int)).collect();
        let p = b.add_func_proto(int, &params);
        assert_eq!(
            b.validate(),
            Err(Error::TooManyEntries {
                ty: p,
                count: 70000
            })
        );
    }

    #[test]
    fn validate_catches_int_size() {
        let mut b = BtfBuilder::new();
        b.add_int("int", 4, true);
        let odd = b.add_int("odd", 3, false);
        assert_eq!(b.validate(), Err(Error::BadIntSize { ty: odd, size: 3 }));
    }

    #[test]
    fn members_accept_owned_names() {
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        let owned = vec![BtfMember {
            name: String::from("x"),
            ty: int,
            bit_offset: 0,
        }];
        let s = b.add_struct("s", 4, &owned);
        assert!(matches!(b.get(s), Some(BtfType::Struct(c)) if c.members.len() == 1));
    }

    #[test]
    fn btf_ext_layout() {
        let fi = [
            ExtSection {
                sec_name: StrOff(10),
                records: vec![FuncInfo {
                    insn_byte_off: 0,
                    func: TypeId(3),
                }],
            },
            ExtSection {
                sec_name: StrOff(20),
                records: vec![],
            },
            ExtSection {
                sec_name: StrOff(30),
                records: vec![
                    FuncInfo {
                        insn_byte_off: 0,
                        func: TypeId(4),
                    },
                    FuncInfo {
                        insn_byte_off: 16,
                        func: TypeId(5),
                    },
                ],
            },
        ];
        let li = [ExtSection {
            sec_name: StrOff(10),
            records: vec![LineInfo {
                insn_byte_off: 8,
                file_name: StrOff(1),
                line_text: StrOff(2),
                line: 7,
                col: 3,
            }],
        }];
        let b = btf_ext_bytes(&fi, &li, &[]);
        #[rustfmt::skip]
        let expect: Vec<u32> = vec![
            // header after magic/version/flags: hdr_len, func off/len, line off/len, core off/len
            32, 0, 44, 44, 28, 72, 0,
            // func_info: rec_size, sec 10 (1 rec), sec 30 (2 recs)
            8, 10, 1, 0, 3, 30, 2, 0, 4, 16, 5,
            // line_info: rec_size, sec 10 (1 rec)
            16, 10, 1, 8, 1, 2, (7 << 10) | 3,
        ];
        assert_eq!(&b[..4], &[0x9f, 0xeb, 1, 0]);
        assert_eq!(words(&b[4..]), expect);
        // No line info: zero length, no record size.
        let b = btf_ext_bytes(&fi[..1], &[], &[]);
        assert_eq!(words(&b[4..32]), vec![32, 0, 20, 20, 0, 20, 0]);
        assert_eq!(b.len(), 32 + 20);
    }
}
