//! Text dump of the IR for `--emit ir` and golden snapshots. Stable,
//! deterministic, no IO.

use super::{AggTarget, Attach, BinOp, Expr, ExprKind, Module, Part, PathBase, SiteKind, Stmt, StmtKind, TableValue, Ty, UnOp, Via};
use std::fmt::Write;

pub fn module(m: &Module) -> String {
    let mut out = String::new();
    for (i, g) in m.globals.iter().enumerate() {
        let var = g.var.as_deref().map(|v| format!(" (var {v})")).unwrap_or_default();
        let _ = writeln!(out, "global g{i} {}: {:?} in {}{var}", g.name, g.ty, g.section.name());
    }
    for (i, map) in m.maps.iter().enumerate() {
        let _ = writeln!(
            out,
            "map m{i} {}: {:?} key {} value {} entries {}{}",
            map.name,
            map.kind,
            map.key_size,
            map.value_size,
            map.max_entries,
            map.table.as_ref().map(|t| format!(" (table {}: {:?} -> {})", t.var, t.key, table_value(t.value))).unwrap_or_default()
        );
    }
    for (i, s) in m.sites.iter().enumerate() {
        let kind = match &s.kind {
            SiteKind::Print => "Print".to_string(),
            SiteKind::Printf { format } => format!("Printf {:?}", String::from_utf8_lossy(format)),
            SiteKind::Exit => "Exit".to_string(),
            SiteKind::PrintHist { var, n } => format!("PrintHist {var} top {n}"),
            SiteKind::Delete { var } => format!("Delete {var}"),
        };
        let consts = if s.consts.is_empty() { String::new() } else { format!(" consts {:?}", s.consts) };
        let stamped = if s.stamped { " stamped" } else { "" };
        let _ = writeln!(out, "site s{i} {kind} fields {:?}{consts}{stamped} size {}", s.fields, s.layout().1);
    }
    for (i, p) in m.probes.iter().enumerate() {
        let attach: Vec<String> = p
            .attach
            .iter()
            .map(Attach::describe)
            .collect();
        let nested = if p.nested { " (nested: attached once main runs it)" } else { "" };
        let _ = writeln!(out, "probe p{i} [{}]{nested} {{", attach.join(", "));
        stmts(&mut out, &p.body, 1);
        out.push_str("}\n");
    }
    out
}

fn table_value(v: TableValue) -> String {
    match v {
        TableValue::Scalar(ty) => format!("{ty:?}"),
        TableValue::Agg(kind) => kind.desc().ir_value().to_string(),
    }
}

