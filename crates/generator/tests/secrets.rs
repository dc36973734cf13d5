//! Secrets given with `-X` or in a `--client-config` file never appear in what the generator
//! prints, even with debug logs and a broker that cannot be reached, while its (redacted)
//! settings are logged. No broker needed.

use std::process::Command;

use testkit::secrets::{assert_hidden, with_secrets};

#[test]
fn secrets_never_reach_stdout_or_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let output = with_secrets(
        &mut Command::new(env!("CARGO_BIN_EXE_generator")),
        dir.path(),
    )
    .args(["--topic", "nowhere", "--count", "3", "--rate", "0"])
    .args(["--flush-timeout", "20", "-X", "message.timeout.ms=2000"])
    .output()
    .unwrap();
    assert_hidden("generator", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // It did try, and says so: librdkafka's debug logs went through `log`.
    assert!(stderr.contains("DEBUG librdkafka"), "{stderr}");
    // Nothing was delivered: the summary says so and the exit code is 1.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("generator: sent=3 acknowledged=0 failed=3"),
        "{stdout}"
    );
}
