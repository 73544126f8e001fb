//! Build script: runs LALRPOP on grammar/ and nothing else.
fn main() {
    lalrpop::Configuration::new()
        .set_in_dir("grammar")
        .process()
        .expect("lalrpop failed on grammar/");
    println!("cargo:rerun-if-changed=grammar");
}
