//! The register machine that runs compiled prototypes. Calls push frames
//! on a heap vector, never on the Rust stack, so recursion depth is bounded
//! by `max_depth` alone and tail calls reuse their frame. It polls the
//! step budget and the interrupt flag at loop back-edges and calls; it
//! never panics on anything a script can do.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::code::{ArithOp, CmpOp, Insn, Proto, UpvalSource};
use super::error::{msg, Throw};
use super::value::{Closure, Function, KStr, Table, Value};
use crate::runtime::output::Output;

/// How many steps run between two polls of the interrupt flag.
const POLL_INTERVAL: u64 = 1024;

struct Frame {
    func: Rc<Function>,
    pc: usize,
    /// Stack index of register 0; the function itself sits at `base - 1`
    /// and its result goes there.
    base: usize,
    cell_base: usize,
}

pub(crate) struct Vm {
    stack: Vec<Value>,
    cells: Vec<Rc<RefCell<Value>>>,
    /// Call frames; only `frames[..depth]` are live. Slots above are
    /// reused in place (rewriting a frame field by field is much cheaper
    /// than pushing a new one) and cleared when a run ends.
    frames: Vec<Frame>,
    depth: usize,
    pub globals: Vec<Value>,
    steps: u64,
    next_check: u64,
    pub max_steps: u64,
    pub max_depth: usize,
    pub interrupt: Option<Arc<AtomicBool>>,
    pub out: Box<dyn Output>,
    /// Placeholder for cell slots not yet given a variable.
    dead_cell: Rc<RefCell<Value>>,
    /// Where the probe statements the main context ran start (byte
    /// offsets in the script): probes nested in its code are attached
    /// only when they are here.
    pub registered: std::collections::HashSet<u32>,
}

type Step<T> = Result<T, Throw>;

impl Vm {
    pub fn new(out: Box<dyn Output>, max_steps: u64, max_depth: usize) -> Vm {
        Vm {
            stack: Vec::with_capacity(256),
            cells: Vec::new(),
            frames: Vec::new(),
            depth: 0,
            globals: Vec::new(),
            steps: 0,
            next_check: 0,
            max_steps,
            max_depth: max_depth.max(1),
            interrupt: None,
            out,
            dead_cell: Rc::new(RefCell::new(Value::Nil)),
            registered: std::collections::HashSet::new(),
        }
    }

    /// Runs a parameterless prototype (main, a tick or trace_end body) to
    /// completion with a fresh step budget.
    pub fn run(&mut self, proto: &Rc<Proto>) -> Step<Value> {
        let func = Rc::new(Function::Closure(Closure {
            proto: Rc::clone(proto),
            upvals: Box::new([]),
        }));
        self.steps = 0;
        self.next_check = 0;
        self.frames.clear();
        self.depth = 0;
        self.cells.clear();
        self.ensure(1 + usize::from(proto.nregs));
        self.stack[0] = Value::Func(Rc::clone(&func));
        self.cells
            .resize(usize::from(proto.ncells), Rc::clone(&self.dead_cell));
        self.push_frame(func, 1, 0);
        let r = self.execute();
        self.frames.clear();
        self.depth = 0;
        self.cells.clear();
        let _ = self.out.flush();
        r.map(|()| std::mem::take(&mut self.stack[0]))
    }

    #[inline(always)]
    fn ensure(&mut self, n: usize) {
        if self.stack.len() < n {
            self.grow(n);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) {
        self.stack.resize(n.max(self.stack.len() * 2), Value::Nil);
    }

    /// Counts one step; past the budget or on interrupt, stops.
    #[cold]
    fn poll(&mut self) -> Step<()> {
        if self.steps > self.max_steps {
            return Err(Throw::msg(msg::LOOP_LIMIT));
        }
        if self
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            return Err(Throw::Interrupted);
        }
        self.next_check = (self.steps + POLL_INTERVAL).min(self.max_steps.saturating_add(1));
        Ok(())
    }

