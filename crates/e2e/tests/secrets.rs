//! Secrets given on the command line or in a properties file never appear in what a process
//! prints, even with debug logging, while the configuration itself is logged (redacted).

use std::process::Command;

use e2e::bin;

const SECRET: &str = "S3cretValue-xyz-9431";

fn assert_hidden(name: &str, args: &[&str], config_file: &std::path::Path) {
    let output = Command::new(bin(name))
        .args(args)
        .args(["--brokers", "127.0.0.1:1"]) // nothing listens: connection errors are logged
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=PLAIN",
        ])
        .args([
            "-X",
            "sasl.username=someone",
            "-X",
            &format!("sasl.password={SECRET}"),
        ])
        .arg("--client-config")
        .arg(config_file)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains(SECRET),
            "{name} printed the password on {stream}:\n{text}"
        );
        assert!(
            !text.contains("FileSecret-77"),
            "{name} printed the key password on {stream}:\n{text}"
        );
    }
    assert!(
        stderr.contains("[redacted]"),
        "{name} did not log its (redacted) settings:\n{stderr}"
    );
}

#[test]
fn passwords_never_reach_logs_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("client.properties");
    std::fs::write(&config_file, "ssl.key.password=FileSecret-77\n").unwrap();
    let model = dir.path().join("model.bin");
    e2e::run_ok(
        Command::new(bin("trainer"))
            .args(["fit", "--out"])
            .arg(&model),
    );
    let model = model.to_str().unwrap();
    assert_hidden(
        "detector",
        &["--model", model, "--startup-timeout", "2"],
        &config_file,
    );
    assert_hidden(
        "generator",
        // A short delivery timeout: the unreachable broker fails the record in seconds.
        &[
            "--count",
            "1",
            "--topic",
            "nowhere",
            "-X",
            "message.timeout.ms=3000",
        ],
        &config_file,
    );
}
