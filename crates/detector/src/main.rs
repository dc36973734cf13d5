use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = detector::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("detector: error: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(detector::run(&cli, detector::termination_signal())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("detector: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
