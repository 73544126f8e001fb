//! Arguments fetched from registers and memory, shared by the providers
//! whose programs see a `struct pt_regs` (uprobes, kprobes, USDT): the
//! layout of `arg0..` and named arguments a spec gives (its fetch
//! arguments, or a USDT note's operands), and what a body reading them
//! lowers to; and for user probes, the names a binary's debug info gives
//! (`args.NAME` of a function's parameters or of the variables in scope
//! at a source line, `retval` of its return type), typed and read from
//! their DWARF locations. Pure; never panics.

use super::{Cx, ProbeArgs};
use crate::frontend::ast::{self, Span};
use crate::facts::{DebugScope, VarLoc};
use crate::frontend::diag::{near_names, Diagnostic};
use crate::frontend::fetch::{self, FetchKind, FetchType};
use crate::ir::{self, AddrSpace, Attach, EventField, Expr, ExprKind, FetchLoc, RegOffset, Ty};

/// One numbered argument of a dynamic probe: a value, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    Value { fetch: ir::Fetch, ty: Ty },
    /// `name=ADDR:string`: the string at the fetched address.
    String { addr: ir::Fetch, space: AddrSpace },
    Unavailable(String),
}

/// What a probe body can read of its event: `arg0..`, names (`args.NAME`,
/// `retval`), and what it cannot. Points with equal layouts share a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgLayout {
    pub numbered: Vec<Slot>,
    /// Fetch-argument names and the numbered slot each one is.
    pub named: Vec<(String, usize)>,
    /// `retval` of a `%return` probe.
    pub retval: Option<ir::Fetch>,
    /// The user function or source line whose debug info names
    /// `args.NAME` (single functions and lines only).
    pub debug: Option<DebugSite>,
    /// Fetch arguments that are member chains of typed arguments
    /// (`path=req->path`): the name, the argument, the members.
    pub chains: Vec<(String, ast::Ident, Vec<ast::Ident>)>,
    /// The slots are a USDT marker's operands (fixed by the binary),
    /// not fetch arguments the spec wrote.
    pub marker: bool,
}

/// `ARG->MEMBER.MEMBER...` (or a bare `ARG`) at `span`: the argument and
/// the members with their spans; `None` for any other fetch text.
pub fn member_chain(text: &str, span: Span) -> Option<(ast::Ident, Vec<ast::Ident>)> {
    let ident = |s: &str| s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut parts = Vec::new();
    let (mut from, mut i) = (0, 0);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let sep = if bytes[i] == b'.' { 1 } else if text[i..].starts_with("->") { 2 } else { 0 };
        if sep > 0 {
            parts.push((from, &text[from..i]));
            i += sep;
            from = i;
        } else {
            i += 1;
        }
    }
    parts.push((from, &text[from..]));
    if !parts.iter().all(|(_, p)| ident(p)) {
        return None;
    }
    let mut idents = parts.into_iter().map(|(at, p)| ast::Ident {
        name: p.to_string(),
        span: Span { start: span.start + at as u32, end: span.start + (at + p.len()) as u32 },
    });
    let first = idents.next()?;
    Some((first, idents.collect()))
}

/// A place in a user binary whose debug info may type `args.NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugSite {
    /// The binary's resolved path.
    pub binary: String,
    pub place: DebugPlace,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugPlace {
    /// A function's entry or return: its debug info is read only when a
    /// body names something in it.
    Function { name: String, ret: bool },
    /// A source line, already looked up (its address is the attach point).
    Line(Box<DebugScope>),
}

pub fn reg(r: RegOffset) -> ir::Fetch {
    ir::Fetch { loc: FetchLoc::Reg(r), bytes: 8, signed: false }
}

pub fn value(fetch: ir::Fetch) -> Slot {
    Slot::Value { fetch, ty: Ty::Int }
}

pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

    /// The argument layout a probe spec's fetch arguments give, or None
    /// after reporting what is wrong with them.
