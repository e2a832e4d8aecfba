fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(&text).unwrap();
    let p = berth_runtime::seccomp::compile(&spec).unwrap();
    println!("{:?}", p);
}
