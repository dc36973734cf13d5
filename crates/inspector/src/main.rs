use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = inspector::Cli::parse();
    let shutdown = CancellationToken::new();
    if cli.command.runs_until_stopped() {
        if let Err(error) = stop_on_signals(shutdown.clone()) {
            log::warn!("signals will not stop cleanly: {error}");
        }
    }
    match inspector::run(&cli, &shutdown) {
        Ok(inspector::Status::Done) => ExitCode::SUCCESS,
        // `verify` found differences: its report says which.
        Ok(inspector::Status::Findings) => ExitCode::from(1),
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

/// The first SIGINT or SIGTERM cancels `shutdown`, so the command finishes cleanly (its last
/// summary, the open incident); a second one ends the process at once. The handlers are in
/// place when this returns, so no early signal is lost to the default action.
fn stop_on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut interrupt, mut terminate) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let name = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                };
                log::info!("{name}: stopping (again to quit at once)");
                shutdown.cancel();
                let code = tokio::select! {
                    _ = interrupt.recv() => 130,
                    _ = terminate.recv() => 143,
                };
                std::process::exit(code);
            });
        })?;
    Ok(())
}
