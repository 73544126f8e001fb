//! Probe bodies must compute what the interpreter computes. This generates
//! random probe bodies over inputs the main context fixes (number tables
//! keyed by numbers and by strings, a string table, number and string
//! globals): integer expressions (+ - * / %, unary minus, nested table
//! reads, `pid`, `uid`, `arg0`), conditions (comparisons, && || !,
//! `t[k] == nil`, string equality) made 0/1 by a helper, locals, if/elseif/
//! else, counted loops with `break`, random functions inlined with their
//! arguments and early returns, string locals and helpers, writes to
//! globals and tables the probe reads back, and prints. Each script runs
//! once in the kernel (the workload makes one getppid call), the same
//! statements run again in trace_end, and both are checked against a
//! model evaluated here. A difference is a codegen, lowering or
//! interpreter bug (or a model bug). Deterministic seed;
//! `KTAP_SEMFUZZ_SEED` / `KTAP_SEMFUZZ_SCRIPTS` explore further. Needs
//! root; says so when skipped.
//!
//! What the two sides may legitimately do differently stays out of the
//! generated code: divisors are never 0 (probes divide by 0 to 0, the
//! interpreter raises an error), table reads never miss (nil), and only
//! comparisons are used as conditions (probes test numbers against 0,
//! the interpreter has Lua's truthiness).

mod support;

use ktap::frontend::ast::BinOp;
use std::collections::{BTreeMap, HashMap};

/// The task name of the workload, what `execname` is in its probe.
const EXECNAME: &str = "ktap-workload";
/// String literals the generator uses; the last is too long for a task
/// name, so it is never compared directly (a compile error).
const LITS: &[&str] = &["ktap-workload", "bash", "", "ktap-work", "a string longer than sixteen bytes"];
/// Keys 1..=N of the number table `t` and the string table `ts`.
const T_KEYS: i64 = 8;
const TS_KEYS: i64 = 4;
/// Keys 1..=W_KEYS of the table `w` that probes write and read.
const W_KEYS: usize = 4;
/// Keys 1..=N of `wd` (numbers the probe sets and deletes, and tests for
/// nil) and `sw` (strings the probe sets and reads).
const WD_KEYS: usize = 2;
const SW_KEYS: usize = 2;

/// Where code runs: the probe (kernel) or trace_end (interpreter).
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Kernel,
    User,
}

/// A node that can fail in the model (a read of a missing key, a zero
/// divisor) has an id; the fix for it is kept beside the program.
type Id = usize;

#[derive(Clone, Copy)]
enum Fix {
    /// Key `K - c`: lands on a key where the model first missed.
    Shift(i64),
    /// Key `((K % n + n) % n) + 1`: always a key.
    Clamp,
    /// Divisor `D * 2 + 1`: odd, never 0.
    Odd,
}

enum Expr {
    Const(i64),
    /// A number local, parameter or loop counter.
    Var(String),
    /// Read-only globals g1.., and the global `h` the probe may write.
    Global(usize),
    H,
    /// `w[k]`, written and read by the probe.
    W(usize),
    /// `pid` in the kernel, offset so the value is known: pid - PID + c.
    Pid(i64),
    Uid,
    /// `arg0`, the syscall number (a classic tracepoint program).
    Nr,
    /// `t[key]`.
    Tab(Id, Box<Expr>),
    /// `+ - * / %` (ktap's own operators).
    Bin(BinOp, Id, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Call(usize, Vec<Expr>),
    /// `b01(cond)`: 1 or 0.
    Truth(Box<Cond>),
    /// `sel(s)`: 2 for the task name, 3 for "bash", 5 otherwise.
    Sel(Box<Str>),
    /// `sk[s]`: the read-only table keyed by every string literal.
    Sk(Box<Str>),
    /// `skw[s]`: the same keys, a table the probe adds to.
    Skw(Box<Str>),
}

enum Cond {
    /// `== != < <= > >=`.
    Cmp(BinOp, Expr, Expr),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    /// `t[key] == nil` (or `!=` when false).
    Nil(bool, Expr),
    /// `wd[k] == nil` (or `!=`).
    WdNil(bool, usize),
    StrEq(bool, Str, Str),
}

enum Str {
    Execname,
    Lit(usize),
    Var(String),
    /// The string global `gs`, which the probe may set.
    Global,
    /// `ts[key]`.
    Tab(Id, Box<Expr>),
    /// `pick(s)`: the task name for "bash", else s.
    Pick(Box<Str>),
    /// `sw[k]`.
    Sw(usize),
}

enum Stmt {
    VarNum(String, Expr),
    VarStr(String, Str),
    SetNum(String, Expr),
    AddNum(String, Expr),
    SetStr(String, Str),
    Swap(String, String),
    SetH(Expr),
    AddH(Expr),
    SetW(usize, Expr),
    AddW(usize, Expr),
    If(Vec<(Cond, Vec<Stmt>)>, Option<Vec<Stmt>>),
    /// `for (v = from, to, step)`, or the C form `for (var v = from; v <= to; v += step)`.
    For { var: String, from: i64, to: i64, step: i64, c_form: bool, body: Vec<Stmt> },
    Break,
    Return(Expr),
    /// `r[j] = e` (`u[j]` in trace_end).
    ResNum(usize, Expr),
    ResStr(usize, Str),
    SetGs(Str),
    AddSkw(Str, Expr),
    SetSkw(Str, Expr),
    /// `wd[k] = e`, or `wd[k] = nil`.
    SetWd(usize, Option<Expr>),
    SetSw(usize, Str),
    /// `printf("k %d %s\n", ...)` (`"u ..."` in trace_end), or `print("k", ...)`.
    Print { printf: bool, args: Vec<Arg> },
}

enum Arg {
    N(Expr),
    S(Str),
}

struct Func {
    params: usize,
    body: Vec<Stmt>,
}

struct Program {
    t: Vec<i64>,
    ts: Vec<usize>,
    globals: Vec<i64>,
    gs: usize,
    h: i64,
    w: Vec<i64>,
    /// Values of `sk` and (at the start) `skw`, by literal.
    sk: Vec<i64>,
    skw: Vec<i64>,
    wd: Vec<Option<i64>>,
    sw: Vec<usize>,
    /// The probe on `syscalls:sys_enter_getp*` (several syscalls: a
    /// raw_syscalls program), not on `syscalls:sys_enter_getppid`.
    wildcard: bool,
    funcs: Vec<Func>,
    body: Vec<Stmt>,
    results: usize,
    str_results: usize,
    fixes: HashMap<Id, Fix>,
}

// ---- generation -------------------------------------------------------------

#[derive(Default)]
struct Gen {
    rng: support::Rng,
    /// Number variables in scope, and whether they may be assigned.
    nums: Vec<(String, bool)>,
    strs: Vec<String>,
    names: usize,
    ids: Id,
    depth: u32,
    /// How deep the expressions of the current statement may nest.
    limit: u32,
    /// Functions a call may name (those defined before).
    callable: usize,
    params: Vec<usize>,
    /// Function bodies a call inlines (its own and those of its calls),
    /// per function; what the body being generated inlines so far, and
    /// at most.
    inlined: Vec<usize>,
    weight: usize,
    max_weight: usize,
    /// Per function, whether it runs a loop (its own or a callee's), and
    /// whether the body being generated does: loops in loops multiply
    /// the paths the verifier walks (its limits are not what this tests).
    looping: Vec<bool>,
    loops: bool,
    in_loop: bool,
    in_func: bool,
    /// Whether expressions may read `arg0`.
    fields: bool,
    results: usize,
    str_results: usize,
}

impl Gen {
    fn pick(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }
    fn id(&mut self) -> Id {
        self.ids += 1;
        self.ids
    }
    fn name(&mut self, prefix: &str) -> String {
        self.names += 1;
        format!("{prefix}{}", self.names)
    }

