//! Listings from the kernel's BTF: the `btf:` kind of `ktap -le` (BTF
//! tracepoints, with `-v` their typed arguments) and `ktap --struct NAME` (a type's
//! members with offsets and sizes, like pahole). Reads the BTF through
//! the lazy reader; returns text and never prints itself.

use super::kbtf::KernelBtf;
use super::listing::Entry;
use crate::btf::read::{BtfReader, TypeDesc};
use crate::btf::{Kind, TypeId};
use crate::facts::{glob_match, iter_targets, TracepointProtos, BPF_ITER_PREFIX, BTF_TRACE_PREFIX};
use std::fmt::Write;

/// The BTF tracepoints matching `glob` (after `btf:`) as `-le` entries;
/// with `verbose`, each typed argument as `argN TYPE NAME` (`argN` and
/// `args.NAME` read it in a `btf:` probe).
pub fn events(glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let btf = KernelBtf::open()?;
    events_in(&btf.reader()?, glob, verbose)
}

fn events_in(r: &BtfReader<'_>, glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let mut names = r.names_with_prefix(Kind::TYPEDEF, BTF_TRACE_PREFIX).map_err(|e| e.to_string())?;
    names.retain(|n| glob_match(glob, n));
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    let mut protos = TracepointProtos::new(r);
    for n in names {
        let mut details = Vec::new();
        if verbose {
            let proto = protos.proto(&n);
            let params = proto.and_then(|p| r.params(p).ok()).unwrap_or_default();
            // The first parameter is the tracepoint's private data.
            for (i, (name, ty)) in params.iter().skip(1).enumerate() {
                let name = if name.is_empty() { format!("arg{i}") } else { name.clone() };
                details.push(format!("arg{i:<3}{}", declare(&r.type_name(*ty), &name)));
            }
            if let Some(module) = proto.and_then(|p| r.module_of(p)) {
                details.push(format!("(module {module})"));
            }
        }
        out.push(Entry { spec: format!("btf:{n}"), details });
    }
    Ok(out)
}

/// The iterator targets matching `glob` (after `iter:`) as `-le`
/// entries; with `verbose`, each context field as `args.NAME  TYPE` (the
/// `bpf_iter_TARGET` parameters after `meta`) and the parameter a target
/// takes.
pub fn iterators(glob: &str, verbose: bool) -> Result<Vec<Entry>, String> {
    let btf = KernelBtf::open()?;
    let r = btf.reader()?;
    let mut out = Vec::new();
    for target in iter_targets(&r).map_err(|e| e.to_string())? {
        if !glob_match(glob, &target) {
            continue;
        }
        let mut details = Vec::new();
        if verbose {
            let func = r.find(Kind::FUNC, &format!("{BPF_ITER_PREFIX}{target}")).ok().flatten();
            let params = func.and_then(|f| r.params(f).ok()).unwrap_or_default();
            let elem = target == "bpf_map_elem";
            for (name, ty) in params.iter().skip(1) {
                let spelled = match name.as_str() {
                    // Typed by the map the spec names.
                    "key" | "value" if elem => format!("the map's {name} type (its BTF, or an unsigned integer of its size)"),
                    _ => r.type_name(*ty),
                };
                details.push(format!("args.{name:<12}{spelled}"));
            }
            if elem {
                details.push("(MAP)        `iter:bpf_map_elem(ID)` or `(/sys/fs/bpf/PATH)`: the map to walk".into());
            }
            if matches!(target.as_str(), "task" | "task_file" | "task_vma") {
                details.push(format!("(PID)        `iter:{target}(PID)` walks one process"));
            }
        }
        out.push(Entry { spec: format!("iter:{target}"), details });
    }
    Ok(out)
}

/// `TYPE NAME` as C declares it: `struct task_struct *prev`, `char comm[16]`.
fn declare(ty: &str, name: &str) -> String {
    match ty.find('[') {
        Some(i) => format!("{} {name}{}", &ty[..i], &ty[i..]),
        None if ty.ends_with('*') => format!("{ty}{name}"),
        None => format!("{ty} {name}"),
    }
}

