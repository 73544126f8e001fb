//! Listings from the kernel's BTF: `ktap -l 'btf:GLOB'` (BTF tracepoints,
//! with `-v` their typed arguments) and `ktap --struct NAME` (a type's
//! members with offsets and sizes, like pahole); and how a classic
//! event's fields read (`-l 'sched:*' -v`). Reads the BTF through
//! the lazy reader; returns text and never prints itself.

use super::kbtf::KernelBtf;
use crate::btf::read::{BtfReader, TypeDesc};
use crate::btf::{Kind, TypeId};
use crate::facts::{glob_match, BTF_TRACE_PREFIX};
use std::fmt::Write;

/// The BTF tracepoints matching `glob` (after `btf:`), one a line; with
/// `verbose`, each with its arguments.
pub fn events(glob: &str, verbose: bool) -> Result<String, String> {
    let btf = KernelBtf::open()?;
    let r = btf.reader()?;
    let mut names = r.names_with_prefix(Kind::TYPEDEF, BTF_TRACE_PREFIX).map_err(|e| e.to_string())?;
    names.retain(|n| glob_match(glob, n));
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(format!("no BTF tracepoint matches `{glob}`"));
    }
    let mut out = String::new();
    for n in names {
        if !verbose {
            let _ = writeln!(out, "btf:{n}");
            continue;
        }
        let func = r.find(Kind::FUNC, &format!("__bpf_trace_{n}")).ok().flatten();
        let proto = match func {
            Some(f) => Some(f),
            None => r.find(Kind::TYPEDEF, &format!("{BTF_TRACE_PREFIX}{n}")).ok().flatten(),
        };
        let params = proto.and_then(|p| r.params(p).ok()).unwrap_or_default();
        let args: Vec<String> = params
            .iter()
            .skip(1)
            .enumerate()
            .map(|(i, (name, ty))| declare(&r.type_name(*ty), &if name.is_empty() { format!("arg{i}") } else { name.clone() }))
            .collect();
        let _ = writeln!(out, "btf:{n}({})", args.join(", "));
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

/// What a classic tracepoint field reads as (`-l 'sched:*' -v`).
pub fn field_kind(f: &crate::ir::EventField) -> String {
    use crate::ir::FieldKind;
    match f.kind {
        FieldKind::Int => format!("{}{} (offset {})", if f.signed { "s" } else { "u" }, f.size * 8, f.offset),
        FieldKind::CharArray => format!("string, char[{}] (offset {})", f.size, f.offset),
        FieldKind::DataLoc => format!("string, __data_loc char[] (offset {})", f.offset),
        FieldKind::Other => format!("{} bytes, not readable in probes (offset {})", f.size, f.offset),
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
    let r = btf.reader()?;
    let found = match r.find(Kind::STRUCT, name).map_err(|e| e.to_string())? {
        Some(id) => Some(id),
        None => r.find(Kind::UNION, name).map_err(|e| e.to_string())?,
    };
    let id = found.ok_or_else(|| format!("no struct or union `{name}` in the kernel's BTF"))?;
    let Ok(TypeDesc::Composite { union, name, size, members }) = r.describe(id) else {
        return Err(format!("`{name}` is not a struct"));
    };
    let mut out = String::new();
    let _ = writeln!(out, "{} {name} {{\t/* size {size} */", if union { "union" } else { "struct" });
    for m in &members {
        let member = declare(&r.type_name(m.ty), if m.name.is_empty() { "(anonymous)" } else { &m.name });
        if m.bits != 0 {
            let _ = writeln!(out, "\t{member}:{};\t/* {}:{} */", m.bits, m.bit_offset / 8, m.bit_offset % 8);
        } else {
            let _ = writeln!(out, "\t{member};\t/* {} {} */", m.bit_offset / 8, size_of(&r, m.ty, 0));
        }
    }
    out.push_str("};\n");
    Ok(out)
}
