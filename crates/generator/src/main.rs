use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal asks for a clean stop (flush, then the summary); a second one
        // exits at once. Registered in this order so the exit sees the flag as the previous
        // signal left it.
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(error) = registered {
            eprintln!("generator: error: cannot handle signals: {error}");
            return ExitCode::from(2);
        }
    }
    match generator::run(&generator::Cli::parse(), &stop) {
        Ok(summary) => {
            println!("{summary}");
            if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("generator: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
