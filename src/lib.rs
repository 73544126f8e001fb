//! ktap: compiles ktap scripts to eBPF and runs them. This file is the
//! pipeline in a few straight lines; the stages live in their modules.

pub mod bpfgen;
pub mod btf;
pub(crate) mod builtins;
pub mod facts;
pub mod frontend;
pub mod ir;
pub mod runtime;
pub mod span;

#[cfg(test)]
mod agg_seam_tests;

use frontend::ast::Program;
use frontend::diag::Diagnostic;
use facts::KernelFacts;
pub use frontend::lower::Options;

/// Everything the compiler produced for one script.
pub struct Compilation {
    pub program: Program,
    pub module: ir::Module,
    pub compiled: bpfgen::codegen::Compiled,
    /// The BPF ELF object libbpf loads.
    pub object: Vec<u8>,
    /// Warnings about the script, sorted (it compiled all the same).
    pub warnings: Vec<Diagnostic>,
}

/// Why a script did not compile.
#[derive(Debug)]
pub enum CompileError {
    /// The script is wrong: user-facing diagnostics, sorted.
    Diagnostics(Vec<Diagnostic>),
    /// The script is valid but more than the kernel takes (a program too
    /// long, too much scratch space).
    Limit(String),
    /// The compiler broke an invariant of its own (a bug).
    Internal(String),
}

/// Source text to a BPF object, through every stage, with the default
/// options.
pub fn compile(src: &str, events: &dyn KernelFacts) -> Result<Compilation, CompileError> {
    compile_with(src, events, &Options::default())
}

/// Source text to a BPF object, through every stage.
pub fn compile_with(src: &str, events: &dyn KernelFacts, opts: &Options) -> Result<Compilation, CompileError> {
    let (program, diags) = frontend::parse(src);
    compile_program(program, diags, events, opts)
}

/// A parsed program (a script with its tapsets linked in, see
/// `runtime::tapsets`) to a BPF object; `diags` are its parsing's.
pub fn compile_program(program: Program, mut diags: Vec<Diagnostic>, events: &dyn KernelFacts, opts: &Options) -> Result<Compilation, CompileError> {
    let (module, lower_diags) = frontend::lower::lower(&program, events, opts);
    diags.extend(lower_diags);
    frontend::diag::normalize(&mut diags);
    if diags.iter().any(|d| d.severity == frontend::diag::Severity::Error) {
        return Err(CompileError::Diagnostics(diags));
    }
    let facts = ir::validate::validate(&module).map_err(|e| CompileError::Internal(e.to_string()))?;
    let compiled = bpfgen::codegen::compile(&module, &facts).map_err(|e| match e {
        // A target limit the script can do something about: at its line.
        bpfgen::codegen::Error::TooComplex { span: Some(span), estimate, .. } => CompileError::Diagnostics(vec![frontend::diag::Diagnostic::error(
            span,
            format!("these loops run about {estimate} instructions in all: the kernel verifier walks every iteration and gives up past a million"),
        )
        .with_label("too many iterations for the verifier")
        .with_note("lower the loop bounds (nested loops multiply), or move work out of the loop")]),
        e @ (bpfgen::codegen::Error::TooComplex { .. } | bpfgen::codegen::Error::ScratchLimit { .. } | bpfgen::codegen::Error::JumpTooFar { .. }) => {
            CompileError::Limit(e.to_string())
        }
        e => CompileError::Internal(e.to_string()),
    })?;
    let object = bpfgen::elf::write_object(&compiled.object).map_err(|e| CompileError::Internal(e.to_string()))?;
    Ok(Compilation { program, module, compiled, object, warnings: diags })
}
