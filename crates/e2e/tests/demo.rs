//! `scripts/demo.sh` on a machine where nothing of it runs: it starts its own broker (on a
//! spare port, beside the tests' broker), shows anomalies and the address of its live page,
//! and leaves no process behind.

use std::net::TcpStream;
use std::process::Command;

use testkit::{repo_root, run_ok, workspace_bin};

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

#[test]
fn demo_shows_anomalies_and_leaves_nothing_running() {
    workspace_bin("detector"); // the debug binaries the demo will use are built and current
    let run_dir = tempfile::tempdir().unwrap();
    let model = run_dir.path().join("demo-model.bin");
    let port = 20_000 + std::process::id() % 1000;
    let output = run_ok(
        Command::new("bash")
            .arg(repo_root().join("scripts/demo.sh"))
            .args([
                "--seconds",
                "4",
                "--rate",
                "250",
                "--page-port",
                "0",
                "--model",
            ])
            .arg(&model)
            .env("BROKER_PORT", port.to_string())
            .env("RUN_DIR", run_dir.path())
            .env("BUILD_PROFILE", "debug")
            .env_remove("KAFKA_BOOTSTRAP"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = stdout
        .lines()
        .filter(|line| line.contains("anomaly id="))
        .count();
    assert!(
        shown >= 100,
        "the demo showed {shown} anomalies:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("demo done"), "{stderr}");
    let page = stderr
        .lines()
        .find_map(|line| line.split_once("live page: http://127.0.0.1:"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
    assert!(
        page.is_some_and(|port| port.parse::<u16>().is_ok_and(|port| port > 0)),
        "no live page address: {stderr}"
    );

    assert!(
        TcpStream::connect(("127.0.0.1", port as u16)).is_err(),
        "the demo's broker still listens on {port}"
    );
    let left = processes_mentioning(&run_dir.path().display().to_string());
    let left: Vec<_> = left
        .into_iter()
        .filter(|p| !p.contains("cargo") && !p.contains("e2e"))
        .collect();
    assert!(left.is_empty(), "the demo left processes behind: {left:#?}");
}
