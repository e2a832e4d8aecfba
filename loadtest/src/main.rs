//! `berth-loadtest`: the burst harness. It talks to berthd over HTTP only, which lands with
//! the API issue; until then it says so instead of pretending to measure.

fn main() {
    eprintln!("berth-loadtest: needs berthd, which is not built yet");
    std::process::exit(1);
}
