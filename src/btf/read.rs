//! BTF reader: answers questions about a BTF blob (the running kernel's,
//! `/sys/kernel/btf/vmlinux`, which the runtime maps and passes in),
//! walking its type records only as far as a question needs.
//!
//! Probes ask two things of it: where `task_struct.comm` lies (to load the
//! command name straight from the task) and how to reach this CPU's
//! `__preempt_count` (for `in_interrupt()`). libbpf's parser (libbpf-rs
//! `Btf::from_vmlinux`) checks all ~126,000 types of the 5 MiB file before
//! answering: 3.8–4.5 ms on the benchmark machine, half of a one-liner's
//! start-up budget. `task_struct` is type 114 of 126,586 on 6.18, so this
//! reader walks the type records in id order only until the answer:
//! 25–65 µs. The per-CPU section's description is the last type, so the
//! preempt count costs a whole walk, 1.5–2.2 ms, paid only by scripts that
//! call `in_interrupt()` outside syscall events.
//!
//! Kernel modules have BTF of their own (`/sys/kernel/btf/MODULE`), split
//! BTF that builds on vmlinux's: its types refer to vmlinux's by their ids,
//! and its own ids and string offsets continue where vmlinux's end. A
//! reader given the modules ([`BtfReader::with_modules`]) searches them
//! after vmlinux, so a name vmlinux lacks costs a whole walk of it before
//! any module is read.
//!
//! [`BtfReader`] is pure and never panics on any bytes: a malformed blob
//! is an error, never a wrong answer.

use super::{Kind, TypeId, BTF_HEADER_LEN, BTF_MAGIC as MAGIC};
use crate::ir::PercpuAccess;
use std::cell::RefCell;
use std::fmt;

/// Why the reader has no answer: the bytes are not well-formed BTF, or the
/// BTF lacks what the question needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The magic number is BTF's, byte-swapped.
    OtherByteOrder,
    BadMagic,
    TruncatedHeader,
    /// A header shorter than `struct btf_header`.
    ShortHeader { len: usize },
    /// The type or string section (`section`) lies outside the bytes.
    SectionOutOfBounds { section: &'static str },
    TruncatedType { id: u32 },
    UnknownKind { id: u32, kind: Kind },
    /// Type 0 is `void`, which has no record.
    NoRecordForVoid,
    NoType { id: u32 },
    /// A chain of typedefs and qualifiers longer than any real one.
    TooManyTypedefs { id: u32 },
    Bitfield { strukt: String, member: String },
    NoStruct { name: String },
    NoMember { strukt: String, member: String },
    NoSection { name: String },
    NoPercpuVar { name: String },
    /// `struct sched_entity` has no `cfs_rq`: CONFIG_FAIR_GROUP_SCHED is off.
    NoGroupSched,
    /// `what` (a member, a variable) is not `expected`.
    NotA { what: String, expected: &'static str },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OtherByteOrder => f.write_str("BTF of the other byte order"),
            Error::BadMagic => f.write_str("not BTF (bad magic)"),
            Error::TruncatedHeader => f.write_str("truncated BTF header"),
            Error::ShortHeader { len } => write!(f, "BTF header of {len} bytes"),
            Error::SectionOutOfBounds { section } => write!(f, "BTF {section} section out of bounds"),
            Error::TruncatedType { id } => write!(f, "BTF type {id} is truncated"),
            Error::UnknownKind { id, kind } => write!(f, "BTF type {id} has unknown kind {}", kind.0),
            Error::NoRecordForVoid => f.write_str("BTF type 0 (void) has no record"),
            Error::NoType { id } => write!(f, "BTF has no type {id}"),
            Error::TooManyTypedefs { id } => write!(f, "BTF type {id}: too many typedefs"),
            Error::Bitfield { strukt, member } => write!(f, "`{strukt}.{member}` is a bitfield"),
            Error::NoStruct { name } => write!(f, "no `struct {name}` in the kernel's BTF"),
            Error::NoMember { strukt, member } => write!(f, "`struct {strukt}` has no member `{member}` in the kernel's BTF"),
            Error::NoSection { name } => write!(f, "the kernel's BTF has no `{name}` section"),
            Error::NoPercpuVar { name } => write!(f, "the kernel's BTF has no per-CPU variable `{name}`"),
            Error::NoGroupSched => {
                f.write_str("the kernel's `struct sched_entity` has no `cfs_rq` (CONFIG_FAIR_GROUP_SCHED is not set)")
            }
            Error::NotA { what, expected } => write!(f, "{what} is not {expected}"),
        }
    }
}

impl std::error::Error for Error {}

const HEADER_LEN: usize = BTF_HEADER_LEN as usize;

/// One type record: `struct btf_type` and what follows it.
#[derive(Clone, Copy, Debug)]
struct TypeRec<'a> {
    /// The blob it lies in: its name offset and the type ids in it
    /// (`size_or_type`, members' types) are that blob's
    /// ([`BtfReader::str_in`], [`BtfReader::id_in`] read them).
    src: Src,
    kind: Kind,
    vlen: usize,
    kind_flag: bool,
    name_off: u32,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// The bytes after the 12-byte header (members, array info, ...).
    rest: &'a [u8],
}

/// Which blob a record lies in: vmlinux's or module `i`'s (its place in
/// [`SplitSource::modules`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Base,
    Module(usize),
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Bytes after the header, per kind; None for kinds this reader does not
/// know (the walk cannot continue past them).
fn trailer_len(kind: Kind, vlen: usize) -> Option<usize> {
    Some(match kind {
        Kind::INT | Kind::VAR | Kind::DECL_TAG => 4,
        Kind::ARRAY => 12,
        Kind::STRUCT | Kind::UNION | Kind::DATASEC | Kind::ENUM64 => 12 * vlen,
        Kind::ENUM | Kind::FUNC_PROTO => 8 * vlen,
        Kind::PTR | Kind::FWD | Kind::TYPEDEF | Kind::VOLATILE | Kind::CONST | Kind::RESTRICT | Kind::FUNC | Kind::FLOAT | Kind::TYPE_TAG => 0,
        _ => return None,
    })
}

