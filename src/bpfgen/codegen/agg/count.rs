//! The `count` aggregate's update code: the lowered value is always 1, so
//! it inserts and adds like a sum (`codegen::agg::sum`). Never decides the
//! layout (`ir::agg::count`).

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::Reg;

pub(super) struct Count;

impl UpdateCode for Count {
    fn first_entry(&self, g: &mut Gen, value: Loc) -> Option<Loc> {
        super::sum::Sum.first_entry(g, value)
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        super::sum::Sum.update(g, entry, value, shared);
    }
}
