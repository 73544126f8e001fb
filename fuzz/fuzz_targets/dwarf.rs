//! The DWARF reader of user binaries on mutated ELF files with DWARF:
//! every function's scope (parameters, their types and locations, the
//! return type), the source lines of the seeds' files and the scope at
//! each, the listings' text, and one scope compiled into a probe reading
//! its variables and their members. An answer or an error, never a panic;
//! every type a scope names is in its table; a scope's file offset lies
//! inside the file.
#![no_main]

use ktap::facts::{DebugScope, FakeBinary, FakeKernel, TypeDesc, TypeId, TypeSource};
use ktap::runtime::{dwarf, elfsyms};
use libfuzzer_sys::fuzz_target;

const PATH: &str = "/fuzz/app";
/// Functions asked about, at most (each asks the whole reader again).
const MAX_FUNCTIONS: usize = 12;
/// Source lines asked about per file, at most.
const MAX_LINES: usize = 24;

fuzz_target!(|data: &[u8]| {
    let mut names: Vec<String> = match elfsyms::functions_in(PATH, data, "*") {
        Ok(s) => s.symbols.into_iter().map(|(n, _)| n).take(MAX_FUNCTIONS).collect(),
        Err(_) => Vec::new(),
    };
    names.push("no_such_function".into());
    let mut compiled = false;
    for name in &names {
        let Ok(s) = dwarf::function_in(PATH, data, name) else { continue };
        check(&s, data.len());
        if !compiled {
            compile(&s);
            compiled = true;
        }
    }
    // The seeds' source files (fuzz/seeds/dwarf.c, tests/dwarf/shapes.c).
    for file in ["dwarf.c", "shapes.c"] {
        if let Ok((_, lines)) = dwarf::lines_in(PATH, data, file) {
            for l in lines.iter().take(MAX_LINES) {
                if let Ok(s) = dwarf::line_in(PATH, data, file, l.line) {
                    check(&s, data.len());
                }
            }
        }
        // No code there: the error names the nearest lines.
        let _ = dwarf::line_in(PATH, data, file, 0);
        let _ = dwarf::line_in(PATH, data, file, 100_000);
    }
});

/// What any scope must hold, and the listing helpers on it.
fn check(s: &DebugScope, len: usize) {
    assert!((s.offset.0 as usize) < len, "file offset {:#x} outside a file of {len} bytes", s.offset.0);
    let t = &*s.types;
    let known = |id: TypeId| id == TypeId::VOID || (id.0 as usize) <= t.len();
    assert!(known(s.ret), "return type {:?} not in the table", s.ret);
    for v in &s.vars {
        assert!(known(v.ty), "type {:?} of {} not in the table", v.ty, v.name);
        let _ = dwarf::loc_text(&v.loc);
    }
    for id in 0..=t.len() as u32 {
        let id = TypeId(id);
        let _ = t.type_name(id);
        let desc = t.describe(id).expect("every id up to the table's length is a type");
        let inner: Vec<TypeId> = match &desc {
            TypeDesc::Ptr { to, .. } => vec![*to],
            TypeDesc::Array { elem, .. } => vec![*elem],
            TypeDesc::Composite { members, .. } => members.iter().map(|m| m.ty).collect(),
            _ => Vec::new(),
        };
        assert!(inner.iter().all(|&i| known(i)), "{desc:?} names a type not in the table");
    }
    let _ = dwarf::describe(s);
}

/// A member chain from a variable of type `ty`: `.m`, `->m`, `[1]`, up to
/// three steps (names that are not identifiers end it).
fn chain(t: &dyn TypeSource, mut ty: TypeId) -> String {
    let mut out = String::new();
    for _ in 0..3 {
        let (sep, ty_next) = match t.describe(ty) {
            Ok(TypeDesc::Ptr { to, .. }) => ("->", to),
            Ok(TypeDesc::Array { elem, .. }) => {
                out.push_str("[1]");
                ty = elem;
                continue;
            }
            Ok(TypeDesc::Composite { .. }) => (".", ty),
            _ => break,
        };
        let Ok(TypeDesc::Composite { members, .. }) = t.describe(ty_next) else { break };
        let Some(m) = members.iter().find(|m| ident(&m.name)) else { break };
        out.push_str(sep);
        out.push_str(&m.name);
        ty = m.ty;
    }
    out
}

fn ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Compiles probes on the scope's function that read every variable
/// (and a member chain of each) and its return value: no panic, no
/// internal error, a refusal says why.
fn compile(s: &DebugScope) {
    if !ident(&s.function) {
        return;
    }
    let kernel = FakeKernel::new()
        .binary(FakeBinary { path: PATH.into(), functions: vec![(s.function.clone(), s.offset)], ..Default::default() })
        .debug(PATH, &s.function, s.clone());
    let t = &*s.types;
    let reads: Vec<String> = s.vars.iter().filter(|v| ident(&v.name)).flat_map(|v| [format!("args.{}", v.name), format!("args.{}{}", v.name, chain(t, v.ty))]).collect();
    let body = if reads.is_empty() { "arg0".to_string() } else { reads.join(", ") };
    let src = format!("trace probe:{PATH}:{f} {{ print({body}) }}\ntrace probe:{PATH}:{f}%return {{ print(retval, retval{c}) }}\n", f = s.function, c = chain(t, s.ret));
    match ktap::compile(&src, &kernel) {
        Ok(_) => {}
        Err(ktap::CompileError::Diagnostics(ds)) => {
            assert!(ds.iter().any(|d| d.is_error()), "refused without an error: {ds:?}\n{src}");
            for d in &ds {
                ktap_fuzz::check_diag(d, 0, src.len() as u32, &src);
            }
        }
        Err(ktap::CompileError::Limit(msg)) => assert!(!msg.is_empty()),
        Err(ktap::CompileError::Internal(msg)) => panic!("internal compiler error: {msg}\n--- script:\n{src}"),
    }
}