pub fn fetch_layout(cx: &mut Cx<'_>, spec: &ast::EventSpec, ret: bool, space: AddrSpace) -> Option<ArgLayout> {
        let mut numbered = if ret {
            vec![value(ir::Fetch { loc: FetchLoc::FuncIp, bytes: 8, signed: false }), value(reg(RegOffset::IP))]
        } else {
            vec![value(reg(RegOffset::IP))]
        };
        let mut named = Vec::new();
        let mut chains = Vec::new();
        let mut ok = true;
        if spec.fetch_args.is_empty() && !ret {
            numbered.extend(RegOffset::ARGS.iter().map(|r| value(reg(*r))));
        }
        let facts = cx.facts;
        let lookup = |name: &str| facts.kernel_symbol(name);
        for arg in &spec.fetch_args {
            let ty = match &arg.ty {
                Some(t) => match fetch::parse_type(&t.text, t.span) {
                    Ok(ty) => ty,
                    Err(d) => {
                        cx.diags.push(d);
                        ok = false;
                        continue;
                    }
                },
                None => FetchType::U64,
            };
            // A member chain of a typed argument: read through the types when
        // a body names it (its type is the last member's).
        if let Some((first, members)) = member_chain(&arg.fetch.text, arg.fetch.span) {
            if !matches!(ty, FetchType::String) && arg.ty.is_some() {
                let t = arg.ty.as_ref().map_or(arg.fetch.span, |t| t.span);
                cx.diags.push(
                    Diagnostic::error(t, "a member chain takes its type from the debug info or BTF")
                        .with_label("not a string")
                        .with_note("leave the type out, or give `:string` for a `char *` or `char[N]` member"),
                );
                ok = false;
                continue;
            }
            if named.iter().any(|(n, _)| *n == arg.name.text) || chains.iter().any(|(n, _, _)| *n == arg.name.text) {
                cx.diags.push(Diagnostic::error(arg.name.span, format!("fetch argument `{}` is defined twice", arg.name.text)));
                ok = false;
                continue;
            }
            chains.push((arg.name.text.clone(), first, members));
            continue;
        }
        let parsed = fetch::parse_fetch(&arg.fetch.text, arg.fetch.span.start).and_then(|f| convert(&f, ty, space, ret, &lookup));
            match parsed {
                Ok(slot) => {
                    if named.iter().any(|(n, _)| *n == arg.name.text) || chains.iter().any(|(n, _, _)| *n == arg.name.text) {
                        cx.diags.push(Diagnostic::error(arg.name.span, format!("fetch argument `{}` is defined twice", arg.name.text)));
                        ok = false;
                        continue;
                    }
                    named.push((arg.name.text.clone(), numbered.len()));
                    numbered.push(slot);
                }
                Err(d) => {
                    cx.diags.push(d);
                    ok = false;
                }
            }
        }
        let retval = ret.then(|| reg(RegOffset::AX));
        ok.then_some(ArgLayout { numbered, named, retval, debug: None, chains, marker: false })
    }


/// The arguments of one probe: their layout, the kernel functions an
/// entry kprobe probes (whose BTF prototypes type `args.NAME` when no
/// fetch argument has that name), the registers `argstr` copies once
/// a body used it, and what the layout's debug site gave.
pub struct FetchArgs(pub ArgLayout, pub Vec<String>, pub Option<Vec<EventField>>, pub DebugUse);

/// A debug site's scope once looked up, and whether a body read a
/// variable from it (the probe then attaches where the scope says).
#[derive(Default)]
pub struct DebugUse {
    scope: Option<Result<DebugScope, String>>,
    used: bool,
}

impl FetchArgs {
    pub fn new(layout: ArgLayout, funcs: Vec<String>) -> FetchArgs {
        FetchArgs(layout, funcs, None, DebugUse::default())
    }

