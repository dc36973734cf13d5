//! What flows through the detectors ([`Stream`]) and what offline scoring expects of it
//! ([`Offline`]): the synthetic stream with the pipeline's model, or card payments keyed by
//! card with a model of per-key features, whose every anomaly must carry the features an
//! uninterrupted run computes, bit for bit.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use features::{RecordMeta, StateStore};
use testkit::{run_ok, workspace_bin, Received};

use crate::Pipeline;

/// The features of the per-key model: the card's own habits (a weighted z-score and the
/// change of the amount, its payments in the last hour, the time since its last one) and the
/// amount itself.
pub const PER_KEY_FEATURES: &str = "amount:log,amount:zscore,amount:delta,count:1h,since_last";

/// What flows through the detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    /// The seeded synthetic stream, keyed by id; the pipeline's model (no per-key features).
    #[default]
    Synthetic,
    /// `generator --scenario payments --key-field card`: card payments keyed by card; a
    /// model of [`PER_KEY_FEATURES`] fitted on other payments of the scenario. Each
    /// detector keeps the key states of its partitions in the group's changelog.
    PerKey,
}

impl Stream {
    /// The generator's arguments that choose the stream.
    pub(crate) fn generator_args(self) -> &'static [&'static str] {
        match self {
            Stream::Synthetic => &[],
            Stream::PerKey => &["--scenario", "payments", "--key-field", "card"],
        }
    }

    /// A record's id: its key (synthetic), or its `id` field (payments, keyed by card).
    pub(crate) fn id_of(self, record: &Received) -> Option<String> {
        match self {
            Stream::Synthetic => record.key.clone(),
            Stream::PerKey => id_field(&record.value),
        }
    }

    /// A dead letter's record id.
    pub(crate) fn dead_letter_id(self, letter: &schema::DeadLetter) -> Option<String> {
        match self {
            Stream::Synthetic => letter.key.clone(),
            Stream::PerKey => id_field(&letter.original),
        }
    }
}

/// The `id` field of a JSON record, as text.
fn id_field(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("id").map(|id| match id {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// What offline scoring expects.
pub struct Offline {
    /// Ids the model flags.
    pub expected: BTreeSet<String>,
    /// Per-key streams: each record's row (by id), as an uninterrupted run computes it.
    pub rows: HashMap<String, Vec<f64>>,
}

impl Offline {
    /// The anomalies (by id) whose `features` differ from the offline row, bit for bit;
    /// nothing for the synthetic stream. Returns (anomalies checked, anomalies that differ).
    pub fn check_features(&self, anomalies: &[Received]) -> (usize, usize) {
        if self.rows.is_empty() {
            return (0, 0);
        }
        let mut checked = 0;
        let mut differ = 0;
        for record in anomalies {
            let Ok(anomaly) = schema::Anomaly::decode(&record.value) else {
                differ += 1;
                continue;
            };
            checked += 1;
            let id = anomaly.id.to_string();
            let same = self.rows.get(&id).is_some_and(|row| {
                row.len() == anomaly.features.len()
                    && row
                        .iter()
                        .zip(&anomaly.features)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
            });
            if !same {
                if differ < 5 {
                    println!(
                        "  anomaly {id} at {}/{}: features {:?}, offline {:?}",
                        anomaly.partition,
                        anomaly.offset,
                        anomaly.features,
                        self.rows.get(&id)
                    );
                }
                differ += 1;
            }
        }
        (checked, differ)
    }
}

/// The synthetic stream's expectation: the ids the pipeline's model flags.
pub(crate) fn synthetic(pipeline: &Pipeline, seed: u64, records: u64) -> Offline {
    let model = pipeline.model();
    let expected = dataset::synthetic_records(seed, 0.7, 0, records)
        .filter(|tx| model.predict(&tx.features).unwrap_or(false))
        .map(|tx| tx.id.to_string())
        .collect();
    Offline {
        expected,
        rows: HashMap::new(),
    }
}

/// The per-key stream's expectation. Fits a per-key model (on payments of another seed) over
/// the pipeline's model file, creates the group's changelog, and computes every record's row
/// from the records the generator will send (`--print`, same arguments): the generator's
/// producer is idempotent and keys by card, so each card's records reach their partition in
/// this order, and a key's state depends on its own records only.
pub(crate) fn per_key(
    pipeline: &Pipeline,
    group: &str,
    seed: u64,
    records: u64,
    dir: &Path,
) -> Offline {
    let training = dir.join("per-key-training.jsonl");
    print_payments(seed + 1_000, 20_000, &training);
    run_ok(
        Command::new(workspace_bin("trainer"))
            .args(["fit", "--jsonl"])
            .arg(&training)
            .args(["--features", PER_KEY_FEATURES])
            .args(["--key-field", "card", "--time-field", "ts"])
            .args(["--label-field", "label", "--contamination", "0.02"])
            .arg("--out")
            .arg(&pipeline.model_path),
    );
    run_ok(
        Command::new(workspace_bin("inspector"))
            .args(["create-topics", "--state-for", group])
            .args(["--input-topic", &pipeline.transactions]),
    );
    let stream = dir.join("per-key-stream.jsonl");
    print_payments(seed, records, &stream);
    let model = pipeline.model();
    let named = features::Features::from_model(&model)
        .ok()
        .and_then(|features| features.named().cloned())
        .expect("the per-key model reads named features");
    let mut store = StateStore::new(&named);
    let mut expected = BTreeSet::new();
    let mut rows = HashMap::new();
    let text = std::fs::read_to_string(&stream).expect("the stream's records");
    for (line, record) in text.lines().enumerate() {
        let mut row = Vec::new();
        let Ok(applied) = store.read(
            &named,
            record.as_bytes(),
            RecordMeta::at(line as i64),
            &mut row,
        ) else {
            continue;
        };
        let id = applied
            .id
            .map(|id| id.to_string())
            .expect("payments have ids");
        if model.predict(&row).unwrap_or(false) {
            expected.insert(id.clone());
        }
        rows.insert(id, row);
    }
    Offline { expected, rows }
}

/// `generator --scenario payments --key-field card --print` into `out`.
fn print_payments(seed: u64, count: u64, out: &Path) {
    let output = run_ok(
        Command::new(workspace_bin("generator"))
            .args(Stream::PerKey.generator_args())
            .args(["--count", &count.to_string()])
            .args(["--seed", &seed.to_string(), "--first-id", "0", "--print"]),
    );
    std::fs::write(out, &output.stdout).expect("payments file");
}
