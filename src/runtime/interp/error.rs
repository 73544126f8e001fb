//! Run-time errors of userspace ktap code and the internal signals that
//! unwind the interpreter (error, `exit()`, interrupt). Never prints: the
//! caller renders `error: MESSAGE` with the span's location.

use std::fmt;

use crate::span::Span;

/// A run-time (or compile-time) error in userspace code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeError {
    pub message: String,
    /// The offending expression, when known.
    pub span: Option<Span>,
}

impl RuntimeError {
    pub fn new(message: impl Into<String>, span: Option<Span>) -> RuntimeError {
        RuntimeError {
            message: message.into(),
            span,
        }
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuntimeError {}

/// Why execution stopped early, inside the interpreter.
#[derive(Debug)]
pub enum Throw {
    Error(RuntimeError),
    /// `exit()` was called.
    Exit,
    /// The interrupt flag was seen set.
    Interrupted,
}

impl Throw {
    /// An error without a location yet; the interpreter adds the span of
    /// the instruction that raised it.
    pub fn msg(message: impl Into<String>) -> Throw {
        Throw::Error(RuntimeError::new(message, None))
    }

    /// Gives a location to an error that has none.
    pub fn at(self, span: Span) -> Throw {
        match self {
            Throw::Error(RuntimeError {
                message,
                span: None,
            }) => Throw::Error(RuntimeError {
                message,
                span: Some(span),
            }),
            other => other,
        }
    }
}

/// The messages, in one place so tests and callers agree on them.
pub(crate) mod msg {
    pub const DIVIDE_ZERO: &str = "divide 0";
    pub const LOOP_LIMIT: &str = "loop execute count exceed max limit";
    pub const STACK_OVERFLOW: &str = "stack overflow";
    pub const NIL_INDEX: &str = "table index is nil";
    pub const STRING_TOO_LONG: &str = "string length overflow";
    pub const ARITH_STRING: &str = "attempt to perform arithmetic on a string value";

    pub fn call(type_name: &str) -> String {
        format!("attempt to call a {type_name} value")
    }

    pub fn index(type_name: &str) -> String {
        format!("attempt to index a {type_name} value")
    }

    pub fn arith(type_name: &str) -> String {
        format!("attempt to perform arithmetic on a {type_name} value")
    }

    pub fn concat(type_name: &str) -> String {
        format!("attempt to concatenate a {type_name} value")
    }

    pub fn compare(a: &str, b: &str) -> String {
        if a == b {
            format!("attempt to compare two {a} values")
        } else {
            format!("attempt to compare {a} with {b}")
        }
    }

    pub fn iterate(type_name: &str) -> String {
        format!("attempt to iterate over a {type_name} value")
    }

    pub fn bad_arg(n: usize, func: &str, expected: &str, got: &str) -> String {
        format!("bad argument #{n} to '{func}' ({expected} expected, got {got})")
    }
}
