use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The logger first: librdkafka's log level is read when a client config is created.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Flags and model are checked before anything connects.
    let config = match detector::Config::from_cli(detector::Cli::parse()) {
        Ok(config) => config,
        Err(error) => return fail(&error.into()),
    };
    // SIGHUP reloads the model: the handler only sets the trigger's flag, which the run
    // looks at between batches.
    if let Err(error) =
        signal_hook::flag::register(signal_hook::consts::SIGHUP, config.reload.flag())
    {
        log::warn!(
            "cannot listen for SIGHUP ({error}); the model reloads only when its file changes"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::new(error).context("cannot start the runtime")),
    };
    let result = runtime.block_on(detector::run(config, termination_signal()));
    // Work left on blocking threads (leaving the group of a broker that is gone) does not
    // hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn termination_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut interrupt), Ok(mut terminate)) => {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        _ => {
            log::warn!("cannot listen for SIGTERM; only Ctrl-C stops the detector");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// One line on stderr naming the problem, exit status 2.
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("detector: error: {error:#}");
    ExitCode::from(2)
}
