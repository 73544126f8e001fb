//! The IR validator: runs once after lowering, checks every invariant
//! bpfgen relies on (ids in range, each expression's type against what it
//! reads, record layouts, the maps a probe's code needs, `break` and
//! `Leave` targets) and returns those facts as [`ModuleInfo`], which bpfgen
//! takes instead of re-deriving them. After it passes, bpfgen may only fail
//! on target limits. A failure here is a compiler bug, never a user
//! mistake. No IO.

use super::{AggTarget, BlockId, Expr, ExprKind, GlobalId, LocalId, MapId, MapKind, Module, ProbeId, ProgKind, SiteId, Stmt, StmtKind, TableValue, Ty};
use std::fmt;

/// What validation learned about a module: per probe, indexed by
/// [`ProbeId`] like `Module::probes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    pub probes: Vec<ProbeInfo>,
}

impl ModuleInfo {
    pub fn probe(&self, id: ProbeId) -> &ProbeInfo {
        &self.probes[id.index()]
    }
}

/// What one probe's code needs from the module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeInfo {
    /// One BPF program per kind, in `ProgKind` order.
    pub programs: Vec<ProgKind>,
    /// The ring buffer, when the probe sends records.
    pub ring_buffer: Option<MapId>,
    /// The stack trace map, when the probe takes a stack.
    pub stack_map: Option<MapId>,
    /// The syscall filter map of each raw_syscalls program
    /// (`SysEnter`/`SysExit`) of the probe.
    pub syscall_filters: Vec<(ProgKind, MapId)>,
    /// The body reads the event's record (`CtxField`, `argstr`): programs
    /// on raw_syscalls rebuild it first.
    pub reads_record: bool,
    /// The counter of records the full ring buffer refused, when the
    /// probe sends records.
    pub lost_events: Option<GlobalId>,
    /// The counter of failed table updates, when the probe updates a
    /// table.
    pub map_failures: Option<GlobalId>,
    /// The locals loop conditions read (the loops' counters), with the
    /// number of loops around each loop: those of nested loops and of
    /// loops in inlined calls, in the order the body holds them.
    pub loop_counters: Vec<(LocalId, usize)>,
}

impl ProbeInfo {
    /// The filter map of the probe's program of `kind`.
    pub fn syscall_filter(&self, kind: ProgKind) -> Option<MapId> {
        self.syscall_filters.iter().find(|(k, _)| *k == kind).map(|&(_, m)| m)
    }
}

