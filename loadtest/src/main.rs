//! `loadtest`: the load-test harness for Socket.IO servers (skeleton; scenarios land with the
//! harness issue).

fn main() {
    eprintln!("loadtest: scenarios are not implemented yet (see BENCHMARKS.md)");
    std::process::exit(2);
}
