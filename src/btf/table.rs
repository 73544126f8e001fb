//! Types described in BTF's vocabulary, whatever their source: the
//! [`TypeSource`] questions member chains ask (what a type is, how C
//! spells it), answered by the kernel's BTF ([`BtfReader`]) and by a
//! [`TypeTable`], plain data another source filled (a user binary's DWARF,
//! converted by the runtime). Pure; never panics.

use super::read::{BtfReader, TypeDesc};
use super::TypeId;

/// What member chains ask of a type source.
pub trait TypeSource {
    /// Type `id` with typedefs and qualifiers followed.
    fn describe(&self, id: TypeId) -> Result<TypeDesc, String>;
    /// Type `id` as C spells it (`struct point *`, `char[16]`).
    fn type_name(&self, id: TypeId) -> String;
}

impl TypeSource for BtfReader<'_> {
    fn describe(&self, id: TypeId) -> Result<TypeDesc, String> {
        BtfReader::describe(self, id).map_err(|e| e.to_string())
    }

    fn type_name(&self, id: TypeId) -> String {
        BtfReader::type_name(self, id)
    }
}

/// Types as plain data: entry `i` is type id `i + 1` (0 is `void`), each
/// described (typedefs and qualifiers followed) with its C spelling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeTable {
    types: Vec<(Entry, String)>,
}

/// A type's description, or the type a typedef or qualifier names (held
/// once, however many names it has: a struct's members are not copied
/// into each typedef of it).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Desc(TypeDesc),
    Alias(TypeId),
}

/// Typedefs and qualifiers followed in a row, at most (a loop of them is
/// an error, not a hang).
const MAX_ALIASES: usize = 32;

impl TypeTable {
    pub fn new() -> TypeTable {
        TypeTable::default()
    }

    /// Adds a type; its id.
    pub fn add(&mut self, desc: TypeDesc, spelled: String) -> TypeId {
        self.types.push((Entry::Desc(desc), spelled));
        TypeId(self.types.len() as u32)
    }

    /// Replaces type `id` (filled in after its id was handed out, as a
    /// struct pointing to itself needs).
    pub fn set(&mut self, id: TypeId, desc: TypeDesc, spelled: String) {
        self.set_entry(id, Entry::Desc(desc), spelled);
    }

    /// Makes type `id` another name of type `to` (a typedef, a
    /// qualified type), described as `to` is whenever asked.
    pub fn set_alias(&mut self, id: TypeId, to: TypeId, spelled: String) {
        self.set_entry(id, Entry::Alias(to), spelled);
    }