/// A module's BTF as the kernel gives it (`/sys/kernel/btf/MODULE`):
/// split BTF, whose type ids continue after vmlinux's last and whose
/// string offsets continue after vmlinux's string section. (Each reader
/// walks a module's types afresh: they are few.)
#[derive(Clone, Debug)]
pub struct ModuleBtf {
    pub name: String,
    pub data: Vec<u8>,
}

impl ModuleBtf {
    pub fn new(name: impl Into<String>, data: Vec<u8>) -> ModuleBtf {
        ModuleBtf { name: name.into(), data }
    }
}

/// Where a reader finds modules' BTF, asked only when vmlinux lacks a
/// name (or a listing wants every name): the runtime opens the files on
/// the first call.
pub trait SplitSource {
    /// Every module's BTF, in the order searched.
    fn modules(&self) -> &[ModuleBtf];
}

impl SplitSource for Vec<ModuleBtf> {
    fn modules(&self) -> &[ModuleBtf] {
        self
    }
}

/// Type ids the reader hands out for one module's types: module `i`'s
/// type `t` (split ids start after vmlinux's `n` types) is `n + i * STRIDE
/// + (t - n)`, so every module's types have ids of their own, and with one
/// module they are the kernel's. The kernel caps a BTF at 2^20 types
/// (`BTF_MAX_TYPE`).
const MODULE_STRIDE: u32 = 1 << 20;

/// One blob's sections and walk: type section, string section, and the
/// start of each type walked so far. Type records are variable-sized, so
/// finding the blob's type N means walking types 1..N; the walk goes no
/// further than a question needs.
struct Blob<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Start of each type walked so far (the blob's type i + 1, counted
    /// from its first, at `starts[i]`).
    starts: Starts<'a>,
}

/// Where the walk's memory lives: the reader's own, or one its owner keeps
/// across readers of the same bytes (the runtime asks many questions of
/// one mapping; each walks on from where the last stopped).
enum Starts<'a> {
    Own(RefCell<Vec<usize>>),
    Shared(&'a RefCell<Vec<usize>>),
}

impl Starts<'_> {
    fn cell(&self) -> &RefCell<Vec<usize>> {
        match self {
            Starts::Own(c) => c,
            Starts::Shared(c) => c,
        }
    }
}

impl<'a> Blob<'a> {
    fn parse(data: &'a [u8], starts: Starts<'a>) -> Result<Blob<'a>, Error> {
        let magic = data.get(..2).map(|m| u16::from_le_bytes([m[0], m[1]]));
        if magic == Some(MAGIC.swap_bytes()) {
            return Err(Error::OtherByteOrder);
        }
        if magic != Some(MAGIC) {
            return Err(Error::BadMagic);
        }
        let field = |i: usize| u32_at(data, 4 + 4 * i).map(|v| v as usize).ok_or(Error::TruncatedHeader);
        let (hdr_len, type_off, type_len, str_off, str_len) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        if hdr_len < HEADER_LEN {
            return Err(Error::ShortHeader { len: hdr_len });
        }
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            data.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len).ok_or(Error::SectionOutOfBounds { section: "type" })?;
        let strings = section(str_off, str_len).ok_or(Error::SectionOutOfBounds { section: "string" })?;
        Ok(Blob { types, strings, starts })
    }

    /// The string at `off` (without its NUL); empty when out of bounds.
    fn name(&self, off: u32) -> &'a [u8] {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    }

    /// Kind and name offset of the record at byte `at`.
    fn kind_and_name(&self, at: usize) -> (Kind, u32) {
        (Kind::of_info(u32_at(self.types, at + 4).unwrap_or(0)), u32_at(self.types, at).unwrap_or(0))
    }

    /// The record starting at byte `at` (`id` names it in errors).
    fn decode(&self, src: Src, id: u32, at: usize) -> Result<TypeRec<'a>, Error> {
        let (Some(name_off), Some(info), Some(size_or_type)) =
            (u32_at(self.types, at), u32_at(self.types, at + 4), u32_at(self.types, at + 8))
        else {
            return Err(Error::TruncatedType { id });
        };
        let kind = Kind::of_info(info);
        let vlen = (info & 0xffff) as usize;
        let len = trailer_len(kind, vlen).ok_or(Error::UnknownKind { id, kind })?;
        let rest = self.types.get(at + 12..at + 12 + len).ok_or(Error::TruncatedType { id })?;
        Ok(TypeRec { src, kind, vlen, kind_flag: info >> 31 != 0, name_off, size_or_type, rest })
    }

    /// Where the blob's type `n` (from 1) starts, or None past its last.
    fn start(&self, n: u32) -> Result<Option<usize>, Error> {
        if n == 0 {
            return Err(Error::NoRecordForVoid);
        }
        let mut starts = self.starts.cell().borrow_mut();
        if let Some(&at) = starts.get(n as usize - 1) {
            return Ok(Some(at));
        }
        while starts.len() < n as usize {
            let at = match starts.last() {
                Some(&last) => {
                    let info = u32_at(self.types, last + 4).unwrap_or(0);
                    let len = trailer_len(Kind::of_info(info), (info & 0xffff) as usize);
                    // (An unknown kind is reported by `decode` below.)
                    let id = starts.len() as u32;
                    last + 12 + len.ok_or_else(|| self.decode(Src::Base, id, last).err().unwrap_or(Error::TruncatedType { id }))?
                }
                None => 0,
            };
            if at >= self.types.len() {
                return Ok(None);
            }
            starts.push(at);
        }
        Ok(starts.last().copied())
    }

    /// How many types the blob has (a whole walk, the first time).
    fn count(&self) -> Result<u32, Error> {
        self.start(u32::MAX)?;
        Ok(self.starts.cell().borrow().len() as u32)
    }
}

/// A module's blob as the reader sees it: the id its first type has in
/// the module's own numbering (vmlinux's count + 1) and among the
/// reader's ids.
struct Split<'a> {
    name: &'a str,
    blob: Option<Blob<'a>>,
    first_local: u32,
    first: u32,
}

