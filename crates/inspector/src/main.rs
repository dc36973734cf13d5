use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match inspector::run(&inspector::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`inspector topics | head -1`): not an error.
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("inspector: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
