//! What the fuzz targets share: the fake kernel scripts compile against,
//! the invariant checks, and a structure-aware script generator driven by
//! the fuzzer's bytes (`arbitrary::Unstructured`), so that most inputs get
//! past the parser and into name resolution, typing, lowering and code
//! generation.

use arbitrary::{Result, Unstructured};
use ktap::facts::{DebugScope, DebugVar, EventField, FakeBinary, FakeKernel, FieldKind, FileOffset, MemberDesc, PercpuAccess, RegOffset, SdtMarker, TypeDesc, TypeTable, VarLoc};
use ktap::frontend::diag::{self, Diagnostic};
use std::sync::{Arc, OnceLock};

fn field(name: &str, offset: u32, size: u32, signed: bool) -> EventField {
    let kind = if name == "filename" { FieldKind::DataLoc } else { FieldKind::Int };
    EventField { name: name.into(), offset, size, signed, common: name.starts_with("common_"), kind }
}

fn format(event: &str) -> Vec<EventField> {
    let mut f = vec![
        field("common_type", 0, 2, false),
        field("common_flags", 2, 1, false),
        field("common_preempt_count", 3, 1, false),
        field("common_pid", 4, 4, true),
    ];
    if event.starts_with("sys_") {
        f.push(field("__syscall_nr", 8, 4, true));
    }
    match event {
        "sys_enter_write" => {
            f.push(field("fd", 16, 8, false));
            f.push(field("buf", 24, 8, false));
            f.push(field("count", 32, 8, false));
        }
        "sys_exit_write" | "sys_exit_getppid" => f.push(field("ret", 16, 8, true)),
        "sched_process_exec" => {
            f.push(field("filename", 8, 4, false));
            f.push(field("pid", 12, 4, true));
            f.push(field("old_pid", 16, 4, true));
        }
        _ => {}
    }
    f
}

/// The catalogue the compiler target resolves events in: a few
/// tracepoints with x86-64 layouts, one binary with functions and USDT
/// markers, two kernel functions, and the sample kernel BTF (the same
/// catalogue as the test suite's `fake_kernel()`), and the binary's
/// debug info ([`app_debug`]).
pub fn catalogue() -> FakeKernel {
    let mut k = FakeKernel::new();
    for (system, event) in [
        ("sched", "sched_process_exec"),
        ("syscalls", "sys_enter_getppid"),
        ("syscalls", "sys_enter_write"),
        ("syscalls", "sys_exit_getppid"),
        ("syscalls", "sys_exit_write"),
    ] {
        k = k.event(system, event, format(event));
    }
    let marker = |name: &str, off: u64, sema: Option<u64>, args: &str| SdtMarker {
        provider: "app".into(),
        name: name.into(),
        offset: FileOffset(off),
        semaphore: sema.map(FileOffset),
        args: args.into(),
    };
    let app = FakeBinary {
        path: "/opt/app/libapp.so".into(),
        aliases: vec!["libapp".into()],
        functions: [("app_close", 0x1200), ("app_open", 0x1100), ("app_read", 0x1180)].iter().map(|(n, o)| (n.to_string(), FileOffset(*o))).collect(),
        markers: vec![
            marker("request", 0x1300, Some(0x4010), "-4@%eax 8@-8(%rbp) 8@$12"),
            marker("done", 0x1340, None, "8@%rdx"),
            marker("odd", 0x1380, None, "8@foo(%rip)"),
        ],
    };
    let (func, line) = app_debug();
    k.binary(app)
        .debug("/opt/app/libapp.so", "app_read", func)
        .debug("/opt/app/libapp.so", "app.c:7", line)
        .kernel_function("vfs_read")
        .kernel_function("vfs_write")
        .syscall("write", 1)
        .syscall("getppid", 110)
}