    /// The debug scope of the layout's site, looked up once; `None`
    /// after reporting why `args.NAME` (at `span`) has none.
    fn scope(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<&DebugScope> {
        let site = self.0.debug.as_ref()?;
        let found = self.3.scope.get_or_insert_with(|| match &site.place {
            DebugPlace::Function { name, .. } => cx.facts.debug_function(&site.binary, name),
            DebugPlace::Line(scope) => Ok((**scope).clone()),
        });
        match found {
            Ok(scope) => Some(scope),
            Err(e) => {
                cx.diags.push(
                    Diagnostic::error(span, format!("this probe has no argument `{name}`"))
                        .with_label("not a fetch argument, and no debug info names it")
                        .with_note(e.clone())
                        .with_note("build the binary with -g (or install its debug file), or name arguments in the probe spec: `probe:BIN:FUNC name=%di`"),
                );
                None
            }
        }
    }

    /// `args.NAME` from the debug site: a parameter, or a variable in
    /// scope at a source line.
    fn debug_var(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<super::Typed> {
        let ret = matches!(&self.0.debug, Some(DebugSite { place: DebugPlace::Function { ret: true, .. }, .. }));
        let scope = self.scope(cx, name, span)?;
        let Some(var) = scope.vars.iter().find(|v| v.name == name) else {
            let what = if scope.vars.iter().all(|v| v.param) { "argument" } else { "argument or local" };
            let mut d = Diagnostic::error(span, format!("`{}` has no {what} `{name}`", scope.function)).with_label(format!("no such {what}"));
            let names: Vec<&str> = scope.vars.iter().map(|v| v.name.as_str()).collect();
            let near = near_names(name, names.iter().copied(), 3);
            if !near.is_empty() {
                d = d.with_note(format!("did you mean {}?", near.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));
            }
            let listed: Vec<String> = scope.vars.iter().map(|v| format!("{}: {}", v.name, crate::facts::TypeSource::type_name(&*scope.types, v.ty))).collect();
            d = d.with_note(if listed.is_empty() { "it has none".to_string() } else { format!("in scope: {}", listed.join(", ")) });
            cx.diags.push(d);
            return None;
        };
        if ret {
            cx.diags.push(
                Diagnostic::error(span, format!("`{name}` cannot be read in a %return probe"))
                    .with_label("the function's frame is gone")
                    .with_note("read it in an entry probe; a return probe has `retval`"),
            );
            return None;
        }
        let path = match &var.loc {
            VarLoc::Reg(r) => ir::Path::plain(ir::PathBase::Reg(*r), Vec::new(), 0, 0, ir::Via::ProbeReadUser),
            VarLoc::Mem { base, offset } => ir::Path::plain(ir::PathBase::Reg(*base), vec![0], *offset, 0, ir::Via::ProbeReadUser),
            VarLoc::OptimizedOut => {
                cx.diags.push(
                    Diagnostic::error(span, format!("`{name}` is optimised out at this address of `{}`", scope.function))
                        .with_label("no location here")
                        .with_note("the compiler kept no copy of it here; probe another line, or build with -O0"),
                );
                return None;
            }
            VarLoc::Untranslatable(what) => {
                cx.diags.push(
                    Diagnostic::error(span, format!("cannot read `{name}`: its DWARF location ({what}) has no BPF translation"))
                        .with_label("location not supported"),
                );
                return None;
            }
        };
        let typed = super::Typed { path, ty: var.ty, types: super::TypeOrigin::User(scope.types.clone()) };
        self.3.used = true;
        Some(typed)
    }
}

impl ProbeArgs for FetchArgs {
    fn alias(&self, name: &str) -> Option<(ast::Ident, Vec<ast::Ident>)> {
        self.0.chains.iter().find(|(n, _, _)| n == name).map(|(_, first, rest)| (first.clone(), rest.clone()))
    }

    fn typed_field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Option<super::Typed>> {
        if self.0.named.iter().any(|(n, _)| n == name) {
            return None;
        }
        if self.0.debug.is_some() {
            return Some(self.debug_var(cx, name, span));
        }
        if self.1.is_empty() {
            return None;
        }
        // Every function must have the argument, in the same register.
        let mut found: Option<(usize, super::Typed, String)> = None;
        for func in &self.1 {
            let params = super::btf::function_params(cx, func)?;
            let Some(i) = params.iter().position(|(n, _, _)| n == name) else {
                let list: Vec<String> = params.iter().map(|(n, _, t)| format!("{n}: {t}")).collect();
                cx.diags.push(
                    Diagnostic::error(span, format!("`{func}` has no argument `{name}`"))
                        .with_label("no such argument")
                        .with_note(format!("its arguments: {}", list.join(", "))),
                );
                return Some(None);
            };
            let Some(&reg) = ir::RegOffset::ARGS.get(i) else {
                cx.error(span, format!("`{name}` is argument {i} of `{func}`, past the six passed in registers"));
                return Some(None);
            };
            let (_, ty, spelled) = &params[i];
            if let Some((j, _, t)) = &found {
                if *j != i || t != spelled {
                    cx.error(span, format!("`{name}` differs between the functions of the probe (`{func}` has `{spelled}`)"));
                    return Some(None);
                }
                continue;
            }
            let path = ir::Path::plain(ir::PathBase::Reg(reg), Vec::new(), 0, 0, ir::Via::ProbeRead);
            found = Some((i, super::Typed::kernel(path, *ty), spelled.clone()));
        }
        found.map(|(_, typed, _)| Some(typed))
    }

    /// `retval` of a user function's `%return` probe, typed by its
    /// debug info when it has some.
    fn typed_name(&mut self, cx: &mut Cx<'_>, name: &str, _span: Span) -> Option<Option<super::Typed>> {
        let Some(DebugSite { binary, place: DebugPlace::Function { name: func, ret: true } }) = &self.0.debug else { return None };
        if name != "retval" {
            return None;
        }
        let found = self.3.scope.get_or_insert_with(|| cx.facts.debug_function(binary, func));
        let scope = found.as_ref().ok()?;
        if scope.ret == crate::facts::TypeId::VOID {
            return None;
        }
        let path = ir::Path::plain(ir::PathBase::Reg(RegOffset::AX), Vec::new(), 0, 0, ir::Via::ProbeReadUser);
        Some(Some(super::Typed { path, ty: scope.ret, types: super::TypeOrigin::User(scope.types.clone()) }))
    }

    fn arg(&mut self, cx: &mut Cx<'_>, n: usize, span: Span) -> Option<Expr> {
        let layout = &self.0;
        match layout.numbered.get(n) {
            Some(slot) => slot_expr(cx, slot, span),
            None => {
                let last = layout.numbered.len().saturating_sub(1);
                let note = if layout.marker {
                    format!("the marker has {last} operand{} after its address (arg0); `-lm BIN -v` lists each marker's", if last == 1 { "" } else { "s" })
                } else {
                    "add fetch arguments to the probe spec: `probe:BIN:FUNC name=%di ...`".to_string()
                };
                cx.diags.push(
                    Diagnostic::error(span, format!("this probe has arguments arg0..arg{last}"))
                        .with_label("no such argument")
                        .with_note(note),
                );
                None
            }
        }
    }

    fn field(&mut self, cx: &mut Cx<'_>, name: &str, span: Span) -> Option<Expr> {
        let layout = &self.0;
        if name == "retval" {
            if let Some(f) = &layout.retval {
                return Some(Expr { kind: ExprKind::Fetch(f.clone()), ty: Ty::Int, span: Some(span) });
            }
        }
        match layout.named.iter().find(|(n, _)| n == name) {
            Some((_, i)) => slot_expr(cx, &layout.numbered[*i], span),
            None => {
                let names: Vec<&str> = layout.named.iter().map(|(n, _)| n.as_str()).collect();
                let mut d = Diagnostic::error(span, format!("this probe has no argument `{name}`")).with_label("not a fetch argument");
                d = if names.is_empty() {
                    d.with_note("name arguments in the probe spec: `probe:BIN:FUNC name=%di`")
                } else {
                    d.with_note(format!("its arguments are: {}", names.join(", ")))
                };
                cx.diags.push(d);
                None
            }
        }
    }

    /// `argstr` as ktap has it for these probes: the probe's name, the
    /// address, then `name=value` of each fetch argument. The record
    /// carries the `struct pt_regs` window holding them; fetch arguments
    /// read from memory are not supported yet.
    fn argstr(&mut self, cx: &mut Cx<'_>, span: Span) -> Option<Expr> {
        let mut fields = vec![EventField {
            name: EventField::PROBE_IP.into(),
            offset: u32::from(RegOffset::IP.0),
            size: 8,
            signed: false,
            common: false,
            kind: ir::FieldKind::Int,
        }];
        for (name, i) in &self.0.named {
            match &self.0.numbered[*i] {
                Slot::Value { fetch: ir::Fetch { loc: FetchLoc::Reg(r), bytes, signed }, .. } => fields.push(EventField {
                    name: name.clone(),
                    offset: u32::from(r.0),
                    size: u32::from(*bytes),
                    signed: *signed,
                    common: false,
                    kind: ir::FieldKind::Int,
                }),
                _ => {
                    cx.unsupported(span, &format!("`argstr` with fetch argument `{name}`, which is not a register,"));
                    return None;
                }
            }
        }
        let start = fields.iter().map(|f| f.offset).min().unwrap_or(0) & !7;
        let end = fields.iter().map(|f| f.offset + 8).max().unwrap_or(8);
        let len = (end - start).next_multiple_of(8);
        self.2 = Some(fields);
        Some(Expr { kind: ExprKind::ArgStr { offset: start }, ty: Ty::ArgStr { start, len }, span: Some(span) })
    }

    /// Entry probes that read a variable from a function's debug info
    /// attach where it is readable (after the prologue, for frames).
    fn finish(self: Box<Self>, _cx: &mut Cx<'_>, _probe: usize, mut points: Vec<Attach>) -> super::Shape {
        let fn_entry = matches!(&self.0.debug, Some(DebugSite { place: DebugPlace::Function { ret: false, .. }, .. }));
        if let (true, true, Some(Ok(scope))) = (fn_entry, self.3.used, &self.3.scope) {
            for p in &mut points {
                if let Attach::Uprobe(u) = p {
                    u.offset = scope.offset;
                }
            }
        }
        // Every point of the probe shares the layout.
        let formats = vec![self.2.unwrap_or_default(); points.len()];
        super::Shape { attach: points, formats, maps: Vec::new() }
    }

    /// `retval` in return probes, fetch argument names in filters.
    fn name(&mut self, cx: &mut Cx<'_>, name: &str, in_filter: bool, span: Span) -> Option<Option<Expr>> {
        if name == "retval" {
            if let Some(f) = &self.0.retval {
                return Some(Some(Expr { kind: ExprKind::Fetch(f.clone()), ty: Ty::Int, span: Some(span) }));
            }
        }
        if in_filter && self.0.named.iter().any(|(n, _)| *n == name) {
            return Some(self.field(cx, name, span));
        }
        None
    }
}

fn slot_expr(cx: &mut Cx<'_>, slot: &Slot, span: Span) -> Option<Expr> {
    match slot {
        Slot::Value { fetch, ty } => Some(Expr { kind: ExprKind::Fetch(fetch.clone()), ty: *ty, span: Some(span) }),
        Slot::String { addr, space } => {
            let ptr = Expr { kind: ExprKind::Fetch(addr.clone()), ty: Ty::Int, span: Some(span) };
            Some(Expr { kind: ExprKind::ReadStr { ptr: Box::new(ptr), user: *space == AddrSpace::User }, ty: Ty::Str, span: Some(span) })
        }
        Slot::Unavailable(why) => {
            cx.diags.push(Diagnostic::error(span, format!("this argument cannot be read: {why}")).with_label("not supported yet"));
            None
        }
    }
}

/// A parsed fetch and its type to an IR slot.
pub fn convert(
    f: &fetch::Fetch,
    ty: FetchType,
    space: AddrSpace,
    ret: bool,
    kernel_symbol: &dyn Fn(&str) -> Option<u64>,
) -> Result<Slot, Diagnostic> {
    let loc = location(f, space, ret, kernel_symbol)?;
    Ok(match ty {
        FetchType::Int { bytes, signed } => {
            let loc = match loc {
                FetchLoc::Mem { base, offset, space, .. } => FetchLoc::Mem { base, offset, bytes, space },
                other => other,
            };
            Slot::Value { fetch: ir::Fetch { loc, bytes, signed }, ty: Ty::Int }
        }
        FetchType::String => {
            // `+OFF(X):string` is the string at X+OFF; `%di:string` the
            // string at the address in %di (as in kprobe_events).
            let addr = match loc {
                FetchLoc::Mem { base, offset: 0, .. } => *base,
                FetchLoc::Mem { base, offset, .. } => FetchLoc::Offset { base, offset },
                other => other,
            };
            Slot::String { addr: ir::Fetch { loc: addr, bytes: 8, signed: false }, space }
        }
    })
}

fn location(f: &fetch::Fetch, space: AddrSpace, ret: bool, kernel_symbol: &dyn Fn(&str) -> Option<u64>) -> Result<FetchLoc, Diagnostic> {
    let mem = |base: FetchLoc, offset: i64| FetchLoc::Mem { base: Box::new(base), offset, bytes: 8, space };
    Ok(match &f.kind {
        FetchKind::Reg(r) => FetchLoc::Reg(*r),
        FetchKind::StackPtr => FetchLoc::Reg(RegOffset::SP),
        FetchKind::StackWord(n) => mem(FetchLoc::Reg(RegOffset::SP), i64::from(*n) * 8),
        FetchKind::Retval => {
            if !ret {
                return Err(Diagnostic::error(f.span, "`$retval` is only available in %return probes").with_label("not a return probe"));
            }
            FetchLoc::Reg(RegOffset::AX)
        }
        FetchKind::Imm(v) => FetchLoc::Const(*v),
        FetchKind::Deref { offset, base } => mem(location(base, space, ret, kernel_symbol)?, *offset),
        FetchKind::Symbol { .. } | FetchKind::Addr(_) if space == AddrSpace::User => {
            return Err(Diagnostic::error(f.span, "`@` addresses are only available in kernel probes").with_label("in a user probe"))
        }
        FetchKind::Addr(a) => mem(FetchLoc::Const(*a as i64), 0),
        FetchKind::Symbol { name, offset } => match kernel_symbol(name) {
            Some(a) => mem(FetchLoc::Const(a as i64), *offset),
            None => return Err(Diagnostic::error(f.span, format!("unknown kernel symbol `{name}`")).with_label("not in /proc/kallsyms")),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_of_a_deref_reads_at_the_address() {
        let f = fetch::parse_fetch("+8(%di)", 0).expect("parses");
        let slot = convert(&f, FetchType::String, AddrSpace::User, false, &|_| None).expect("converts");
        let Slot::String { addr: fetch, space } = slot else { panic!() };
        assert_eq!(space, AddrSpace::User);
        assert_eq!(fetch.loc, FetchLoc::Offset { base: Box::new(FetchLoc::Reg(RegOffset::DI)), offset: 8 });
        let f = fetch::parse_fetch("+4($stack):u32", 0);
        assert!(f.is_err(), "the type is split off by the parser");
        let f = fetch::parse_fetch("+4($stack)", 0).expect("parses");
        let Slot::Value { fetch, .. } = convert(&f, FetchType::Int { bytes: 4, signed: false }, AddrSpace::User, false, &|_| None).expect("ok") else { panic!() };
        assert!(matches!(fetch.loc, FetchLoc::Mem { bytes: 4, offset: 4, .. }));
        let f = fetch::parse_fetch("$retval", 0).expect("parses");
        assert!(convert(&f, FetchType::U64, AddrSpace::User, false, &|_| None).is_err());
        let f = fetch::parse_fetch("@jiffies", 0).expect("parses");
        assert!(convert(&f, FetchType::U64, AddrSpace::User, false, &|_| None).is_err());
        assert!(convert(&f, FetchType::U64, AddrSpace::Kernel, false, &|_| Some(0xffff_0000)).is_ok());
    }
}

#[cfg(test)]
mod debug_tests {
    use crate::facts::{DebugScope, DebugVar, FakeBinary, FakeKernel, FileOffset, MemberDesc, TypeDesc, TypeId, TypeTable, VarLoc};
    use crate::ir::{Attach, RegOffset};
    use std::sync::Arc;

    /// `/bin/app` with `parse(struct req *req, int nbytes)` (nbytes in the
    /// frame: the scope moves the probe to 0x1008) and a line `app.c:7`.
    fn kernel() -> FakeKernel {
        let mut t = TypeTable::new();
        let int = t.add(TypeDesc::Int { size: 4, signed: true }, "int".into());
        let ch = t.add(TypeDesc::Int { size: 1, signed: true }, "char".into());
        let str_ptr = t.add(TypeDesc::Ptr { to: ch, tag: None }, "char *".into());
        let req = t.add(TypeDesc::Void, String::new());
        let req_ptr = t.add(TypeDesc::Ptr { to: req, tag: None }, "struct req *".into());
        let members = vec![
            MemberDesc { name: "path".into(), ty: str_ptr, bit_offset: 0, bits: 0 },
            MemberDesc { name: "size".into(), ty: int, bit_offset: 64, bits: 0 },
            MemberDesc { name: "next".into(), ty: req_ptr, bit_offset: 128, bits: 0 },
        ];
        t.set(req, TypeDesc::Composite { union: false, name: "req".into(), size: 24, members }, "struct req".into());
        let types = Arc::new(t);
        let var = |name: &str, ty, loc, param| DebugVar { name: name.into(), ty, loc, param };
        let scope = DebugScope {
            debug_file: "/bin/app".into(),
            function: "parse".into(),
            offset: FileOffset(0x1008),
            address: 0x1008,
            vars: vec![var("req", req_ptr, VarLoc::Mem { base: RegOffset::BP, offset: -24 }, true), var("nbytes", int, VarLoc::Reg(RegOffset::SI), true)],
            ret: req_ptr,
            types: types.clone(),
        };
        let line = DebugScope {
            function: "parse".into(),
            offset: FileOffset(0x1020),
            address: 0x1020,
            vars: vec![
                var("i", int, VarLoc::Mem { base: RegOffset::BP, offset: -4 }, false),
                var("gone", int, VarLoc::OptimizedOut, false),
                var("odd", int, VarLoc::Untranslatable("DW_OP_entry_value".into()), false),
            ],
            ..scope.clone()
        };
        FakeKernel::new()
            .binary(FakeBinary { path: "/bin/app".into(), functions: vec![("parse".into(), FileOffset(0x1000))], ..Default::default() })
            .binary(FakeBinary { path: "/bin/plain".into(), functions: vec![("parse".into(), FileOffset(0x2000))], ..Default::default() })
            .debug("/bin/app", "parse", scope)
            .debug("/bin/app", "app.c:7", line)
    }

    fn lower(src: &str) -> (crate::ir::Module, Vec<String>) {
        let (program, diags) = crate::frontend::parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        let k = kernel();
        let (m, d) = crate::frontend::lower::lower(&program, &k, &Default::default());
        (m, d.iter().map(|d| format!("{} {}", d.message, d.notes.join(" | "))).collect())
    }

    fn offsets(m: &crate::ir::Module) -> Vec<u64> {
        m.probes
            .iter()
            .flat_map(|p| &p.attach)
            .filter_map(|a| match a {
                Attach::Uprobe(u) => Some(u.offset.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn parameters_are_typed_and_move_the_probe_past_the_prologue() {
        let (m, d) = lower("trace probe:/bin/app:parse { print(args.req.path, args.req->next->size, args.nbytes) }");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(offsets(&m), [0x1008]);
        let ir = crate::ir::print::module(&m);
        assert!(ir.contains("regs+32->+0->-24 +0:u64 (user read)"), "the frame slot holds the pointer:\n{ir}");
        assert!(ir.contains("regs+32->+0->-24->+16 +8:s32 (user read)"), "{ir}");
        assert!(ir.contains("regs+104 +0:s32 (user read)"), "{ir}");
        // Without a named parameter the probe stays at the entry.
        let (m, d) = lower("trace probe:/bin/app:parse { print(arg1) }");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(offsets(&m), [0x1000]);
    }

    #[test]
    fn retval_takes_the_return_type_and_lines_their_locals() {
        let (m, d) = lower("trace probe:/bin/app:parse%return { print(retval.size) }");
        assert!(d.is_empty(), "{d:?}");
        assert!(crate::ir::print::module(&m).contains("regs+80->+0 +8:s32 (user read)"));
        let (m, d) = lower("trace probe:/bin/app:app.c:7 { print(args.i) }");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(offsets(&m), [0x1020]);
    }

    #[test]
    fn bad_names_are_errors_that_say_why() {
        let cases = [
            ("trace probe:/bin/app:parse { print(args.nbyts) }", "`parse` has no argument `nbyts` did you mean `nbytes`?"),
            ("trace probe:/bin/app:parse { print(args.nbytes.x) }", "`args.nbytes` is an `int`, which has no members"),
            ("trace probe:/bin/app:parse { print(args.req.nope) }", "`struct req` has no member `nope`"),
            ("trace probe:/bin/app:parse%return { print(args.nbytes) }", "`nbytes` cannot be read in a %return probe"),
            ("trace probe:/bin/app:app.c:7 { print(args.gone) }", "`gone` is optimised out at this address of `parse`"),
            ("trace probe:/bin/app:app.c:7 { print(args.odd) }", "cannot read `odd`: its DWARF location (DW_OP_entry_value) has no BPF translation"),
            ("trace probe:/bin/app:app.c:9 { print(1) }", "the debug info of /bin/app does not describe `app.c:9`"),
            ("trace probe:/bin/app:app.c:x { print(1) }", "`x` is not a line number"),
            ("trace probe:/bin/plain:parse { print(args.nbytes) }", "this probe has no argument `nbytes` /bin/plain has no debug info (looked in the binary only)"),
        ];
        for (src, want) in cases {
            let (_, d) = lower(src);
            assert!(d.iter().any(|m| m.starts_with(want)), "{src}: wanted `{want}`, got {d:?}");
        }
        // A fetch argument's name wins, and mixes with parameters.
        let (_, d) = lower("trace probe:/bin/app:parse nbytes=%si:u32 { print(args.nbytes, args.req.size) }");
        assert!(d.is_empty(), "{d:?}");
        let _ = TypeId::VOID;
    }
}
