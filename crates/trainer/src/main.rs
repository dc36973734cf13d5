use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use trainer::cli::{Cli, Command};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    // Only `fit --follow` runs until stopped: there the first SIGINT or SIGTERM asks for a
    // clean stop and a second one exits at once. The other commands keep the default (a
    // signal ends them).
    if matches!(&cli.command, Command::Fit(args) if args.follow.follow) {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let registered =
                signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
                    .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
            if let Err(error) = registered {
                eprintln!("trainer: error: cannot handle signals: {error}");
                return ExitCode::from(2);
            }
        }
    }
    match trainer::run(cli, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("trainer: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