/// What the DWARF of libapp says: `struct req *app_read(struct req *req,
/// int nbytes)` (`req` in the frame, as at -O0) and line `app.c:7` with
/// locals in the frame, in a register, optimised out and unreadable (as
/// the runtime's reader builds them from a binary's DWARF).
pub fn app_debug() -> (DebugScope, DebugScope) {
    let mut t = TypeTable::new();
    let int = t.add(TypeDesc::Int { size: 4, signed: true }, "int".into());
    let ch = t.add(TypeDesc::Int { size: 1, signed: true }, "char".into());
    let str_ptr = t.add(TypeDesc::Ptr { to: ch, tag: None }, "char *".into());
    let name = t.add(TypeDesc::Array { elem: ch, len: 16 }, "char[16]".into());
    let req = t.add(TypeDesc::Void, String::new());
    let req_ptr = t.add(TypeDesc::Ptr { to: req, tag: None }, "struct req *".into());
    let member = |name: &str, ty, bit_offset, bits| MemberDesc { name: name.into(), ty, bit_offset, bits };
    let members = vec![
        member("path", str_ptr, 0, 0),
        member("size", int, 64, 0),
        member("next", req_ptr, 128, 0),
        member("name", name, 192, 0),
        member("ready", int, 320, 1),
    ];
    t.set(req, TypeDesc::Composite { union: false, name: "req".into(), size: 48, members }, "struct req".into());
    let var = |name: &str, ty, loc, param| DebugVar { name: name.into(), ty, loc, param };
    let func = DebugScope {
        debug_file: "/opt/app/libapp.so".into(),
        function: "app_read".into(),
        offset: FileOffset(0x1188),
        address: 0x1188,
        vars: vec![var("req", req_ptr, VarLoc::Mem { base: RegOffset::BP, offset: -24 }, true), var("nbytes", int, VarLoc::Reg(RegOffset::SI), true)],
        ret: req_ptr,
        types: Arc::new(t),
    };
    let line = DebugScope {
        offset: FileOffset(0x11a0),
        address: 0x11a0,
        vars: vec![
            var("i", int, VarLoc::Mem { base: RegOffset::BP, offset: -4 }, false),
            var("cur", req_ptr, VarLoc::Reg(RegOffset::BX), false),
            var("gone", int, VarLoc::OptimizedOut, false),
            var("odd", int, VarLoc::Untranslatable("DW_OP_entry_value".into()), false),
        ],
        ..func.clone()
    };
    (func, line)
}

/// The catalogue on a kernel with BTF (x86-64 6.18's layout). A new one
/// per input: the fake records every format read, which in one kernel
/// kept for a whole campaign grows without bound.
pub fn fake_kernel() -> FakeKernel {
    static BTF: OnceLock<Vec<u8>> = OnceLock::new();
    catalogue()
        .task_comm_offset(1752)
        .task_flag_bit("in_iowait", 9544)
        .percpu_var("__preempt_count", PercpuAccess { chain: vec![296, 312], delta: -92688, size: 4 })
        .btf(BTF.get_or_init(ktap::facts::sample_btf).clone())
}

/// How the compiler answered a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Compiled,
    /// Refused while parsing.
    ParseError,
    /// Parsed, refused by a later stage.
    Refused,
    Limit,
}

/// A diagnostic is well-formed for a source of `len` bytes placed at
/// `base`: a message, and spans inside the source.
pub fn check_diag(d: &Diagnostic, base: u32, len: u32, src: &str) {
    assert!(!d.message.is_empty(), "empty message for {src:?}");
    let inside = |s: diag::Span| s.start <= s.end && s.start >= base && s.end <= base + len;
    assert!(inside(d.span), "span {:?} outside {base}..{} in {d:?} for {src:?}", d.span, base + len);
    for (s, _) in &d.secondary {
        assert!(inside(*s), "secondary span {s:?} outside {base}..{} in {d:?} for {src:?}", base + len);
    }
}

