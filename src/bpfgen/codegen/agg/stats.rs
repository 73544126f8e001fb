//! The `stats` aggregate's update code: the same count and total as
//! `avg` (`codegen::agg::avg`; `ir::agg::stats` shares its layout).

use super::super::{Gen, Loc};
use super::UpdateCode;
use crate::bpfgen::insn::Reg;

pub(super) struct Stats;

impl UpdateCode for Stats {
    fn first_entry(&self, g: &mut Gen, value: Loc) -> Option<Loc> {
        super::avg::Avg.first_entry(g, value)
    }

    fn update(&self, g: &mut Gen, entry: Reg, value: Reg, shared: bool) {
        super::avg::Avg.update(g, entry, value, shared);
    }
}
