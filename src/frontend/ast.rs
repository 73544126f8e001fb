//! The abstract syntax tree of a ktap script: what the parser builds and
//! every later frontend pass reads. Every node carries its source span. No
//! semantics live here: no name resolution, no types, no IO.

pub use crate::span::Span;

/// A name as written in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A whole script: its top-level statements in source order.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub stmts: Vec<Stmt>,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `var a, b = 1, 2` (values may be fewer than names: the rest are nil).
    Var { names: Vec<Ident>, values: Vec<Expr> },
    /// `a, t[k] = x, y`. Targets are `Name`, `Index` or `Field` expressions.
    Assign { targets: Vec<Expr>, values: Vec<Expr> },
    /// `target += value`.
    AddAssign { target: Expr, value: Expr },
    /// An expression evaluated for its effect (a call).
    Expr(Expr),
    /// `if (c) {} elseif (c) {} else {}`: `arms` has at least one entry.
    If { arms: Vec<(Expr, Block)>, otherwise: Option<Block> },
    While { cond: Expr, body: Block },
    /// `for (i = start, limit[, step]) {}`: inclusive, as in Lua.
    ForNum { var: Ident, start: Expr, limit: Expr, step: Option<Expr>, body: Block },
    /// `for (init; cond; step) {}`; each part may be absent.
    ForC { init: Option<Box<Stmt>>, cond: Option<Expr>, step: Option<Box<Stmt>>, body: Block },
    /// `for (k, v in pairs(t)) {}`; `value` is absent for `for (k in pairs(t))`.
    ForIn { key: Ident, value: Option<Ident>, iter: Expr, body: Block },
    Break,
    Return(Option<Expr>),
    Block(Block),
    /// `function name(params) {}`; `name` may be dotted (`function a.b() {}`).
    Function { name: Vec<Ident>, func: FuncBody },
    /// `trace EVENT, EVENT [/filter/] {}`.
    Trace { events: Vec<EventSpec>, filter: Option<Expr>, body: Block },
    /// `trace_end {}`.
    TraceEnd { body: Block },
    /// `tick-1s {}` or `profile-10us {}`.
    Timer { kind: TimerKind, period: Period, body: Block },
    /// Placeholder left by error recovery; a diagnostic was reported.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Runs in userspace on the tracer's timer.
    Tick,
    /// Runs in the kernel on every CPU (perf cpu-clock).
    Profile,
}

/// A timer period as written (`1s`, `100ms`) and in nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub nanos: u64,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct FuncBody {
    pub params: Vec<Ident>,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    /// 64-bit two's complement: `0xffffffffffffffff` is -1.
    Int(i64),
    /// String literal after escape processing (may hold any bytes).
    Str(Vec<u8>),
    Name(Ident),
    /// `base[index]`.
    Index { base: Box<Expr>, index: Box<Expr> },
    /// `base.name`.
    Field { base: Box<Expr>, name: Ident },
    /// `callee(args)`.
    Call { callee: Box<Expr>, args: Vec<Expr> },
    /// `function (params) {}`.
    Function(Box<FuncBody>),
    /// `{ "a", [k] = v, name = v }`.
    Table(Vec<TableField>),
    Unary { op: UnOp, operand: Box<Expr> },
    Binary { op: BinOp, lhs: Box<Expr>, rhs: Box<Expr> },
    /// Placeholder left by error recovery; a diagnostic was reported.
    Error,
}

#[derive(Clone, Debug)]
pub enum TableField {
    /// `expr`: takes the next positional key, starting at 1.
    Positional(Expr),
    /// `[key] = value`.
    Keyed(Expr, Expr),
    /// `name = value`: the key is the string `name`.
    Named(Ident, Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Concat => "..",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// A piece of an event spec as written, with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// One comma-separated event spec after `trace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    pub kind: EventKind,
    /// The provider that claimed it while parsing (`frontend::providers`).
    pub provider: ProviderId,
    /// `name=FETCH[:TYPE]` arguments after a `probe:` or `sdt:` spec.
    pub fetch_args: Vec<FetchArg>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `system:event`; either part may be a glob (`syscalls:sys_enter_*`, `*:*`).
    Tracepoint { system: Word, event: Word },
    /// `probe:symbol[%return]` (kernel) or `probe:/path:symbol[%return]`
    /// (user; `symbol` may be a glob or a `0x` file offset). `binary` keeps
    /// the text as written (a path or a short library name like `libc`).
    Probe { binary: Option<Word>, symbol: Word, ret: bool },
    /// `sdt:/path:marker` (marker may be a glob).
    Sdt { binary: Word, marker: Word },
    /// `PREFIX:TARGET[(PARAM)]`: one target (a glob, say) and an optional
    /// parameter, for providers whose syntax is no more than that
    /// (`btf:sched_switch`, `iter:task_file(PID)`); the spec's `provider`
    /// says which.
    Target { target: Word, param: Option<Word> },
}

/// A provider by its name (`"tracepoint"`, `"uprobe"`...), as the
/// registry in `frontend::providers` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId(pub &'static str);

/// `name=FETCH[:TYPE]`, e.g. `dfd=%di`, `mode=+4($stack):u32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchArg {
    pub name: Word,
    pub fetch: Word,
    pub ty: Option<Word>,
    pub span: Span,
}