/// Compiles `src` against the fake kernel and checks the compiler's
/// promises: an accepted script went through the IR validator (a failure
/// there is `Internal`), a refused one says why at a place in the script.
pub fn compile_and_check(src: &str) -> Outcome {
    match ktap::compile(src, &fake_kernel()) {
        Ok(c) => {
            assert!(!c.object.is_empty());
            for w in &c.warnings {
                check_diag(w, 0, src.len() as u32, src);
            }
            Outcome::Compiled
        }
        Err(ktap::CompileError::Diagnostics(ds)) => {
            assert!(ds.iter().any(|d| d.is_error()), "refused without an error for {src:?}: {ds:?}");
            if std::env::var_os("KTAP_FUZZ_SHOW").is_some() {
                eprintln!("{}", diag::render("fuzz.kp", src, &ds, false));
            }
            for d in &ds {
                check_diag(d, 0, src.len() as u32, src);
            }
            let _ = diag::render("fuzz.kp", src, &ds, false);
            if ktap::frontend::parse(src).1.iter().any(|d| d.is_error()) {
                Outcome::ParseError
            } else {
                Outcome::Refused
            }
        }
        Err(ktap::CompileError::Limit(msg)) => {
            assert!(!msg.is_empty());
            Outcome::Limit
        }
        Err(ktap::CompileError::Internal(msg)) => panic!("internal compiler error: {msg}\n--- script:\n{src}"),
    }
}

/// Event specs the generator picks from: every provider, over names the
/// fake kernel knows (and a few it doesn't).
const EVENTS: &[&str] = &[
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_getppid",
    "syscalls:sys_exit_write",
    "syscalls:sys_exit_getppid",
    "syscalls:sys_enter_*",
    "syscalls:sys_exit_*",
    "sched:sched_process_exec",
    "sched:*",
    "*:*",
    "probe:vfs_read",
    "probe:vfs_read%return",
    "probe:vfs_* a=%di:u32 b=+8(%si):s16",
    "probe:vfs_write%return r=$retval:s32",
    "probe:libapp:app_open",
    "probe:libapp:app_*",
    "probe:/opt/app/libapp.so:app_read%return n=+8(+0(%di)):s32 s=+0(%si):string",
    "probe:libapp:app_close x=$stack3 y=-4($stack):u8",
    "probe:libapp:app_read",
    "probe:libapp:app_read%return",
    "probe:libapp:app.c:7",
    "probe:libapp:app.c:9",
    "sdt:libapp:request",
    "sdt:libapp:done",
    "sdt:libapp:odd",
    "sdt:libapp:*",
    "fentry:vfs_read",
    "fexit:vfs_read",
    "fentry:vfs_*",
    "tp_btf:sched_switch",
    "tp_btf:sched_wakeup",
    "btf:sched_switch",
    "iter:task",
    "iter:task_file",
    "iter:task_file(42)",
    "iter:task(1)",
    "iter:tsak",
    "syscalls:sys_enter_nope",
];

const TIMERS: &[&str] = &["tick-1s", "tick-100ms", "profile-1ms", "profile-10us"];

/// Names a probe body may read: builtins and arguments.
const READS: &[&str] = &[
    "pid", "tid", "uid", "cpu", "execname", "probename", "argstr", "arg0", "arg1", "arg2", "arg3", "arg6", "retval",
    "args.count", "args.file.f_pos", "args.file->f_owner_pid", "args.prev.comm", "args.next.pid", "args.p.se.sum_exec_runtime",
    "args.n", "args.s", "args.a", "args.fd", "args.filename", "curtask.pid", "curtask.real_parent.tgid", "curtask.mm.mm_count",
    "curtask.comm", "curtask.policy", "curtask.name_ptr", "curtask.se", "curtask.nope", "args", "curtask",
    // Iterators' context and their last call.
    "args.task.pid", "args.task.comm", "args.task.tgid", "args.meta.seq_num", "args.file->f_pos", "iter_end",
    // A user function's DWARF (`app_read`, `app.c:7`).
    "args.req", "args.req.path", "args.req->next->size", "args.req.name", "args.req.ready", "args.req.name[3]",
    "args.nbytes", "retval.size", "retval->next->path", "args.i", "args.cur.size", "args.gone", "args.odd",
];

