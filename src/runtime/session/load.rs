//! The load phase: opens the compiled object with libbpf, seeds `.data` and
//! `.bss` from the main context, picks uprobe.multi where it pays, loads
//! (a rejection explained by `logs`), and maps the data sections. Attaches
//! nothing.

use super::*;
use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, ObjectBuilder};

/// A loaded object and what the later phases read of it.
pub(super) struct Live<'m> {
    pub(super) module: &'m Module,
    pub(super) compiled: &'m Compiled,
    pub(super) obj: libbpf_rs::Object,
    /// libbpf's live mappings of `.data` and `.bss`.
    pub(super) views: Vec<(Section, SectionView)>,
    pub(super) dec: Decoder<'m>,
}

/// Opens, seeds and loads `object`.
pub(super) fn load<'m>(
    module: &'m Module,
    compiled: &'m Compiled,
    object: &[u8],
    interp: &Interp,
    opts: &Options,
) -> Result<Live<'m>, Error> {
    let mut builder = ObjectBuilder::default();
    builder.name("ktap").map_err(|e| Error::libbpf("cannot name the BPF object", e))?;
    let mut open = builder.open_memory(object).map_err(|e| {
        let mut err = Error::libbpf("libbpf cannot open the generated object (a compiler bug)", e);
        err.notes.push(logs::take_libbpf_log());
        err
    })?;

    // Seed the data sections with the main context's values.
    for mut map in open.maps_mut() {
        let Some(section) = section_of(&map.name().to_string_lossy()) else { continue };
        let Some(buf) = map.initial_value_mut() else { continue };
        for (id, layout) in compiled.globals.iter().enumerate() {
            if layout.section != section {
                continue;
            }
            let v = initial_bytes(module, id, interp, opts)?;
            let at = layout.offset as usize;
            if let Some(slot) = buf.get_mut(at..at + v.len()) {
                slot.copy_from_slice(&v);
            }
        }
    }

    // Each kind says how libbpf loads its programs (uprobe.multi, say).
    for mut prog in open.progs_mut() {
        if let Some(info) = compiled.programs.iter().find(|info| prog.name() == info.name.as_str()) {
            crate::runtime::attach::attacher(info.kind).prepare(&mut prog, info);
        }
    }

    let obj = match open.load() {
        Ok(obj) => obj,
        Err(e) => {
            let mut err = logs::load_error(module, compiled, e);
            // What the kinds in the object say about being refused.
            let mut refused: Vec<String> = compiled
                .programs
                .iter()
                .filter_map(|p| {
                    let probe = module.probe(p.probe);
                    let points: Vec<&crate::ir::Attach> = p.attach.iter().filter_map(|&i| probe.attach.get(i)).collect();
                    crate::runtime::attach::attacher(p.kind).refused(&points)
                })
                .map(String::from)
                .collect();
            refused.sort();
            refused.dedup();
            // SAFETY: geteuid has no preconditions.
            if !refused.is_empty() && unsafe { libc::geteuid() } == 0 {
                // Root was refused: the kind, not the privileges, is why.
                err.notes.retain(|n| !n.starts_with("loading BPF needs root"));
            }
            err.notes.splice(0..0, refused);
            return Err(err);
        }
    };
    logs::take_libbpf_log();

    let mut views: Vec<(Section, SectionView)> = Vec::new();
    for map in obj.maps() {
        let Some(section) = section_of(&map.name().to_string_lossy()) else { continue };
        let mut size: libbpf_sys::size_t = 0;
        // SAFETY: the map pointer is valid while `obj` lives; after load
        // libbpf returns its live memory mapping of the section.
        let ptr = unsafe { libbpf_sys::bpf_map__initial_value(map.as_libbpf_object().as_ptr(), &mut size) };
        if !ptr.is_null() {
            views.push((section, SectionView { ptr: ptr.cast(), len: size as usize }));
        }
    }

    let dec = Decoder {
        names: module.probe_names(),
        formats: module.probe_formats(),
        stacks: match module.stacks {
            Some(id) => {
                let name = &module.map(id).name;
                map_named(&obj, name).and_then(|m| libbpf_rs::MapHandle::try_from(&m).ok())
            }
            None => None,
        },
        symbols: RefCell::default(),
        layouts: module.sites.iter().map(|s| s.layout().0).collect(),
    };
    Ok(Live { module, compiled, obj, views, dec })
}

impl Live<'_> {
    /// The live bytes of a kernel global's section.
    pub(super) fn global_view(&self, layout: &GlobalLayout) -> Option<&SectionView> {
        section_view(&self.views, layout)
    }

    /// Sets the flag every program checks first: no more events.
    pub(super) fn stop_delivery(&self) {
        if let Some(layout) = self.module.stop_flag.map(|g| &self.compiled.globals[g.index()]) {
            if let Some(view) = self.global_view(layout) {
                view.write_u64(layout.offset, 1);
            }
        }
    }

    /// A counter global's value (lost events, failed updates); 0 if absent.
    pub(super) fn counter(&self, g: Option<ir::GlobalId>) -> u64 {
        g.map(|g| &self.compiled.globals[g.index()])
            .and_then(|layout| self.global_view(layout).map(|v| v.read_u64(layout.offset)))
            .unwrap_or(0)
    }

    /// The kernel map of the table variable `var`, with its IR.
    pub(super) fn table_map(&self, var: &str) -> Option<(libbpf_rs::Map<'_>, &ir::Map)> {
        let map_ir = self.module.maps.iter().find(|m| m.table.as_ref().is_some_and(|t| t.var == var))?;
        map_named(&self.obj, &map_ir.name).map(|m| (m, map_ir))
    }
}
