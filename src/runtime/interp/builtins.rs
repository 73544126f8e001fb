//! The interpreter's view of the builtins registry (`crate::builtins`):
//! which builtins userspace has, under which global or namespace, and the
//! call into one. Builtins write only to the output they are given and
//! never call back into ktap code.

use super::error::Throw;
use super::value::Value;
pub use crate::builtins::BuiltinId as Builtin;

/// Every builtin userspace can run, as `(namespace, name, builtin)`:
/// `print` is a global, `table.new` a field of the global table `table`.
pub fn userspace() -> impl Iterator<Item = (Option<&'static str>, &'static str, Builtin)> {
    crate::builtins::all().filter(|(_, d)| d.user.is_some()).map(|(b, d)| (d.namespace, d.name, b))
}

/// The userspace builtin `namespace.name` (or the global `name`).
pub fn find(namespace: Option<&str>, name: &str) -> Option<Builtin> {
    crate::builtins::find(namespace, name).filter(|b| b.def().user.is_some())
}

/// Whether a call of `b` registers kernel probes (lowered as probes; it
/// does nothing in userspace).
pub fn registers_probe(b: Builtin) -> bool {
    b.def().namespace == Some(crate::builtins::PROBE_NAMESPACE)
}

/// Runs `b` on `args`, writing any output to `out`.
pub(crate) fn call(b: Builtin, args: &[Value], out: &mut dyn crate::runtime::output::Output) -> Result<Value, Throw> {
    crate::builtins::call_user(b, args, out)
}
