//! The `max` aggregate's update code (`ir::agg::max`): `min`'s with the
//! comparison turned round (`codegen::agg::min`).

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::{JmpOp, Reg};

pub(super) struct Max;

impl UpdateCode for Max {
    fn first_entry(&self, _: &mut Gen, _: Loc) -> Option<Loc> {
        None
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        super::min::extreme(g, entry, value, shared, JmpOp::Jsge);
    }
}
