//! CO-RE in the object: from the field records codegen left on its
//! instructions (`ir::core::CoreField`), the local BTF types a loader
//! matches against the running kernel's by name (each struct or union
//! with only the members the probes read, at the offsets the compiling
//! kernel gave), and the `.BTF.ext` field-offset records
//! (`BPF_CORE_FIELD_BYTE_OFFSET`, access strings `0:i:j` of member
//! indices in those local types). Pure; never reads a kernel's BTF.

use crate::btf::write::{BtfBuilder, BtfMember, CoreRelo};
use crate::btf::TypeId;
use crate::ir::core::{CoreComposite, CoreField, CoreTy};
use std::collections::BTreeMap;

/// `enum bpf_core_relo_kind` (tools/lib/bpf/relo_core.h): the field's
/// byte offset (for a bitfield, where the word read holding it starts).
pub const FIELD_BYTE_OFFSET: u32 = 0;
/// A field's size in bytes (for a bitfield, the word read holding it).
pub const FIELD_BYTE_SIZE: u32 = 1;
/// A bitfield's left shift: what brings its top bit to bit 63 of the
/// word read, zero-extended to 64 bits.
pub const FIELD_LSHIFT_U64: u32 = 4;
/// A bitfield's right shift after it: 64 minus its width.
pub const FIELD_RSHIFT_U64: u32 = 5;

/// A bitfield member's bit offset and width (None: a whole member).
type Bitfield = Option<(u32, u32)>;

/// A struct or union of the local BTF: its identity (a name, or for an
/// anonymous one the member that holds it), its shape, its members.
struct Local {
    composite: CoreComposite,
    /// By offset (a bitfield's word's) and name: type, and a bitfield's
    /// bit offset and width.
    members: BTreeMap<(u32, String), (CoreTy, Bitfield)>,
}

/// The local types of one object, built from every record.
#[derive(Default)]
pub struct LocalTypes {
    /// Keyed by identity; in order of first sight.
    order: Vec<String>,
    locals: BTreeMap<String, Local>,
    ids: BTreeMap<String, TypeId>,
}

fn key_of(c: &CoreComposite, parent: &str, member_offset: u32) -> String {
    let kind = if c.union { "union" } else { "struct" };
    if c.name.is_empty() {
        format!("{parent}/{member_offset}:{kind}")
    } else {
        format!("{kind} {}", c.name)
    }
}

impl LocalTypes {
    /// Notes the members a record reads.
    pub fn add(&mut self, f: &CoreField) {
        let mut key = key_of(&f.root, "", 0);
        self.see(&key, &f.root);
        for m in &f.members {
            let next = match m.ty.element(m.indexes.len()) {
                CoreTy::Composite(c) => Some((key_of(c, &key, m.offset), c.clone())),
                _ => None,
            };
            if let Some(local) = self.locals.get_mut(&key) {
                local.members.insert((m.offset, m.name.clone()), (m.ty.clone(), m.bitfield));
            }
            let Some((next_key, c)) = next else { break };
            self.see(&next_key, &c);
            key = next_key;
        }
    }

    fn see(&mut self, key: &str, c: &CoreComposite) {
        if let Some(local) = self.locals.get_mut(key) {
            // Records may size it differently: the local type holds all.
            local.composite.size = local.composite.size.max(c.size);
        } else {
            self.order.push(key.to_string());
            self.locals.insert(key.to_string(), Local { composite: c.clone(), members: BTreeMap::new() });
        }
    }

    /// Adds the types to `b`: composites first, their members typed once
    /// every composite has its id (BTF ids may point forward).
    pub fn write(&mut self, b: &mut BtfBuilder, int_index: TypeId) {
        let first = b.type_count() as u32 + 1;
        for (i, key) in self.order.iter().enumerate() {
            self.ids.insert(key.clone(), TypeId(first + i as u32));
        }
        let mut shapes = Vec::new();
        for key in &self.order {
            let Some(local) = self.locals.get(key) else { continue };
            let members: Vec<(String, u32, CoreTy)> =
                local.members.iter().map(|((off, name), (ty, _))| (name.clone(), *off, ty.clone())).collect();
            let list: Vec<BtfMember> = local
                .members
                .iter()
                .map(|((off, name), (_, bitfield))| BtfMember { name: name.clone(), ty: TypeId::VOID, bit_offset: bitfield.map_or(off * 8, |(bit, _)| bit) })
                .collect();
            let c = &local.composite;
            let id = if c.union { b.add_union(&c.name, c.size, &list) } else { b.add_struct(&c.name, c.size, &list) };
            for (mi, (_, bitfield)) in local.members.values().enumerate() {
                if let Some((_, width)) = bitfield {
                    b.set_member_bits(id, mi, *width);
                }
            }
            shapes.push((id, key.clone(), members));
        }
        for (id, key, members) in shapes {
            for (mi, (_, off, ty)) in members.iter().enumerate() {
                let ty_id = self.type_of(b, &key, *off, ty, int_index);
                b.set_member_type(id, mi, ty_id);
            }
        }
    }

    fn type_of(&self, b: &mut BtfBuilder, parent: &str, off: u32, ty: &CoreTy, int_index: TypeId) -> TypeId {
        match ty {
            CoreTy::Int { size, signed } => b.add_int(if *signed { "int" } else { "unsigned int" }, *size, *signed),
            CoreTy::Enum { name, size: 4 } => b.add_enum::<&str>(name, &[]),
            CoreTy::Enum { size, .. } => b.add_int("unsigned int", *size, false),
            CoreTy::Ptr => b.add_ptr(TypeId::VOID),
            CoreTy::Array { elem, len } => {
                let e = self.type_of(b, parent, off, elem, int_index);
                b.add_array(e, int_index, *len)
            }
            CoreTy::Composite(c) => self.ids.get(&key_of(c, parent, off)).copied().unwrap_or(TypeId::VOID),
        }
    }