    fn execute(&mut self) -> Step<()> {
        'frames: loop {
            let Some(fi) = self.depth.checked_sub(1) else {
                return Ok(());
            };
            let func = Rc::clone(&self.frames[fi].func);
            let Function::Closure(cl) = &*func else {
                return Err(Throw::msg("internal error: frame without closure"));
            };
            let proto: &Proto = &cl.proto;
            let code = &proto.code[..];
            let base = self.frames[fi].base;
            let cbase = self.frames[fi].cell_base;
            let mut pc = self.frames[fi].pc;

            macro_rules! fail {
                ($e:expr) => {{
                    let at = pc.wrapping_sub(1);
                    let e = name_culprit($e, proto.note(at));
                    let span = proto.spans.get(at).copied().unwrap_or_default();
                    self.frames[fi].pc = pc;
                    return Err(e.at(span));
                }};
            }
            macro_rules! tri {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(e) => fail!(e),
                    }
                };
            }
            macro_rules! reg {
                ($r:expr) => {
                    self.stack[base + usize::from($r)]
                };
            }
            macro_rules! jump {
                ($off:expr) => {
                    pc = (pc as isize + $off as isize) as usize
                };
            }
            macro_rules! step {
                () => {
                    self.steps += 1;
                    if self.steps >= self.next_check {
                        tri!(self.poll());
                    }
                };
            }

            loop {
                let Some(insn) = code.get(pc) else {
                    fail!(Throw::msg("internal error: ran past the end of a function"))
                };
                pc += 1;
                match *insn {
                    Insn::Move { dst, src } => {
                        let v = dup(&reg!(src));
                        reg!(dst) = v;
                    }
                    Insn::LoadNil { dst } => reg!(dst) = Value::Nil,
                    Insn::LoadBool { dst, val } => reg!(dst) = Value::Bool(val),
                    Insn::LoadInt { dst, val } => set_int(&mut reg!(dst), i64::from(val)),
                    Insn::LoadK { dst, k } => reg!(dst) = proto.consts[k as usize].clone(),
                    // Every index the compiler emits exists (`Interp::new`
                    // sizes the vector; `set_global` only appends).
                    Insn::GetGlobal { dst, g } => {
                        let v = dup(&self.globals[g as usize]);
                        reg!(dst) = v;
                    }
                    Insn::SetGlobal { g, src } => {
                        let v = dup(&reg!(src));
                        self.globals[g as usize] = v;
                    }
                    Insn::IncGlobal { g, v } => {
                        let sum = match (&self.globals[g as usize], &reg!(v)) {
                            (Value::Nil, y) => tri!(operand(y)),
                            (x, y) => tri!(arith(ArithOp::Add, x, y)),
                        };
                        set_int(&mut self.globals[g as usize], sum);
                    }
                    Insn::GetUpval { dst, u } => {
                        let v = dup(&cl.upvals[usize::from(u)].borrow());
                        reg!(dst) = v;
                    }
                    Insn::SetUpval { u, src } => {
                        let v = dup(&reg!(src));
                        *cl.upvals[usize::from(u)].borrow_mut() = v;
                    }
                    Insn::NewCell { c } => {
                        self.cells[cbase + usize::from(c)] = Rc::new(RefCell::new(Value::Nil));
                    }
                    Insn::GetCell { dst, c } => {
                        let v = dup(&self.cells[cbase + usize::from(c)].borrow());
                        reg!(dst) = v;
                    }
                    Insn::SetCell { c, src } => {
                        let v = dup(&reg!(src));
                        *self.cells[cbase + usize::from(c)].borrow_mut() = v;
                    }
                    Insn::NewTable { dst, cap } => {
                        let t = Table::with_capacity(usize::from(cap));
                        reg!(dst) = Value::Table(Rc::new(RefCell::new(t)));
                    }
                    Insn::GetIndex { dst, t, k } => {
                        let v = match &reg!(t) {
                            Value::Table(tb) => tb.borrow().get(&reg!(k)),
                            other => fail!(Throw::msg(msg::index(other.type_name()))),
                        };
                        reg!(dst) = v;
                    }
                    Insn::GetField { dst, t, k } => {
                        let v = match &reg!(t) {
                            Value::Table(tb) => tb.borrow().get(&proto.consts[k as usize]),
                            other => fail!(Throw::msg(msg::index(other.type_name()))),
                        };
                        reg!(dst) = v;
                    }
                    Insn::SetIndex { t, k, v } => {
                        tri!(set_index(&reg!(t), &reg!(k), &reg!(v)));
                    }
                    Insn::SetField { t, k, v } => {
                        tri!(set_index(&reg!(t), &proto.consts[k as usize], &reg!(v)));
                    }
                    Insn::IncIndex { t, k, v } => {
                        tri!(inc_index(&reg!(t), &reg!(k), &reg!(v)));
                    }
                    Insn::IncField { t, k, v } => {
                        tri!(inc_index(&reg!(t), &proto.consts[k as usize], &reg!(v)));
                    }
                    Insn::Arith { op, dst, a, b } => {
                        let v = tri!(arith(op, &reg!(a), &reg!(b)));
                        set_int(&mut reg!(dst), v);
                    }
                    Insn::AddI { dst, a, imm } => {
                        let v = match &reg!(a) {
                            Value::Int(x) => x.wrapping_add(i64::from(imm)),
                            other => tri!(operand(other)).wrapping_add(i64::from(imm)),
                        };
                        set_int(&mut reg!(dst), v);
                    }
                    Insn::Inc { dst, a, b } => {
                        let v = match &reg!(a) {
                            Value::Nil => tri!(operand(&reg!(b))),
                            x => tri!(arith(ArithOp::Add, x, &reg!(b))),
                        };
                        set_int(&mut reg!(dst), v);
                    }
                    Insn::Neg { dst, src } => {
                        let v = tri!(operand(&reg!(src)));
                        reg!(dst) = Value::Int(v.wrapping_neg());
                    }
                    Insn::Not { dst, src } => {
                        let v = !reg!(src).truthy();
                        reg!(dst) = Value::Bool(v);
                    }
                    Insn::Concat { dst, a, b } => {
                        let v = tri!(concat(&reg!(a), &reg!(b)));
                        reg!(dst) = v;
                    }
                    Insn::Cmp {
                        op,
                        want,
                        dst,
                        a,
                        b,
                    } => {
                        let r = tri!(compare(op, &reg!(a), &reg!(b)));
                        reg!(dst) = Value::Bool(r == want);
                    }
                    Insn::Jmp { off } => {
                        if off < 0 {
                            step!();
                        }
                        jump!(off);
                    }
                    Insn::Test { src, want, off } => {
                        if reg!(src).truthy() == want {
                            jump!(off);
                        }
                    }
                    Insn::JmpCmp {
                        op,
                        want,
                        a,
                        b,
                        off,
                    } => {
                        if tri!(compare(op, &reg!(a), &reg!(b))) == want {
                            jump!(off);
                        }
                    }
                    Insn::JmpCmpI {
                        op,
                        want,
                        flip,
                        a,
                        imm,
                        off,
                    } => {
                        let r = match &reg!(a) {
                            Value::Int(x) => {
                                let y = i64::from(imm);
                                match op {
                                    CmpOp::Eq => *x == y,
                                    CmpOp::Lt => *x < y,
                                    CmpOp::Le => *x <= y,
                                    CmpOp::Gt => *x > y,
                                    CmpOp::Ge => *x >= y,
                                }
                            }
                            other if flip => {
                                tri!(compare(op.swapped(), &Value::Int(i64::from(imm)), other))
                            }
                            other => tri!(compare(op, other, &Value::Int(i64::from(imm)))),
                        };
                        if r == want {
                            jump!(off);
                        }
                    }
                    Insn::Call { base: f, nargs } => {
                        step!();
                        let fslot = base + usize::from(f);
                        let callee = match &self.stack[fslot] {
                            Value::Func(x) => Rc::clone(x),
                            other => fail!(Throw::msg(msg::call(other.type_name()))),
                        };
                        match &*callee {
                            Function::Builtin(b) => {
                                let args = &self.stack[fslot + 1..fslot + 1 + usize::from(nargs)];
                                let v = tri!(super::builtins::call(*b, args, self.out.as_mut()));
                                self.stack[fslot] = v;
                            }
                            Function::Closure(c) => {
                                if self.depth >= self.max_depth {
                                    fail!(Throw::msg(msg::STACK_OVERFLOW));
                                }
                                self.frames[fi].pc = pc;
                                let cell_base = self.cells.len();
                                self.enter(c, fslot + 1, usize::from(nargs), cell_base);
                                self.push_frame(Rc::clone(&callee), fslot + 1, cell_base);
                                continue 'frames;
                            }
                        }
                    }
                    Insn::TailCall { base: f, nargs } => {
                        step!();
                        let fslot = base + usize::from(f);
                        let callee = match &self.stack[fslot] {
                            Value::Func(x) => Rc::clone(x),
                            other => fail!(Throw::msg(msg::call(other.type_name()))),
                        };
                        let n = usize::from(nargs);
                        match &*callee {
                            Function::Builtin(b) => {
                                let args = &self.stack[fslot + 1..fslot + 1 + n];
                                let v = tri!(super::builtins::call(*b, args, self.out.as_mut()));
                                if self.ret(v) {
                                    return Ok(());
                                }
                                continue 'frames;
                            }
                            Function::Closure(c) => {
                                // Slide the callee and its arguments down over
                                // this frame and run it in this frame's place.
                                for i in 0..=n {
                                    let v = std::mem::take(&mut self.stack[fslot + i]);
                                    self.stack[base - 1 + i] = v;
                                }
                                self.cells.truncate(cbase);
                                self.enter(c, base, n, cbase);
                                let frame = &mut self.frames[fi];
                                frame.func = Rc::clone(&callee);
                                frame.pc = 0;
                                continue 'frames;
                            }
                        }
                    }
                    Insn::CallBuiltin { b, base: f, nargs } => {
                        let a0 = base + usize::from(f);
                        let args = &self.stack[a0..a0 + usize::from(nargs)];
                        let v = tri!(super::builtins::call(b, args, self.out.as_mut()));
                        self.stack[a0] = v;
                    }
                    Insn::Return { src } => {
                        let v = std::mem::take(&mut reg!(src));
                        if self.ret(v) {
                            return Ok(());
                        }
                        continue 'frames;
                    }
                    Insn::Return0 => {
                        if self.ret(Value::Nil) {
                            return Ok(());
                        }
                        continue 'frames;
                    }
                    Insn::Register { at } => {
                        self.registered.insert(at);
                    }
                    Insn::Closure { dst, proto: i } => {
                        let p = Rc::clone(&proto.protos[i as usize]);
                        let upvals = p
                            .upvals
                            .iter()
                            .map(|s| match *s {
                                UpvalSource::Cell(c) => {
                                    Rc::clone(&self.cells[cbase + usize::from(c)])
                                }
                                UpvalSource::Upval(u) => Rc::clone(&cl.upvals[usize::from(u)]),
                            })
                            .collect();
                        let f = Function::Closure(Closure { proto: p, upvals });
                        reg!(dst) = Value::Func(Rc::new(f));
                    }
                    Insn::ForPrep { base: b, off } => {
                        let start = tri!(for_value(&reg!(b), "initial"));
                        let limit = tri!(for_value(&reg!(b + 1), "limit"));
                        let step = tri!(for_value(&reg!(b + 2), "step"));
                        // Iterations after the first, computed up front (as Lua
                        // 5.4 does) so that the index never overflows.
                        let count = if step == 0 {
                            fail!(Throw::msg("'for' step is zero"))
                        } else if step > 0 {
                            (start <= limit)
                                .then(|| (limit as u64).wrapping_sub(start as u64) / step as u64)
                        } else {
                            (start >= limit).then(|| {
                                (start as u64).wrapping_sub(limit as u64) / step.unsigned_abs()
                            })
                        };
                        match count {
                            None => jump!(off),
                            Some(count) => {
                                reg!(b) = Value::Int(start);
                                reg!(b + 1) = Value::Int(count as i64);
                                reg!(b + 2) = Value::Int(step);
                                reg!(b + 3) = Value::Int(start);
                            }
                        }
                    }
                    Insn::ForLoop { base: b, off } => {
                        if let (Value::Int(count), Value::Int(step), Value::Int(idx)) =
                            (&reg!(b + 1), &reg!(b + 2), &reg!(b))
                        {
                            if *count != 0 {
                                let (count, idx) =
                                    ((*count as u64 - 1) as i64, idx.wrapping_add(*step));
                                set_int(&mut reg!(b + 1), count);
                                set_int(&mut reg!(b), idx);
                                set_int(&mut reg!(b + 3), idx);
                                step!();
                                jump!(off);
                            }
                        }
                    }
                    Insn::IterPrep { base: b, off } => {
                        if !matches!(reg!(b), Value::Table(_)) {
                            fail!(Throw::msg(msg::iterate(reg!(b).type_name())));
                        }
                        reg!(b + 1) = Value::Int(0);
                        jump!(off);
                    }
                    Insn::IterNext { base: b, off } => {
                        let pos = match reg!(b + 1) {
                            Value::Int(p) => p as usize,
                            _ => usize::MAX,
                        };
                        let next = match &reg!(b) {
                            Value::Table(t) => t
                                .borrow()
                                .next_from(pos)
                                .map(|(i, k, v)| (i, k.clone(), v.clone())),
                            _ => None,
                        };
                        if let Some((i, k, v)) = next {
                            reg!(b + 1) = Value::Int(i as i64 + 1);
                            reg!(b + 2) = k;
                            reg!(b + 3) = v;
                            step!();
                            jump!(off);
                        }
                    }
                    Insn::Fail { k } => {
                        let m = crate::runtime::format::value_text(&proto.consts[k as usize]);
                        fail!(Throw::msg(String::from_utf8_lossy(&m).into_owned()))
                    }
                }
            }
        }
    }

    /// Prepares the registers and cells of a closure about to run with its
    /// frame at `base` and `nargs` arguments already in place.
    #[inline(always)]
    fn enter(&mut self, c: &Closure, base: usize, nargs: usize, cell_base: usize) {
        let p = &c.proto;
        let nparams = usize::from(p.nparams);
        self.ensure(base + usize::from(p.nregs).max(nargs));
        if nargs < nparams {
            for slot in &mut self.stack[base + nargs..base + nparams] {
                *slot = Value::Nil;
            }
        }
        if p.ncells > 0 {
            self.cells.resize(
                cell_base + usize::from(p.ncells),
                Rc::clone(&self.dead_cell),
            );
        }
    }

    /// Pops the current frame, handing `v` to the caller. True when the
    /// outermost frame returned.
    #[inline(always)]
    fn ret(&mut self, v: Value) -> bool {
        let Some(top) = self.depth.checked_sub(1) else {
            return true;
        };
        self.depth = top;
        let (base, cell_base) = (self.frames[top].base, self.frames[top].cell_base);
        if self.cells.len() > cell_base {
            self.cells.truncate(cell_base);
        }
        self.stack[base - 1] = v;
        top == 0
    }

    #[inline(always)]
    fn push_frame(&mut self, func: Rc<Function>, base: usize, cell_base: usize) {
        if let Some(f) = self.frames.get_mut(self.depth) {
            f.func = func;
            f.pc = 0;
            f.base = base;
            f.cell_base = cell_base;
        } else {
            self.frames.push(Frame {
                func,
                pc: 0,
                base,
                cell_base,
            });
        }
        self.depth += 1;
    }
}

