//! Link `berth-shim` as a position-dependent executable on Linux: it is started once per
//! container, and as a PIE of its size the dynamic loader applies ~17,000 relative
//! relocations at every start, copying each page they touch (172 page faults per start
//! instead of 93). The library and `berth-runc` are linked as usual.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