    fn constant(&mut self) -> i64 {
        const EDGES: &[i64] =
            &[i64::MAX, i64::MIN, i32::MAX as i64, i32::MIN as i64, 1 << 31, 1 << 32, (1 << 32) - 1, -(1 << 32), 1 << 62, -1];
        match self.pick(10) {
            0 => EDGES[self.pick(EDGES.len())],
            1 => (self.rng.next() as i64) >> self.pick(64),
            _ => self.pick(41) as i64 - 10,
        }
    }

    fn expr(&mut self) -> Expr {
        self.depth += 1;
        let e = if self.depth > self.limit || self.pick(4) == 0 {
            self.leaf()
        } else {
            match self.pick(14) {
                0..=4 => {
                    let op = [BinOp::Add, BinOp::Sub, BinOp::Mul][self.pick(3)];
                    Expr::Bin(op, 0, Box::new(self.expr()), Box::new(self.expr()))
                }
                5 | 6 => {
                    let op = if self.pick(2) == 0 { BinOp::Div } else { BinOp::Mod };
                    let id = self.id();
                    Expr::Bin(op, id, Box::new(self.expr()), Box::new(self.expr()))
                }
                7 => Expr::Neg(Box::new(self.expr())),
                8 | 9 => {
                    let id = self.id();
                    Expr::Tab(id, Box::new(self.expr()))
                }
                10 if self.callable > 0 => {
                    // Calls inline: keep the program from growing
                    // exponentially (target limits are not what this tests).
                    let f = self.pick(self.callable);
                    if (self.in_loop && self.looping[f]) || !self.inline(self.inlined[f]) {
                        return self.leaf_at_depth();
                    }
                    self.loops |= self.looping[f];
                    Expr::Call(f, (0..self.params[f]).map(|_| self.expr()).collect())
                }
                11 => Expr::Truth(Box::new(self.cond())),
                12 => match self.pick(4) {
                    0 if self.inline(1) => Expr::Sel(Box::new(self.string())),
                    1 => Expr::Skw(Box::new(self.string())),
                    _ => Expr::Sk(Box::new(self.string())),
                },
                _ => Expr::Bin(BinOp::Add, 0, Box::new(self.expr()), Box::new(self.leaf())),
            }
        };
        self.depth -= 1;
        e
    }

    /// Whether a call inlining `weight` function bodies still fits.
    fn inline(&mut self, weight: usize) -> bool {
        let fits = self.weight + weight <= self.max_weight;
        if fits {
            self.weight += weight;
        }
        fits
    }

    fn leaf_at_depth(&mut self) -> Expr {
        self.depth -= 1;
        self.leaf()
    }

    fn leaf(&mut self) -> Expr {
        match self.pick(10) {
            0 | 1 => Expr::Const(self.constant()),
            2..=4 if !self.nums.is_empty() => {
                let i = self.pick(self.nums.len());
                Expr::Var(self.nums[i].0.clone())
            }
            5 => Expr::Global(self.pick(3)),
            6 => Expr::H,
            7 => Expr::W(1 + self.pick(W_KEYS)),
            8 => Expr::Pid(self.pick(21) as i64 - 10),
            9 if self.pick(3) == 0 => Expr::Uid,
            9 if self.fields => Expr::Nr,
            _ => {
                let id = self.id();
                Expr::Tab(id, Box::new(Expr::Const(self.pick(T_KEYS as usize) as i64 + 1)))
            }
        }
    }

    fn cond(&mut self) -> Cond {
        self.depth += 1;
        let deep = self.depth > self.limit;
        let c = match self.pick(if deep { 3 } else { 8 }) {
            0 | 1 => {
                let op = [BinOp::Eq, BinOp::Ne, BinOp::Lt, BinOp::Le, BinOp::Gt, BinOp::Ge][self.pick(6)];
                Cond::Cmp(op, self.expr(), self.expr())
            }
            2 => {
                // Never the long literal next to a task name: a compile error.
                let side = |g: &mut Self| loop {
                    let s = g.string();
                    if !matches!(s, Str::Lit(i) if i == LITS.len() - 1) {
                        return s;
                    }
                };
                Cond::StrEq(self.pick(2) == 0, side(self), side(self))
            }
            3 => Cond::And(Box::new(self.cond()), Box::new(self.cond())),
            4 => Cond::Or(Box::new(self.cond()), Box::new(self.cond())),
            5 => Cond::Not(Box::new(self.cond())),
            6 if self.pick(3) == 0 => Cond::WdNil(self.pick(2) == 0, 1 + self.pick(WD_KEYS)),
            6 => Cond::Nil(self.pick(2) == 0, self.expr()),
            _ => Cond::Cmp(BinOp::Lt, self.expr(), self.leaf()),
        };
        self.depth -= 1;
        c
    }

