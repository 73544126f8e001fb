//! BTF-enabled raw tracepoints (`ProgKind::TpBtf`, `btf:EVENT`): each
//! program was compiled for one event (its section `tp_btf/EVENT` names
//! the target libbpf resolves in the kernel's BTF at load) and attaches
//! with one link. Never writes tracefs.

use super::{AttachCx, Attacher};
use libbpf_rs::ProgramMut;

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