/// Clones a value, reading an integer as two words: a whole-value copy
/// right after `set_int` wrote one word would stall store forwarding.
#[inline(always)]
fn dup(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::Int(*i),
        other => other.clone(),
    }
}

/// Stores an integer, in place when the slot already holds one (cheaper
/// than dropping and rewriting the whole value).
#[inline(always)]
fn set_int(slot: &mut Value, v: i64) {
    if let Value::Int(x) = slot {
        *x = v;
    } else {
        *slot = Value::Int(v);
    }
}

/// Adds the source name of the value being called or indexed to such an
/// error: "attempt to call a nil value (global 'f')".
fn name_culprit(e: Throw, note: Option<&str>) -> Throw {
    match (e, note) {
        (Throw::Error(mut err), Some(note))
            if err.span.is_none()
                && (err.message.starts_with("attempt to call")
                    || err.message.starts_with("attempt to index")) =>
        {
            err.message = format!("{} ({note})", err.message);
            Throw::Error(err)
        }
        (e, _) => e,
    }
}

/// The integer an arithmetic operand stands for.
#[inline]
fn operand(v: &Value) -> Step<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => crate::runtime::interp::value::parse_int(s.as_bytes())
            .ok_or_else(|| Throw::msg(msg::ARITH_STRING)),
        other => Err(Throw::msg(msg::arith(other.type_name()))),
    }
}