    fn string(&mut self) -> Str {
        match self.pick(8) {
            0 => Str::Execname,
            1 | 2 => Str::Lit(self.pick(LITS.len())),
            3 if self.pick(3) == 0 => Str::Sw(1 + self.pick(SW_KEYS)),
            3 => Str::Global,
            4 => {
                let id = self.id();
                Str::Tab(id, Box::new(self.expr()))
            }
            5 if self.depth < self.limit && self.inline(1) => {
                self.depth += 1;
                let s = self.string();
                self.depth -= 1;
                Str::Pick(Box::new(s))
            }
            _ => match self.strs.len() {
                0 => Str::Execname,
                n => {
                    let i = self.pick(n);
                    Str::Var(self.strs[i].clone())
                }
            },
        }
    }

    fn assignable(&mut self) -> Option<String> {
        let vars: Vec<String> = self.nums.iter().filter(|(_, w)| *w).map(|(n, _)| n.clone()).collect();
        (!vars.is_empty()).then(|| vars[self.pick(vars.len())].clone())
    }

    /// A block: statements in a scope of their own.
    fn block(&mut self, n: usize, depth: u32) -> Vec<Stmt> {
        let saved = (self.nums.len(), self.strs.len());
        let out = (0..n).map(|_| self.stmt(depth)).collect();
        self.nums.truncate(saved.0);
        self.strs.truncate(saved.1);
        out
    }

    fn stmt(&mut self, depth: u32) -> Stmt {
        let nested = depth >= 2;
        self.limit = 2 + self.pick(5) as u32;
        loop {
            let s = match self.pick(if nested { 12 } else { 16 }) {
                // A fifth of the declarations shadow a name in scope.
                0 | 1 => {
                    let e = self.expr();
                    let name = match self.nums.len() {
                        n if n > 0 && self.pick(5) == 0 => {
                            let i = self.pick(n);
                            self.nums[i].0.clone()
                        }
                        _ => self.name("l"),
                    };
                    self.nums.push((name.clone(), true));
                    Stmt::VarNum(name, e)
                }
                2 => {
                    let s = self.string();
                    let name = match self.strs.len() {
                        n if n > 0 && self.pick(5) == 0 => {
                            let i = self.pick(n);
                            self.strs[i].clone()
                        }
                        _ => self.name("s"),
                    };
                    self.strs.push(name.clone());
                    Stmt::VarStr(name, s)
                }
                3 => match self.assignable() {
                    Some(v) => Stmt::SetNum(v, self.expr()),
                    None => continue,
                },
                4 => match self.assignable() {
                    Some(v) => Stmt::AddNum(v, self.expr()),
                    None => continue,
                },
                5 => match self.strs.len() {
                    0 => continue,
                    n => {
                        let i = self.pick(n);
                        let v = self.strs[i].clone();
                        Stmt::SetStr(v, self.string())
                    }
                },
                6 => match (self.assignable(), self.assignable()) {
                    (Some(a), Some(b)) if a != b => Stmt::Swap(a, b),
                    _ => continue,
                },
                7 => match self.pick(9) {
                    0 | 1 => Stmt::SetH(self.expr()),
                    2 => Stmt::AddH(self.expr()),
                    3 => Stmt::SetGs(self.string()),
                    4 => Stmt::SetSkw(self.string(), self.expr()),
                    5 => Stmt::SetWd(1 + self.pick(WD_KEYS), (self.pick(2) == 0).then(|| self.expr())),
                    6 => Stmt::SetSw(1 + self.pick(SW_KEYS), self.string()),
                    _ => Stmt::AddSkw(self.string(), self.expr()),
                },
                8 => {
                    let k = 1 + self.pick(W_KEYS);
                    if self.pick(2) == 0 {
                        Stmt::SetW(k, self.expr())
                    } else {
                        Stmt::AddW(k, self.expr())
                    }
                }
                9 if self.in_loop && self.pick(2) == 0 => Stmt::If(vec![(self.cond(), vec![Stmt::Break])], None),
                9 => {
                    let args = (0..1 + self.pick(3))
                        .map(|_| if self.pick(3) == 0 { Arg::S(self.string()) } else { Arg::N(self.expr()) })
                        .collect();
                    Stmt::Print { printf: self.pick(2) == 0, args }
                }
                10 if self.in_func => {
                    let e = self.expr();
                    Stmt::If(vec![(self.cond(), vec![Stmt::Return(e)])], None)
                }
                11 if !self.in_func => {
                    if self.pick(3) == 0 {
                        self.str_results += 1;
                        Stmt::ResStr(self.str_results, self.string())
                    } else {
                        self.results += 1;
                        Stmt::ResNum(self.results, self.expr())
                    }
                }
                12 | 13 => {
                    let mut arms = vec![];
                    for _ in 0..1 + self.pick(2) {
                        let c = self.cond();
                        let n = 1 + self.pick(3);
                        arms.push((c, self.block(n, depth + 1)));
                    }
                    let otherwise = (self.pick(2) == 0).then(|| {
                        let n = 1 + self.pick(3);
                        self.block(n, depth + 1)
                    });
                    Stmt::If(arms, otherwise)
                }
                14 | 15 => {
                    let from = self.pick(5) as i64 - 2;
                    let step = [1, 1, 1, 2, -1][self.pick(5)];
                    // In functions (inlined, maybe in loops) at most 2 trips.
                    let to = from + step * self.pick(if self.in_func { 2 } else { 5 }) as i64;
                    self.loops = true;
                    let var = self.name("i");
                    let was_loop = std::mem::replace(&mut self.in_loop, true);
                    self.nums.push((var.clone(), false));
                    let n = 1 + self.pick(3);
                    let body = self.block(n, depth + 1);
                    self.nums.pop();
                    self.in_loop = was_loop;
                    Stmt::For { var, from, to, step, c_form: self.pick(3) == 0, body }
                }
                _ => continue,
            };
            return s;
        }
    }

    fn func(&mut self) -> Func {
        let params = 1 + self.pick(3);
        self.nums = (0..params).map(|i| (format!("p{i}"), true)).collect();
        self.strs.clear();
        self.in_func = true;
        (self.weight, self.max_weight) = (1, 8);
        self.loops = false;
        let n = self.pick(4);
        let mut body = self.block_keep(n);
        body.push(Stmt::Return(self.expr()));
        self.in_func = false;
        self.nums.clear();
        Func { params, body }
    }

