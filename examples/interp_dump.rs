//! Prints the interpreter's compiled code for a script (debugging aid).

use ktap::runtime::interp::{Interp, Options};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: interp_dump SCRIPT");
        std::process::exit(2);
    };
    let src = std::fs::read_to_string(&path).unwrap_or_default();
    let (program, _) = ktap::frontend::parse(&src);
    match Interp::new(&program, Options::default(), Box::new(std::io::sink())) {
        Ok(i) => print!("{}", i.disassemble()),
        Err(e) => eprintln!("error: {}", e.message),
    }
}