/// A BTF blob (vmlinux's, a map's, an object's), and the BTF of the
/// kernel modules that build on it when it is vmlinux: modules are
/// searched after it ([`BtfReader::with_modules`]). Type ids are
/// vmlinux's for its types and the reader's own for modules' (see
/// [`MODULE_STRIDE`]).
pub struct BtfReader<'a> {
    base: Blob<'a>,
    source: Option<&'a dyn SplitSource>,
    /// The modules' blobs, parsed on first need.
    splits: std::cell::OnceCell<Vec<Split<'a>>>,
}

/// A type as a question needs it, typedefs and qualifiers followed
/// ([`BtfReader::describe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeDesc {
    Void,
    /// Integers, `bool` and `char` (`size` in bytes).
    Int { size: u32, signed: bool },
    /// A pointer; `tag` is the first type tag of what it points to
    /// (`user`, `percpu`, `rcu`).
    Ptr { to: TypeId, tag: Option<String> },
    Array { elem: TypeId, len: u32 },
    Composite { union: bool, name: String, size: u32, members: Vec<MemberDesc> },
    Enum { name: String, size: u32, signed: bool, values: Vec<(String, i64)> },
    /// Functions, floats, forward declarations: not values a probe reads.
    Other { what: &'static str, name: String },
}

/// One member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDesc {
    /// Empty for an anonymous struct or union member.
    pub name: String,
    pub ty: TypeId,
    pub bit_offset: u32,
    /// Width of a bitfield, 0 for a whole member.
    pub bits: u32,
}

