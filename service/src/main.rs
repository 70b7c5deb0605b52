use std::process::ExitCode;

use clap::Parser;

/// mimalloc returns freed pixel buffers to the OS far better than glibc's malloc, whose arena
/// fragmentation is the most reported memory problem of image servers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    pixelmill::cli::Cli::parse().run()
}