    /// The record of `f` (of `kind`) on the instruction at
    /// `insn_byte_off`: its root's local id and access string of local
    /// member indices.
    pub fn relo(&self, b: &mut BtfBuilder, f: &CoreField, insn_byte_off: u32, kind: u32) -> Option<CoreRelo> {
        let mut key = key_of(&f.root, "", 0);
        let root = *self.ids.get(&key)?;
        let mut access = String::from("0");
        for m in &f.members {
            let local = self.locals.get(&key)?;
            let index = local.members.keys().position(|k| *k == (m.offset, m.name.clone()))?;
            access.push_str(&format!(":{index}"));
            for i in &m.indexes {
                access.push_str(&format!(":{i}"));
            }
            if let CoreTy::Composite(c) = m.ty.element(m.indexes.len()) {
                key = key_of(c, &key, m.offset);
            }
        }
        Some(CoreRelo { insn_byte_off, type_id: root, access: b.add_string(&access), kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::write::BtfBuilder;
    use crate::ir::core::CoreMember;

    fn task() -> CoreComposite {
        CoreComposite { name: "task_struct".into(), size: 64, union: false }
    }

    fn member(name: &str, offset: u32, ty: CoreTy) -> CoreMember {
        CoreMember { name: name.into(), offset, ty, indexes: Vec::new(), bitfield: None }
    }

    #[test]
    fn access_strings_index_the_local_members() {
        let se = CoreComposite { name: "sched_entity".into(), size: 16, union: false };
        let pid = CoreField { step: 0, root: task(), members: vec![member("prio", 24, CoreTy::Int { size: 4, signed: true })] };
        let runtime = CoreField {
            step: 1,
            root: task(),
            members: vec![member("se", 32, CoreTy::Composite(se)), member("sum_exec_runtime", 8, CoreTy::Int { size: 8, signed: false })],
        };
        let parent = CoreField { step: 0, root: task(), members: vec![member("real_parent", 8, CoreTy::Ptr)] };
        let chars = CoreTy::Array { elem: Box::new(CoreTy::Int { size: 1, signed: true }), len: 16 };
        let letter = CoreField { step: 0, root: task(), members: vec![CoreMember { indexes: vec![3], ..member("comm", 48, chars) }] };
        let mut locals = LocalTypes::default();
        for f in [&pid, &runtime, &parent, &letter] {
            locals.add(f);
        }
        let mut b = BtfBuilder::new();
        let index = b.add_int("__ARRAY_SIZE_TYPE__", 4, false);
        locals.write(&mut b, index);
        b.validate().expect("valid BTF");
        // task_struct's members sorted by offset: real_parent, pid, se.
        let access = |f: &CoreField, b: &mut BtfBuilder| {
            let r = locals.relo(b, f, 8, FIELD_BYTE_OFFSET).expect("a record");
            assert_eq!((r.type_id, r.kind), (TypeId(2), FIELD_BYTE_OFFSET));
            b.string_at(r.access).map(str::to_string)
        };
        assert_eq!(access(&parent, &mut b).as_deref(), Some("0:0"));
        assert_eq!(access(&pid, &mut b).as_deref(), Some("0:1"));
        assert_eq!(access(&runtime, &mut b).as_deref(), Some("0:2:0"));
        // An array element: its index follows the member's.
        assert_eq!(access(&letter, &mut b).as_deref(), Some("0:3:3"));
    }

    #[test]
    fn a_bitfield_is_a_flagged_member_at_its_bit() {
        use crate::btf::read::{BtfReader, TypeDesc};
        // Bit 9 of the word at byte 4 (bit 41 of the struct), one bit wide.
        let flag = CoreMember { bitfield: Some((41, 1)), ..member("in_execve", 4, CoreTy::Int { size: 4, signed: false }) };
        let field = CoreField { step: 0, root: task(), members: vec![flag] };
        let prio = CoreField { step: 0, root: task(), members: vec![member("prio", 8, CoreTy::Int { size: 4, signed: true })] };
        let mut locals = LocalTypes::default();
        locals.add(&field);
        locals.add(&prio);
        let mut b = BtfBuilder::new();
        let index = b.add_int("__ARRAY_SIZE_TYPE__", 4, false);
        locals.write(&mut b, index);
        b.validate().expect("valid BTF");
        for kind in [FIELD_BYTE_OFFSET, FIELD_LSHIFT_U64, FIELD_RSHIFT_U64] {
            let r = locals.relo(&mut b, &field, 16, kind).expect("a record");
            assert_eq!((r.kind, b.string_at(r.access)), (kind, Some("0:0")));
        }
        let bytes = b.to_bytes();
        let reader = BtfReader::new(&bytes).expect("parse");
        let Ok(TypeDesc::Composite { members, .. }) = reader.describe(TypeId(2)) else { panic!("no struct") };
        let shape: Vec<(String, u32, u32)> = members.into_iter().map(|m| (m.name, m.bit_offset, m.bits)).collect();
        assert_eq!(shape, [("in_execve".to_string(), 41, 1), ("prio".to_string(), 64, 0)]);
    }
}