    /// Statements at a body's top level (their locals stay in scope).
    fn block_keep(&mut self, n: usize) -> Vec<Stmt> {
        (0..n).map(|_| self.stmt(0)).collect()
    }

    fn program(&mut self) -> Program {
        let wildcard = self.pick(3) == 0;
        self.fields = !wildcard;
        self.callable = 0;
        self.params.clear();
        self.results = 0;
        self.str_results = 0;
        self.inlined.clear();
        self.looping.clear();
        let mut funcs = Vec::new();
        for _ in 0..self.pick(4) {
            let f = self.func();
            self.params.push(f.params);
            self.inlined.push(self.weight);
            self.looping.push(self.loops);
            funcs.push(f);
            self.callable += 1;
        }
        (self.weight, self.max_weight) = (0, 30);
        self.nums.clear();
        self.strs.clear();
        let n = 3 + self.pick(8);
        let mut body = self.block_keep(n);
        for _ in 0..2 + self.pick(3) {
            self.limit = 3 + self.pick(4) as u32;
            self.results += 1;
            body.push(Stmt::ResNum(self.results, self.expr()));
        }
        self.str_results += 1;
        body.push(Stmt::ResStr(self.str_results, self.string()));
        // Every top-level local, `h` and `w` end up in results.
        let nums: Vec<String> = self.nums.iter().filter(|(_, w)| *w).map(|(n, _)| n.clone()).collect();
        for v in nums {
            self.results += 1;
            body.push(Stmt::ResNum(self.results, Expr::Var(v)));
        }
        for v in self.strs.clone() {
            self.str_results += 1;
            body.push(Stmt::ResStr(self.str_results, Str::Var(v)));
        }
        self.results += 1;
        body.push(Stmt::ResNum(self.results, Expr::H));
        for k in 1..=W_KEYS {
            self.results += 1;
            body.push(Stmt::ResNum(self.results, Expr::W(k)));
        }
        Program {
            t: (0..T_KEYS).map(|_| self.constant()).collect(),
            ts: (0..TS_KEYS).map(|_| self.pick(LITS.len())).collect(),
            globals: (0..3).map(|_| self.constant()).collect(),
            gs: self.pick(LITS.len()),
            h: self.constant(),
            w: (0..W_KEYS).map(|_| self.constant()).collect(),
            sk: LITS.iter().map(|_| self.constant()).collect(),
            skw: LITS.iter().map(|_| self.constant()).collect(),
            wd: (0..WD_KEYS).map(|_| (self.pick(2) == 0).then(|| self.constant())).collect(),
            sw: (0..SW_KEYS).map(|_| self.pick(LITS.len())).collect(),
            wildcard,
            funcs,
            body,
            results: self.results,
            str_results: self.str_results,
            fixes: HashMap::new(),
        }
    }
}

// ---- the model --------------------------------------------------------------

/// Why the model refused a program: a read of a missing key (the key as
/// computed, before any fix, and the table's size) or a zero divisor.
enum Fail {
    Key(Id, i64, i64),
    Zero(Id),
}

enum Flow {
    Next,
    Break,
    Return(i64),
}

/// The results a run stores: `r[j]` and `rs[j]`.
#[derive(Default)]
struct Outcome {
    nums: BTreeMap<usize, i64>,
    strs: BTreeMap<usize, String>,
    /// What the prints print, after their "k"/"u" tag.
    printed: Vec<String>,
}

#[derive(Clone)]
enum Val {
    N(i64),
    S(String),
}

/// ktap's documented integer semantics: 64-bit signed, wrapping,
/// division truncating toward zero, `%` with the dividend's sign.
struct Model<'p> {
    p: &'p Program,
    h: i64,
    w: Vec<i64>,
    gs: String,
    skw: Vec<i64>,
    wd: Vec<Option<i64>>,
    sw: Vec<String>,
    vars: Vec<(String, Val)>,
    out: Outcome,
}

/// Which literal a string is (every string the programs make is one).
fn lit(s: &str) -> usize {
    LITS.iter().position(|l| *l == s).expect("a literal")
}

impl<'p> Model<'p> {
    fn run(p: &'p Program) -> Result<Outcome, Fail> {
        let (gs, skw, wd) = (LITS[p.gs].to_string(), p.skw.clone(), p.wd.clone());
        let sw = p.sw.iter().map(|&i| LITS[i].to_string()).collect();
        let mut m = Model { p, h: p.h, w: p.w.clone(), gs, skw, wd, sw, vars: Vec::new(), out: Outcome::default() };
        m.block(&p.body)?;
        // trace_end also prints `skw`, `wd`, `gs` and `sw` as they end.
        let nums = m.skw.iter().map(|&v| Some(v)).chain(m.wd.iter().copied());
        for (i, v) in nums.enumerate() {
            if let Some(v) = v {
                m.out.nums.insert(p.results + 1 + i, v);
            }
        }
        for (i, v) in std::iter::once(&m.gs).chain(&m.sw).enumerate() {
            m.out.strs.insert(p.str_results + 1 + i, v.clone());
        }
        Ok(m.out)
    }

    fn var(&self, name: &str) -> &Val {
        &self.vars.iter().rev().find(|(n, _)| n == name).expect("generated names are in scope").1
    }
    fn num(&self, name: &str) -> i64 {
        match self.var(name) {
            Val::N(v) => *v,
            Val::S(_) => unreachable!("{name} is a number"),
        }
    }
    fn set(&mut self, name: &str, v: Val) {
        self.vars.iter_mut().rev().find(|(n, _)| n == name).expect("in scope").1 = v;
    }

