//! Kernel function trampolines (`ProgKind::Fentry`, `ProgKind::Fexit`):
//! each program was compiled for one function (its section
//! `fentry/FUNC` or `fexit/FUNC` names the target libbpf resolves in the
//! kernel's BTF at load) and attaches with one link. Some kernels refuse
//! these programs at load (no trampolines, or lockdown): the session
//! adds [`Attacher::refused`]'s explanation to that error. Never writes
//! tracefs.

use super::{AttachCx, Attacher};
use libbpf_rs::ProgramMut;

pub struct Fentry;

impl Attacher for Fentry {
    fn refused(&self, _points: &[&crate::ir::Attach]) -> Option<&'static str> {
        Some(
            "this kernel refuses fentry/fexit programs (BPF trampolines: CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, \
             or a lockdown that forbids them); kprobes (`probe:FUNC`) reach kernel functions where the kernel has them, \
             and `btf:` tracepoints give typed arguments",
        )
    }

    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), crate::runtime::session::Error> {
        for &i in &cx.info.attach {
            if cx.stopped() {
                break;
            }
            let result = prog.attach_trace();
            cx.point_result(i, result)?;
        }
        Ok(())
    }
}
