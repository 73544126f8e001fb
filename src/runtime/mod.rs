//! runtime: the only module that touches the kernel.

pub mod format;
pub mod interp;
pub mod tracefs;
pub mod argstr;
pub mod child;
pub mod perf;
pub mod session;
pub mod elfsyms;
pub mod facts;
pub mod kbtf;
pub mod kprobe;
pub mod uprobe;
pub mod symbols;

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// The one output stream (stdout or `-o FILE`) shared by the interpreter
/// and the record printer, so their lines stay in order.
#[derive(Clone)]
pub struct SharedOut(Rc<RefCell<Box<dyn Write>>>);

impl SharedOut {
    pub fn new(w: Box<dyn Write>) -> SharedOut {
        SharedOut(Rc::new(RefCell::new(w)))
    }
}

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}