    /// The key a table read uses, after its fix; a key outside 1..=n misses.
    fn key(&mut self, id: Id, key: &Expr, n: i64) -> Result<i64, Fail> {
        let raw = self.expr(key)?;
        let k = match self.p.fixes.get(&id) {
            Some(Fix::Shift(c)) => raw.wrapping_sub(*c),
            Some(Fix::Clamp) => raw.wrapping_rem(n).wrapping_add(n).wrapping_rem(n) + 1,
            _ => raw,
        };
        if (1..=n).contains(&k) {
            Ok(k)
        } else {
            Err(Fail::Key(id, raw, n))
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<i64, Fail> {
        Ok(match e {
            Expr::Const(c) => *c,
            Expr::Var(v) => self.num(v),
            Expr::Global(i) => self.p.globals[*i],
            Expr::H => self.h,
            Expr::W(k) => self.w[k - 1],
            Expr::Pid(c) => *c,
            Expr::Uid => 0,
            Expr::Nr => libc::SYS_getppid,
            Expr::Tab(id, k) => self.p.t[self.key(*id, k, T_KEYS)? as usize - 1],
            Expr::Bin(op, id, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                match op {
                    BinOp::Add => a.wrapping_add(b),
                    BinOp::Sub => a.wrapping_sub(b),
                    BinOp::Mul => a.wrapping_mul(b),
                    _ => {
                        let b = if matches!(self.p.fixes.get(id), Some(Fix::Odd)) { b.wrapping_mul(2).wrapping_add(1) } else { b };
                        if b == 0 {
                            return Err(Fail::Zero(*id));
                        }
                        if *op == BinOp::Div {
                            a.wrapping_div(b)
                        } else {
                            a.wrapping_rem(b)
                        }
                    }
                }
            }
            Expr::Neg(a) => self.expr(a)?.wrapping_neg(),
            Expr::Call(f, args) => {
                let mut vals = Vec::new();
                for a in args {
                    vals.push(Val::N(self.expr(a)?));
                }
                let saved = self.vars.len();
                self.vars.extend(vals.into_iter().enumerate().map(|(i, v)| (format!("p{i}"), v)));
                let flow = self.block(&self.p.funcs[*f].body);
                self.vars.truncate(saved);
                match flow? {
                    Flow::Return(v) => v,
                    _ => unreachable!("functions end with a return"),
                }
            }
            Expr::Truth(c) => i64::from(self.cond(c)?),
            Expr::Sel(s) => match self.string(s)?.as_str() {
                EXECNAME => 2,
                "bash" => 3,
                _ => 5,
            },
            Expr::Sk(s) => self.p.sk[lit(&self.string(s)?)],
            Expr::Skw(s) => {
                let k = lit(&self.string(s)?);
                self.skw[k]
            }
        })
    }

    fn cond(&mut self, c: &Cond) -> Result<bool, Fail> {
        Ok(match c {
            Cond::Cmp(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                match op {
                    BinOp::Eq => a == b,
                    BinOp::Ne => a != b,
                    BinOp::Lt => a < b,
                    BinOp::Le => a <= b,
                    BinOp::Gt => a > b,
                    _ => a >= b,
                }
            }
            Cond::And(a, b) => self.cond(a)? && self.cond(b)?,
            Cond::Or(a, b) => self.cond(a)? || self.cond(b)?,
            Cond::Not(a) => !self.cond(a)?,
            Cond::Nil(eq, k) => (1..=T_KEYS).contains(&self.expr(k)?) != *eq,
            Cond::WdNil(eq, k) => self.wd[k - 1].is_none() == *eq,
            Cond::StrEq(eq, a, b) => (self.string(a)? == self.string(b)?) == *eq,
        })
    }

    fn string(&mut self, s: &Str) -> Result<String, Fail> {
        Ok(match s {
            Str::Execname => EXECNAME.into(),
            Str::Lit(i) => LITS[*i].into(),
            Str::Var(v) => match self.var(v) {
                Val::S(s) => s.clone(),
                Val::N(_) => unreachable!("{v} is a string"),
            },
            Str::Global => self.gs.clone(),
            Str::Tab(id, k) => LITS[self.p.ts[self.key(*id, k, TS_KEYS)? as usize - 1]].into(),
            Str::Pick(s) => match self.string(s)? {
                s if s == "bash" => EXECNAME.into(),
                s => s,
            },
            Str::Sw(k) => self.sw[k - 1].clone(),
        })
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<Flow, Fail> {
        let saved = self.vars.len();
        let mut flow = Ok(Flow::Next);
        for s in stmts {
            flow = self.stmt(s);
            if !matches!(flow, Ok(Flow::Next)) {
                break;
            }
        }
        self.vars.truncate(saved);
        flow
    }

    fn stmt(&mut self, s: &Stmt) -> Result<Flow, Fail> {
        match s {
            Stmt::VarNum(v, e) => {
                let e = self.expr(e)?;
                self.vars.push((v.clone(), Val::N(e)));
            }
            Stmt::VarStr(v, s) => {
                let s = self.string(s)?;
                self.vars.push((v.clone(), Val::S(s)));
            }
            Stmt::SetNum(v, e) => {
                let e = self.expr(e)?;
                self.set(v, Val::N(e));
            }
            Stmt::AddNum(v, e) => {
                let e = self.expr(e)?;
                let sum = self.num(v).wrapping_add(e);
                self.set(v, Val::N(sum));
            }
            Stmt::SetStr(v, s) => {
                let s = self.string(s)?;
                self.set(v, Val::S(s));
            }
            Stmt::Swap(a, b) => {
                let (x, y) = (self.var(a).clone(), self.var(b).clone());
                self.set(a, y);
                self.set(b, x);
            }
            Stmt::SetH(e) => self.h = self.expr(e)?,
            // `x += e` adds e to x as it is after e (a call in e may set x).
            Stmt::AddH(e) => {
                let e = self.expr(e)?;
                self.h = self.h.wrapping_add(e);
            }
            Stmt::SetW(k, e) => self.w[k - 1] = self.expr(e)?,
            Stmt::AddW(k, e) => {
                let e = self.expr(e)?;
                self.w[k - 1] = self.w[k - 1].wrapping_add(e);
            }
            Stmt::If(arms, otherwise) => {
                for (c, body) in arms {
                    if self.cond(c)? {
                        return self.block(body);
                    }
                }
                if let Some(body) = otherwise {
                    return self.block(body);
                }
            }
            Stmt::For { var, from, to, step, body, .. } => {
                let mut i = *from;
                while (*step > 0 && i <= *to) || (*step < 0 && i >= *to) {
                    self.vars.push((var.clone(), Val::N(i)));
                    let flow = self.block(body);
                    self.vars.pop();
                    match flow? {
                        Flow::Next => {}
                        Flow::Break => break,
                        ret => return Ok(ret),
                    }
                    i += step;
                }
            }
            Stmt::Break => return Ok(Flow::Break),
            Stmt::Return(e) => return Ok(Flow::Return(self.expr(e)?)),
            Stmt::ResNum(j, e) => {
                let v = self.expr(e)?;
                self.out.nums.insert(*j, v);
            }
            Stmt::ResStr(j, s) => {
                let s = self.string(s)?;
                self.out.strs.insert(*j, s);
            }
            Stmt::SetGs(s) => self.gs = self.string(s)?,
            Stmt::AddSkw(s, e) => {
                let k = lit(&self.string(s)?);
                let e = self.expr(e)?;
                self.skw[k] = self.skw[k].wrapping_add(e);
            }
            Stmt::SetSkw(s, e) => {
                let k = lit(&self.string(s)?);
                self.skw[k] = self.expr(e)?;
            }
            Stmt::SetWd(k, e) => {
                self.wd[k - 1] = match e {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                }
            }
            Stmt::SetSw(k, s) => self.sw[k - 1] = self.string(s)?,
            Stmt::Print { printf, args } => {
                let mut line = String::new();
                for a in args {
                    line.push(if *printf { ' ' } else { '\t' });
                    match a {
                        Arg::N(e) => line.push_str(&self.expr(e)?.to_string()),
                        Arg::S(s) => line.push_str(&self.string(s)?),
                    }
                }
                self.out.printed.push(line);
            }
        }
        Ok(Flow::Next)
    }
}

impl Program {
    /// Fixes the nodes the model trips over until it runs through; the
    /// results it stores. (A read that missed is first shifted onto a key,
    /// then, if it misses again, clamped.)
    fn settle(&mut self) -> Option<Outcome> {
        for _ in 0..200 {
            match Model::run(self) {
                Ok(out) => return Some(out),
                Err(Fail::Zero(id)) => {
                    self.fixes.insert(id, Fix::Odd);
                }
                Err(Fail::Key(id, raw, n)) => {
                    let fix = match self.fixes.get(&id) {
                        None => Fix::Shift(raw.wrapping_sub(1 + raw.rem_euclid(n))),
                        _ => Fix::Clamp,
                    };
                    self.fixes.insert(id, fix);
                }
            }
        }
        None
    }
}

// ---- rendering --------------------------------------------------------------

fn constant(c: i64) -> String {
    match c {
        i64::MIN => "(-9223372036854775807 - 1)".into(),
        c if c < 0 => format!("({c})"),
        c => c.to_string(),
    }
}

/// One context's text of the program's code.
struct Render<'p> {
    p: &'p Program,
    ctx: Ctx,
}

impl Render<'_> {
    /// A name that differs between contexts: the probe's, or trace_end's.
    fn pick<'a>(&self, kernel: &'a str, user: &'a str) -> &'a str {
        if self.ctx == Ctx::Kernel {
            kernel
        } else {
            user
        }
    }
    fn sfx(&self) -> &'static str {
        self.pick("k", "u")
    }

