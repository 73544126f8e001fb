//! Lowering of dynamic probes (`probe:BINARY:SYM`, `probe:FUNC`,
//! `sdt:BINARY:MARKER`): resolves specs through the kernel facts
//! ([`crate::facts::KernelFacts`]), turns fetch arguments and USDT operands
//! into IR fetches, and lowers the body once per distinct argument layout.
//! Pure: symbol tables and notes arrive through the kernel facts; never
//! does IO itself.

use super::{Formats, Lowerer, ProbeCtx};
use crate::facts::UserSymbols;
use crate::frontend::ast::{self, Span};
use crate::frontend::diag::Diagnostic;
use crate::frontend::fetch::{self, FetchKind, FetchType};
use crate::ir::{self, AddrSpace, Attach, Expr, ExprKind, FetchLoc, FileOffset, RegOffset, Ty, UprobePoint};

/// One numbered argument of a dynamic probe: a value, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Value { fetch: ir::Fetch, ty: Ty },
    /// `name=ADDR:string`: the string at the fetched address.
    String { addr: ir::Fetch, space: AddrSpace },
    Unavailable(String),
}

/// What a probe body can read of its event: `arg0..`, names (`args.NAME`,
/// `retval`), and what it cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ArgLayout {
    numbered: Vec<Slot>,
    /// Fetch-argument names and the numbered slot each one is.
    named: Vec<(String, usize)>,
    /// `retval` of a `%return` probe.
    retval: Option<ir::Fetch>,
}

fn reg(r: RegOffset) -> ir::Fetch {
    ir::Fetch { loc: FetchLoc::Reg(r), bytes: 8, signed: false }
}