    fn set_entry(&mut self, id: TypeId, entry: Entry, spelled: String) {
        if let Some(slot) = (id.0 as usize).checked_sub(1).and_then(|i| self.types.get_mut(i)) {
            *slot = (entry, spelled);
        }
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

impl TypeTable {
    /// The types `roots` reach in `reader` (members, elements, pointed-to
    /// types; at most [`FROM_BTF_MAX`] of them), as a table; the roots'
    /// ids in it, in order. For a small BTF of its own (a BPF map's):
    /// every type a root reaches is described once.
    pub fn from_btf(reader: &BtfReader<'_>, roots: &[TypeId]) -> Result<(TypeTable, Vec<TypeId>), String> {
        use std::collections::HashMap;
        let mut table = TypeTable::new();
        let mut ids: HashMap<u32, TypeId> = HashMap::new();
        let mut todo: Vec<TypeId> = Vec::new();
        // Each reached type gets its id first (a placeholder), then its
        // description with ids remapped.
        let mut map = |table: &mut TypeTable, todo: &mut Vec<TypeId>, old: TypeId| -> TypeId {
            if old == TypeId::VOID {
                return TypeId::VOID;
            }
            *ids.entry(old.0).or_insert_with(|| {
                todo.push(old);
                table.add(TypeDesc::Void, String::new())
            })
        };
        let new_roots: Vec<TypeId> = roots.iter().map(|&r| map(&mut table, &mut todo, r)).collect();
        let mut done = 0;
        while let Some(old) = todo.pop() {
            done += 1;
            if done > FROM_BTF_MAX {
                return Err(format!("the BTF reaches more than {FROM_BTF_MAX} types"));
            }
            let new = map(&mut table, &mut todo, old);
            let desc = match reader.describe(old).map_err(|e| e.to_string())? {
                TypeDesc::Ptr { to, tag } => TypeDesc::Ptr { to: map(&mut table, &mut todo, to), tag },
                TypeDesc::Array { elem, len } => TypeDesc::Array { elem: map(&mut table, &mut todo, elem), len },
                TypeDesc::Composite { union, name, size, members } => {
                    let members = members.into_iter().map(|m| crate::btf::read::MemberDesc { ty: map(&mut table, &mut todo, m.ty), ..m }).collect();
                    TypeDesc::Composite { union, name, size, members }
                }
                other => other,
            };
            table.set(new, desc, reader.type_name(old));
        }
        Ok((table, new_roots))
    }
}

/// Types [`TypeTable::from_btf`] converts, at most.
pub const FROM_BTF_MAX: usize = 10_000;

impl TypeSource for TypeTable {
    fn describe(&self, id: TypeId) -> Result<TypeDesc, String> {
        let mut at = id;
        for _ in 0..MAX_ALIASES {
            if at == TypeId::VOID {
                return Ok(TypeDesc::Void);
            }
            match (at.0 as usize).checked_sub(1).and_then(|i| self.types.get(i)) {
                Some((Entry::Desc(d), _)) => return Ok(d.clone()),
                Some((Entry::Alias(to), _)) => at = *to,
                None => return Err(format!("no type {}", at.0)),
            }
        }
        Err(format!("type {} names types in a loop", id.0))
    }

    fn type_name(&self, id: TypeId) -> String {
        if id == TypeId::VOID {
            return "void".into();
        }
        (id.0 as usize).checked_sub(1).and_then(|i| self.types.get(i)).map_or_else(|| "?".into(), |(_, s)| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_after_void() {
        let mut t = TypeTable::new();
        let int = t.add(TypeDesc::Int { size: 4, signed: true }, "int".into());
        let ptr = t.add(TypeDesc::Void, String::new());
        t.set(ptr, TypeDesc::Ptr { to: int, tag: None }, "int *".into());
        assert_eq!(int, TypeId(1));
        assert_eq!(t.describe(ptr), Ok(TypeDesc::Ptr { to: int, tag: None }));
        assert_eq!(t.type_name(ptr), "int *");
        assert_eq!(t.describe(TypeId::VOID), Ok(TypeDesc::Void));
        assert!(t.describe(TypeId(9)).is_err());
    }

    #[test]
    fn an_alias_is_described_as_what_it_names_when_asked() {
        let mut t = TypeTable::new();
        // A typedef of a struct not yet described (as DWARF may order them).
        let strukt = t.add(TypeDesc::Void, "?".into());
        let name = t.add(TypeDesc::Void, "?".into());
        t.set_alias(name, strukt, "point_t".into());
        let members = vec![crate::btf::read::MemberDesc { name: "x".into(), ty: TypeId::VOID, bit_offset: 0, bits: 0 }];
        let desc = TypeDesc::Composite { union: false, name: "point".into(), size: 4, members };
        t.set(strukt, desc.clone(), "struct point".into());
        assert_eq!(t.describe(name), Ok(desc));
        assert_eq!(t.type_name(name), "point_t");
        // A loop of names is an error, not a hang.
        let (a, b) = (t.add(TypeDesc::Void, String::new()), t.add(TypeDesc::Void, String::new()));
        t.set_alias(a, b, "a".into());
        t.set_alias(b, a, "b".into());
        assert!(t.describe(a).unwrap_err().contains("loop"));
    }

    #[test]
    fn a_btf_becomes_the_types_its_roots_reach() {
        let mut b = crate::btf::write::BtfBuilder::new();
        let unused = b.add_int("long", 8, true);
        let u32_ = b.add_int("unsigned int", 4, false);
        let u64_ = b.add_int("long long unsigned int", 8, false);
        let typedef = b.add_typedef("__u32", u32_);
        let m = |name: &str, ty, bit_offset| crate::btf::write::BtfMember { name: name.to_string(), ty, bit_offset };
        let pair = b.add_struct("pair", 16, &[m("a", typedef, 0), m("b", u64_, 64)]);
        let ptr = b.add_ptr(pair);
        let blob = b.to_bytes();
        let r = BtfReader::new(&blob).expect("btf");
        let (t, roots) = TypeTable::from_btf(&r, &[typedef, ptr]).expect("table");
        assert_eq!(t.describe(roots[0]), Ok(TypeDesc::Int { size: 4, signed: false }));
        assert_eq!(t.type_name(roots[0]), "__u32");
        let Ok(TypeDesc::Ptr { to, .. }) = t.describe(roots[1]) else { panic!("a pointer") };
        let Ok(TypeDesc::Composite { name, size, members, .. }) = t.describe(to) else { panic!("a struct") };
        assert_eq!((name.as_str(), size, members.len()), ("pair", 16, 2));
        assert_eq!(t.describe(members[1].ty), Ok(TypeDesc::Int { size: 8, signed: false }));
        assert_eq!(t.type_name(members[0].ty), "__u32");
        let _ = unused;
        // `__u32`, the pointer, `pair`, the u64: typedefs are followed, `long` is not reached.
        assert_eq!(t.len(), 4);
    }
}