impl<'a> BtfReader<'a> {
    /// A reader whose walk is remembered in `starts` (kept by the owner of
    /// `data` across readers; empty at first).
    pub fn with_memory(data: &'a [u8], starts: &'a RefCell<Vec<usize>>) -> Result<BtfReader<'a>, Error> {
        Ok(BtfReader { base: Blob::parse(data, Starts::Shared(starts))?, source: None, splits: Default::default() })
    }

    pub fn new(data: &'a [u8]) -> Result<BtfReader<'a>, Error> {
        Ok(BtfReader { base: Blob::parse(data, Starts::Own(RefCell::default()))?, source: None, splits: Default::default() })
    }

    /// The same reader, searching the BTF of the modules `source` gives
    /// after its own (the blob is then vmlinux's, which they build on).
    pub fn with_modules(mut self, source: &'a dyn SplitSource) -> BtfReader<'a> {
        self.source = Some(source);
        self
    }

    /// The modules' blobs (none without a source). The first call walks
    /// the whole of vmlinux: module type ids start after its last.
    fn splits(&self) -> Result<&[Split<'a>], Error> {
        if let Some(s) = self.splits.get() {
            return Ok(s);
        }
        let Some(source) = self.source else { return Ok(self.splits.get_or_init(Vec::new)) };
        let first_local = self.base.count()? + 1;
        let mut out = Vec::new();
        for (i, m) in source.modules().iter().enumerate() {
            // Ids past u32 are left out (thousands of modules).
            let Some(first) = u32::try_from(i).ok().and_then(|i| i.checked_mul(MODULE_STRIDE)).and_then(|o| o.checked_add(first_local)) else { break };
            // A module whose header is malformed is left out of searches;
            // nothing refers to its types.
            let blob = Blob::parse(&m.data, Starts::Own(RefCell::default())).ok();
            out.push(Split { name: &m.name, blob, first_local, first });
        }
        Ok(self.splits.get_or_init(|| out))
    }

    fn blob(&self, src: Src) -> Option<&Blob<'a>> {
        match src {
            Src::Base => Some(&self.base),
            Src::Module(i) => self.splits.get()?.get(i)?.blob.as_ref(),
        }
    }

    /// The string at `off` of the blob `src` (a module's offsets past
    /// vmlinux's string section are its own).
    fn str_in(&self, src: Src, off: u32) -> &'a [u8] {
        let base_len = self.base.strings.len();
        match src {
            Src::Module(_) if off as usize >= base_len => self.blob(src).map(|b| b.name(off - base_len as u32)).unwrap_or_default(),
            _ => self.base.name(off),
        }
    }

    /// The reader's id of the blob `src`'s type id `id` (a module's ids
    /// up to vmlinux's count are vmlinux's types).
    fn id_in(&self, src: Src, id: u32) -> u32 {
        let Src::Module(i) = src else { return id };
        let Some(s) = self.splits.get().and_then(|s| s.get(i)) else { return u32::MAX };
        match id.checked_sub(s.first_local) {
            None => id,
            Some(n) if n < MODULE_STRIDE => s.first + n,
            Some(_) => u32::MAX,
        }
    }

    /// The name of record `t`.
    fn name(&self, t: &TypeRec<'_>) -> &'a [u8] {
        self.str_in(t.src, t.name_off)
    }

    /// The type record `t` refers to by `size_or_type`.
    fn target(&self, t: &TypeRec<'_>) -> u32 {
        self.id_in(t.src, t.size_or_type)
    }

    /// Type `id`, or None past the last type.
    fn get(&self, id: u32) -> Result<Option<TypeRec<'a>>, Error> {
        if let Some(at) = self.base.start(id)? {
            return self.base.decode(Src::Base, id, at).map(Some);
        }
        let splits = self.splits()?;
        let Some(rel) = splits.first().and_then(|s| id.checked_sub(s.first_local)) else { return Ok(None) };
        let (i, n) = ((rel / MODULE_STRIDE) as usize, rel % MODULE_STRIDE);
        let Some(blob) = splits.get(i).and_then(|s| s.blob.as_ref()) else { return Ok(None) };
        match blob.start(n + 1)? {
            Some(at) => blob.decode(Src::Module(i), id, at).map(Some),
            None => Ok(None),
        }
    }

    /// The module whose BTF holds type `id` (None for vmlinux's types).
    pub fn module_of(&self, id: TypeId) -> Option<&'a str> {
        if self.base.start(id.0).ok()?.is_some() {
            return None;
        }
        let s = self.splits().ok()?;
        let rel = id.0.checked_sub(s.first()?.first_local)?;
        s.get((rel / MODULE_STRIDE) as usize).map(|s| s.name)
    }

    /// Visits every type, vmlinux's then each module's (`modules`), in id
    /// order, with its id, blob and start, until `visit` answers.
    fn scan<T>(&self, modules: bool, mut visit: impl FnMut(u32, Src, &Blob<'a>, usize) -> Option<T>) -> Result<Option<T>, Error> {
        let mut id = 1;
        while let Some(at) = self.base.start(id)? {
            if let Some(found) = visit(id, Src::Base, &self.base, at) {
                return Ok(Some(found));
            }
            id += 1;
        }
        if !modules {
            return Ok(None);
        }
        for (i, s) in self.splits()?.iter().enumerate() {
            let Some(blob) = &s.blob else { continue };
            let mut n = 1;
            while n <= MODULE_STRIDE {
                let Some(at) = blob.start(n)? else { break };
                if let Some(found) = visit(s.first + n - 1, Src::Module(i), blob, at) {
                    return Ok(Some(found));
                }
                n += 1;
            }
        }
        Ok(None)
    }

    fn type_by_id(&self, id: u32) -> Result<TypeRec<'a>, Error> {
        self.get(id)?.ok_or(Error::NoType { id })
    }

    /// The first type of `kind` named `name`, walking no further.
    fn named(&self, kind: Kind, name: &str) -> Result<Option<TypeRec<'a>>, Error> {
        match self.find(kind, name)? {
            Some(id) => self.get(id.0),
            None => Ok(None),
        }
    }

    /// Follows typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Result<TypeRec<'a>, Error> {
        for _ in 0..32 {
            let t = self.type_by_id(id)?;
            match t.kind {
                Kind::TYPEDEF | Kind::VOLATILE | Kind::CONST | Kind::RESTRICT | Kind::TYPE_TAG => id = self.target(&t),
                _ => return Ok(t),
            }
        }
        Err(Error::TooManyTypedefs { id })
    }

    fn is_struct(&self, t: &TypeRec<'_>, name: &str) -> bool {
        t.kind == Kind::STRUCT && self.name(t) == name.as_bytes()
    }

    /// The struct `ptr` points to, if it is a `struct name *`.
    fn pointee(&self, ptr: u32, name: &str) -> Result<Option<TypeRec<'a>>, Error> {
        let p = self.resolve(ptr)?;
        if p.kind != Kind::PTR {
            return Ok(None);
        }
        let t = self.resolve(self.target(&p))?;
        Ok(self.is_struct(&t, name).then_some(t))
    }

    /// Byte offset and type id of member `member` of struct `t`.
    fn member_of(&self, t: &TypeRec<'_>, member: &str) -> Result<Option<(u32, u32)>, Error> {
        let strukt = String::from_utf8_lossy(self.name(t));
        for m in t.rest.chunks_exact(12).take(t.vlen) {
            let (Some(name_off), Some(ty), Some(raw)) = (u32_at(m, 0), u32_at(m, 4), u32_at(m, 8)) else { continue };
            let ty = self.id_in(t.src, ty);
            if self.str_in(t.src, name_off) != member.as_bytes() {
                continue;
            }
            // With kind_flag the top 8 bits hold a bitfield's width.
            let (bits, width) = if t.kind_flag { (raw & 0x00ff_ffff, raw >> 24) } else { (raw, 0) };
            if width != 0 || bits % 8 != 0 {
                return Err(Error::Bitfield { strukt: strukt.into_owned(), member: member.into() });
            }
            return Ok(Some((bits / 8, ty)));
        }
        Ok(None)
    }

    /// Byte offset and type id of `member` of `struct name`.
    pub fn member(&self, strukt: &str, member: &str) -> Result<(u32, u32), Error> {
        let t = self.named(Kind::STRUCT, strukt)?.ok_or_else(|| Error::NoStruct { name: strukt.into() })?;
        self.member_of(&t, member)?.ok_or_else(|| no_member(strukt, member))
    }

    /// Bit offset and width of the one-bit field `member` of `struct
    /// strukt` (a plain member is not a one-bit field).
    pub fn one_bit_member(&self, strukt: &str, member: &str) -> Result<u32, Error> {
        let t = self.named(Kind::STRUCT, strukt)?.ok_or_else(|| Error::NoStruct { name: strukt.into() })?;
        for m in t.rest.chunks_exact(12).take(t.vlen) {
            let (Some(name_off), Some(raw)) = (u32_at(m, 0), u32_at(m, 8)) else { continue };
            if self.str_in(t.src, name_off) != member.as_bytes() {
                continue;
            }
            // With kind_flag the top 8 bits hold a bitfield's width.
            let (bits, width) = if t.kind_flag { (raw & 0x00ff_ffff, raw >> 24) } else { (raw, 0) };
            if width != 1 {
                return Err(not_a(&format!("`{strukt}.{member}`"), "a one-bit field"));
            }
            return Ok(bits);
        }
        Err(no_member(strukt, member))
    }

    /// Where the running task's command name lies in `struct task_struct`,
    /// checked to be `char comm[16]`.
    pub fn task_comm_offset(&self) -> Result<u32, Error> {
        let (offset, ty) = self.member("task_struct", "comm")?;
        let array = self.resolve(ty)?;
        let elem_nelems = (array.kind == Kind::ARRAY).then(|| (u32_at(array.rest, 0).map(|e| self.id_in(array.src, e)), u32_at(array.rest, 8)));
        let Some((Some(elem), Some(16))) = elem_nelems else {
            return Err(not_a("`task_struct.comm`", "a 16-byte array"));
        };
        let elem = self.resolve(elem)?;
        if elem.kind != Kind::INT || elem.size_or_type != 1 {
            return Err(not_a("`task_struct.comm`", "an array of chars"));
        }
        Ok(offset)
    }

    /// Each named variable of the DATASEC `section` (None for names it
    /// lacks).
    fn section_vars(&self, section: &str, names: &[&str]) -> Result<Vec<Option<SectionVar>>, Error> {
        let sec = self.named(Kind::DATASEC, section)?.ok_or_else(|| Error::NoSection { name: section.into() })?;
        let mut found = vec![None; names.len()];
        for v in sec.rest.chunks_exact(12).take(sec.vlen) {
            let (Some(var), Some(offset), Some(size)) = (u32_at(v, 0), u32_at(v, 4), u32_at(v, 8)) else { continue };
            let var = self.type_by_id(self.id_in(sec.src, var))?;
            if let Some(i) = names.iter().position(|n| self.name(&var) == n.as_bytes()) {
                found[i] = Some(SectionVar { offset, size, ty: self.target(&var) });
            }
        }
        Ok(found)
    }

    /// How a probe reaches the current CPU's copy of the per-CPU integer
    /// variable `name`.
    ///
    /// The kernel's own way, a BTF-id `ld_imm64` and `bpf_this_cpu_ptr`,
    /// has the verifier look the variable's address up in kallsyms, which
    /// holds no variables without CONFIG_KALLSYMS_ALL (not set on the
    /// benchmark machine's 6.18: "ldimm64 failed to find the address for
    /// kernel symbol"). So the probe finds this CPU's per-CPU area
    /// through a per-CPU variable it can reach by pointers instead: the
    /// current task's `se.cfs_rq->rq` is this CPU's `runqueues` (with
    /// CONFIG_FAIR_GROUP_SCHED; the idle task's too), and a variable lies
    /// at the same distance from it in every CPU's copy of the
    /// `.data..percpu` section, the distance the section's BTF gives.
    pub fn percpu_access(&self, name: &str) -> Result<PercpuAccess, Error> {
        const ANCHOR: &str = "runqueues";
        let task = self.named(Kind::STRUCT, "task_struct")?.ok_or_else(|| Error::NoStruct { name: "task_struct".into() })?;
        let (se, se_ty) = self.member_of(&task, "se")?.ok_or_else(|| no_member("task_struct", "se"))?;
        let se_ty = self.resolve(se_ty)?;
        let (cfs_rq, cfs_ty) = self.member_of(&se_ty, "cfs_rq")?.ok_or(Error::NoGroupSched)?;
        let cfs = match self.pointee(cfs_ty, "cfs_rq")? {
            Some(cfs) if self.is_struct(&se_ty, "sched_entity") => cfs,
            _ => return Err(not_a("`task_struct.se.cfs_rq`", "a `struct cfs_rq *`")),
        };
        let (rq, rq_ty) = self.member_of(&cfs, "rq")?.ok_or_else(|| no_member("cfs_rq", "rq"))?;
        if self.pointee(rq_ty, "rq")?.is_none() {
            return Err(not_a("`cfs_rq.rq`", "a `struct rq *`"));
        }
        let mut found = self.section_vars(PERCPU_SECTION, &[ANCHOR, name])?.into_iter();
        let (anchor, var) = (found.next().flatten(), found.next().flatten());
        let anchor = anchor.ok_or_else(|| Error::NoPercpuVar { name: ANCHOR.into() })?;
        if !self.is_struct(&self.resolve(anchor.ty)?, "rq") {
            return Err(not_a(&format!("the per-CPU `{ANCHOR}`"), "a `struct rq`"));
        }
        let var = var.ok_or_else(|| Error::NoPercpuVar { name: name.into() })?;
        let ty = self.resolve(var.ty)?;
        let size = match (ty.kind, ty.size_or_type) {
            (Kind::INT | Kind::ENUM, size @ (1 | 2 | 4 | 8)) if size == var.size => size as u8,
            _ => return Err(not_a(&format!("the per-CPU variable `{name}`"), "an integer")),
        };
        Ok(PercpuAccess { chain: vec![se + cfs_rq, rq], delta: i64::from(var.offset) - i64::from(anchor.offset), size })
    }
    /// The id of the first type of `kind` named `name`, walking no
    /// further (vmlinux's types, then each module's).
    pub fn find(&self, kind: Kind, name: &str) -> Result<Option<TypeId>, Error> {
        self.scan(true, |id, src, blob, at| {
            let (k, off) = blob.kind_and_name(at);
            (k == kind && self.str_in(src, off) == name.as_bytes()).then_some(TypeId(id))
        })
    }

    /// Names of every type of `kind` starting with `prefix`, without it
    /// (a whole walk: for globs and listings only).
    pub fn names_with_prefix(&self, kind: Kind, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self.ids_with_prefix(kind, prefix)?.into_iter().map(|(name, _)| name).collect())
    }

    /// Every type of `kind` whose name starts with `prefix`: the name
    /// without it, and the id (a whole walk, as
    /// [`BtfReader::names_with_prefix`]).
    pub fn ids_with_prefix(&self, kind: Kind, prefix: &str) -> Result<Vec<(String, TypeId)>, Error> {
        let mut out = Vec::new();
        self.scan(true, |id, src, blob, at| {
            let (k, off) = blob.kind_and_name(at);
            if k == kind {
                if let Some(rest) = self.str_in(src, off).strip_prefix(prefix.as_bytes()) {
                    out.push((String::from_utf8_lossy(rest).into_owned(), TypeId(id)));
                }
            }
            None::<()>
        })?;
        Ok(out)
    }

    /// The parameters (name, type id) of a function prototype, reached
    /// from `id` through typedefs, a pointer or a FUNC.
    pub fn params(&self, id: TypeId) -> Result<Vec<(String, TypeId)>, Error> {
        let mut t = self.resolve(id.0)?;
        for _ in 0..2 {
            if t.kind == Kind::PTR || t.kind == Kind::FUNC {
                t = self.resolve(self.target(&t))?;
            }
        }
        if t.kind != Kind::FUNC_PROTO {
            return Err(not_a(&format!("BTF type {}", id.0), "a function prototype"));
        }
        let mut out = Vec::with_capacity(t.vlen);
        for p in t.rest.chunks_exact(8).take(t.vlen) {
            let (Some(name), Some(ty)) = (u32_at(p, 0), u32_at(p, 4)) else { continue };
            out.push((String::from_utf8_lossy(self.str_in(t.src, name)).into_owned(), TypeId(self.id_in(t.src, ty))));
        }
        Ok(out)
    }

    /// The return type of a function prototype reached from `id` (as
    /// [`BtfReader::params`]).
    pub fn returns(&self, id: TypeId) -> Result<TypeId, Error> {
        let mut t = self.resolve(id.0)?;
        for _ in 0..2 {
            if t.kind == Kind::PTR || t.kind == Kind::FUNC {
                t = self.resolve(self.target(&t))?;
            }
        }
        if t.kind != Kind::FUNC_PROTO {
            return Err(not_a(&format!("BTF type {}", id.0), "a function prototype"));
        }
        Ok(TypeId(self.target(&t)))
    }

    /// Type `id` with typedefs and qualifiers followed.
    pub fn describe(&self, id: TypeId) -> Result<TypeDesc, Error> {
        if id == TypeId::VOID {
            return Ok(TypeDesc::Void);
        }
        let t = self.resolve(id.0)?;
        let name = String::from_utf8_lossy(self.name(&t)).into_owned();
        Ok(match t.kind {
            Kind::INT => {
                let enc = u32_at(t.rest, 0).unwrap_or(0);
                TypeDesc::Int { size: t.size_or_type, signed: (enc >> 24) & super::BTF_INT_SIGNED != 0 }
            }
            Kind::PTR => {
                let mut tag = None;
                let mut to = self.target(&t);
                for _ in 0..8 {
                    if to == 0 {
                        break;
                    }
                    let p = self.type_by_id(to)?;
                    match p.kind {
                        Kind::TYPE_TAG => {
                            tag.get_or_insert_with(|| String::from_utf8_lossy(self.name(&p)).into_owned());
                            to = self.target(&p);
                        }
                        Kind::CONST | Kind::VOLATILE | Kind::RESTRICT => to = self.target(&p),
                        _ => break,
                    }
                }
                TypeDesc::Ptr { to: TypeId(to), tag }
            }
            Kind::ARRAY => TypeDesc::Array { elem: TypeId(self.id_in(t.src, u32_at(t.rest, 0).unwrap_or(0))), len: u32_at(t.rest, 8).unwrap_or(0) },
            Kind::STRUCT | Kind::UNION => {
                let mut members = Vec::with_capacity(t.vlen);
                for m in t.rest.chunks_exact(12).take(t.vlen) {
                    let (Some(name_off), Some(ty), Some(raw)) = (u32_at(m, 0), u32_at(m, 4), u32_at(m, 8)) else { continue };
                    let (bit_offset, bits) = if t.kind_flag { (raw & 0x00ff_ffff, raw >> 24) } else { (raw, 0) };
                    let (name, ty) = (String::from_utf8_lossy(self.str_in(t.src, name_off)).into_owned(), TypeId(self.id_in(t.src, ty)));
                    members.push(MemberDesc { name, ty, bit_offset, bits });
                }
                TypeDesc::Composite { union: t.kind == Kind::UNION, name, size: t.size_or_type, members }
            }
            Kind::ENUM | Kind::ENUM64 => {
                let wide = t.kind == Kind::ENUM64;
                let step = if wide { 12 } else { 8 };
                let mut values = Vec::with_capacity(t.vlen);
                for v in t.rest.chunks_exact(step).take(t.vlen) {
                    let (Some(n), Some(lo)) = (u32_at(v, 0), u32_at(v, 4)) else { continue };
                    let value = if wide {
                        (u64::from(u32_at(v, 8).unwrap_or(0)) << 32 | u64::from(lo)) as i64
                    } else if t.kind_flag {
                        i64::from(lo as i32)
                    } else {
                        i64::from(lo)
                    };
                    values.push((String::from_utf8_lossy(self.str_in(t.src, n)).into_owned(), value));
                }
                TypeDesc::Enum { name, size: t.size_or_type, signed: t.kind_flag, values }
            }
            Kind::FUNC_PROTO | Kind::FUNC => TypeDesc::Other { what: "function", name },
            Kind::FLOAT => TypeDesc::Other { what: "floating-point number", name },
            Kind::FWD => TypeDesc::Other { what: "declared but not defined type", name },
            _ => TypeDesc::Other { what: "type", name },
        })
    }

    /// Type `id` as C spells it (`struct task_struct *`, `char[16]`).
    pub fn type_name(&self, id: TypeId) -> String {
        self.spell(id.0, 0)
    }

    fn spell(&self, id: u32, depth: u32) -> String {
        if id == 0 {
            return "void".into();
        }
        let Ok(t) = self.type_by_id(id) else { return "?".into() };
        let name = String::from_utf8_lossy(self.name(&t)).into_owned();
        if depth > 8 {
            return name;
        }
        match t.kind {
            Kind::PTR => format!("{} *", self.spell(self.target(&t), depth + 1)),
            Kind::CONST | Kind::VOLATILE | Kind::RESTRICT | Kind::TYPE_TAG => self.spell(self.target(&t), depth + 1),
            Kind::ARRAY => format!("{}[{}]", self.spell(self.id_in(t.src, u32_at(t.rest, 0).unwrap_or(0)), depth + 1), u32_at(t.rest, 8).unwrap_or(0)),
            Kind::STRUCT if name.is_empty() => "struct {...}".into(),
            Kind::UNION if name.is_empty() => "union {...}".into(),
            Kind::STRUCT => format!("struct {name}"),
            Kind::UNION => format!("union {name}"),
            Kind::ENUM | Kind::ENUM64 => format!("enum {name}"),
            Kind::FUNC_PROTO => "function".into(),
            _ => name,
        }
    }
}

