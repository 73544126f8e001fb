//! Syscall events riding raw_syscalls (`ProgKind::SysEnter`/`SysExit`):
//! the probe's filter map (syscall number -> probename id + 1) is filled
//! before anything is attached, then one raw tracepoint link on
//! `sys_enter` or `sys_exit` serves every syscall event of the probe.
//! Never attaches before its filter maps are filled.

use super::{AttachCx, Attacher};
use crate::ir::{Attach, Module, ProgKind};
use crate::runtime::session::Error;
use libbpf_rs::{MapCore, ProgramMut};

pub struct RawSyscalls;

impl Attacher for RawSyscalls {
    /// Fills each filter map of programs of `kind`.
    fn fill(&self, module: &Module, obj: &libbpf_rs::Object, kind: ProgKind) -> Result<(), Error> {
        for map_ir in &module.maps {
            let Some((probe, map_kind)) = map_ir.syscall_filter else { continue };
            if map_kind != kind {
                continue;
            }
            let Some(map) = obj.maps().find(|m| m.name().to_string_lossy() == map_ir.name) else {
                return Err(Error { message: format!("map {} missing after load", map_ir.name), span: None, notes: Vec::new() });
            };
            for (i, a) in module.probe(probe).attach.iter().enumerate() {
                if let Attach::Syscall { nr, .. } = a {
                    if a.kind() != kind {
                        continue;
                    }
                    let id = module.probe_name_id(probe, i) + 1;
                    map.update(&nr.to_le_bytes(), &id.to_le_bytes(), libbpf_rs::MapFlags::ANY).map_err(|e| Error {
                        message: format!("cannot fill the syscall filter: {e}"),
                        span: None,
                        notes: Vec::new(),
                    })?;
                }
            }
        }
        Ok(())
    }

    fn attach(&self, cx: &mut AttachCx<'_>, prog: &ProgramMut<'_>) -> Result<(), Error> {
        let tp = if cx.info.kind == ProgKind::SysEnter { "sys_enter" } else { "sys_exit" };
        let link = prog.attach_raw_tracepoint(tp).map_err(|e| cx.error(format!("raw_syscalls:{tp}"), e))?;
        cx.links.push(link);
        cx.progress.advance(cx.info.attach.len());
        Ok(())
    }
}