const CALLS0: &[&str] = &["in_interrupt()", "in_iowait()", "gettimeofday_ms()", "gettimeofday_us()", "exit()", "stack()", "ustack()", "nope()"];
const CALLS1: &[&str] = &["tostring", "user_string", "kernel_string", "print", "count", "sum", "avg", "min", "max", "stats", "hist", "ustack", "ksym", "usym", "nope"];
const BINOPS: &[&str] = &["+", "-", "*", "/", "%", "..", "==", "!=", "<", "<=", ">", ">=", "&&", "||"];
const NUMBERS: &[&str] = &["0", "1", "-1", "7", "16", "255", "4096", "0x7fffffffffffffff", "0xffffffffffffffff", "9223372036854775807", "-9223372036854775808", "1000000"];
const STRINGS: &[&str] = &["\"\"", "\"bash\"", "\"%d %s\\n\"", "\"a literal longer than sixteen bytes\"", "\"%s\"", "\"%d\"", "\"\\n\"", "\"%-8s %5d %x\\n\""];

/// The script generator: names in scope, depth bounds.
pub struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    globals: Vec<String>,
    tables: Vec<String>,
    functions: Vec<(String, usize)>,
    locals: Vec<String>,
    depth: u32,
    loops: u32,
    in_function: bool,
}