fn no_member(strukt: &str, member: &str) -> Error {
    Error::NoMember { strukt: strukt.into(), member: member.into() }
}

fn not_a(what: &str, expected: &'static str) -> Error {
    Error::NotA { what: what.into(), expected }
}

/// A variable of a DATASEC: its offset and size there, and its type.
#[derive(Clone, Copy)]
struct SectionVar {
    offset: u32,
    size: u32,
    ty: u32,
}

/// The DATASEC of per-CPU variables.
const PERCPU_SECTION: &str = ".data..percpu";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::write::{BtfBuilder, BtfMember, DatasecVar};
    use crate::btf::{TypeId, VarLinkage};

    fn members(list: &[(&str, TypeId, u32)]) -> Vec<BtfMember> {
        list.iter().map(|&(name, ty, byte)| BtfMember { name: name.to_string(), ty, bit_offset: byte * 8 }).collect()
    }

    /// A small kernel: a task_struct (comm at byte 24, se at 48), the
    /// scheduler structs on the way to `struct rq`, and per-CPU
    /// `__preempt_count` (at 0x40) and `runqueues` (at 0x1000).
    fn sample(comm_len: u32, group_sched: bool) -> Vec<u8> {
        sample_builder(comm_len, group_sched).to_bytes()
    }

    fn sample_builder(comm_len: u32, group_sched: bool) -> BtfBuilder {
        let mut b = BtfBuilder::new();
        let int = b.add_int("int", 4, true);
        let ch = b.add_int("char", 1, true);
        let long = b.add_int("long", 8, true);
        let comm = b.add_array(ch, int, comm_len);
        let rq = b.add_struct("rq", 64, &members(&[("nr_running", int, 0), ("nr_switches", int, 8)]));
        let rq_ptr = b.add_ptr(rq);
        let cfs_rq = b.add_struct("cfs_rq", 32, &members(&[("load", long, 0), ("rq", rq_ptr, 16)]));
        let cfs_ptr = b.add_ptr(cfs_rq);
        let se_members = if group_sched { members(&[("load", long, 0), ("cfs_rq", cfs_ptr, 8)]) } else { members(&[("load", long, 0)]) };
        let se = b.add_struct("sched_entity", 16, &se_members);
        let task = members(&[("state", long, 0), ("pad", long, 8), ("prio", int, 16), ("comm", comm, 24), ("se", se, 48)]);
        b.add_struct("task_struct", 64, &task);
        let count_t = b.add_typedef("count_t", int);
        let preempt = b.add_var("__preempt_count", count_t, VarLinkage::GlobalAllocated);
        let runqueues = b.add_var("runqueues", rq, VarLinkage::GlobalAllocated);
        let names = b.add_var("names", comm, VarLinkage::GlobalAllocated);
        let vars = [
            DatasecVar { var: preempt, offset: 0x40, size: 4 },
            DatasecVar { var: names, offset: 0x80, size: comm_len },
            DatasecVar { var: runqueues, offset: 0x1000, size: 64 },
        ];
        b.add_datasec(".data..percpu", 0x1040, &vars);
        b
    }

    #[test]
    fn finds_comm_and_a_way_to_a_percpu_int() {
        let bytes = sample(16, true);
        let r = BtfReader::new(&bytes).expect("parse");
        assert_eq!(r.task_comm_offset(), Ok(24));
        // Ints 1-3; `prio` is an int.
        assert_eq!(r.member("task_struct", "prio"), Ok((16, 1)));
        // se at 48 + cfs_rq at 8; rq at 16; 0x40 - 0x1000.
        assert_eq!(r.percpu_access("__preempt_count"), Ok(PercpuAccess { chain: vec![56, 16], delta: -0xfc0, size: 4 }));
        assert!(r.percpu_access("names").unwrap_err().to_string().ends_with("`names` is not an integer"));
        assert_eq!(r.percpu_access("nope"), Err(Error::NoPercpuVar { name: "nope".into() }));
        assert_eq!(r.member("task_struct", "nope"), Err(no_member("task_struct", "nope")));
        assert!(r.member("mm_struct", "x").unwrap_err().to_string().contains("no `struct mm_struct`"));
        // A plain member is no one-bit field (the running kernel's
        // `in_iowait` is: tests/kernel.rs).
        assert!(r.one_bit_member("task_struct", "prio").unwrap_err().to_string().contains("a one-bit field"));
        assert_eq!(r.one_bit_member("task_struct", "nope"), Err(no_member("task_struct", "nope")));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let bytes = sample(24, false);
        let r = BtfReader::new(&bytes).expect("parse");
        assert!(r.task_comm_offset().unwrap_err().to_string().contains("16-byte"));
        assert!(r.percpu_access("__preempt_count").unwrap_err().to_string().contains("CONFIG_FAIR_GROUP_SCHED"));
    }

    /// Modules' BTF, counting how often the reader asks for it.
    struct Modules {
        list: Vec<ModuleBtf>,
        asked: std::cell::Cell<u32>,
    }

    impl SplitSource for Modules {
        fn modules(&self) -> &[ModuleBtf] {
            self.asked.set(self.asked.get() + 1);
            &self.list
        }
    }

    /// `sample`'s kernel and three modules on it: `alpha` (a struct
    /// pointing at vmlinux's task_struct and at a struct of its own, a
    /// BTF tracepoint, a function), `broken` (not BTF), and `beta`, whose
    /// types have the same split ids as alpha's.
    fn with_modules() -> (Vec<u8>, Modules) {
        let kernel = sample_builder(16, true);
        let vmlinux = kernel.to_bytes();
        let mark = kernel.split_mark();
        let task = BtfReader::new(&vmlinux).unwrap().find(Kind::STRUCT, "task_struct").unwrap().unwrap();
        let (int, ch) = (TypeId(1), TypeId(2));

        let mut a = kernel.clone();
        let queue = a.add_struct("alpha_queue", 16, &members(&[("depth", int, 0)]));
        let queue_ptr = a.add_ptr(queue);
        let task_ptr = a.add_ptr(task);
        let name = a.add_array(ch, int, 8);
        let dev = a.add_struct("alpha_dev", 40, &members(&[("id", int, 0), ("owner", task_ptr, 8), ("name", name, 16), ("queue", queue_ptr, 24)]));
        let dev_ptr = a.add_ptr(dev);
        let void_ptr = a.add_ptr(TypeId::VOID);
        let event = a.add_func_proto(TypeId::VOID, &[("__data", void_ptr), ("dev", dev_ptr)]);
        let event_ptr = a.add_ptr(event);
        a.add_typedef("btf_trace_alpha_event", event_ptr);
        let open = a.add_func_proto(int, &[("dev", dev_ptr), ("flags", int)]);
        a.add_func("alpha_open", open, crate::btf::FuncLinkage::Global);

        let mut b = kernel.clone();
        b.add_struct("beta_ctx", 8, &members(&[("hits", int, 4)]));

        let list = vec![ModuleBtf::new("alpha", a.split_bytes(mark)), ModuleBtf::new("broken", b"not btf".to_vec()), ModuleBtf::new("beta", b.split_bytes(mark))];
        (vmlinux, Modules { list, asked: Default::default() })
    }

    #[test]
    fn modules_are_searched_after_vmlinux_with_ids_of_their_own() {
        let (vmlinux, modules) = with_modules();
        let r = BtfReader::new(&vmlinux).unwrap().with_modules(&modules);
        // vmlinux answers what it has without reading a module.
        let task = r.find(Kind::STRUCT, "task_struct").unwrap().unwrap();
        assert_eq!(r.task_comm_offset(), Ok(24));
        assert_eq!(modules.asked.get(), 0);

        let dev = r.find(Kind::STRUCT, "alpha_dev").unwrap().expect("alpha's struct");
        assert_eq!(modules.asked.get(), 1);
        assert_eq!(r.module_of(dev), Some("alpha"));
        assert_eq!(r.module_of(task), None);
        let Ok(TypeDesc::Composite { name, size: 40, members, .. }) = r.describe(dev) else { panic!("{:?}", r.describe(dev)) };
        assert_eq!(name, "alpha_dev");
        let names: Vec<String> = members.iter().map(|m| format!("{} {}", r.type_name(m.ty), m.name)).collect();
        assert_eq!(names, ["int id", "struct task_struct * owner", "char[8] name", "struct alpha_queue * queue"]);
        // A pointer to vmlinux's type is vmlinux's id; to the module's own,
        // the module's.
        assert_eq!(r.describe(members[1].ty), Ok(TypeDesc::Ptr { to: task, tag: None }));
        let Ok(TypeDesc::Ptr { to: queue, .. }) = r.describe(members[3].ty) else { panic!() };
        assert_eq!(r.module_of(queue), Some("alpha"));
        assert!(matches!(r.describe(queue), Ok(TypeDesc::Composite { ref name, .. }) if name == "alpha_queue"));

        // beta's first type has the split id alpha's first has, and an id
        // of its own here.
        let ctx = r.find(Kind::STRUCT, "beta_ctx").unwrap().expect("beta's struct");
        assert_eq!(r.module_of(ctx), Some("beta"));
        assert_ne!(ctx, queue);
        assert_eq!(ctx.0 - MODULE_STRIDE * 2, queue.0);
        let Ok(TypeDesc::Composite { members, .. }) = r.describe(ctx) else { panic!() };
        assert_eq!((members[0].name.as_str(), r.type_name(members[0].ty)), ("hits", "int".to_string()));

        // Tracepoints and functions of modules, for globs and arguments.
        let events = r.names_with_prefix(Kind::TYPEDEF, "btf_trace_").unwrap();
        assert_eq!(events, ["alpha_event"]);
        let open = r.find(Kind::FUNC, "alpha_open").unwrap().unwrap();
        let params: Vec<String> = r.params(open).unwrap().into_iter().map(|(n, t)| format!("{} {n}", r.type_name(t))).collect();
        assert_eq!(params, ["struct alpha_dev * dev", "int flags"]);
        assert_eq!(r.type_name(r.returns(open).unwrap()), "int");
        assert_eq!(modules.asked.get(), 1, "modules are read once per reader");

        // A fresh reader names the module of an id another one handed out.
        let fresh = BtfReader::new(&vmlinux).unwrap().with_modules(&modules);
        assert_eq!(fresh.module_of(ctx), Some("beta"));
        assert_eq!(fresh.module_of(task), None);

        // Without modules, none of it is there; ids past the last are none.
        let plain = BtfReader::new(&vmlinux).unwrap();
        assert_eq!(plain.find(Kind::STRUCT, "alpha_dev"), Ok(None));
        assert!(plain.describe(dev).is_err());
        assert!(r.describe(TypeId(u32::MAX)).is_err());
    }

    #[test]
    fn malformed_modules_are_errors_not_panics() {
        let (vmlinux, modules) = with_modules();
        let alpha = &modules.list[0].data;
        // Every truncation of alpha's type section answers or errs.
        for cut in 0..alpha.len() {
            let mut m = alpha.clone();
            m.truncate(cut.max(24));
            if cut >= 24 {
                let len = (cut - 24) as u32;
                m[12..16].copy_from_slice(&len.min(u32::from_le_bytes(alpha[12..16].try_into().unwrap())).to_le_bytes());
            }
            let list = vec![ModuleBtf::new("alpha", m)];
            let r = BtfReader::new(&vmlinux).unwrap().with_modules(&list);
            if let Ok(Some(id)) = r.find(Kind::STRUCT, "alpha_dev") {
                let _ = r.describe(id);
                let _ = r.type_name(id);
            }
            let _ = r.names_with_prefix(Kind::FUNC, "");
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let bytes = sample(16, true);
        assert!(BtfReader::new(&[]).is_err());
        assert!(BtfReader::new(&bytes[..10]).is_err());
        let mut swapped = bytes.clone();
        swapped.swap(0, 1);
        assert!(matches!(BtfReader::new(&swapped), Err(Error::OtherByteOrder)));
        // Every truncation of the type section answers or reports an
        // error; none answers with what is not there.
        let type_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        for cut in 0..type_len {
            let mut b = bytes.clone();
            b[12..16].copy_from_slice(&(cut as u32).to_le_bytes());
            if let Ok(r) = BtfReader::new(&b) {
                let _ = r.task_comm_offset();
                assert!(r.percpu_access("__preempt_count").is_err(), "cut at {cut}");
            }
        }
        // An unknown kind stops the walk with an error.
        let mut b = bytes.clone();
        b[24 + 7] = 0x1f;
        let r = BtfReader::new(&b).expect("header");
        assert!(r.task_comm_offset().unwrap_err().to_string().contains("unknown kind 31"));
    }
}
