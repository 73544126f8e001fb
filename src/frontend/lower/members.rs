//! Member chains on typed kernel values: `args.prev.comm` of `btf:`
//! probes, `curtask.real_parent.tgid`, `argN` of typed providers. Walks
//! the kernel's BTF (through the facts' lazy reader) member by member,
//! following pointers (`.` and `->` alike), and lowers the chain to one
//! typed load (`ir::Path`) whose BTF offsets each carry their CO-RE
//! record. Integers, pointers and strings (`char[N]`, `char *`) are
//! values; a whole struct is not. Every problem is an error at the
//! member's span; never panics.

use super::*;
use crate::btf::Kind;
use crate::facts::{BtfReader, MemberDesc, TypeDesc, TypeId};
use crate::frontend::diag::near_names;
use crate::frontend::providers::Typed;
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
}

impl Walk {
    /// Follows the pointer at the current offset.
    fn deref(&mut self) {
        let off = u32::try_from(self.path.offset).unwrap_or(u32::MAX);
        self.path.derefs.push(off);
        if let Some(mut c) = self.cur.take() {
            c.step = self.path.derefs.len() as u32 - 1;
            self.path.core.push(c);
        }
        self.path.offset = 0;
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
fn core_ty(r: &BtfReader<'_>, ty: TypeId, depth: u32) -> CoreTy {
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
fn find_member(r: &BtfReader<'_>, holder: &CoreComposite, members: &[MemberDesc], want: &str, depth: u32) -> Option<Vec<(MemberDesc, CoreComposite)>> {
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
fn member_names(r: &BtfReader<'_>, members: &[MemberDesc], out: &mut Vec<String>, depth: u32) {
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
        let mut names: Vec<&ast::Ident> = Vec::new();
        let mut root = e;
        while let ast::ExprKind::Field { base, name } = &root.kind {
            names.push(name);
            root = base;
        }
        names.reverse();
        let ast::ExprKind::Name(id) = &root.kind else { return None };
        if ctx.lookup(&id.name).is_some() || self.vars.contains_key(&id.name) {
            return None;
        }
        let (typed, text, rest) = if id.name == "args" {
            let first = names.first()?;
            let span = root.span.to(first.span);
            let typed = ctx.args.typed_field(&mut self.pcx(), &first.name, span)?;
            (typed, format!("args.{}", first.name), &names[1..])
        } else if let Some((strukt, base)) = crate::builtins::name(&id.name).and_then(crate::builtins::typed_root) {
            (self.typed_struct(strukt, base, root.span), id.name.clone(), &names[..])
        } else if let Some(n) = id.name.strip_prefix("arg").and_then(|n| n.parse::<usize>().ok()) {
            (ctx.args.typed_arg(&mut self.pcx(), n, root.span)?, id.name.clone(), &names[..])
        } else {
            return None;
        };
        Some(typed.and_then(|t| self.walk(t, text, rest, e.span)))
    }

    /// `argN` of a typed provider, read whole; `None` when the provider's
    /// arguments are not typed.
    pub(super) fn typed_arg(&mut self, ctx: &mut ProbeCtx, n: usize, span: Span) -> Option<Option<Expr>> {
        let typed = ctx.args.typed_arg(&mut self.pcx(), n, span)?;
        Some(typed.and_then(|t| self.walk(t, format!("arg{n}"), &[], span)))
    }

    /// The kernel struct `strukt` at `base`.
    fn typed_struct(&mut self, strukt: &str, base: ir::PathBase, span: Span) -> Option<Typed> {
        let found = self.events.kernel_btf().and_then(|r| r.find(Kind::STRUCT, strukt).map_err(|e| e.to_string()));
        match found {
            Ok(Some(ty)) => Some(Typed { path: ir::Path::plain(base, Vec::new(), 0, 0, ir::Via::Direct), ty }),
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
    fn walk(&mut self, typed: Typed, text: String, names: &[&ast::Ident], span: Span) -> Option<Expr> {
        let facts = self.events;
        let r = match facts.kernel_btf() {
            Ok(r) => r,
            Err(e) => {
                self.error(span, format!("typed values need the kernel's BTF: {e}"));
                return None;
            }
        };
        let mut w = Walk { path: typed.path, ty: typed.ty, text, cur: None };
        for name in names {
            let mut desc = self.describe(&r, w.ty, name.span)?;
            if let TypeDesc::Ptr { to, tag } = &desc {
                if w.path.derefs.len() >= MAX_DEREFS {
                    self.diags.push(
                        Diagnostic::error(name.span, format!("too many pointers followed: probes follow at most {MAX_DEREFS}"))
                            .with_label("one pointer too many"),
                    );
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
                desc = self.describe(&r, to, name.span)?;
            }
            let TypeDesc::Composite { union, name: sname, size, members } = desc else {
                let spelled = r.type_name(w.ty);
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is a `{spelled}`, which has no members", w.text))
                        .with_label(format!("no member `{}` here", name.name)),
                );
                return None;
            };
            let holder = composite(union, &sname, size);
            let Some(chain) = find_member(&r, &holder, &members, &name.name, 0) else {
                let mut all = Vec::new();
                member_names(&r, &members, &mut all, 0);
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
                if m.bits != 0 || m.bit_offset % 8 != 0 {
                    self.unsupported(name.span, "reading a bitfield");
                    return None;
                }
                w.path.offset += i64::from(m.bit_offset / 8);
                let member = CoreMember { name: m.name.clone(), offset: m.bit_offset / 8, ty: core_ty(&r, m.ty, 0) };
                match &mut w.cur {
                    Some(c) => c.members.push(member),
                    None => w.cur = Some(CoreField { step: 0, root: parent, members: vec![member] }),
                }
                w.ty = m.ty;
            }
            w.text = format!("{}.{}", w.text, name.name);
        }
        self.read(&r, w, span)
    }

    fn describe(&mut self, r: &BtfReader<'_>, ty: TypeId, span: Span) -> Option<TypeDesc> {
        match r.describe(ty) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(span, format!("cannot read the kernel's BTF: {e}"));
                None
            }
        }
    }

    /// The value at the end of a walk.
    fn read(&mut self, r: &BtfReader<'_>, w: Walk, span: Span) -> Option<Expr> {
        let desc = self.describe(r, w.ty, span)?;
        let spelled = r.type_name(w.ty);
        let text = w.text.clone();
        let load = |mut path: ir::Path, size: u32, signed: bool, ty: Ty| {
            path.size = size as u8;
            path.signed = signed;
            Expr { kind: ExprKind::Load(path), ty, span: Some(span) }
        };
        match desc {
            TypeDesc::Int { size: size @ (1 | 2 | 4 | 8), signed } | TypeDesc::Enum { size: size @ (1 | 2 | 4 | 8), signed, .. } => {
                Some(load(w.finish(), size, signed, Ty::Int))
            }
            TypeDesc::Ptr { to, tag } => {
                let is_char = matches!(r.describe(to), Ok(TypeDesc::Int { size: 1, .. }));
                let user = tag.as_deref() == Some("user");
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
                    Diagnostic::error(span, format!("`{text}` is a `{spelled}`, which probes cannot read as a value"))
                        .with_label("not a number, pointer or string"),
                );
                None
            }
        }
    }
}
