//! Member chains on typed values: `args.prev.comm` of `btf:` probes,
//! `curtask.real_parent.tgid`, `argN` of typed providers, `args.p->name`
//! of a user function typed by its DWARF. Walks the types (the kernel's
//! BTF through the facts' lazy reader, or a user binary's
//! [`crate::facts::TypeTable`], both behind [`TypeSource`]) member by member,
//! following pointers (`.` and `->` alike), and lowers the chain to one
//! typed load (`ir::Path`) whose BTF offsets each carry their CO-RE
//! record. Integers, pointers and strings (`char[N]`, `char *`) are
//! values; a whole struct is not. Every problem is an error at the
//! member's span; never panics.

use super::*;
use crate::btf::Kind;
use crate::facts::{MemberDesc, TypeDesc, TypeId, TypeSource};
use crate::frontend::diag::near_names;
use crate::frontend::providers::{TypeOrigin, Typed};
use crate::ir::core::{CoreComposite, CoreField, CoreMember, CoreTy};

/// Pointers a chain may follow (the verifier walks each one).
const MAX_DEREFS: usize = 8;
/// Members listed in an error, at most.
const LISTED_MEMBERS: usize = 24;

/// A place being walked: its path, its type, and the CO-RE record of the
/// offset since the last pointer followed.
struct Walk {
    path: ir::Path,
    ty: TypeId,
    /// How the user wrote it so far (`args.prev.se`), for messages.
    text: String,
    cur: Option<CoreField>,
    /// The value lies in user memory (pointers read with
    /// `bpf_probe_read_user`, `char *` as user strings).
    user: bool,
    /// A bitfield at the end: its bit offset from the path's base and
    /// its width.
    bitfield: Option<(u64, u32)>,
    /// An array with no member record was indexed since the last pointer:
    /// the offset is no field's, so it carries no CO-RE record.
    indexed: bool,
}