/// Bytes a value of type `ty` takes.
fn size_of(r: &BtfReader<'_>, ty: TypeId, depth: u32) -> u64 {
    match r.describe(ty) {
        Ok(TypeDesc::Int { size, .. } | TypeDesc::Enum { size, .. } | TypeDesc::Composite { size, .. }) => u64::from(size),
        Ok(TypeDesc::Ptr { .. }) => 8,
        Ok(TypeDesc::Array { elem, len }) if depth < 8 => size_of(r, elem, depth + 1) * u64::from(len),
        _ => 0,
    }
}

/// `struct NAME` (or a union) with its members: type, name, byte offset
/// and size (bitfields with their bit position and width).
pub fn struct_view(name: &str) -> Result<String, String> {
    let btf = KernelBtf::open()?;
    struct_in(&btf.reader()?, name)
}

fn struct_in(r: &BtfReader<'_>, name: &str) -> Result<String, String> {
    let found = match r.find(Kind::STRUCT, name).map_err(|e| e.to_string())? {
        Some(id) => Some(id),
        None => r.find(Kind::UNION, name).map_err(|e| e.to_string())?,
    };
    let id = found.ok_or_else(|| format!("no struct or union `{name}` in the kernel's BTF (vmlinux and modules)"))?;
    let Ok(TypeDesc::Composite { union, name, size, members }) = r.describe(id) else {
        return Err(format!("`{name}` is not a struct"));
    };
    let mut out = String::new();
    let module = r.module_of(id).map(|m| format!(", module {m}")).unwrap_or_default();
    let _ = writeln!(out, "{} {name} {{\t/* size {size}{module} */", if union { "union" } else { "struct" });
    for m in &members {
        let member = declare(&r.type_name(m.ty), if m.name.is_empty() { "(anonymous)" } else { &m.name });
        if m.bits != 0 {
            let _ = writeln!(out, "\t{member}:{};\t/* {}:{} */", m.bits, m.bit_offset / 8, m.bit_offset % 8);
        } else {
            let _ = writeln!(out, "\t{member};\t/* {} {} */", m.bit_offset / 8, size_of(r, m.ty, 0));
        }
    }
    out.push_str("};\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{sample_btf, sample_module_btf};

    #[test]
    fn listings_show_what_modules_define_and_which_module() {
        let (vmlinux, modules) = (sample_btf(), vec![crate::btf::read::ModuleBtf::new("fakenet", sample_module_btf())]);
        let r = BtfReader::new(&vmlinux).unwrap().with_modules(&modules);
        let events = events_in(&r, "*", true).unwrap();
        let specs: Vec<&str> = events.iter().map(|e| e.spec.as_str()).collect();
        assert_eq!(specs, ["btf:fakenet_xmit", "btf:sched_switch", "btf:sched_wakeup", "btf:sched_wakeup_new"]);
        assert_eq!(events[0].details, ["arg0  struct fakenet_dev *dev", "arg1  unsigned int nbytes", "(module fakenet)"]);
        assert!(!events[1].details.iter().any(|d| d.contains("module")), "{:?}", events[1].details);
        // An event of another's class, named by its probe stub.
        assert_eq!(events[3].details, ["arg0  struct task_struct *p"]);

        let view = struct_in(&r, "fakenet_dev").unwrap();
        assert!(view.starts_with("struct fakenet_dev {\t/* size 48, module fakenet */\n"), "{view}");
        assert!(view.contains("\tstruct task_struct *owner;\t/* 8 8 */\n"), "{view}");
        assert!(view.contains("\tstruct fakenet_ring *ring;\t/* 32 8 */\n"), "{view}");
        assert!(struct_in(&r, "task_struct").unwrap().starts_with("struct task_struct {\t/* size 14400 */"));
        assert!(struct_in(&r, "nope").unwrap_err().contains("vmlinux and modules"));
    }
}
