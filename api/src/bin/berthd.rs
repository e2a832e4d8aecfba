//! `berthd`: the Berth daemon. Not yet implemented beyond reporting that.

fn main() {
    eprintln!("berthd: the daemon is not built yet; use berth-runc (see README.md)");
    std::process::exit(1);
}
