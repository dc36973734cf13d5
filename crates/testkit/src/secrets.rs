//! Secrets given in every way a user can (`-X`, a `--client-config` file), and the check that
//! none of them reaches what a process prints, while its settings are logged redacted.

use std::path::Path;
use std::process::{Command, Output};

/// The password given with `-X sasl.password=…`.
pub const PASSWORD: &str = "S3cretValue-xyz-9431";
/// The key password given in the properties file.
pub const KEY_PASSWORD: &str = "FileKeyPass-772";

/// Gives `command` an unreachable broker, SASL settings with [`PASSWORD`] on `-X`, a
/// properties file in `dir` with [`KEY_PASSWORD`], and debug logging (librdkafka's too).
pub fn with_secrets<'c>(command: &'c mut Command, dir: &Path) -> &'c mut Command {
    let file = dir.join("client.properties");
    std::fs::write(&file, format!("ssl.key.password: {KEY_PASSWORD}\n"))
        .expect("write the properties file");
    command
        .args(["--brokers", "127.0.0.1:1"]) // nothing listens: connection errors are logged
        .args(["-X", &format!("sasl.password={PASSWORD}")])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=PLAIN",
        ])
        .args(["-X", "sasl.username=u", "-X", "debug=all"])
        .arg("--client-config")
        .arg(file)
        .env("RUST_LOG", "debug")
}

/// Panics if a secret is on stdout or stderr, or if the settings were not logged with the
/// secrets redacted and the rest shown.
pub fn assert_hidden(what: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        for secret in [PASSWORD, KEY_PASSWORD] {
            assert!(
                !text.contains(secret),
                "{what}: {secret} printed on {stream}:\n{text}"
            );
        }
    }
    for shown in [
        "sasl.password=[redacted]",
        "ssl.key.password=[redacted]",
        "sasl.username=u",
    ] {
        assert!(
            stderr.contains(shown),
            "{what}: no {shown:?} in its log:\n{stderr}"
        );
    }
}
