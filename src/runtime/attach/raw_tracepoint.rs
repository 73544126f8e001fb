//! Raw tracepoints (`ProgKind::RawTracepoint`), for bodies that read no
//! event fields: one link per event by name, the BPF cookie carrying
//! `probename`; attached and detached in well under a millisecond. Never
//! writes tracefs.

use super::{AttachCx, Attacher};
use crate::ir::Attach;
use crate::runtime::session::Error;
use libbpf_rs::{ProgramMut, RawTracepointOpts};

pub struct RawTracepoint;

impl Attacher for RawTracepoint {
    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        let (module, info) = (cx.module, cx.info);
        let probe = module.probe(info.probe);
        for &i in &info.attach {
            if cx.stopped() {
                break;
            }
            let Attach::RawTracepoint { event, .. } = &probe.attach[i] else { continue };
            let opts = RawTracepointOpts { cookie: cx.cookie(i), ..Default::default() };
            let result = prog.attach_raw_tracepoint_with_opts(event, opts);
            cx.point_result(i, result)?;
        }
        Ok(())
    }
}
