//! The `feedgate` binary: parse the command line, run it, report errors.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system allocator: an idle SSE stream or held
/// long poll keeps hyper's 8 KiB read and write buffers, mostly untouched;
/// jemalloc keeps their untouched pages out of RSS (docs/benchmarks.md,
/// "Idle connections: server memory").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread returns freed pages to the
/// system after its decay time even while the server is idle (without it,
/// only later allocations purge them: 300 large events read once in every
/// encoding left RSS 46 MiB above the encoding cache's budget instead of
/// 16, docs/benchmarks.md "Encoding cache"). `MALLOC_CONF`-style, read by
/// jemalloc at start; `_RJEM_MALLOC_CONF` in the environment overrides it.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 23] = b"background_thread:true\0";

fn main() -> std::process::ExitCode {
    let cli = feedgate::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("feedgate: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(feedgate::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("feedgate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
