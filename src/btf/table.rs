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
/// described (typedefs and qualifiers already followed) with its C
/// spelling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeTable {
    types: Vec<(TypeDesc, String)>,
}

impl TypeTable {
    pub fn new() -> TypeTable {
        TypeTable::default()
    }

    /// Adds a type; its id.
    pub fn add(&mut self, desc: TypeDesc, spelled: String) -> TypeId {
        self.types.push((desc, spelled));
        TypeId(self.types.len() as u32)
    }

    /// Replaces type `id` (filled in after its id was handed out, as a
    /// struct pointing to itself needs).
    pub fn set(&mut self, id: TypeId, desc: TypeDesc, spelled: String) {
        if let Some(slot) = (id.0 as usize).checked_sub(1).and_then(|i| self.types.get_mut(i)) {
            *slot = (desc, spelled);
        }
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

impl TypeSource for TypeTable {
    fn describe(&self, id: TypeId) -> Result<TypeDesc, String> {
        if id == TypeId::VOID {
            return Ok(TypeDesc::Void);
        }
        (id.0 as usize).checked_sub(1).and_then(|i| self.types.get(i)).map(|(d, _)| d.clone()).ok_or_else(|| format!("no type {}", id.0))
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
}
