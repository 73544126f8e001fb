//! BTF, the kernel's type format: the vocabulary both sides share (type
//! ids, string offsets, kinds, linkages, header constants), the lazy
//! reader ([`mod@read`]) the runtime asks the running kernel's BTF
//! through, and the writer ([`mod@write`]) bpfgen builds an object's
//! `.BTF` and `.BTF.ext` with. Pure: bytes in, bytes out; never does IO
//! (the runtime maps the file and passes the bytes), never panics on any
//! input.
//!
//! Format: the kernel's Documentation/bpf/btf.rst and
//! include/uapi/linux/btf.h.

pub mod read;
pub mod table;
pub mod write;

/// A BTF type id; 0 is `void`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The implicit `void` type.
    pub const VOID: TypeId = TypeId(0);
}

/// An offset into the BTF string table; 0 is the empty string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrOff(pub u32);

impl StrOff {
    /// The empty string (anonymous types).
    pub const EMPTY: StrOff = StrOff(0);
}

/// BTF magic number (btf.h `BTF_MAGIC`).
pub const BTF_MAGIC: u16 = 0xeb9f;
/// BTF format version.
pub const BTF_VERSION: u8 = 1;
/// Size of `struct btf_header`.
pub const BTF_HEADER_LEN: u32 = 24;

/// A type's kind (btf.h `BTF_KIND_*`): bits 24-28 of `btf_type.info`. The
/// writer uses some, the reader all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(pub u32);

impl Kind {
    pub const INT: Kind = Kind(1);
    pub const PTR: Kind = Kind(2);
    pub const ARRAY: Kind = Kind(3);
    pub const STRUCT: Kind = Kind(4);
    pub const UNION: Kind = Kind(5);
    pub const ENUM: Kind = Kind(6);
    pub const FWD: Kind = Kind(7);
    pub const TYPEDEF: Kind = Kind(8);
    pub const VOLATILE: Kind = Kind(9);
    pub const CONST: Kind = Kind(10);
    pub const RESTRICT: Kind = Kind(11);
    pub const FUNC: Kind = Kind(12);
    pub const FUNC_PROTO: Kind = Kind(13);
    pub const VAR: Kind = Kind(14);
    pub const DATASEC: Kind = Kind(15);
    pub const FLOAT: Kind = Kind(16);
    pub const DECL_TAG: Kind = Kind(17);
    pub const TYPE_TAG: Kind = Kind(18);
    pub const ENUM64: Kind = Kind(19);

    /// The kind of a `btf_type.info` word.
    pub fn of_info(info: u32) -> Kind {
        Kind((info >> 24) & 0x1f)
    }
}

/// `BTF_INT_SIGNED` in the INT encoding bits.
pub const BTF_INT_SIGNED: u32 = 1;

/// Linkage of a BTF FUNC (btf.h `enum btf_func_linkage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncLinkage {
    Static,
    Global,
    Extern,
}

impl FuncLinkage {
    /// The number btf.h gives it.
    pub fn code(self) -> u32 {
        match self {
            FuncLinkage::Static => 0,
            FuncLinkage::Global => 1,
            FuncLinkage::Extern => 2,
        }
    }
}

/// Linkage of a BTF VAR (btf.h `BTF_VAR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarLinkage {
    Static,
    GlobalAllocated,
    GlobalExtern,
}

impl VarLinkage {
    /// The number btf.h gives it.
    pub fn code(self) -> u32 {
        match self {
            VarLinkage::Static => 0,
            VarLinkage::GlobalAllocated => 1,
            VarLinkage::GlobalExtern => 2,
        }
    }
}
