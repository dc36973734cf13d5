//! The detector binary's start-up refusals, as a process (no broker needed): a setting that
//! would void the delivery guarantee, given with `-X` or in a `--client-config` file, stops it
//! with exit code 2 and one line naming the key and the mode, before it connects.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use iforest::{Contamination, IsolationForestParams};

/// A scratch folder of this test process, with a small model in it, one per call (tests run
/// in parallel and must not read each other's files half written).
fn scratch() -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("detector-cli-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let model = dir.join("model.bin");
    {
        let data: Vec<f64> = (0..400).map(|i| f64::from(i % 13) * 0.5).collect();
        IsolationForestParams::new()
            .contamination(Contamination::Fraction(0.01))
            .seed(5)
            .fit(&data, 2)
            .expect("fit")
            .save(&model)
            .expect("save");
    }
    dir
}

/// An address nothing listens on: a port the system just handed out, closed again.
fn unused_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    address.to_string()
}

/// Runs the detector with `args` against an unused port: exit code, stderr, time taken.
fn run(args: &[String]) -> (Option<i32>, String, Duration) {
    let dir = scratch();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_detector"))
        .arg("--model")
        .arg(dir.join("model.bin"))
        .args(["--brokers", &unused_address()])
        // Were it to connect, it would keep trying this long: a quick exit shows it did not.
        .args(["--startup-timeout", "60"])
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("run the detector");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Each refused setting: the extra flags, the key, and the mode the message must name.
const REFUSED: [(&[&str], &str, &str); 5] = [
    (
        &["enable.auto.offset.store=true"],
        "enable.auto.offset.store",
        "at-least-once",
    ),
    (
        &["enable.auto.commit=false"],
        "enable.auto.commit",
        "at-least-once",
    ),
    (
        &["enable.idempotence=false"],
        "enable.idempotence",
        "at-least-once",
    ),
    (&["acks=1"], "acks", "at-least-once"),
    (
        &["isolation.level=read_uncommitted"],
        "isolation.level",
        "exactly-once",
    ),
];

fn assert_refused(args: &[String], key: &str, mode: &str) {
    let (code, stderr, took) = run(args);
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains(key), "{args:?}: names the key: {line}");
    assert!(line.contains(mode), "{args:?}: names the mode: {line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("connecting") && !stderr.contains("not reachable"),
        "{args:?}: it tried to connect:\n{stderr}"
    );
    assert!(took < Duration::from_secs(10), "{args:?}: took {took:?}");
}

#[test]
fn a_setting_that_voids_the_guarantee_is_refused_with_x() {
    for (settings, key, mode) in REFUSED {
        let mut args: Vec<String> = Vec::new();
        if mode == "exactly-once" {
            args.push("--exactly-once".into());
        }
        for setting in settings {
            args.extend(["-X".to_string(), setting.to_string()]);
        }
        assert_refused(&args, key, mode);
    }
}

#[test]
fn a_setting_that_voids_the_guarantee_is_refused_from_a_client_config_file() {
    let dir = scratch();
    for (index, (settings, key, mode)) in REFUSED.iter().enumerate() {
        let file = dir.join(format!("client-{index}.properties"));
        let text: String = settings.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(&file, format!("# refused\nclient.id=cli-test\n{text}")).expect("write");
        let mut args = vec![
            "--client-config".to_string(),
            file.to_str().expect("utf-8 path").to_string(),
        ];
        if *mode == "exactly-once" {
            args.push("--exactly-once".into());
        }
        assert_refused(&args, key, mode);
    }
}

#[test]
fn with_exactly_once_auto_commit_must_be_off_and_without_it_on() {
    // The same key, refused in each mode for the opposite value.
    let (code, stderr, _) = run(&[
        "--exactly-once".into(),
        "-X".into(),
        "enable.auto.commit=true".into(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("enable.auto.commit") && stderr.contains("exactly-once"));
}
