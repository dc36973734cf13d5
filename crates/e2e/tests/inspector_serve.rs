//! `inspector serve` in a real browser, against a running pipeline: trainer → model,
//! generator → transactions (and two bad records) → detector → anomalies and dead letters.
//! Headless Chromium loads the page and waits until it shows an anomaly row, a rates chart
//! with data, the score histogram, the contour's points and a dead-letter reason, and an
//! anomaly that carries an explanation with its top reason; then a screenshot goes to
//! `target/inspector-serve.png`. Any console error, uncaught exception or
//! browser-logged error (a failed load, a blocked resource) fails the test.
//!
//! Chromium missing and not installable (see `browser::chromium`): skipped, saying why.

mod browser;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::Pipeline;
use testkit::{bootstrap, now_ms, produce, repo_root, unique, workspace_bin as bin, Guard, Record};

/// The browser window's width (the screenshot's).
const WIDTH: u32 = 1440;

/// Counts of what the page shows, as JSON text (for the conditions and failure messages).
const SHOWN: &str = r#"JSON.stringify({
    status: document.getElementById('status').textContent,
    anomalyRows: document.querySelectorAll('#anomalies tbody tr.anomaly-row').length,
    reasons: [...document.querySelectorAll('#anomalies tbody tr td:nth-child(4)')]
        .map((td) => td.textContent).slice(0, 3),
    rateSeconds: Number(document.getElementById('rates').getAttribute('data-nonzero') || 0),
    histogramBins: document.querySelectorAll('#histogram rect.bin').length,
    contourPoints: document.querySelectorAll('#contour circle.point').length,
    deadLetterReasons: [...document.querySelectorAll('#dead-letters tbody tr td:first-child')]
        .map((td) => td.textContent),
    lagRows: document.querySelectorAll('#group tbody tr').length,
    latency: document.getElementById('t-latency').textContent,
})"#;

/// An anomaly with an explanation (as detectors will write them), stamped a few seconds
/// ahead so it stays among the newest rows while the detector adds more.
fn explained_anomaly(topic: &str, model: &str) {
    let value = serde_json::json!({
        "id": 900_001, "data": [[3.9, 3.8]], "score": [-0.75], "anomaly_score": 0.75,
        "threshold": 0.65, "model": model, "detected_at": "2026-01-01T00:00:00Z",
        "partition": 0, "offset": -1, "features": {"x": 3.9, "y": 3.8},
        "explanation": [
            {"feature": "x", "value": 3.9, "direction": "high", "share": 0.58},
            {"feature": "y", "value": 3.8, "direction": "high", "share": 0.42},
        ],
    });
    let record = Record {
        timestamp_ms: Some(now_ms() + 8_000),
        ..Record::keyed("900001", value.to_string())
    };
    produce(topic, &[record]);
}

fn shown(page: &mut browser::Page) -> serde_json::Value {
    let text = page.evaluate(SHOWN);
    serde_json::from_str(text.as_str().unwrap_or("null")).unwrap()
}

#[test]
fn the_live_page_shows_a_running_pipeline_in_a_real_browser() {
    let browser = match browser::Browser::launch(WIDTH, 1000) {
        Ok(browser) => browser,
        Err(why) => {
            eprintln!("SKIPPED: no headless browser: {why}");
            return;
        }
    };
    eprintln!("chromium runs; starting the pipeline");
    let pipeline = Pipeline::new("serve", 3);
    let group = unique("serve-detectors");
    let _detector = Guard(
        pipeline
            .detector(&group)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut serve = Command::new(bin("inspector"))
        .args(["--brokers", &bootstrap(), "serve", "--addr", "127.0.0.1:0"])
        .arg("--model")
        .arg(&pipeline.model_path)
        .args(["--input-topic", &pipeline.transactions])
        .args(["--output-topic", &pipeline.anomalies])
        .args(["--dlq-topic", &pipeline.dead_letters])
        .args(["--group", &group, "--from-beginning"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut said = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    let _serve = Guard(serve);
    let url = said
        .trim()
        .strip_prefix("inspector: serving ")
        .unwrap_or_else(|| panic!("serve said {said:?}"))
        .to_string();
    let _generator = Guard(
        Command::new(bin("generator"))
            .args(["--brokers", &bootstrap(), "--topic", &pipeline.transactions])
            .args([
                "--count",
                "0",
                "--rate",
                "150",
                "--outlier-probability",
                "0.03",
            ])
            .args(["--seed", "11"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    produce(
        &pipeline.transactions,
        &[
            Record::keyed("bad-1", "not json at all"),
            Record::keyed("bad-2", r#"{"id": 7, "data": [[1.0, 2.0, 3.0]]}"#),
        ],
    );

    eprintln!("pipeline running, the page at {url}");
    let mut page = browser.page();
    page.navigate(&url);
    let ready = page.wait_for(
        &format!(
            "(() => {{ const s = {SHOWN}; const v = JSON.parse(s); return v.status === 'live' \
             && v.anomalyRows > 0 && v.rateSeconds > 0 && v.histogramBins > 0 \
             && v.contourPoints > 0 && v.deadLetterReasons.length > 0 && v.lagRows === 3; }})()"
        ),
        Duration::from_secs(120),
    );
    // Some seconds of history make a picture worth looking at.
    let filled = ready
        && page.wait_for(
            &format!("JSON.parse({SHOWN}).rateSeconds >= 15"),
            Duration::from_secs(60),
        );
    let model = iforest::model_id(&std::fs::read(&pipeline.model_path).unwrap());
    explained_anomaly(&pipeline.anomalies, &model);
    let explained = filled
        && page.wait_for(
            &format!("JSON.parse({SHOWN}).reasons.some((r) => r.startsWith('x high'))"),
            Duration::from_secs(30),
        );
    let screenshot = repo_root().join("target/inspector-serve.png");
    page.screenshot(&screenshot, WIDTH);
    let seen = shown(&mut page);
    eprintln!(
        "the page showed {seen}; screenshot {}",
        screenshot.display()
    );
    assert!(
        ready && filled,
        "the page never showed the pipeline: {seen}"
    );
    assert!(
        explained,
        "the explained anomaly's top reason was not shown: {seen}"
    );
    assert!(
        page.errors.is_empty(),
        "errors in the browser: {:#?}",
        page.errors
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The check above can fail: an error logged in the page is seen.
    page.evaluate("console.error('logged by the test'); true");
    page.wait_for("true", Duration::from_secs(1));
    assert!(
        page.errors.iter().any(|e| e.contains("logged by the test")),
        "{:?}",
        page.errors
    );
}