impl<'a, 'b> Gen<'a, 'b> {
    pub fn new(u: &'b mut Unstructured<'a>) -> Self {
        Gen { u, globals: Vec::new(), tables: Vec::new(), functions: Vec::new(), locals: Vec::new(), depth: 0, loops: 0, in_function: false }
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> Result<T> {
        Ok(*self.u.choose(xs)?)
    }

    fn below(&mut self, n: usize) -> Result<usize> {
        if n <= 1 {
            return Ok(0);
        }
        self.u.int_in_range(0..=n - 1)
    }

    fn name_of(&mut self, names: &[String], fallback: &str) -> Result<String> {
        if names.is_empty() {
            return Ok(fallback.to_string());
        }
        let i = self.below(names.len())?;
        Ok(names[i].clone())
    }

    fn table(&mut self) -> Result<String> {
        let tables = self.tables.clone();
        self.name_of(&tables, "t0")
    }

    fn expr(&mut self) -> Result<String> {
        self.depth += 1;
        let leaf = self.depth > 4 || self.u.is_empty();
        let choice = if leaf { self.below(6)? } else { self.below(16)? };
        let e = match choice {
            0 => self.pick(NUMBERS)?.to_string(),
            1 => self.pick(READS)?.to_string(),
            2 => {
                let locals = self.locals.clone();
                self.name_of(&locals, "pid")?
            }
            3 => {
                let globals = self.globals.clone();
                self.name_of(&globals, "uid")?
            }
            4 => self.pick(STRINGS)?.to_string(),
            5 => self.pick(&["nil", "true", "false", "undefined_name"])?.to_string(),
            6 | 7 => {
                let op = self.pick(BINOPS)?;
                format!("({} {op} {})", self.expr()?, self.expr()?)
            }
            8 => format!("{}[{}]", self.table()?, self.expr()?),
            9 => format!("{}({})", self.pick(CALLS1)?, self.expr()?),
            10 => self.pick(CALLS0)?.to_string(),
            11 => format!("lhist({}, {}, {}, {})", self.expr()?, self.pick(NUMBERS)?, self.pick(NUMBERS)?, self.pick(NUMBERS)?),
            12 if !self.functions.is_empty() => {
                let i = self.below(self.functions.len())?;
                let (name, arity) = self.functions[i].clone();
                // Sometimes the wrong number of arguments.
                let n = if self.u.ratio(1, 8)? { arity + 1 } else { arity };
                let args = (0..n).map(|_| self.expr()).collect::<Result<Vec<_>>>()?;
                format!("{name}({})", args.join(", "))
            }
            13 => format!("{}({})", self.pick(&["-", "!"])?, self.expr()?),
            14 => format!("printf({}, {}, {})", self.pick(STRINGS)?, self.expr()?, self.expr()?),
            _ => format!("{}[{}][{}]", self.table()?, self.expr()?, self.expr()?),
        };
        self.depth -= 1;
        Ok(e)
    }

    fn block(&mut self, depth: u32, out: &mut String) -> Result<()> {
        let saved = self.locals.len();
        let n = self.below(if depth > 2 { 2 } else { 5 })? + 1;
        for _ in 0..n {
            if self.u.is_empty() {
                break;
            }
            self.stmt(depth, out)?;
        }
        // `return` only ends a block.
        if self.u.ratio(1, 6)? {
            let pad = "  ".repeat(depth as usize + 1);
            if self.in_function && self.u.arbitrary()? {
                out.push_str(&format!("{pad}return {}\n", self.expr()?));
            } else {
                out.push_str(&format!("{pad}return\n"));
            }
        }
        self.locals.truncate(saved);
        Ok(())
    }

    fn stmt(&mut self, depth: u32, out: &mut String) -> Result<()> {
        let pad = "  ".repeat(depth as usize + 1);
        let nested = depth < 4;
        let choice = if nested { self.below(20)? } else { self.below(12)? };
        match choice {
            0 | 1 => {
                let name = format!("l{}", self.locals.len());
                out.push_str(&format!("{pad}var {name} = {}\n", self.expr()?));
                self.locals.push(name);
            }
            2 => {
                let mut targets = self.locals.clone();
                targets.extend(self.globals.iter().cloned());
                let t = self.name_of(&targets, "g0")?;
                let op = self.pick(&["=", "+="])?;
                out.push_str(&format!("{pad}{t} {op} {}\n", self.expr()?));
            }
            3 => out.push_str(&format!("{pad}{}[{}] = {}\n", self.table()?, self.expr()?, self.expr()?)),
            4 => out.push_str(&format!("{pad}{}[{}] += {}\n", self.table()?, self.expr()?, self.expr()?)),
            5 => out.push_str(&format!("{pad}{}[{}] = nil\n", self.table()?, self.expr()?)),
            6 => out.push_str(&format!("{pad}print({}, {})\n", self.expr()?, self.expr()?)),
            7 => out.push_str(&format!("{pad}printf({}, {}, {})\n", self.pick(STRINGS)?, self.expr()?, self.expr()?)),
            8 => {
                let agg = self.pick(&["count()", "sum", "avg", "min", "max", "stats", "hist", "lhist"])?;
                let value = match agg {
                    "count()" => agg.to_string(),
                    "lhist" => format!("lhist({}, {}, {}, {})", self.expr()?, self.pick(&["0", "1", "-5"])?, self.pick(&["100", "0", "1000"])?, self.pick(&["10", "0", "7"])?),
                    _ => format!("{agg}({})", self.expr()?),
                };
                // Per key of a table, or global.
                if self.u.ratio(1, 3)? {
                    let globals = self.globals.clone();
                    let g = self.name_of(&globals, "g0")?;
                    out.push_str(&format!("{pad}{g} = {value}\n"));
                } else {
                    out.push_str(&format!("{pad}{}[{}] = {value}\n", self.table()?, self.expr()?));
                }
            }
            9 => match self.functions.len() {
                // A call as a statement (any other expression is refused).
                0 => out.push_str(&format!("{pad}{}\n", self.pick(CALLS0)?)),
                n => {
                    let i = self.below(n)?;
                    let (name, arity) = self.functions[i].clone();
                    let args = (0..arity).map(|_| self.expr()).collect::<Result<Vec<_>>>()?;
                    out.push_str(&format!("{pad}{name}({})\n", args.join(", ")));
                }
            },
            10 | 11 if self.loops > 0 => out.push_str(&format!("{pad}break\n")),
            10 | 11 => out.push_str(&format!("{pad}print({})\n", self.expr()?)),
            12 | 13 => {
                out.push_str(&format!("{pad}if ({}) {{\n", self.expr()?));
                self.block(depth + 1, out)?;
                if self.u.arbitrary()? {
                    out.push_str(&format!("{pad}}} elseif ({}) {{\n", self.expr()?));
                    self.block(depth + 1, out)?;
                }
                if self.u.arbitrary()? {
                    out.push_str(&format!("{pad}}} else {{\n"));
                    self.block(depth + 1, out)?;
                }
                out.push_str(&format!("{pad}}}\n"));
            }
            14 => {
                let hi = self.pick(&["1", "3", "40", "1000", "100000", "n", "-2"])?;
                out.push_str(&format!("{pad}for (i{depth} = {}, {hi}) {{\n", self.pick(&["0", "1", "5"])?));
                self.locals.push(format!("i{depth}"));
                self.loops += 1;
                self.block(depth + 1, out)?;
                self.loops -= 1;
                self.locals.pop();
                out.push_str(&format!("{pad}}}\n"));
            }
            15 => {
                out.push_str(&format!("{pad}for (k{depth}, v{depth} in pairs({})) {{\n", self.table()?));
                self.locals.push(format!("k{depth}"));
                self.locals.push(format!("v{depth}"));
                self.loops += 1;
                self.block(depth + 1, out)?;
                self.loops -= 1;
                self.locals.truncate(self.locals.len() - 2);
                out.push_str(&format!("{pad}}}\n"));
            }
            16 => {
                out.push_str(&format!("{pad}while ({}) {{\n", self.expr()?));
                self.loops += 1;
                self.block(depth + 1, out)?;
                self.loops -= 1;
                out.push_str(&format!("{pad}}}\n"));
            }
            17 => out.push_str(&format!("{pad}exit()\n")),
            18 => {
                out.push_str(&format!("{pad}{{\n"));
                self.block(depth + 1, out)?;
                out.push_str(&format!("{pad}}}\n"));
            }
            _ => out.push_str(&format!("{pad}{} = {{}}\n", self.table()?)),
        }
        Ok(())
    }

    fn spec(&mut self) -> Result<String> {
        let n = if self.u.ratio(1, 5)? { 2 } else { 1 };
        let specs = (0..n).map(|_| self.pick(EVENTS)).collect::<Result<Vec<_>>>()?;
        Ok(specs.join(", "))
    }

    /// A whole script: globals and tables, functions, probes, timers,
    /// trace_end.
    pub fn script(&mut self) -> Result<String> {
        let mut s = String::new();
        for i in 0..self.below(3)? + 1 {
            let name = format!("g{i}");
            s.push_str(&format!("var {name} = {}\n", self.pick(&["0", "\"\"", "1", "nil", "\"x\""])?));
            self.globals.push(name);
        }
        for i in 0..self.below(3)? + 1 {
            let name = format!("t{i}");
            s.push_str(&format!("var {name} = {{}}\n"));
            self.tables.push(name);
        }
        for i in 0..self.below(3)? {
            let arity = self.below(3)?;
            let name = format!("f{i}");
            let params: Vec<String> = (0..arity).map(|p| format!("p{p}")).collect();
            s.push_str(&format!("function {name}({}) {{\n", params.join(", ")));
            self.locals = params;
            self.in_function = true;
            self.block(0, &mut s)?;
            self.in_function = false;
            self.locals.clear();
            s.push_str("}\n");
            self.functions.push((name, arity));
        }
        for _ in 0..self.below(3)? + 1 {
            match self.below(6)? {
                0 => s.push_str(&format!("{} {{\n", self.pick(TIMERS)?)),
                1 => s.push_str("trace_end {\n"),
                2 => s.push_str(&format!("trace {} /{}/ {{\n", self.spec()?, self.expr()?)),
                _ => s.push_str(&format!("trace {} {{\n", self.spec()?)),
            }
            self.block(0, &mut s)?;
            s.push_str("}\n");
        }
        Ok(s)
    }
}
