//! What builtins' kernel lowerings see of the lowering of a probe
//! (`builtins::KernelCx`): argument lowering, diagnostics, records, and the
//! kernel facts asked once per script. Pure; never panics.

use super::*;
use crate::builtins::{self, KernelCx};

/// The lowerer and the probe being lowered, for one builtin use.
pub(super) struct Cx<'l, 'a, 'c> {
    pub l: &'l mut Lowerer<'a>,
    pub ctx: &'c mut ProbeCtx,
}

impl KernelCx for Cx<'_, '_, '_> {
    fn lower(&mut self, e: &ast::Expr) -> Option<Expr> {
        self.l.expr(self.ctx, e)
    }

    fn lower_number(&mut self, e: &ast::Expr) -> Option<Expr> {
        self.l.int_expr(self.ctx, e)
    }

    fn diag(&mut self, d: Diagnostic) {
        self.l.diags.push(d);
    }

    fn stack_map(&mut self) -> ir::MapId {
        self.l.stack_map()
    }

    fn only_syscalls(&self) -> bool {
        self.ctx.args.only_syscalls()
    }

    fn percpu_var(&mut self, name: &str) -> Result<ir::PercpuAccess, String> {
        let events = self.l.events;
        self.l.percpu.entry(name.into()).or_insert_with(|| events.percpu_var(name)).clone()
    }

    fn task_flag_bit(&mut self, member: &str) -> Result<u32, String> {
        self.l.events.task_flag_bit(member)
    }

    fn task_comm_offset(&mut self) -> Option<u32> {
        let events = self.l.events;
        *self.l.comm_offset.get_or_insert_with(|| events.task_comm_offset())
    }

    fn task_comm_record(&mut self) -> Option<ir::core::CoreField> {
        if !self.l.opts.portable_task_name {
            return None;
        }
        let offset = self.task_comm_offset()?;
        let r = self.l.events.kernel_btf().ok()?;
        let task = r.find(crate::btf::Kind::STRUCT, "task_struct").ok()??;
        let Ok(crate::facts::TypeDesc::Composite { size, .. }) = r.describe(task) else { return None };
        let comm = ir::core::CoreTy::Array { elem: Box::new(ir::core::CoreTy::Int { size: 1, signed: true }), len: 16 };
        Some(ir::core::CoreField {
            step: 0,
            root: ir::core::CoreComposite { name: "task_struct".into(), size, union: false },
            members: vec![ir::core::CoreMember { name: "comm".into(), offset, ty: comm, indexes: Vec::new(), bitfield: None }],
        })
    }

    fn boot_to_real(&self) -> Option<GlobalId> {
        self.l.m.boot_to_real
    }

    fn record_args(&mut self, args: &[ast::Expr]) -> Option<(Vec<Ty>, Vec<(usize, ir::SiteConst)>, Vec<Expr>)> {
        self.l.site_args(self.ctx, args)
    }

    fn site(&mut self, kind: SiteKind, fields: Vec<Ty>, consts: Vec<(usize, ir::SiteConst)>, span: Span) -> SiteId {
        self.l.site(kind, fields, consts, span)
    }

    fn is_table(&self, name: &str) -> bool {
        self.l.vars.get(name).is_some_and(|d| d.table.is_some())
    }

    fn seq_file(&self) -> bool {
        self.ctx.args.seq_file()
    }

    fn iter_end(&mut self, span: Span) -> Option<Expr> {
        let mut pcx = self.l.pcx();
        self.ctx.args.iter_end(&mut pcx, span)
    }
}

impl Lowerer<'_> {
    /// A builtin used for its value in a probe.
    pub(super) fn builtin_value(&mut self, ctx: &mut ProbeCtx, b: builtins::BuiltinId, args: &[ast::Expr], span: Span, callee_span: Span) -> Option<Expr> {
        builtins::lower_value(b, &mut Cx { l: self, ctx }, args, span, callee_span)
    }

    /// A builtin called as a statement in a probe.
    pub(super) fn builtin_action(&mut self, ctx: &mut ProbeCtx, b: builtins::BuiltinId, args: &[ast::Expr], span: Span, callee_span: Span) -> Option<Stmt> {
        builtins::lower_action(b, &mut Cx { l: self, ctx }, args, span, callee_span)
    }
}