#[inline(always)]
fn arith(op: ArithOp, a: &Value, b: &Value) -> Step<i64> {
    let (x, y) = match (a, b) {
        (Value::Int(x), Value::Int(y)) => (*x, *y),
        _ => (operand(a)?, operand(b)?),
    };
    Ok(match op {
        ArithOp::Add => x.wrapping_add(y),
        ArithOp::Sub => x.wrapping_sub(y),
        ArithOp::Mul => x.wrapping_mul(y),
        ArithOp::Div => {
            if y == 0 {
                return Err(Throw::msg(msg::DIVIDE_ZERO));
            }
            x.wrapping_div(y)
        }
        ArithOp::Mod => {
            if y == 0 {
                return Err(Throw::msg(msg::DIVIDE_ZERO));
            }
            x.wrapping_rem(y)
        }
    })
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> Step<bool> {
    if op == CmpOp::Eq {
        return Ok(a == b);
    }
    let ord = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => return Err(Throw::msg(msg::compare(a.type_name(), b.type_name()))),
    };
    Ok(match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    })
}

/// The longest string `..` builds; past it a script (`s = s .. s` in a
/// loop) gets an error instead of exhausting memory.
const MAX_STRING: usize = 1 << 28;

fn concat(a: &Value, b: &Value) -> Step<Value> {
    let text = |v: &Value| -> Step<Option<usize>> {
        match v {
            Value::Str(s) => Ok(Some(s.len())),
            Value::Int(_) => Ok(None),
            other => Err(Throw::msg(msg::concat(other.type_name()))),
        }
    };
    let len = text(a)?.unwrap_or(20) + text(b)?.unwrap_or(20);
    if len > MAX_STRING {
        return Err(Throw::msg(msg::STRING_TOO_LONG));
    }
    let mut out = Vec::with_capacity(len);
    for v in [a, b] {
        match v {
            Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            _ => {}
        }
    }
    Ok(Value::Str(KStr::from(out)))
}

fn set_index(t: &Value, k: &Value, v: &Value) -> Step<()> {
    match t {
        Value::Table(tb) => {
            if k.is_nil() {
                return Err(Throw::msg(msg::NIL_INDEX));
            }
            tb.borrow_mut().set(k.clone(), v.clone());
            Ok(())
        }
        other => Err(Throw::msg(msg::index(other.type_name()))),
    }
}

fn inc_index(t: &Value, k: &Value, v: &Value) -> Step<()> {
    let Value::Table(tb) = t else {
        return Err(Throw::msg(msg::index(t.type_name())));
    };
    if k.is_nil() {
        return Err(Throw::msg(msg::NIL_INDEX));
    }
    let mut tb = tb.borrow_mut();
    let slot = tb.slot(k.clone());
    let was_nil = slot.is_nil();
    let sum = if was_nil {
        operand(v)?
    } else {
        arith(ArithOp::Add, slot, v)?
    };
    *slot = Value::Int(sum);
    if was_nil {
        tb.filled();
    }
    Ok(())
}

fn for_value(v: &Value, what: &str) -> Step<i64> {
    v.to_int()
        .ok_or_else(|| Throw::msg(format!("'for' {what} value must be a number")))
}
