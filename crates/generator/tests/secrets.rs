//! Secrets given with `-X` or in a `--client-config` file never appear in what the generator
//! prints, even with debug logs and a broker that cannot be reached, while its (redacted)
//! settings are logged. No broker needed.

use std::process::Command;

const PASSWORD: &str = "S3cretValue-xyz";
const KEY_PASSWORD: &str = "FileKeyPass-991";

#[test]
fn secrets_never_reach_stdout_or_stderr() {
    let dir = std::env::temp_dir().join(format!("gen-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    std::fs::write(&file, format!("ssl.key.password={KEY_PASSWORD}\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_generator"))
        .args(["--brokers", "127.0.0.1:1", "--topic", "nowhere"])
        .args(["--count", "3", "--rate", "0", "--flush-timeout", "20"])
        .args(["-X", &format!("sasl.password={PASSWORD}")])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=PLAIN",
        ])
        .args(["-X", "sasl.username=u", "-X", "message.timeout.ms=2000"])
        // librdkafka's own debug output too, configuration dump included.
        .args(["-X", "debug=all"])
        .arg("--client-config")
        .arg(&file)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        for secret in [PASSWORD, KEY_PASSWORD] {
            assert!(
                !text.contains(secret),
                "{secret} printed on {name}:\n{text}"
            );
        }
    }
    // It did try, and says so: debug logs from librdkafka, the settings redacted.
    assert!(stderr.contains("sasl.password=[redacted]"), "{stderr}");
    assert!(stderr.contains("ssl.key.password=[redacted]"), "{stderr}");
    assert!(stderr.contains("sasl.username=u"), "{stderr}");
    assert!(
        stderr.contains("DEBUG librdkafka"),
        "librdkafka's debug logs went through `log`:\n{stderr}"
    );
    // Nothing was delivered: the summary says so and the exit code is 1.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("generator: sent=3 acknowledged=0 failed=3"),
        "{stdout}"
    );
}
