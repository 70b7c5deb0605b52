//! `pixelmill-load`: the bundled open-model load generator (in progress).

fn main() {
    eprintln!("pixelmill-load: not built yet; see the README roadmap");
    std::process::exit(2);
}
