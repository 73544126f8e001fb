//! Classic tracepoints (`ProgKind::Tracepoint`): one perf-event link per
//! event, the BPF cookie carrying `probename`. Each link takes tens of
//! milliseconds to close, so they are counted as slow for teardown. Never
//! writes tracefs.

use super::{AttachCx, Attacher};
use crate::ir::Attach;
use crate::runtime::session::Error;
use libbpf_rs::{ProgramMut, TracepointCategory, TracepointOpts};

pub struct Tracepoint;

impl Attacher for Tracepoint {
    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        let (module, info) = (cx.module, cx.info);
        let probe = module.probe(info.probe);
        for &i in &info.attach {
            if cx.stopped() {
                break;
            }
            let Attach::Tracepoint { system, event } = &probe.attach[i] else { continue };
            cx.slow += 1;
            let opts = TracepointOpts { cookie: cx.cookie(i), ..Default::default() };
            let result = prog.attach_tracepoint_with_opts(TracepointCategory::Custom(system.clone()), event, opts);
            cx.point_result(i, result)?;
        }
        Ok(())
    }
}
