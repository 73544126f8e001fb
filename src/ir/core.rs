//! CO-RE field records: for each kernel field offset a probe's code
//! holds, the members it was read through, as the compiling kernel's BTF
//! laid them out, so the object can name them in `.BTF.ext` and a loader
//! can move the offset to another kernel's layout. Plain data; never
//! computes a layout itself.

/// One offset of a [`super::Path`] that came from the kernel's BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreField {
    /// Which offset: `derefs[step]`, or the final `offset` when `step`
    /// equals the number of derefs.
    pub step: u32,
    /// The struct or union the members start from.
    pub root: CoreComposite,
    /// The members read through, outermost first; each but the last is a
    /// [`CoreTy::Composite`] holding the next. Their offsets add up to the
    /// path's offset at `step`.
    pub members: Vec<CoreMember>,
}

/// A struct or union as the kernel's BTF names (empty: anonymous) and
/// sizes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoreComposite {
    pub name: String,
    pub size: u32,
    pub union: bool,
}

/// A member on the way: its name (empty: an anonymous struct or union),
/// byte offset in its parent and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreMember {
    pub name: String,
    pub offset: u32,
    pub ty: CoreTy,
    /// Elements taken of an array member (`arr[2][1]`), outermost first;
    /// the next member, if any, is one of the element's.
    pub indexes: Vec<u32>,
    /// A bitfield (the last member): its bit offset in its parent and its
    /// width; `offset` is then where the word read that holds it starts.
    pub bitfield: Option<(u32, u32)>,
}

/// What a member holds, as far as a loader compares it with another
/// kernel's member of that name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreTy {
    Int { size: u32, signed: bool },
    Enum { name: String, size: u32 },
    Ptr,
    Array { elem: Box<CoreTy>, len: u32 },
    Composite(CoreComposite),
}

impl CoreTy {
    /// Bytes a value of the type takes.
    pub fn size(&self) -> u64 {
        match self {
            CoreTy::Int { size, .. } | CoreTy::Enum { size, .. } => u64::from(*size),
            CoreTy::Ptr => 8,
            CoreTy::Array { elem, len } => elem.size() * u64::from(*len),
            CoreTy::Composite(c) => u64::from(c.size),
        }
    }

    /// The element type `depth` arrays in (itself at 0).
    pub fn element(&self, depth: usize) -> &CoreTy {
        match self {
            CoreTy::Array { elem, .. } if depth > 0 => elem.element(depth - 1),
            other => other,
        }
    }
}

impl CoreField {
    /// The byte offset the members (and array elements) add up to: what
    /// the path holds at `step`.
    pub fn offset(&self) -> u64 {
        self.members
            .iter()
            .map(|m| {
                let mut at = u64::from(m.offset);
                for (depth, i) in m.indexes.iter().enumerate() {
                    at += u64::from(*i) * m.ty.element(depth + 1).size();
                }
                at
            })
            .sum()
    }

    /// `struct task_struct.real_parent`, for dumps.
    pub fn describe(&self) -> String {
        let kind = if self.root.union { "union" } else { "struct" };
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let name = if m.name.is_empty() { "(anon)" } else { m.name.as_str() };
                let idx: String = m.indexes.iter().map(|i| format!("[{i}]")).collect();
                format!("{name}{idx}")
            })
            .collect();
        format!("{kind} {}.{}", self.root.name, names.join("."))
    }
}
