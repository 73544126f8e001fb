//! BTF-enabled raw tracepoints (`ProgKind::TpBtf`, `btf:EVENT`): each
//! program was compiled for one event (its section `tp_btf/EVENT` names
//! the target libbpf resolves in the kernel's BTF at load) and attaches
//! with one link. Never writes tracefs.

use super::{AttachCx, Attacher};
use libbpf_rs::{libbpf_sys, ProgramMut};

pub struct TpBtf;

impl Attacher for TpBtf {
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

/// Whether the verifier lets a tp_btf program follow argument `arg` of the
/// tracepoint whose `btf_trace_*` typedef is vmlinux type `typedef` as a
/// pointer, asked by loading a five-instruction program that reads one
/// byte through it: refused as a "scalar", the kernel holds it as a
/// number (kernel/bpf/btf.c marks arguments that may carry an error or a
/// special value so). None when the kernel loads no such program here
/// (no privileges, no tp_btf).
pub fn arg_is_pointer(typedef: u32, arg: u32) -> Option<bool> {
    use crate::bpfgen::insn::{Insn, JmpOp, Reg, Size};
    let slot = i16::try_from(arg.checked_mul(8)?).ok()?;
    // r1 = ctx[arg]; if r1 == 0 goto +1; r0 = *(u8 *)(r1 + 0); r0 = 0; exit
    let insns = [
        Insn::ldx(Size::DW, Reg::R1, Reg::R1, slot),
        Insn::jmp_imm(JmpOp::Jeq, Reg::R1, 0, 1),
        Insn::ldx(Size::B, Reg::R0, Reg::R1, 0),
        Insn::mov64_imm(Reg::R0, 0),
        Insn::exit(),
    ];
    let code = Insn::encode_all(&insns);
    let mut log = vec![0u8; 4096];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as libbpf_sys::size_t,
        expected_attach_type: libbpf_sys::BPF_TRACE_RAW_TP,
        attach_btf_id: typedef,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr().cast(),
        ..Default::default()
    };
    // SAFETY: `code` holds five encoded instructions, the layout of
    // `struct bpf_insn`; the options and the log buffer outlive the call.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(libbpf_sys::BPF_PROG_TYPE_TRACING, std::ptr::null(), c"GPL".as_ptr(), code.as_ptr().cast(), insns.len() as libbpf_sys::size_t, &mut opts)
    };
    if fd >= 0 {
        // SAFETY: a descriptor the call just returned, closed once.
        unsafe { libc::close(fd) };
        return Some(true);
    }
    let text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(log.len())]).into_owned();
    text.contains("invalid mem access 'scalar'").then_some(false)
}