/// One step of a chain: `.NAME` (or `->NAME`), or `[INDEX]`.
enum Step<'a> {
    Member(&'a ast::Ident),
    Index(&'a ast::Expr),
}

impl Walk {
    /// Follows the pointer at the current offset.
    fn deref(&mut self) {
        // A frame slot lies below its register: negative offsets wrap
        // (codegen adds them as 32-bit immediates).
        let off = i32::try_from(self.path.offset).map_or(u32::MAX, |o| o as u32);
        self.path.derefs.push(off);
        if let Some(mut c) = self.cur.take() {
            c.step = self.path.derefs.len() as u32 - 1;
            self.path.core.push(c);
        }
        self.path.offset = 0;
        self.indexed = false;
    }

    /// Ends the walk: the record of the final offset joins the path.
    fn finish(mut self) -> ir::Path {
        if let Some(mut c) = self.cur.take() {
            c.step = self.path.derefs.len() as u32;
            self.path.core.push(c);
        }
        self.path
    }
}

/// What a type is, in a message: `struct task_struct`, `u32`.
fn composite(union: bool, name: &str, size: u32) -> CoreComposite {
    CoreComposite { name: name.to_string(), size, union }
}

/// The CO-RE view of a member's type.
fn core_ty(r: &dyn TypeSource, ty: TypeId, depth: u32) -> CoreTy {
    match r.describe(ty) {
        Ok(TypeDesc::Int { size, signed }) => CoreTy::Int { size, signed },
        Ok(TypeDesc::Enum { name, size, .. }) => CoreTy::Enum { name, size },
        Ok(TypeDesc::Array { elem, len }) if depth < 4 => CoreTy::Array { elem: Box::new(core_ty(r, elem, depth + 1)), len },
        Ok(TypeDesc::Composite { union, name, size, .. }) => CoreTy::Composite(composite(union, &name, size)),
        _ => CoreTy::Ptr,
    }
}

/// The members leading to `want` in `members`, through anonymous structs
/// and unions, each with the composite holding it.
fn find_member(r: &dyn TypeSource, holder: &CoreComposite, members: &[MemberDesc], want: &str, depth: u32) -> Option<Vec<(MemberDesc, CoreComposite)>> {
    for m in members {
        if m.name == want {
            return Some(vec![(m.clone(), holder.clone())]);
        }
    }
    if depth > 4 {
        return None;
    }
    for m in members.iter().filter(|m| m.name.is_empty()) {
        if let Ok(TypeDesc::Composite { union, name, size, members: inner }) = r.describe(m.ty) {
            let c = composite(union, &name, size);
            if let Some(mut rest) = find_member(r, &c, &inner, want, depth + 1) {
                rest.insert(0, (m.clone(), holder.clone()));
                return Some(rest);
            }
        }
    }
    None
}

/// Every member name reachable without a pointer (anonymous members'
/// members included).
fn member_names(r: &dyn TypeSource, members: &[MemberDesc], out: &mut Vec<String>, depth: u32) {
    for m in members {
        if !m.name.is_empty() {
            out.push(m.name.clone());
        } else if depth < 4 {
            if let Ok(TypeDesc::Composite { members: inner, .. }) = r.describe(m.ty) {
                member_names(r, &inner, out, depth + 1);
            }
        }
    }
}

/// Bytes a value of type `ty` takes.
fn size_of(r: &dyn TypeSource, ty: TypeId, depth: u32) -> Option<u32> {
    match r.describe(ty).ok()? {
        TypeDesc::Int { size, .. } | TypeDesc::Enum { size, .. } | TypeDesc::Composite { size, .. } => Some(size),
        TypeDesc::Ptr { .. } => Some(8),
        TypeDesc::Array { elem, len } if depth < 8 => size_of(r, elem, depth + 1)?.checked_mul(len),
        _ => None,
    }
}

fn listed(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(LISTED_MEMBERS).map(String::as_str).collect();
    let more = names.len().saturating_sub(LISTED_MEMBERS);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl Lowerer<'_> {
    /// `e` (a `.`/`->` chain) as members of a typed kernel value; `None`
    /// when its root is not one (lowered as before: event fields).
    pub(super) fn member_access(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Option<Expr>> {
        self.member_chain(ctx, e).map(|v| v.map(|(value, _, _)| value))
    }

    /// `value == "NAME"` where the value is a member chain ending at an
    /// enum and NAME one of its enumerators: the enumerator's number
    /// compared. `None` when `value` is no typed chain ending at an enum;
    /// `Some(None)` after reporting a problem.
    pub(super) fn enum_compare(&mut self, ctx: &mut ProbeCtx, value: &ast::Expr, name: &[u8], eq: bool, span: Span) -> Option<Option<Expr>> {
        if !matches!(value.kind, ast::ExprKind::Field { .. }) {
            return None;
        }
        let facts = self.events;
        let mut diags = std::mem::take(&mut self.diags);
        let found = self.member_chain(ctx, value);
        std::mem::swap(&mut diags, &mut self.diags);
        let (v, ty, origin) = match found? {
            Some(found) => found,
            None => {
                self.diags.extend(diags);
                return Some(None);
            }
        };
        let desc = match &origin {
            TypeOrigin::Kernel => facts.kernel_btf().ok()?.describe(ty).map_err(|e| e.to_string()),
            TypeOrigin::User(t) | TypeOrigin::Map { types: t, .. } => t.describe(ty),
        };
        let Ok(TypeDesc::Enum { name: enum_name, values, .. }) = desc else {
            // Not an enum: lowered again as before (a string, or an error).
            return None;
        };
        self.diags.extend(diags);
        let text = String::from_utf8_lossy(name);
        let Some((_, number)) = values.iter().find(|(n, _)| *n == text) else {
            let names: Vec<String> = values.iter().map(|(n, _)| n.clone()).collect();
            let mut d = Diagnostic::error(span, format!("`enum {enum_name}` has no enumerator `{text}`")).with_label("not one of its names");
            let near = near_names(&text, names.iter().map(String::as_str), 3);
            if !near.is_empty() {
                d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
            }
            self.diags.push(d.with_note(format!("its enumerators: {}", listed(&names))));
            return Some(None);
        };
        let op = if eq { ir::BinOp::Eq } else { ir::BinOp::Ne };
        Some(Some(Expr::binary(op, v, Expr::constant(*number), Some(span))))
    }

    /// A member chain's value, the type it ends at and whose type it is.
    fn member_chain(&mut self, ctx: &mut ProbeCtx, e: &ast::Expr) -> Option<Option<(Expr, TypeId, TypeOrigin)>> {
        let mut names: Vec<Step<'_>> = Vec::new();
        let mut root = e;
        loop {
            let (step, base) = match &root.kind {
                ast::ExprKind::Field { base, name } => (Step::Member(name), base),
                ast::ExprKind::Index { base, index } => (Step::Index(index), base),
                _ => break,
            };
            names.push(step);
            root = base;
        }
        names.reverse();
        let ast::ExprKind::Name(id) = &root.kind else { return None };
        if ctx.lookup(&self.res, id).is_some() || self.vars.contains_key(&id.name) {
            return None;
        }
        // `args.NAME` of a member chain the probe spec named: the chain,
        // then what follows NAME here.
        let alias = match (id.name.as_str(), names.first()) {
            ("args", Some(Step::Member(first))) => ctx.args.alias(&first.name),
            _ => None,
        };
        let mut chained: Vec<Step<'_>>;
        let (typed, text, rest) = if let Some((arg, members)) = &alias {
            chained = members.iter().map(Step::Member).collect();
            chained.extend(names.drain(1..));
            let typed = ctx.args.typed_field(&mut self.pcx(), &arg.name, arg.span)?;
            (typed, format!("args.{}", arg.name), &chained[..])
        } else if id.name == "args" {
            let Some(Step::Member(first)) = names.first() else { return None };
            let span = root.span.to(first.span);
            let typed = ctx.args.typed_field(&mut self.pcx(), &first.name, span)?;
            (typed, format!("args.{}", first.name), &names[1..])
        } else if let Some((strukt, base)) = crate::builtins::name(&id.name).and_then(crate::builtins::typed_root) {
            (self.typed_struct(strukt, base, root.span), id.name.clone(), &names[..])
        } else if let Some(n) = id.name.strip_prefix("arg").and_then(|n| n.parse::<usize>().ok()) {
            (ctx.args.typed_arg(&mut self.pcx(), n, root.span)?, id.name.clone(), &names[..])
        } else if !names.is_empty() {
            // A typed bare name (`retval.name`).
            (ctx.args.typed_name(&mut self.pcx(), &id.name, root.span)?, id.name.clone(), &names[..])
        } else {
            return None;
        };
        Some(typed.and_then(|t| {
            let origin = t.types.clone();
            self.walk(t, text, rest, e.span).map(|(v, ty)| (v, ty, origin))
        }))
    }

    /// A bare name a typed provider gives (`retval` of fexit), read
    /// whole; `None` when it gives none.
    pub(super) fn typed_name(&mut self, ctx: &mut ProbeCtx, name: &str, span: Span) -> Option<Option<Expr>> {
        let typed = ctx.args.typed_name(&mut self.pcx(), name, span)?;
        Some(typed.and_then(|t| self.walk(t, name.to_string(), &[], span)).map(|(value, _)| value))
    }

    /// `argN` of a typed provider, read whole; `None` when the provider's
    /// arguments are not typed.
    pub(super) fn typed_arg(&mut self, ctx: &mut ProbeCtx, n: usize, span: Span) -> Option<Option<Expr>> {
        let typed = ctx.args.typed_arg(&mut self.pcx(), n, span)?;
        Some(typed.and_then(|t| self.walk(t, format!("arg{n}"), &[], span)).map(|(value, _)| value))
    }

    /// The kernel struct `strukt` at `base`.
    fn typed_struct(&mut self, strukt: &str, base: ir::PathBase, span: Span) -> Option<Typed> {
        let found = self.events.kernel_btf().and_then(|r| r.find(Kind::STRUCT, strukt).map_err(|e| e.to_string()));
        match found {
            Ok(Some(ty)) => Some(Typed::kernel(ir::Path::plain(base, Vec::new(), 0, 0, ir::Via::Direct), ty)),
            Ok(None) => {
                self.error(span, format!("the kernel's BTF has no `struct {strukt}`"));
                None
            }
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(span, format!("reading kernel structs needs the kernel's BTF: {e}"))
                        .with_label("no kernel BTF")
                        .with_note("`pid`, `tid`, `execname` and event fields still work without it"),
                );
                None
            }
        }
    }

    /// Follows `names` from `typed` and reads the value at the end.
    fn walk(&mut self, typed: Typed, text: String, names: &[Step<'_>], span: Span) -> Option<(Expr, TypeId)> {
        let facts = self.events;
        let kernel;
        // A map's buffer: its size and name; its pointers are not followed.
        let buffer = match &typed.types {
            TypeOrigin::Map { size, what, .. } => Some((*size, what.clone())),
            _ => None,
        };
        let (r, user): (&dyn TypeSource, bool) = match &typed.types {
            TypeOrigin::User(table) => (&**table, true),
            TypeOrigin::Map { types, .. } => (&**types, false),
            TypeOrigin::Kernel => match facts.kernel_btf() {
                Ok(btf) => {
                    kernel = btf;
                    (&kernel, false)
                }
                Err(e) => {
                    self.error(span, format!("typed values need the kernel's BTF: {e}"));
                    return None;
                }
            },
        };
        let mut w = Walk { path: typed.path, ty: typed.ty, text, cur: None, user, bitfield: None, indexed: false };
        for step in names {
            let name = match step {
                Step::Member(name) => *name,
                Step::Index(index) => {
                    self.index(r, &mut w, index)?;
                    continue;
                }
            };
            let mut desc = self.describe(r, w.ty, name.span)?;
            if let TypeDesc::Ptr { to, tag } = &desc {
                if w.path.derefs.len() >= MAX_DEREFS {
                    self.diags.push(
                        Diagnostic::error(name.span, format!("too many pointers followed: probes follow at most {MAX_DEREFS}"))
                            .with_label("one pointer too many"),
                    );
                    return None;
                }
                if let Some((_, what)) = &buffer {
                    self.error(name.span, format!("`{}` is a pointer in {what}, which probes do not follow", w.text));
                    return None;
                }
                if let Some(tag @ ("user" | "percpu")) = tag.as_deref() {
                    let what = if tag == "user" { "user memory" } else { "a per-CPU variable" };
                    self.error(name.span, format!("`{}` points to {what}, which probes do not follow", w.text));
                    return None;
                }
                let to = *to;
                w.deref();
                w.ty = to;
                desc = self.describe(r, to, name.span)?;
            }
            let TypeDesc::Composite { union, name: sname, size, members } = desc else {
                let spelled = r.type_name(w.ty);
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is {} `{spelled}`, which has no members", w.text, article(&spelled)))
                        .with_label(format!("no member `{}` here", name.name)),
                );
                return None;
            };
            let holder = composite(union, &sname, size);
            let Some(chain) = find_member(r, &holder, &members, &name.name, 0) else {
                let mut all = Vec::new();
                member_names(r, &members, &mut all, 0);
                let kind = if union { "union" } else { "struct" };
                let mut d = Diagnostic::error(name.span, format!("`{kind} {sname}` has no member `{}`", name.name))
                    .with_label(format!("not a member of `{}`", w.text));
                let near = near_names(&name.name, all.iter().map(String::as_str), 3);
                if !near.is_empty() {
                    d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
                }
                self.diags.push(d.with_note(format!("its members: {}", listed(&all))));
                return None;
            };
            for (m, parent) in chain {
                // A bitfield ends the chain (it is an integer); its bits
                // are cut from the word around it. Its record names it;
                // where the word starts is known once its type's size is
                // (`bitfield`).
                let bitfield = (m.bits != 0 || m.bit_offset % 8 != 0).then(|| (m.bit_offset, m.bits.max(1)));
                let offset = match bitfield {
                    Some((bit, width)) => {
                        w.bitfield = Some((w.path.offset as u64 * 8 + u64::from(bit), width));
                        0
                    }
                    None => {
                        w.path.offset += i64::from(m.bit_offset / 8);
                        m.bit_offset / 8
                    }
                };
                let member = CoreMember { name: m.name.clone(), offset, ty: core_ty(r, m.ty, 0), indexes: Vec::new(), bitfield };
                match &mut w.cur {
                    _ if w.indexed => {}
                    Some(c) => c.members.push(member),
                    None => w.cur = Some(CoreField { step: 0, root: parent, members: vec![member] }),
                }
                w.ty = m.ty;
            }
            w.text = format!("{}.{}", w.text, name.name);
        }
        let ty = w.ty;
        if !self.opts.core_records || w.user || buffer.is_some() {
            w.path.core.clear();
            w.cur = None;
        }
        if let Some((limit, what)) = &buffer {
            // The kernel refuses a link whose program reads past the key
            // or value size (kernel/bpf/map_iter.c, bpf_iter_attach_map).
            let start = match w.bitfield {
                Some((bit, _)) => (bit / 8) as i64,
                None => w.path.offset,
            };
            let end = start + i64::from(size_of(r, ty, 0).unwrap_or(0));
            if start < 0 || end > i64::from(*limit) {
                self.diags.push(
                    Diagnostic::error(span, format!("`{}` lies at bytes {start}..{end}, past {what}, which are {limit} bytes", w.text))
                        .with_label("past the end"),
                );
                return None;
            }
        }
        self.read(r, w, span).map(|v| (v, ty))
    }

    /// A bitfield of `bits` at bit `bit`: the smallest aligned load of at
    /// least its type's size that holds it (as libbpf computes it,
    /// tools/lib/bpf/relo_core.c), its bits shifted out of it (extended
    /// as its type's sign says). Its record, if it has one, then says
    /// where the word starts, which the load's offset and both shifts
    /// are relocated by.
    fn bitfield(&mut self, mut w: Walk, bit: u64, bits: u32, size: u32, signed: bool, span: Span) -> Option<Expr> {
        let mut bytes = u64::from(size.clamp(1, 8));
        let mut at = bit / 8 / bytes * bytes;
        while bit + u64::from(bits) - at * 8 > bytes * 8 {
            if bytes >= 8 {
                self.unsupported(span, "a bitfield across two words");
                return None;
            }
            bytes *= 2;
            at = bit / 8 / bytes * bytes;
        }
        // The word's start from the bitfield's parent; a word starting
        // before the parent does (a packed anonymous struct) has no
        // record: the offset stays this kernel's.
        let parent_start = w.path.offset as u64;
        match w.cur.as_mut().and_then(|c| c.members.last_mut()) {
            Some(m) if m.bitfield.is_some() && at >= parent_start => m.offset = (at - parent_start) as u32,
            _ => w.cur = None,
        }
        let mut path = w.finish();
        path.offset = at as i64;
        path.size = bytes as u8;
        path.signed = signed;
        path.bits = Some(ir::Bits { shift: (bit - at * 8) as u8, width: bits as u8 });
        Some(Expr { kind: ExprKind::Load(path), ty: Ty::Int, span: Some(span) })
    }

    /// `[INDEX]` on a fixed array: a constant index inside it.
    fn index(&mut self, r: &dyn TypeSource, w: &mut Walk, index: &ast::Expr) -> Option<()> {
        let TypeDesc::Array { elem, len } = self.describe(r, w.ty, index.span)? else {
            let spelled = r.type_name(w.ty);
            self.error(index.span, format!("`{}` is {} `{spelled}`, not an array", w.text, article(&spelled)));
            return None;
        };
        let ast::ExprKind::Int(i) = index.kind else {
            self.unsupported(index.span, "an array index that is not a constant");
            return None;
        };
        if i < 0 || i >= i64::from(len) {
            self.diags.push(
                Diagnostic::error(index.span, format!("index {i} is past the end of `{}`, a `{}`", w.text, r.type_name(w.ty)))
                    .with_label(format!("valid indexes are 0 to {}", i64::from(len) - 1)),
            );
            return None;
        }
        let Some(size) = size_of(r, elem, 0) else {
            self.error(index.span, format!("the elements of `{}` have no size", w.text));
            return None;
        };
        // The record names the element (`0:3:2` in the access string); an
        // array not reached through a member has no record to extend.
        match w.cur.as_mut().and_then(|c| c.members.last_mut()) {
            Some(m) => m.indexes.push(i as u32),
            None => w.indexed = true,
        }
        w.path.offset += i * i64::from(size);
        w.ty = elem;
        w.text = format!("{}[{i}]", w.text);
        Some(())
    }

    fn describe(&mut self, r: &dyn TypeSource, ty: TypeId, span: Span) -> Option<TypeDesc> {
        match r.describe(ty) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(span, format!("cannot read the types: {e}"));
                None
            }
        }
    }

    /// The value at the end of a walk.
    fn read(&mut self, r: &dyn TypeSource, w: Walk, span: Span) -> Option<Expr> {
        let desc = self.describe(r, w.ty, span)?;
        let spelled = r.type_name(w.ty);
        let text = w.text.clone();
        let load = |mut path: ir::Path, size: u32, signed: bool, ty: Ty| {
            path.size = size as u8;
            path.signed = signed;
            Expr { kind: ExprKind::Load(path), ty, span: Some(span) }
        };
        if let Some((bit, bits)) = w.bitfield {
            let (TypeDesc::Int { size, signed } | TypeDesc::Enum { size, signed, .. }) = desc else {
                self.error(span, format!("`{text}` is a bitfield of a `{spelled}`"));
                return None;
            };
            return self.bitfield(w, bit, bits, size, signed, span);
        }
        match desc {
            TypeDesc::Int { size: size @ (1 | 2 | 4 | 8), signed } | TypeDesc::Enum { size: size @ (1 | 2 | 4 | 8), signed, .. } => {
                Some(load(w.finish(), size, signed, Ty::Int))
            }
            TypeDesc::Ptr { to, tag } => {
                let is_char = matches!(r.describe(to), Ok(TypeDesc::Int { size: 1, .. }));
                let user = w.user || tag.as_deref() == Some("user");
                let ptr = load(w.finish(), 8, false, Ty::Int);
                if is_char {
                    return Some(Expr { kind: ExprKind::ReadStr { ptr: Box::new(ptr), user }, ty: Ty::Str, span: Some(span) });
                }
                Some(ptr)
            }
            TypeDesc::Array { elem, len } if matches!(r.describe(elem), Ok(TypeDesc::Int { size: 1, .. })) && len > 0 => {
                let ty = if len <= Ty::Comm.size() { Ty::Comm } else { Ty::Str };
                let size = len.min(ir::STR_LEN);
                Some(load(w.finish(), size, false, ty))
            }
            TypeDesc::Composite { union, name, members, .. } => {
                let mut all = Vec::new();
                member_names(r, &members, &mut all, 0);
                let kind = if union { "union" } else { "struct" };
                self.diags.push(
                    Diagnostic::error(span, format!("`{text}` is a whole `{kind} {name}`, not a value"))
                        .with_label("a struct is not a number or a string")
                        .with_note(format!("read one of its members: {}", listed(&all))),
                );
                None
            }
            _ => {
                self.diags.push(
                    Diagnostic::error(span, format!("`{text}` is {} `{spelled}`, which probes cannot read as a value", article(&spelled)))
                        .with_label("not a number, pointer or string"),
                );
                None
            }
        }
    }
}

/// `a` or `an`, as English puts it before `spelled` (`an int`, `an
/// unsigned int`, `a u32`).
fn article(spelled: &str) -> &'static str {
    if spelled.starts_with(['a', 'e', 'i', 'o']) || spelled.starts_with("unsigned") {
        "an"
    } else {
        "a"
    }
}