    fn key(&self, id: Id, k: &Expr, n: i64) -> String {
        let k = self.expr(k);
        match self.p.fixes.get(&id) {
            Some(Fix::Shift(c)) => format!("({k} - {})", constant(*c)),
            Some(Fix::Clamp) => format!("(({k} % {n} + {n}) % {n} + 1)"),
            _ => k,
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match e {
            Expr::Const(c) => constant(*c),
            Expr::Var(v) => v.clone(),
            Expr::Global(i) => format!("g{}", i + 1),
            Expr::H => self.pick("h", "hu").into(),
            Expr::W(k) => format!("{}[{k}]", self.pick("w", "wu")),
            Expr::Pid(c) => format!("({} - {{PID}} + {})", self.pick("pid", "{PID}"), constant(*c)),
            Expr::Uid => self.pick("uid", "0").into(),
            Expr::Nr => self.pick("arg0", &libc::SYS_getppid.to_string()).into(),
            Expr::Tab(id, k) => format!("t[{}]", self.key(*id, k, T_KEYS)),
            Expr::Bin(op, id, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                if matches!(self.p.fixes.get(id), Some(Fix::Odd)) {
                    format!("({a} {} ({b} * 2 + 1))", op.symbol())
                } else {
                    format!("({a} {} {b})", op.symbol())
                }
            }
            Expr::Neg(a) => format!("(-{})", self.expr(a)),
            Expr::Call(f, args) => {
                let args: Vec<String> = args.iter().map(|a| self.expr(a)).collect();
                format!("f{f}_{}({})", self.sfx(), args.join(", "))
            }
            Expr::Truth(c) => format!("b01_{}({})", self.sfx(), self.cond(c)),
            Expr::Sel(s) => format!("sel_{}({})", self.sfx(), self.string(s)),
            Expr::Sk(s) => format!("sk[{}]", self.string(s)),
            Expr::Skw(s) => format!("{}[{}]", self.pick("skw", "skwu"), self.string(s)),
        }
    }

    fn cond(&self, c: &Cond) -> String {
        match c {
            Cond::Cmp(op, a, b) => format!("({} {} {})", self.expr(a), op.symbol(), self.expr(b)),
            Cond::And(a, b) => format!("({} && {})", self.cond(a), self.cond(b)),
            Cond::Or(a, b) => format!("({} || {})", self.cond(a), self.cond(b)),
            Cond::Not(a) => format!("(!{})", self.cond(a)),
            Cond::Nil(eq, k) => format!("(t[{}] {} nil)", self.expr(k), if *eq { "==" } else { "!=" }),
            Cond::WdNil(eq, k) => format!("({}[{k}] {} nil)", self.pick("wd", "wdu"), if *eq { "==" } else { "!=" }),
            Cond::StrEq(eq, a, b) => format!("({} {} {})", self.string(a), if *eq { "==" } else { "!=" }, self.string(b)),
        }
    }

    fn string(&self, s: &Str) -> String {
        match s {
            Str::Execname => self.pick("execname", "\"ktap-workload\"").into(),
            Str::Lit(i) => format!("\"{}\"", LITS[*i]),
            Str::Var(v) => v.clone(),
            Str::Global => self.pick("gs", "gsu").into(),
            Str::Tab(id, k) => format!("ts[{}]", self.key(*id, k, TS_KEYS)),
            Str::Pick(s) => format!("pick_{}({})", self.sfx(), self.string(s)),
            Str::Sw(k) => format!("{}[{k}]", self.pick("sw", "swu")),
        }
    }

    fn block(&self, stmts: &[Stmt], depth: usize, out: &mut String) {
        for s in stmts {
            self.stmt(s, depth, out);
        }
    }

    fn stmt(&self, s: &Stmt, depth: usize, out: &mut String) {
        let pad = "    ".repeat(depth);
        let line = match s {
            Stmt::VarNum(v, e) => format!("var {v} = {}", self.expr(e)),
            Stmt::VarStr(v, s) => format!("var {v} = {}", self.string(s)),
            Stmt::SetNum(v, e) => format!("{v} = {}", self.expr(e)),
            Stmt::AddNum(v, e) => format!("{v} += {}", self.expr(e)),
            Stmt::SetStr(v, s) => format!("{v} = {}", self.string(s)),
            Stmt::Swap(a, b) => format!("{a}, {b} = {b}, {a}"),
            Stmt::SetH(e) => format!("{} = {}", self.pick("h", "hu"), self.expr(e)),
            Stmt::AddH(e) => format!("{} += {}", self.pick("h", "hu"), self.expr(e)),
            Stmt::SetW(k, e) => format!("{}[{k}] = {}", self.pick("w", "wu"), self.expr(e)),
            Stmt::AddW(k, e) => format!("{}[{k}] += {}", self.pick("w", "wu"), self.expr(e)),
            Stmt::If(arms, otherwise) => {
                for (i, (c, body)) in arms.iter().enumerate() {
                    let head = if i == 0 { format!("{pad}if ") } else { "} elseif ".to_string() };
                    out.push_str(&format!("{head}{} {{\n", self.cond(c)));
                    self.block(body, depth + 1, out);
                    out.push_str(&pad);
                }
                if let Some(body) = otherwise {
                    out.push_str("} else {\n");
                    self.block(body, depth + 1, out);
                    out.push_str(&pad);
                }
                out.push_str("}\n");
                return;
            }
            Stmt::For { var, from, to, step, c_form, body } => {
                if *c_form {
                    let cmp = if *step > 0 { "<=" } else { ">=" };
                    out.push_str(&format!("{pad}for (var {var} = {from}; {var} {cmp} {to}; {var} += {step}) {{\n"));
                } else if *step == 1 {
                    out.push_str(&format!("{pad}for ({var} = {from}, {to}) {{\n"));
                } else {
                    out.push_str(&format!("{pad}for ({var} = {from}, {to}, {step}) {{\n"));
                }
                self.block(body, depth + 1, out);
                out.push_str(&format!("{pad}}}\n"));
                return;
            }
            Stmt::Break => "break".into(),
            Stmt::Return(e) => format!("return {}", self.expr(e)),
            Stmt::ResNum(j, e) => format!("{}[{j}] = {}", self.pick("r", "u"), self.expr(e)),
            Stmt::ResStr(j, s) => format!("{}[{j}] = {}", self.pick("rs", "us"), self.string(s)),
            Stmt::SetGs(s) => format!("{} = {}", self.pick("gs", "gsu"), self.string(s)),
            Stmt::AddSkw(s, e) => format!("{}[{}] += {}", self.pick("skw", "skwu"), self.string(s), self.expr(e)),
            Stmt::SetSkw(s, e) => format!("{}[{}] = {}", self.pick("skw", "skwu"), self.string(s), self.expr(e)),
            Stmt::SetWd(k, e) => format!("{}[{k}] = {}", self.pick("wd", "wdu"), e.as_ref().map_or("nil".into(), |e| self.expr(e))),
            Stmt::SetSw(k, s) => format!("{}[{k}] = {}", self.pick("sw", "swu"), self.string(s)),
            Stmt::Print { printf, args } => {
                let tag = self.pick("k", "u");
                let vals: Vec<String> = args
                    .iter()
                    .map(|a| match a {
                        Arg::N(e) => self.expr(e),
                        Arg::S(s) => self.string(s),
                    })
                    .collect();
                if *printf {
                    let fmt: Vec<&str> = args.iter().map(|a| if matches!(a, Arg::N(_)) { "%d" } else { "%s" }).collect();
                    format!("printf(\"{tag} {}\\n\", {})", fmt.join(" "), vals.join(", "))
                } else {
                    format!("print(\"{tag}\", {})", vals.join(", "))
                }
            }
        };
        out.push_str(&format!("{pad}{line}\n"));
    }

    /// The helpers and generated functions, with this context's names.
    fn functions(&self, out: &mut String) {
        let (k, execname) = (self.sfx(), self.string(&Str::Execname));
        out.push_str(&format!("function b01_{k}(c) {{ if (c) {{ return 1 }} return 0 }}\n"));
        out.push_str(&format!(
            "function sel_{k}(s) {{ if (s == {execname}) {{ return 2 }} if (s == \"bash\") {{ return 3 }} return 5 }}\n"
        ));
        out.push_str(&format!("function pick_{k}(s) {{ if (s == \"bash\") {{ return \"{EXECNAME}\" }} return s }}\n"));
        for (i, f) in self.p.funcs.iter().enumerate() {
            let params: Vec<String> = (0..f.params).map(|p| format!("p{p}")).collect();
            out.push_str(&format!("function f{i}_{k}({}) {{\n", params.join(", ")));
            self.block(&f.body, 1, out);
            out.push_str("}\n");
        }
    }
}

impl Program {
    /// The whole script: inputs in the main context, the probe, and
    /// trace_end running the same code and printing both sides' results.
    fn script(&self) -> String {
        let mut s = String::new();
        for table in ["t", "ts", "w", "wu", "r", "u", "rs", "us", "sk", "skw", "skwu", "wd", "wdu", "sw", "swu"] {
            s.push_str(&format!("var {table} = {{}}\n"));
        }
        s.push_str("var fired = 0\n");
        for (i, v) in self.t.iter().enumerate() {
            s.push_str(&format!("t[{}] = {}\n", i + 1, constant(*v)));
        }
        for (i, v) in self.ts.iter().enumerate() {
            s.push_str(&format!("ts[{}] = \"{}\"\n", i + 1, LITS[*v]));
        }
        for (i, v) in self.w.iter().enumerate() {
            s.push_str(&format!("w[{0}] = {1}\nwu[{0}] = {1}\n", i + 1, constant(*v)));
        }
        for (i, l) in LITS.iter().enumerate() {
            s.push_str(&format!("sk[\"{l}\"] = {}\nskw[\"{l}\"] = {1}\nskwu[\"{l}\"] = {1}\n", constant(self.sk[i]), constant(self.skw[i])));
        }
        for (i, v) in self.wd.iter().enumerate() {
            if let Some(v) = v {
                s.push_str(&format!("wd[{0}] = {1}\nwdu[{0}] = {1}\n", i + 1, constant(*v)));
            }
        }
        for (i, v) in self.sw.iter().enumerate() {
            s.push_str(&format!("sw[{0}] = \"{1}\"\nswu[{0}] = \"{1}\"\n", i + 1, LITS[*v]));
        }
        for (i, v) in self.globals.iter().enumerate() {
            s.push_str(&format!("var g{} = {}\n", i + 1, constant(*v)));
        }
        s.push_str(&format!("var gs = \"{0}\"\nvar gsu = \"{0}\"\nvar h = {1}\nvar hu = {1}\n", LITS[self.gs], constant(self.h)));
        let (kernel, user) = (Render { p: self, ctx: Ctx::Kernel }, Render { p: self, ctx: Ctx::User });
        kernel.functions(&mut s);
        user.functions(&mut s);
        let event = if self.wildcard { "getp*" } else { "getppid" };
        s.push_str(&format!("trace syscalls:sys_enter_{event} /pid == {{PID}}/ {{\n    fired += 1\n"));
        kernel.block(&self.body, 1, &mut s);
        s.push_str("}\ntrace_end {\n");
        user.block(&self.body, 1, &mut s);
        s.push_str(&format!(
            "    print(\"fired\", fired)\n    for (jj = 1, {}) {{ print(\"n\", jj, r[jj], u[jj]) }}\n    for (jj = 1, {}) {{ print(\"s\", jj, rs[jj], us[jj]) }}\n",
            self.results, self.str_results
        ));
        // The tables and globals as they end, numbered after the results.
        let nums = LITS.iter().map(|l| format!("[\"{l}\"]")).map(|k| (format!("skw{k}"), format!("skwu{k}")));
        let nums = nums.chain((1..=WD_KEYS).map(|k| (format!("wd[{k}]"), format!("wdu[{k}]"))));
        for (i, (kernel, user)) in nums.enumerate() {
            s.push_str(&format!("    print(\"n\", {}, {kernel}, {user})\n", self.results + 1 + i));
        }
        let strs = std::iter::once(("gs".to_string(), "gsu".to_string())).chain((1..=SW_KEYS).map(|k| (format!("sw[{k}]"), format!("swu[{k}]"))));
        for (i, (kernel, user)) in strs.enumerate() {
            s.push_str(&format!("    print(\"s\", {}, {kernel}, {user})\n", self.str_results + 1 + i));
        }
        s.push_str("}\n");
        s
    }
}

// ---- running ----------------------------------------------------------------

/// Checks what ktap printed against the model: the probe's prints, then
/// trace_end's, "fired 1", and both sides' results. The number of values
/// compared, or what differed.
fn check(run: &support::Run, want: &Outcome) -> Result<usize, String> {
    if run.code != Some(0) {
        return Err(format!("ktap failed ({:?}):\n{}", run.code, run.stderr));
    }
    let Some((printed, results)) = run.stdout.split_once("fired\t1\n") else {
        return Err(format!("the probe did not fire once:\n{}{}", run.stdout, run.stderr));
    };
    let mut diffs = Vec::new();
    for tag in ["k", "u"] {
        let got: Vec<&str> = printed.lines().filter_map(|l| l.strip_prefix(tag)).collect();
        if got != want.printed {
            let side = if tag == "k" { "kernel" } else { "interpreter" };
            diffs.push(format!("{side} printed {got:?}, model {:?}", want.printed));
        }
    }
    let mut n = want.printed.len();
    for line in results.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [kind, j, kernel, user] = f[..] else {
            return Err(format!("unexpected line {line:?}"));
        };
        let j: usize = j.parse().map_err(|_| format!("unexpected line {line:?}"))?;
        let model = match kind {
            "n" => want.nums.get(&j).map_or("nil".to_string(), i64::to_string),
            _ => want.strs.get(&j).cloned().unwrap_or_else(|| "nil".into()),
        };
        n += 1;
        if kernel != model || user != model {
            let table = if kind == "n" { "r" } else { "rs" };
            diffs.push(format!("{table}[{j}]: kernel {kernel}, interpreter {user}, model {model}"));
        }
    }
    if diffs.is_empty() {
        Ok(n)
    } else {
        Err(diffs.join("\n"))
    }
}

