//! ktap command line.
fn main() {}