/// A broken invariant, in the probe where it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    NoAttachPoint { probe: ProbeId },
    /// The module's stop flag names no global.
    StopFlagOutOfRange { global: usize },
    /// An id that indexes nothing (`what`: global, map, site, local).
    OutOfRange { probe: ProbeId, what: &'static str, index: usize },
    /// A record without the ring buffer it goes through.
    RecordWithoutRingBuffer { probe: ProbeId },
    /// A record without the counter of records the ring buffer refused.
    RecordWithoutLossCounter { probe: ProbeId },
    /// A table update without the counter of failed updates.
    UpdateWithoutFailureCounter { probe: ProbeId },
    /// `stack()`/`ustack()` without the stack trace map.
    StackWithoutStackMap { probe: ProbeId },
    /// A raw_syscalls program without its syscall filter map.
    SyscallWithoutFilter { probe: ProbeId, kind: ProgKind },
    /// `Break` outside a loop (of the same inlined function).
    BreakOutsideLoop { probe: ProbeId },
    /// `Leave` outside the block it names.
    LeaveOutsideBlock { probe: ProbeId, block: BlockId },
    /// An expression whose type differs from what it reads: `what` it
    /// reads (a local, a global, a table, a record field) declared
    /// `declared`, the expression says `found`.
    TypeMismatch { probe: ProbeId, what: &'static str, found: Ty, declared: Ty },
    /// A number expected (an operand, a condition, an added value).
    NotANumber { probe: ProbeId, found: Ty },
    /// A value stored where it does not fit (`what`: global, local, table).
    StoreMismatch { probe: ProbeId, what: &'static str, value: Ty, holds: Ty },
    /// A key of the wrong type, or a table whose key type and map key
    /// size disagree.
    KeyMismatch { probe: ProbeId, map: MapId, key: Ty, keyed_by: Ty },
    /// A table operation on a map that holds no table.
    NotATable { probe: ProbeId, map: MapId },
    /// A record with another number of values than its site has fields.
    RecordArity { probe: ProbeId, site: SiteId, fields: usize, args: usize },
    /// A load of a width BPF has no instruction for (`what`: context field,
    /// per-CPU variable, fetch argument).
    BadWidth { probe: ProbeId, what: &'static str, bytes: u32 },
    /// Any other broken shape.
    Invalid { probe: ProbeId, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAttachPoint { probe } => write!(f, "invalid IR in probe {}: probe has no attach point", probe.0),
            Error::StopFlagOutOfRange { global } => write!(f, "invalid IR: stop flag {global} out of range"),
            Error::OutOfRange { probe, what, index } => write!(f, "invalid IR in probe {}: {what} {index} out of range", probe.0),
            Error::RecordWithoutRingBuffer { probe } => write!(f, "invalid IR in probe {}: record emitted without an event ring buffer", probe.0),
            Error::RecordWithoutLossCounter { probe } => {
                write!(f, "invalid IR in probe {}: record emitted without a counter of lost records", probe.0)
            }
            Error::UpdateWithoutFailureCounter { probe } => {
                write!(f, "invalid IR in probe {}: table updated without a counter of failed updates", probe.0)
            }
            Error::StackWithoutStackMap { probe } => write!(f, "invalid IR in probe {}: stack without a stack map", probe.0),
            Error::SyscallWithoutFilter { probe, kind } => {
                write!(f, "invalid IR in probe {}: {kind:?} program without its syscall filter map", probe.0)
            }
            Error::BreakOutsideLoop { probe } => write!(f, "invalid IR in probe {}: break outside a loop", probe.0),
            Error::LeaveOutsideBlock { probe, block } => write!(f, "invalid IR in probe {}: leave outside block {}", probe.0, block.0),
            Error::TypeMismatch { probe, what, found, declared } => {
                write!(f, "invalid IR in probe {}: a {found:?} read from a {what} of type {declared:?}", probe.0)
            }
            Error::NotANumber { probe, found } => write!(f, "invalid IR in probe {}: a number expected, found a {found:?}", probe.0),
            Error::StoreMismatch { probe, what, value, holds } => {
                write!(f, "invalid IR in probe {}: a {value:?} stored in a {what} of type {holds:?}", probe.0)
            }
            Error::KeyMismatch { probe, map, key, keyed_by } => {
                write!(f, "invalid IR in probe {}: key of type {key:?} for map {} keyed by {keyed_by:?}", probe.0, map.0)
            }
            Error::NotATable { probe, map } => write!(f, "invalid IR in probe {}: map {} is not a table", probe.0, map.0),
            Error::RecordArity { probe, site, fields, args } => {
                write!(f, "invalid IR in probe {}: {args} values for site {} of {fields} fields", probe.0, site.0)
            }
            Error::BadWidth { probe, what, bytes } => write!(f, "invalid IR in probe {}: {what} of {bytes} bytes", probe.0),
            Error::Invalid { probe, message } => write!(f, "invalid IR in probe {}: {message}", probe.0),
        }
    }
}

impl std::error::Error for Error {}

/// Checks `m` and returns what its probes need.
pub fn validate(m: &Module) -> Result<ModuleInfo, Error> {
    if let Some(g) = m.stop_flag {
        if g.index() >= m.globals.len() {
            return Err(Error::StopFlagOutOfRange { global: g.index() });
        }
    }
    let mut info = ModuleInfo::default();
    for (i, probe) in m.probes.iter().enumerate() {
        let id = ProbeId(i as u32);
        if probe.attach.is_empty() {
            return Err(Error::NoAttachPoint { probe: id });
        }
        let mut programs: Vec<ProgKind> = probe.attach.iter().map(|a| a.kind()).collect();
        programs.sort();
        programs.dedup();
        let mut v = Validator { m, probe: id, locals: &probe.locals, loops: 0, depth: 0, blocks: Vec::new(), facts: ProbeInfo::default() };
        for &kind in &programs {
            if matches!(kind.shape().context, super::Context::RawSyscalls { .. }) {
                let filter = m.maps.iter().position(|mp| mp.syscall_filter == Some((id, kind)));
                match filter {
                    Some(at) if m.maps[at].kind == MapKind::Array && m.maps[at].value_size >= 8 => {
                        v.facts.syscall_filters.push((kind, MapId(at as u32)))
                    }
                    _ => return Err(Error::SyscallWithoutFilter { probe: id, kind }),
                }
            }
        }
        v.facts.programs = programs;
        v.stmts(&probe.body)?;
        info.probes.push(v.facts);
    }
    Ok(info)
}

struct Validator<'a> {
    m: &'a Module,
    probe: ProbeId,
    locals: &'a [Ty],
    /// Loops around the current statement, within its inlined function.
    loops: usize,
    /// Loops around the current statement, in all.
    depth: usize,
    /// Blocks around the current statement.
    blocks: Vec<BlockId>,
    facts: ProbeInfo,
}

impl Validator<'_> {
    /// Notes that the body reads `size` bytes of the record at `offset`;
    /// a program on raw_syscalls has only the part of the record it
    /// rebuilds (`__syscall_nr` and the arguments or `ret`).
    fn record_bytes(&mut self, offset: u32, size: u32) -> Result<(), Error> {
        self.facts.reads_record = true;
        let rebuilt = super::attach::SYSCALL_RECORD_BYTES;
        if !self.facts.syscall_filters.is_empty() && (offset < 8 || offset.saturating_add(size) > rebuilt) {
            return Err(self.err(format!("record bytes {offset}..{} beyond what a raw_syscalls program rebuilds", offset.saturating_add(size))));
        }
        Ok(())
    }

    fn err(&self, message: impl Into<String>) -> Error {
        Error::Invalid { probe: self.probe, message: message.into() }
    }

    fn out_of_range(&self, what: &'static str, index: usize) -> Error {
        Error::OutOfRange { probe: self.probe, what, index }
    }

    fn same_ty(&self, what: &'static str, found: Ty, declared: Ty) -> Result<(), Error> {
        if found != declared {
            return Err(Error::TypeMismatch { probe: self.probe, what, found, declared });
        }
        Ok(())
    }

    fn global(&self, g: super::GlobalId) -> Result<&super::Global, Error> {
        self.m.globals.get(g.index()).ok_or_else(|| self.out_of_range("global", g.index()))
    }

    /// A map the module names in `slot` (the ring buffer, the stack
    /// map), which must exist and be of `kind`.
    fn module_map(&self, slot: Option<MapId>, kind: MapKind) -> Option<MapId> {
        slot.filter(|id| self.m.maps.get(id.index()).is_some_and(|mp| mp.kind == kind))
    }

    /// A counter the module names in `slot`, which must be a number
    /// global.
    fn counter(&self, slot: Option<GlobalId>) -> Option<GlobalId> {
        slot.filter(|g| self.m.globals.get(g.index()).is_some_and(|g| g.ty == Ty::Int))
    }

    /// Notes that the probe updates a table (and may fail to).
    fn updates_a_table(&mut self) -> Result<(), Error> {
        let counter = self.counter(self.m.map_failures).ok_or(Error::UpdateWithoutFailureCounter { probe: self.probe })?;
        self.facts.map_failures = Some(counter);
        Ok(())
    }

    /// The locals a loop condition reads directly (through operators).
    fn counters(&mut self, cond: &Expr) {
        match &cond.kind {
            ExprKind::Local(l) => self.facts.loop_counters.push((*l, self.depth)),
            ExprKind::Unary { operand, .. } => self.counters(operand),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.counters(lhs);
                self.counters(rhs);
            }
            _ => {}
        }
    }

    /// A print into the iterator's seq_file: only iterator programs have
    /// one; the format is what `bpf_seq_printf` accepts (kernel/bpf/helpers.c,
    /// bpf_bprintf_prepare: `%%`, flags `0+- `, a width, `l`/`ll`, then
    /// `d i u x X c` or `s`) with one conversion per argument, at most
    /// [`super::SEQ_MAX_ARGS`]: numbers for integer conversions, strings
    /// for `%s`; no NUL inside.
    fn seq_print(&mut self, format: &[u8], args: &[Expr]) -> Result<(), Error> {
        let probe = &self.m.probes[self.probe.index()];
        if probe.attach.iter().any(|a| !a.kind().shape().seq_file) {
            return Err(self.err("a seq_file print outside an iterator program"));
        }
        if args.len() > super::SEQ_MAX_ARGS {
            return Err(self.err(format!("a seq_file print of {} arguments (at most {})", args.len(), super::SEQ_MAX_ARGS)));
        }
        let convs = seq_conversions(format).map_err(|e| self.err(format!("seq_file format: {e}")))?;
        if convs.len() != args.len() {
            return Err(self.err(format!("a seq_file format of {} conversions for {} arguments", convs.len(), args.len())));
        }
        for (conv, arg) in convs.iter().zip(args) {
            let fits = match conv {
                b's' => arg.ty.is_string(),
                _ => arg.ty == Ty::Int,
            };
            if !fits {
                return Err(self.err(format!("a {:?} printed by %{}", arg.ty, *conv as char)));
            }
            self.expr(arg)?;
        }
        Ok(())
    }

    fn stmts(&mut self, stmts: &[Stmt]) -> Result<(), Error> {
        stmts.iter().try_for_each(|s| self.stmt(s))
    }

    fn stmt(&mut self, s: &Stmt) -> Result<(), Error> {
        match &s.kind {
            StmtKind::If { cond, then, otherwise } => {
                self.int_expr(cond)?;
                self.stmts(then)?;
                self.stmts(otherwise)
            }
            StmtKind::GlobalStore { global, value } => {
                let holds = self.global(*global)?.ty;
                if !value.ty.fits(holds) || !matches!(holds, Ty::Int | Ty::Comm | Ty::Str) {
                    return Err(Error::StoreMismatch { probe: self.probe, what: "global", value: value.ty, holds });
                }
                self.expr(value)
            }
            StmtKind::Emit { site, args } => {
                let ring = self.module_map(self.m.events, MapKind::RingBuf).ok_or(Error::RecordWithoutRingBuffer { probe: self.probe })?;
                self.facts.ring_buffer = Some(ring);
                let lost = self.counter(self.m.lost_events).ok_or(Error::RecordWithoutLossCounter { probe: self.probe })?;
                self.facts.lost_events = Some(lost);
                let id = *site;
                let site = self.m.sites.get(id.index()).ok_or_else(|| self.out_of_range("site", id.index()))?;
                if site.fields.len() != args.len() {
                    return Err(Error::RecordArity { probe: self.probe, site: id, fields: site.fields.len(), args: args.len() });
                }
                for (ty, arg) in site.fields.iter().zip(args) {
                    self.same_ty("record field", arg.ty, *ty)?;
                    self.expr(arg)?;
                }
                Ok(())
            }
            StmtKind::SeqPrint { format, args } => self.seq_print(format, args),
            StmtKind::Return => Ok(()),
            StmtKind::AggUpdate { to, kind, value } => {
                let desc = kind.desc();
                let input = desc.input();
                match to {
                    AggTarget::Global(global) => {
                        let holds = self.global(*global)?.ty;
                        if holds != input {
                            return Err(Error::StoreMismatch { probe: self.probe, what: "global", value: input, holds });
                        }
                    }
                    AggTarget::Entry { map, key } => {
                        self.updates_a_table()?;
                        match self.table_key(*map, key)? {
                            TableValue::Agg(k) if k == *kind => {}
                            TableValue::Scalar(ty) if ty == input => {}
                            _ => return Err(self.err(format!("{} update of a table that holds something else", desc.name()))),
                        }
                    }
                }
                if value.ty != input {
                    return Err(self.err(format!("{} update with a {:?}", desc.name(), value.ty)));
                }
                self.expr(value)
            }
            StmtKind::MapStore { map, key, value } => {
                self.updates_a_table()?;
                match self.table_key(*map, key)? {
                    TableValue::Scalar(holds @ (Ty::Int | Ty::Comm | Ty::Str | Ty::ProbeName | Ty::Stack { .. })) if value.ty.fits(holds) => self.expr(value),
                    TableValue::Scalar(holds) => Err(Error::StoreMismatch { probe: self.probe, what: "table", value: value.ty, holds }),
                    TableValue::Agg(_) => Err(self.err("a store into an aggregate table")),
                }
            }
            StmtKind::MapDelete { map, key } => self.table_key(*map, key).map(drop),
            StmtKind::LocalSet { local, value } => {
                let holds = self.local(*local)?;
                if !value.ty.fits(holds) {
                    return Err(Error::StoreMismatch { probe: self.probe, what: "local", value: value.ty, holds });
                }
                self.expr(value)
            }
            StmtKind::Loop { cond, body, step, .. } => {
                self.counters(cond);
                self.int_expr(cond)?;
                self.depth += 1;
                self.loops += 1;
                let body = self.stmts(body);
                self.loops -= 1;
                let step = body.and_then(|()| self.stmts(step));
                self.depth -= 1;
                step
            }
            StmtKind::Block { id, body } => {
                // `break` inside an inlined function never leaves it.
                let loops = std::mem::take(&mut self.loops);
                self.blocks.push(*id);
                let body = self.stmts(body);
                self.blocks.pop();
                self.loops = loops;
                body
            }
            StmtKind::Break if self.loops == 0 => Err(Error::BreakOutsideLoop { probe: self.probe }),
            StmtKind::Leave(id) if !self.blocks.contains(id) => Err(Error::LeaveOutsideBlock { probe: self.probe, block: *id }),
            StmtKind::Break | StmtKind::Leave(_) => Ok(()),
        }
    }

    /// The declared type of local `l`.
    fn local(&self, l: LocalId) -> Result<Ty, Error> {
        self.locals.get(l.index()).copied().ok_or_else(|| self.out_of_range("local", l.index()))
    }

    /// Checks `key` against `map`'s key type; returns what its entries hold.
    fn table_key(&mut self, map: MapId, key: &super::Expr) -> Result<TableValue, Error> {
        let m = self.m.maps.get(map.index()).ok_or_else(|| self.out_of_range("map", map.index()))?;
        let info = m.table.as_ref().ok_or(Error::NotATable { probe: self.probe, map })?;
        if !key.ty.fits(info.key) || info.key.size() != m.key_size {
            return Err(Error::KeyMismatch { probe: self.probe, map, key: key.ty, keyed_by: info.key });
        }
        self.expr(key)?;
        Ok(info.value)
    }

    fn int_expr(&mut self, e: &super::Expr) -> Result<(), Error> {
        if e.ty != Ty::Int {
            return Err(Error::NotANumber { probe: self.probe, found: e.ty });
        }
        self.expr(e)
    }

    /// A typed read (`btf:` arguments, `curtask`, member chains): direct
    /// loads only, from a context slot a BTF-typed program has, integers
    /// of a BPF width, strings of some bytes, CO-RE records on offsets
    /// the path has.
    fn typed_path(&self, ty: Ty, path: &super::Path) -> Result<(), Error> {
        let from_regs = matches!(path.base, super::PathBase::Reg(_));
        // Registers hold plain numbers; a typed argument may too (the
        // verifier's choice, asked of it); the current task never does.
        if from_regs && path.via == super::Via::Direct {
            return Err(self.err("a register's pointer followed without a probe read"));
        }
        if path.base == super::PathBase::CurrentTask && path.via != super::Via::Direct {
            return Err(self.err("a typed read through a probe read"));
        }
        if from_regs && !self.m.probe(self.probe).attach.iter().all(|a| a.kind().shape().context == super::Context::PtRegs) {
            return Err(self.err("a register read where the context has no registers"));
        }
        match ty {
            Ty::Int if [0, 1, 2, 4, 8].contains(&path.size) => {}
            Ty::Comm | Ty::Str if path.size > 0 => {}
            _ => return Err(Error::BadWidth { probe: self.probe, what: "typed read", bytes: u32::from(path.size) }),
        }
        if let Some(b) = path.bits {
            if ty != Ty::Int || ![1, 2, 4, 8].contains(&path.size) || b.width == 0 || u32::from(b.shift) + u32::from(b.width) > 8 * u32::from(path.size) {
                return Err(self.err(format!("bits {}..{} of a {}-byte word", b.shift, u32::from(b.shift) + u32::from(b.width), path.size)));
            }
        }
        if i32::try_from(path.offset).is_err() || path.core.iter().any(|c| c.step as usize > path.derefs.len()) {
            return Err(self.err("typed read out of reach"));
        }
        // Each CO-RE record describes the offset it sits on.
        for c in &path.core {
            let held = match path.derefs.get(c.step as usize) {
                Some(&d) => i64::from(d),
                None => path.offset,
            };
            if c.members.is_empty() || i64::try_from(c.offset()) != Ok(held) {
                return Err(self.err(format!("CO-RE record of {} does not describe offset {held}", c.describe())));
            }
        }
        // A register's slot: its first step reads the register itself.
        if from_regs && path.derefs.first().is_some_and(|&d| d != 0) {
            return Err(self.err("a register read at an offset from its slot"));
        }
        if let super::PathBase::Arg(n) = path.base {
            let btf_ctx = self.m.probe(self.probe).attach.iter().all(|a| a.kind().shape().context == super::Context::BtfArgs);
            let at_slot = match path.derefs.first() {
                Some(&first) => first == 0,
                None => path.offset == 0 && path.size > 0 && ty == Ty::Int,
            };
            if n >= 12 || !btf_ctx || !at_slot {
                return Err(self.err(format!("argument {n} read where the context has no typed arguments")));
            }
        }
        Ok(())
    }

    fn expr(&mut self, e: &super::Expr) -> Result<(), Error> {
        match &e.kind {
            ExprKind::Const(_) => self.same_ty("constant", e.ty, Ty::Int),
            ExprKind::Helper { func, part } => {
                let want = if *func == super::HelperFn::GET_CURRENT_COMM { Ty::Comm } else { Ty::Int };
                if e.ty != want || (want == Ty::Comm && *part != super::Part::All) {
                    return Err(self.err(format!("helper {} has the wrong type", func.name())));
                }
                Ok(())
            }
            ExprKind::Global(g) => {
                let declared = self.global(*g)?.ty;
                self.same_ty("global", e.ty, declared)
            }
            // Typed reads; the task name's two loads and the per-CPU
            // walk (no CO-RE records) are checked below.
            ExprKind::Load(path)
                if !(path.via == super::Via::ProbeRead && path.core.is_empty() && path.base == super::PathBase::CurrentTask)
                    && !(e.ty == Ty::Comm && path.base == super::PathBase::CurrentTask && path.derefs.is_empty() && path.core.is_empty() && path.size == 16) =>
            {
                self.typed_path(e.ty, path)
            }
            ExprKind::Load(path) => {
                match (e.ty, path.via) {
                    // A task name: two direct 8-byte loads at a 16-bit offset.
                    (Ty::Comm, super::Via::Direct) if path.derefs.is_empty() => {
                        if path.size != 16 || !path.derefs.is_empty() || i16::try_from(path.offset + 8).is_err() || path.offset < 0 {
                            return Err(self.err("task name read out of reach"));
                        }
                    }
                    (Ty::Int, super::Via::ProbeRead) => {
                        if ![1, 2, 4, 8].contains(&path.size) {
                            return Err(Error::BadWidth { probe: self.probe, what: "kernel read", bytes: u32::from(path.size) });
                        }
                        if i32::try_from(path.offset).is_err() {
                            return Err(self.err("kernel read offset out of reach"));
                        }
                    }
                    (ty, via) => return Err(self.err(format!("a {ty:?} read {via:?}"))),
                }
                Ok(())
            }
            ExprKind::CtxField { offset, size, .. } => {
                if ![1, 2, 4, 8].contains(size) {
                    return Err(Error::BadWidth { probe: self.probe, what: "context field", bytes: *size });
                }
                self.record_bytes(*offset, *size)
            }
            ExprKind::Unary { operand, .. } => {
                self.same_ty("operator", e.ty, Ty::Int)?;
                self.int_expr(operand)
            }
            ExprKind::MapGet { map, key } => match self.table_key(*map, key)? {
                TableValue::Agg(_) => Err(self.err("an aggregate table read in the kernel")),
                TableValue::Scalar(value) => self.same_ty("table", e.ty, value),
            },
            ExprKind::MapHas { map, key } => {
                if self.table_key(*map, key)?.agg().is_some() {
                    return Err(self.err("an aggregate table read in the kernel"));
                }
                self.same_ty("table membership", e.ty, Ty::Int)
            }
            ExprKind::Stack { user, depth, .. } => {
                self.same_ty("stack trace", e.ty, Ty::Stack { user: *user })?;
                if *depth > super::MAX_STACK_DEPTH {
                    return Err(self.err(format!("a stack cut at {depth} frames")));
                }
                let map = self.module_map(self.m.stacks, MapKind::StackTrace).ok_or(Error::StackWithoutStackMap { probe: self.probe })?;
                self.facts.stack_map = Some(map);
                Ok(())
            }
            ExprKind::ArgStr { offset } => match e.ty {
                Ty::ArgStr { len, .. } if len % 8 == 0 => self.record_bytes(*offset, len),
                _ => Err(self.err("argstr has the wrong type")),
            },
            ExprKind::Local(l) => {
                let declared = self.local(*l)?;
                self.same_ty("local", e.ty, declared)
            }
            ExprKind::ReadStr { ptr, user } => {
                if e.ty != Ty::Str {
                    return Err(self.err("string read has the wrong type"));
                }
                if let ExprKind::CtxAddr { .. } = ptr.kind {
                    let record = self.m.probe(self.probe).attach.iter().all(|a| a.kind().shape().context == super::Context::Record);
                    if *user || !record || ptr.ty != Ty::Int {
                        return Err(self.err("a record address outside a tracepoint's kernel string read"));
                    }
                    return Ok(());
                }
                self.int_expr(ptr)
            }
            ExprKind::CtxAddr { .. } => Err(self.err("a record address used as a value")),
            ExprKind::StrEq { value, literal } => {
                if !matches!(value.ty, Ty::Comm | Ty::Str) || literal.len() as u32 >= value.ty.size() {
                    return Err(self.err("string comparison of the wrong shape"));
                }
                self.same_ty("string comparison", e.ty, Ty::Int)?;
                self.expr(value)
            }
            ExprKind::StrCmp { lhs, rhs } => {
                if !lhs.ty.is_string() || !rhs.ty.is_string() {
                    return Err(self.err("string comparison of non-strings"));
                }
                self.same_ty("string comparison", e.ty, Ty::Int)?;
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::IntText(value) => {
                if e.ty != Ty::Str || value.ty != Ty::Int {
                    return Err(self.err("decimal text of a non-number"));
                }
                self.expr(value)
            }
            ExprKind::StrConcat { lhs, rhs } => {
                if e.ty != Ty::Str || !lhs.ty.is_string() || !rhs.ty.is_string() {
                    return Err(self.err("string join of non-strings"));
                }
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::StrConst(s) => {
                if !e.ty.is_string() || s.len() as u32 >= e.ty.size() {
                    return Err(self.err("string literal of the wrong type"));
                }
                Ok(())
            }
            ExprKind::Seq { body, result } => {
                self.stmts(body)?;
                let declared = self.local(*result)?;
                self.same_ty("local", e.ty, declared)
            }
            ExprKind::ProbeName => {
                if e.ty != Ty::ProbeName {
                    return Err(self.err("probename has the wrong type"));
                }
                Ok(())
            }
            ExprKind::Binary { lhs, rhs, .. } => {
                self.same_ty("operator", e.ty, Ty::Int)?;
                self.int_expr(lhs)?;
                self.int_expr(rhs)
            }
            ExprKind::Fetch(f) => {
                let probe = &self.m.probes[self.probe.index()];
                if !probe.attach.iter().all(|a| a.kind().shape().context == super::Context::PtRegs) {
                    return Err(self.err("a fetch argument outside a k/uprobe"));
                }
                if ![1, 2, 4, 8].contains(&f.bytes) {
                    return Err(Error::BadWidth { probe: self.probe, what: "fetch argument", bytes: u32::from(f.bytes) });
                }
                Ok(())
            }
        }
    }
}

/// The conversions of a `bpf_seq_printf` format (the letter of each), or
/// what the kernel would refuse in it (kernel/bpf/helpers.c,
/// bpf_bprintf_prepare).
pub fn seq_conversions(format: &[u8]) -> Result<Vec<u8>, String> {
    if format.contains(&0) {
        return Err("a NUL inside".into());
    }
    let mut convs = Vec::new();
    let mut i = 0;
    while i < format.len() {
        if format[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if format.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        while matches!(format.get(i), Some(b'0' | b'+' | b'-' | b' ')) {
            i += 1;
        }
        while format.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let mut longs = 0;
        while format.get(i) == Some(&b'l') && longs < 2 {
            longs += 1;
            i += 1;
        }
        match format.get(i) {
            Some(&c @ (b'd' | b'i' | b'u' | b'x' | b'X')) => convs.push(c),
            Some(&c @ (b'c' | b's')) if longs == 0 => convs.push(c),
            Some(&c) => return Err(format!("conversion `%{}` is not one the kernel prints", c as char)),
            None => return Err("a `%` at the end".into()),
        }
        i += 1;
    }
    Ok(convs)
}