fn stmts(out: &mut String, body: &[Stmt], depth: usize) {
    for s in body {
        let pad = "  ".repeat(depth);
        match &s.kind {
            StmtKind::If { cond, then, otherwise } => {
                let _ = writeln!(out, "{pad}if {} {{", expr(cond));
                stmts(out, then, depth + 1);
                if !otherwise.is_empty() {
                    let _ = writeln!(out, "{pad}}} else {{");
                    stmts(out, otherwise, depth + 1);
                }
                let _ = writeln!(out, "{pad}}}");
            }
            StmtKind::AggUpdate { to, kind, value } => {
                let to = match to {
                    AggTarget::Entry { map, key } => format!("m{}[{}]", map.0, expr(key)),
                    AggTarget::Global(global) => format!("g{}", global.0),
                };
                let _ = writeln!(out, "{pad}{to} {} {}", kind.desc().ir_op(), expr(value));
            }
            StmtKind::GlobalStore { global, value } => {
                let _ = writeln!(out, "{pad}g{} = {}", global.0, expr(value));
            }
            StmtKind::Emit { site, args } => {
                let args: Vec<String> = args.iter().map(expr).collect();
                let _ = writeln!(out, "{pad}emit s{}({})", site.0, args.join(", "));
            }
            StmtKind::SeqPrint { format, args } => {
                let args: Vec<String> = args.iter().map(expr).collect();
                let _ = writeln!(out, "{pad}seq_printf({:?}{}{})", String::from_utf8_lossy(format), if args.is_empty() { "" } else { ", " }, args.join(", "));
            }
            StmtKind::Return => {
                let _ = writeln!(out, "{pad}return");
            }
            StmtKind::MapStore { map, key, value } => {
                let _ = writeln!(out, "{pad}m{}[{}] = {}", map.0, expr(key), expr(value));
            }
            StmtKind::MapDelete { map, key } => {
                let _ = writeln!(out, "{pad}delete m{}[{}]", map.0, expr(key));
            }
            StmtKind::LocalSet { local, value } => {
                let _ = writeln!(out, "{pad}l{} = {}", local.0, expr(value));
            }
            StmtKind::Loop { cond, body, step, max_iterations } => {
                let _ = writeln!(out, "{pad}loop while {} (at most {max_iterations}) {{", expr(cond));
                stmts(out, body, depth + 1);
                let _ = writeln!(out, "{pad}}} step {{");
                stmts(out, step, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            StmtKind::Break => {
                let _ = writeln!(out, "{pad}break");
            }
            StmtKind::Block { id, body } => {
                let _ = writeln!(out, "{pad}block b{} {{", id.0);
                stmts(out, body, depth + 1);
                let _ = writeln!(out, "{pad}}}");
            }
            StmtKind::Leave(id) => {
                let _ = writeln!(out, "{pad}leave b{}", id.0);
            }
        }
    }
}

fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Const(v) => v.to_string(),
        ExprKind::Helper { func, part } => match part {
            Part::All => format!("{}()", func.name()),
            Part::High32 => format!("{}().hi32", func.name()),
            Part::Low32 => format!("{}().lo32", func.name()),
        },
        ExprKind::Load(path) => {
            let base = match path.base {
                PathBase::CurrentTask => "task".to_string(),
                PathBase::Arg(n) => format!("ctx.arg{n}"),
                PathBase::Reg(r) => format!("regs+{}", r.0),
            };
            // A frame slot lies below its register: offsets are 32-bit signed.
            let chain: String = path.derefs.iter().map(|&o| format!("->{:+}", o as i32)).collect();
            let legacy = path.core.is_empty() && matches!(path.base, PathBase::CurrentTask) && path.size != 0;
            let what = match e.ty {
                Ty::Comm if legacy => "comm".to_string(),
                Ty::Comm | Ty::Str => format!("str{}", path.size),
                _ if path.size == 0 => "addr".to_string(),
                _ => format!("{}{}", if path.signed { "s" } else { "u" }, u32::from(path.size) * 8),
            };
            let via = match path.via {
                Via::Direct => "",
                Via::ProbeRead => " (probe read)",
                Via::ProbeReadUser => " (user read)",
            };
            let core: String = path.core.iter().map(|c| format!(" [core {}: {}]", c.step, c.describe())).collect();
            let bits = path.bits.map(|b| format!(" bits {}..{}", b.shift, b.shift + b.width)).unwrap_or_default();
            format!("{base}{chain} {:+}:{what}{bits}{via}{core}", path.offset)
        }
        ExprKind::Global(g) => format!("g{}", g.0),
        ExprKind::CtxAddr { offset, data_loc: false } => format!("&ctx[{offset}]"),
        ExprKind::CtxAddr { offset, data_loc: true } => format!("&ctx[data_loc ctx[{offset}]]"),
        ExprKind::CtxField { offset, size, signed } => {
            format!("ctx[{offset}:{}{}]", if *signed { "s" } else { "u" }, size * 8)
        }
        ExprKind::MapGet { map, key } => format!("m{}[{}]", map.0, expr(key)),
        ExprKind::MapHas { map, key } => format!("(m{}[{}] != nil)", map.0, expr(key)),
        ExprKind::ProbeName => "probe_id".to_string(),
        ExprKind::Local(l) => format!("l{}", l.0),
        ExprKind::ReadStr { ptr, user } => format!("{}_string({})", if *user { "user" } else { "kernel" }, expr(ptr)),
        ExprKind::StrEq { value, literal } => format!("({} == {:?})", expr(value), String::from_utf8_lossy(literal)),
        ExprKind::StrCmp { lhs, rhs } => format!("({} == {})", expr(lhs), expr(rhs)),
        ExprKind::StrConst(s) => format!("{:?}", String::from_utf8_lossy(s)),
        ExprKind::StrConcat { lhs, rhs } => format!("({} .. {})", expr(lhs), expr(rhs)),
        ExprKind::IntText(value) => format!("text({})", expr(value)),
        ExprKind::Seq { body, result } => {
            let mut inner = String::new();
            stmts(&mut inner, body, 1);
            format!("{{\n{inner}  }} -> l{}", result.0)
        }
        ExprKind::Stack { user, skip, depth } => {
            let cut = if *skip == 0 && *depth == 0 { String::new() } else { format!("{skip}, {depth}") };
            format!("{}stack({cut})", if *user { "u" } else { "" })
        }
        ExprKind::ArgStr { offset } => format!("argstr@{offset}"),
        ExprKind::Fetch(f) => {
            let loc = fetch_loc(&f.loc);
            if f.bytes == 8 && !f.signed {
                loc
            } else {
                format!("{loc}:{}{}", if f.signed { "s" } else { "u" }, u32::from(f.bytes) * 8)
            }
        }
        ExprKind::Unary { op, operand } => {
            let op = match op {
                UnOp::Neg => "-",
                UnOp::Not => "!",
            };
            format!("{op}{}", expr(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let op = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Mod => "%",
                BinOp::BitAnd => "&",
                BinOp::Eq => "==",
                BinOp::Ne => "!=",
                BinOp::Lt => "<",
                BinOp::Le => "<=",
                BinOp::Gt => ">",
                BinOp::Ge => ">=",
                BinOp::And => "&&",
                BinOp::Or => "||",
            };
            format!("({} {op} {})", expr(lhs), expr(rhs))
        }
    }
}

fn fetch_loc(l: &super::FetchLoc) -> String {
    match l {
        super::FetchLoc::Reg(r) => format!("regs[{}]", r.0),
        super::FetchLoc::Const(v) => format!("${v}"),
        super::FetchLoc::FuncIp => "func_ip".to_string(),
        super::FetchLoc::Offset { base, offset } => format!("({} + {offset})", fetch_loc(base)),
        super::FetchLoc::Mem { base, offset, bytes, space } => {
            let space = match space {
                super::AddrSpace::User => "user",
                super::AddrSpace::Kernel => "kernel",
            };
            format!("{space}{}[{} + {offset}]", u32::from(*bytes) * 8, fetch_loc(base))
        }
    }
}
