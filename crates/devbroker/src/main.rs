use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use devbroker::{Cli, Config, DevBroker};

fn main() -> ExitCode {
    // The logger first: librdkafka's log level is read when a client config is created.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devbroker: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_cli(&cli)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let broker = DevBroker::start(&config)?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", broker.ready_line())?;
        stdout.flush()?;
        broker.serve(stop_requested(cli.stdin_close_stops)).await;
        Ok(())
    })
}

/// Completes on SIGINT or SIGTERM, or (if asked) when standard input closes.
async fn stop_requested(stdin_close_stops: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut interrupt, mut terminate) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
        _ => {
            log::warn!("cannot listen for signals; the broker stops only when killed");
            return std::future::pending().await;
        }
    };
    let stdin_closed = async {
        if !stdin_close_stops {
            return std::future::pending().await;
        }
        // A plain thread, not the runtime's blocking pool: a read that never ends must not
        // hold the process at exit.
        let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = closed.send(());
        });
        let _ = on_close.await;
    };
    tokio::select! {
        _ = interrupt.recv() => log::info!("interrupted: stopping"),
        _ = terminate.recv() => log::info!("terminated: stopping"),
        _ = stdin_closed => log::info!("standard input closed: stopping"),
    }
}
