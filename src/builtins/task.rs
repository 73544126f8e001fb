//! The current task and CPU: `pid`, `tid`, `uid`, `gid`, `cgroup`, `cpu`, `execname`,
//! `in_interrupt()`, `in_iowait()`, `curtask` (the task's `struct
//! task_struct *`, typed for member chains). Probes only: userspace has no
//! current event.

use super::{Call, Def, Form, Kernel, KernelCx};
use crate::frontend::diag::Diagnostic;
use crate::ir::{self, ExprKind, HelperFn, Part, Ty};

/// The per-CPU variable holding the preempt count (x86-64).
const PREEMPT_COUNT: &str = "__preempt_count";
/// NMI_MASK | HARDIRQ_MASK | SOFTIRQ_MASK (include/linux/preempt.h).
const IRQ_MASK: i64 = 0x00ff_ff00;

const fn helper_value(name: &'static str, lower: super::LowerValue) -> Def {
    Def { namespace: None, name, form: Form::Name, kernel: Some(Kernel::Value { ty: Ty::Int, lower }), user: None }
}

pub(super) const DEFS: &[Def] = &[
    // Thread group id: the process id users see.
    helper_value("pid", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_CURRENT_PID_TGID, part: Part::High32 }, Ty::Int))),
    helper_value("tid", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_CURRENT_PID_TGID, part: Part::Low32 }, Ty::Int))),
    helper_value("uid", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_CURRENT_UID_GID, part: Part::Low32 }, Ty::Int))),
    helper_value("gid", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_CURRENT_UID_GID, part: Part::High32 }, Ty::Int))),
    // The cgroup v2 id: the inode number of the task's cgroup directory.
    helper_value("cgroup", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_CURRENT_CGROUP_ID, part: Part::All }, Ty::Int))),
    helper_value("cpu", |_, c| Some(c.value(ExprKind::Helper { func: HelperFn::GET_SMP_PROCESSOR_ID, part: Part::All }, Ty::Int))),
    Def { namespace: None, name: "execname", form: Form::Name, kernel: Some(Kernel::Value { ty: Ty::Comm, lower: execname }), user: None },
    Def {
        namespace: None,
        name: "curtask",
        form: Form::Name,
        kernel: Some(Kernel::Typed { strukt: "task_struct", base: ir::PathBase::CurrentTask }),
        user: None,
    },
    Def {
        namespace: None,
        name: "in_interrupt",
        form: Form::Call,
        kernel: Some(Kernel::Value { ty: Ty::Int, lower: in_interrupt }),
        user: None,
    },
    Def { namespace: None, name: "in_iowait", form: Form::Call, kernel: Some(Kernel::Value { ty: Ty::Int, lower: in_iowait }), user: None },
];

/// The current task's `in_iowait` bit (set while it waits for I/O it
/// issued: io_schedule()), read from the task at the bit the kernel's BTF
/// gives, as 0 or 1.
fn in_iowait(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    c.no_args(cx);
    let bit = match cx.task_flag_bit("in_iowait") {
        Ok(bit) => bit,
        Err(why) => {
            cx.diag(Diagnostic::error(c.span, format!("in_iowait() needs `task_struct.in_iowait` from the kernel's BTF: {why}")).with_label("not available on this kernel"));
            return None;
        }
    };
    let path = ir::Path::plain(ir::PathBase::CurrentTask, Vec::new(), i64::from(bit / 8), 1, ir::Via::ProbeRead);
    let byte = c.value(ExprKind::Load(path), Ty::Int);
    let span = Some(c.span);
    let set = ir::Expr::binary(ir::BinOp::BitAnd, byte, ir::Expr::constant(1 << (bit % 8)), span);
    Some(ir::Expr::binary(ir::BinOp::Ne, set, ir::Expr::constant(0), span))
}

/// The command name: two loads from the current task at the offset the
/// kernel's BTF gives, or the helper that copies it when that is unknown.
fn execname(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    let direct = cx.task_comm_offset().filter(|&off| i16::try_from(off).is_ok_and(|o| o.checked_add(8).is_some()));
    let kind = match direct {
        // Saved objects: a typed string read whose offset relocates.
        Some(offset) if let Some(record) = cx.task_comm_record() => {
            let mut path = ir::Path::plain(ir::PathBase::CurrentTask, Vec::new(), i64::from(offset), 16, ir::Via::Direct);
            path.core.push(record);
            ExprKind::Load(path)
        }
        Some(offset) => ExprKind::Load(ir::Path::plain(ir::PathBase::CurrentTask, Vec::new(), i64::from(offset), 16, ir::Via::Direct)),
        None => ExprKind::Helper { func: HelperFn::GET_CURRENT_COMM, part: Part::All },
    };
    Some(c.value(kind, Ty::Comm))
}

/// The kernel's in_interrupt(): the NMI, hardirq and softirq counts of the
/// CPU's preempt count (x86-64 keeps it in the per-CPU `__preempt_count`;
/// bit 31, PREEMPT_NEED_RESCHED, is left out). The record header's flags
/// would say the same but are not filled for BPF programs
/// (kernel/trace/trace_syscalls.c, perf_call_bpf_enter).
fn in_interrupt(cx: &mut dyn KernelCx, c: &Call) -> Option<ir::Expr> {
    c.no_args(cx);
    if cx.only_syscalls() {
        // Syscall events fire in process context only.
        return Some(c.value(ExprKind::Const(0), Ty::Int));
    }
    let access = match cx.percpu_var(PREEMPT_COUNT) {
        Ok(access) => access,
        Err(why) => {
            cx.diag(
                Diagnostic::error(c.span, format!("in_interrupt() needs the kernel's per-CPU preempt count `{PREEMPT_COUNT}`: {why}"))
                    .with_label("not available on this kernel"),
            );
            return None;
        }
    };
    let path = ir::Path::plain(ir::PathBase::CurrentTask, access.chain, access.delta, access.size, ir::Via::ProbeRead);
    let count = c.value(ExprKind::Load(path), Ty::Int);
    let span = Some(c.span);
    let irq = ir::Expr::binary(ir::BinOp::BitAnd, count, ir::Expr::constant(IRQ_MASK), span);
    Some(ir::Expr::binary(ir::BinOp::Ne, irq, ir::Expr::constant(0), span))
}