fn value(fetch: ir::Fetch) -> Slot {
    Slot::Value { fetch, ty: Ty::Int }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Lowerer<'_> {
    /// `trace` over dynamic probes: one IR probe per argument layout.
    pub(super) fn dyn_trace(&mut self, span: Span, specs: &[ast::EventSpec], filter: Option<&ast::Expr>, body: &ast::Block) {
        let mut groups: Vec<(ArgLayout, Vec<Attach>)> = Vec::new();
        for spec in specs {
            for (layout, attach) in self.resolve_spec(spec) {
                match groups.iter_mut().find(|(l, _)| *l == layout) {
                    Some((_, list)) => list.push(attach),
                    None => groups.push((layout, vec![attach])),
                }
            }
        }
        if groups.is_empty() {
            // Lower the body anyway, for its diagnostics.
            let mut ctx = dyn_ctx(None);
            let mut sink = Vec::new();
            self.block(&mut ctx, body, &mut sink);
            return;
        }
        for (layout, attach) in groups {
            let mut ctx = dyn_ctx(Some(layout));
            let stmts = self.probe_body(&mut ctx, filter, body);
            let formats = vec![Vec::new(); attach.len()];
            self.m.probes.push(ir::Probe { attach, formats, locals: ctx.locals, body: stmts, span });
        }
    }

    /// The attach points of one spec, each with its argument layout.
    fn resolve_spec(&mut self, spec: &ast::EventSpec) -> Vec<(ArgLayout, Attach)> {
        match &spec.kind {
            ast::EventKind::Tracepoint { .. } => {
                self.diags.push(
                    Diagnostic::error(spec.span, "tracepoints and dynamic probes cannot share one `trace`")
                        .with_label("a tracepoint")
                        .with_note("write a second `trace` statement for it"),
                );
                Vec::new()
            }
            ast::EventKind::Probe { binary: Some(binary), symbol, ret } => self.resolve_uprobe(spec, binary, symbol, *ret),
            ast::EventKind::Probe { binary: None, symbol, ret } => self.resolve_kprobe(spec, symbol, *ret),
            ast::EventKind::Sdt { binary, marker } => self.resolve_sdt(spec, binary, marker),
        }
    }

    fn resolve_uprobe(&mut self, spec: &ast::EventSpec, binary: &ast::Word, symbol: &ast::Word, ret: bool) -> Vec<(ArgLayout, Attach)> {
        let Some(layout) = self.fetch_layout(spec, ret, AddrSpace::User) else { return Vec::new() };
        let offset_spec = symbol.text.strip_prefix("0x").map(|h| u64::from_str_radix(h, 16));
        let found = if offset_spec.is_some() {
            self.events.resolve_binary(&binary.text).map(|path| UserSymbols { path, ..Default::default() })
        } else {
            self.events.user_symbols(&binary.text, &symbol.text)
        };
        let found = match found {
            Ok(f) => f,
            Err(e) => {
                self.diags.push(Diagnostic::error(binary.span, e).with_label("cannot probe this binary"));
                return Vec::new();
            }
        };
        let point = |name: String, offset: FileOffset| {
            Attach::Uprobe(UprobePoint { binary: found.path.clone(), name, offset, ret, ref_ctr: None, spec: spec.span })
        };
        if let Some(parsed) = offset_spec {
            return match parsed {
                Ok(off) => vec![(layout, point(symbol.text.clone(), FileOffset(off)))],
                Err(_) => {
                    self.diags.push(Diagnostic::error(symbol.span, format!("malformed file offset `{}`", symbol.text)).with_label("expected hex digits after 0x"));
                    Vec::new()
                }
            };
        }
        if found.symbols.is_empty() {
            let mut d = if has_glob(&symbol.text) {
                Diagnostic::error(symbol.span, format!("no function of {} matches `{}`", found.path, symbol.text)).with_label("matches nothing")
            } else {
                Diagnostic::error(symbol.span, format!("no function `{}` in {}", symbol.text, found.path)).with_label("no such symbol")
            };
            if found.stripped {
                d = d.with_note("the binary is stripped (no .symtab): only its exported (.dynsym) functions can be probed by name; use a 0x file offset for others");
            }
            d = d.with_note(format!("list its functions with `ktap --list-functions {}`", binary.text));
            self.diags.push(d);
            return Vec::new();
        }
        found.symbols.iter().map(|(name, off)| (layout.clone(), point(name.clone(), *off))).collect()
    }

    fn resolve_kprobe(&mut self, spec: &ast::EventSpec, symbol: &ast::Word, ret: bool) -> Vec<(ArgLayout, Attach)> {
        let Some(layout) = self.fetch_layout(spec, ret, AddrSpace::Kernel) else { return Vec::new() };
        // `MODULE:FUNC` names a module's function; kprobes take the name.
        let name = symbol.text.rsplit(':').next().unwrap_or(&symbol.text);
        let found = match self.events.kernel_functions(name) {
            Ok(f) => f,
            Err(e) => {
                self.error(symbol.span, e);
                return Vec::new();
            }
        };
        if found.is_empty() {
            let what = if has_glob(name) { format!("no kernel function matches `{name}`") } else { format!("no kernel function `{name}`") };
            self.diags.push(Diagnostic::error(symbol.span, what).with_label("not a traceable kernel function"));
            return Vec::new();
        }
        found.into_iter().map(|f| (layout.clone(), Attach::Kprobe { symbol: f, ret, spec: spec.span })).collect()
    }

    fn resolve_sdt(&mut self, spec: &ast::EventSpec, binary: &ast::Word, marker: &ast::Word) -> Vec<(ArgLayout, Attach)> {
        if let Some(first) = spec.fetch_args.first() {
            let d = Diagnostic::error(first.span, "USDT markers bring their own arguments")
                .with_label("fetch arguments are for probe: specs")
                .with_note("a marker's arguments are arg1, arg2, ... as its note describes them");
            self.diags.push(d);
            return Vec::new();
        }
        let found = match self.events.sdt_markers(&binary.text, &marker.text) {
            Ok(f) => f,
            Err(e) => {
                self.diags.push(Diagnostic::error(binary.span, e).with_label("cannot probe this binary"));
                return Vec::new();
            }
        };
        if found.markers.is_empty() {
            let mut d = Diagnostic::error(marker.span, format!("no USDT marker `{}` in {}", marker.text, found.path)).with_label("no such marker");
            d = if found.all.is_empty() {
                d.with_note("the binary has no .note.stapsdt section")
            } else {
                let shown: Vec<&str> = found.all.iter().take(8).map(String::as_str).collect();
                let more = if found.all.len() > 8 { ", ..." } else { "" };
                d.with_note(format!("its markers are: {}{more}", shown.join(", ")))
            };
            self.diags.push(d);
            return Vec::new();
        }
        found
            .markers
            .iter()
            .map(|m| {
                let mut numbered = vec![value(reg(RegOffset::IP))];
                for text in m.args.split_whitespace() {
                    numbered.push(match fetch::parse_sdt_arg(text) {
                        Ok((ty, f)) => match convert(&f, ty, AddrSpace::User, false, &|_| None) {
                            Ok(slot) => slot,
                            Err(d) => Slot::Unavailable(d.message),
                        },
                        Err(e) => Slot::Unavailable(e),
                    });
                }
                let layout = ArgLayout { numbered, named: Vec::new(), retval: None };
                let point = UprobePoint {
                    binary: found.path.clone(),
                    name: m.name.clone(),
                    offset: m.offset,
                    ret: false,
                    ref_ctr: m.semaphore,
                    spec: spec.span,
                };
                (layout, Attach::Uprobe(point))
            })
            .collect()
    }

    /// The argument layout a probe spec's fetch arguments give, or None
    /// after reporting what is wrong with them.
    fn fetch_layout(&mut self, spec: &ast::EventSpec, ret: bool, space: AddrSpace) -> Option<ArgLayout> {
        let mut numbered = if ret {
            vec![value(ir::Fetch { loc: FetchLoc::FuncIp, bytes: 8, signed: false }), value(reg(RegOffset::IP))]
        } else {
            vec![value(reg(RegOffset::IP))]
        };
        let mut named = Vec::new();
        let mut ok = true;
        if spec.fetch_args.is_empty() && !ret {
            numbered.extend(RegOffset::ARGS.iter().map(|r| value(reg(*r))));
        }
        let events = self.events;
        let lookup = |name: &str| events.kernel_symbol(name);
        for arg in &spec.fetch_args {
            let ty = match &arg.ty {
                Some(t) => match fetch::parse_type(&t.text, t.span) {
                    Ok(ty) => ty,
                    Err(d) => {
                        self.diags.push(d);
                        ok = false;
                        continue;
                    }
                },
                None => FetchType::U64,
            };
            let parsed = fetch::parse_fetch(&arg.fetch.text, arg.fetch.span.start).and_then(|f| convert(&f, ty, space, ret, &lookup));
            match parsed {
                Ok(slot) => {
                    if named.iter().any(|(n, _)| *n == arg.name.text) {
                        self.diags.push(Diagnostic::error(arg.name.span, format!("fetch argument `{}` is defined twice", arg.name.text)));
                        ok = false;
                        continue;
                    }
                    named.push((arg.name.text.clone(), numbered.len()));
                    numbered.push(slot);
                }
                Err(d) => {
                    self.diags.push(d);
                    ok = false;
                }
            }
        }
        let retval = ret.then(|| reg(RegOffset::AX));
        ok.then_some(ArgLayout { numbered, named, retval })
    }

    /// `argN` of a dynamic probe.
    pub(super) fn dyn_arg(&mut self, layout: &ArgLayout, n: usize, span: Span) -> Option<Expr> {
        match layout.numbered.get(n) {
            Some(slot) => self.slot_expr(slot, span),
            None => {
                let last = layout.numbered.len().saturating_sub(1);
                self.diags.push(
                    Diagnostic::error(span, format!("this probe has arguments arg0..arg{last}"))
                        .with_label("no such argument")
                        .with_note("add fetch arguments to the probe spec: `probe:BIN:FUNC name=%di ...`"),
                );
                None
            }
        }
    }

    /// `args.NAME` of a dynamic probe.
    pub(super) fn dyn_field(&mut self, layout: &ArgLayout, name: &str, span: Span) -> Option<Expr> {
        if name == "retval" {
            if let Some(f) = &layout.retval {
                return Some(Expr { kind: ExprKind::Fetch(f.clone()), ty: Ty::Int, span: Some(span) });
            }
        }
        match layout.named.iter().find(|(n, _)| n == name) {
            Some((_, i)) => {
                let slot = layout.numbered[*i].clone();
                self.slot_expr(&slot, span)
            }
            None => {
                let names: Vec<&str> = layout.named.iter().map(|(n, _)| n.as_str()).collect();
                let mut d = Diagnostic::error(span, format!("this probe has no argument `{name}`")).with_label("not a fetch argument");
                d = if names.is_empty() {
                    d.with_note("name arguments in the probe spec: `probe:BIN:FUNC name=%di`")
                } else {
                    d.with_note(format!("its arguments are: {}", names.join(", ")))
                };
                self.diags.push(d);
                None
            }
        }
    }

    /// A bare name in a dynamic probe: `retval` in return probes, fetch
    /// argument names in filters. None when the name is something else.
    pub(super) fn dyn_name(&mut self, ctx: &ProbeCtx, id: &ast::Ident, span: Span) -> Option<Option<Expr>> {
        let layout = ctx.dynamic.as_ref()?;
        if self.vars.contains_key(&id.name) {
            return None;
        }
        if id.name == "retval" {
            if let Some(f) = &layout.retval {
                return Some(Some(Expr { kind: ExprKind::Fetch(f.clone()), ty: Ty::Int, span: Some(span) }));
            }
        }
        if ctx.in_filter && layout.named.iter().any(|(n, _)| *n == id.name) {
            return Some(self.dyn_field(layout, &id.name, span));
        }
        None
    }

    fn slot_expr(&mut self, slot: &Slot, span: Span) -> Option<Expr> {
        match slot {
            Slot::Value { fetch, ty } => Some(Expr { kind: ExprKind::Fetch(fetch.clone()), ty: *ty, span: Some(span) }),
            Slot::String { addr, space } => {
                let ptr = Expr { kind: ExprKind::Fetch(addr.clone()), ty: Ty::Int, span: Some(span) };
                Some(Expr { kind: ExprKind::ReadStr { ptr: Box::new(ptr), user: *space == AddrSpace::User }, ty: Ty::Str, span: Some(span) })
            }
            Slot::Unavailable(why) => {
                self.diags.push(Diagnostic::error(span, format!("this argument cannot be read: {why}")).with_label("not supported yet"));
                None
            }
        }
    }
}

fn dyn_ctx(layout: Option<ArgLayout>) -> ProbeCtx {
    ProbeCtx { dynamic: layout, ..ProbeCtx::new(Formats::Read(Vec::new()), (0, 1)) }
}

/// A parsed fetch and its type to an IR slot.
fn convert(
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
