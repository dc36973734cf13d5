//! Secrets given on the command line or in a properties file never appear in what the
//! detector prints, even with debug logging, while its configuration is logged (redacted).
//! The generator's and the inspector's own tests check theirs.

use std::process::Command;

use testkit::secrets::{assert_hidden, with_secrets};
use testkit::{run_ok, workspace_bin};

#[test]
fn passwords_never_reach_the_detectors_logs_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    run_ok(
        Command::new(workspace_bin("trainer"))
            .args(["fit", "--out"])
            .arg(&model),
    );
    let output = with_secrets(&mut Command::new(workspace_bin("detector")), dir.path())
        .arg("--model")
        .arg(&model)
        .args(["--startup-timeout", "2"])
        .output()
        .unwrap();
    assert_hidden("detector", &output);
    assert_eq!(output.status.code(), Some(2), "no broker: exit 2");
}
