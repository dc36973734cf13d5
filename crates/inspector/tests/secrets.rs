//! Secrets given with `-X` or in a `--client-config` file never appear in what the inspector
//! prints, even with debug logs and a broker that cannot be reached, while its (redacted)
//! settings are logged. No broker needed.

use std::process::Command;

use testkit::secrets::{assert_hidden, with_secrets};

#[test]
fn secrets_never_reach_stdout_or_stderr() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["topics", "--timeout", "3"][..],
        &["tail", "--topic", "t", "--timeout", "1"],
    ] {
        let output = with_secrets(
            &mut Command::new(env!("CARGO_BIN_EXE_inspector")),
            dir.path(),
        )
        .args(command)
        .output()
        .unwrap();
        assert_hidden(&format!("inspector {command:?}"), &output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command:?} reached no broker:\n{stderr}"
        );
        assert!(
            stderr.contains("127.0.0.1:1"),
            "{command:?} names the broker:\n{stderr}"
        );
    }
}
