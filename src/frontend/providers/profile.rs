//! `profile-N { }`: a body run on every CPU (or the `-C` one) by a
//! software cpu-clock perf event every N. It has no spec syntax (the
//! lexer's timer token) and nothing to read: `argN` and event fields are
//! errors ([`super::NoArgs`]). Pure.

use crate::frontend::ast;
use crate::ir::Attach;

/// The attach point of `profile-N`; None for a period the parser
/// refused (zero).
pub fn attach(period: &ast::Period) -> Option<Attach> {
    (period.nanos != 0).then(|| Attach::Profile { period_ns: period.nanos, name: format!("profile-{}", period_text(period.nanos)) })
}

/// `1s`, `100ms`, `10us` or `5ns`: the largest unit that divides.
pub fn period_text(ns: u64) -> String {
    for (unit, size) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
        if ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}