#[test]
fn probe_bodies_compute_what_the_interpreter_computes() {
    let (seed, scripts) = support::fuzz_params("KTAP_SEMFUZZ", 0x2545_f491_4f6c_dd1d, 60);
    let mut g = Gen { rng: support::Rng(seed), ..Gen::default() };
    // The model settles most programs; the rest are skipped, and a run
    // that compares too few proves nothing.
    let mut settled = Vec::new();
    for i in 0..scripts {
        let mut p = g.program();
        if let Some(want) = p.settle() {
            settled.push((i, p.script(), want));
        }
    }
    let skipped = scripts - settled.len();
    assert!(settled.len() * 4 >= scripts * 3, "the model settled only {} of {scripts} scripts (seed {seed:#x})", settled.len());
    // The compile half, without root.
    for (_, script, _) in &settled {
        support::compiles(script);
    }
    if !support::need_root() {
        return;
    }
    let (mut values, mut compared, mut failures) = (0, 0, Vec::new());
    for (i, script, want) in &settled {
        let run = support::traced(script, 1, 1, true);
        match check(&run, want) {
            Ok(n) => {
                values += n;
                compared += 1;
            }
            Err(e) => failures.push(format!("--- script {i} (seed {seed:#x}):\n{script}--- {e}")),
        }
        if failures.len() >= 3 {
            break;
        }
    }
    eprintln!("{scripts} scripts ({skipped} the model could not settle), {compared} compared, {values} values (seed {seed:#x})");
    assert!(failures.is_empty(), "{} scripts differ:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(compared, settled.len(), "every settled script is compared");
    // Every script ends by printing its tables and globals: at least these.
    let per_script = LITS.len() + WD_KEYS + 1 + SW_KEYS;
    assert!(values >= compared * per_script, "only {values} values compared in {compared} scripts");
}
