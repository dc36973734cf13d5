//! `trainer score` and `trainer eval`: verdicts offline, computed as the detector computes
//! them (the same decoding for `data` records, the same extraction for named features, the
//! same forest), and measured against labels.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use dataset::{Confusion, CsvSelection, JsonLine, Table};
use features::{Features, FieldPath, RecordMeta, StateStore};
use iforest::{Direction, IsolationForest};
use schema::{DecodeLimits, RecordId, Rejection, Transaction};

use crate::cli::{EvalArgs, ScoreArgs};
use crate::records;

/// Rows scored per progress-bar step.
const SCORE_CHUNK_ROWS: usize = 16_384;

/// Loads a model and the features it reads.
fn load_model(path: &Path) -> Result<(IsolationForest, Features)> {
    let model = IsolationForest::load(path)
        .with_context(|| format!("cannot load the model {}", path.display()))?;
    let features = crate::model::features_of(&model)
        .with_context(|| format!("{} is not a usable model", path.display()))?;
    Ok((model, features))
}

/// Loads a model and the CSV columns it was trained on (by name when the model has names).
fn load_model_and_table(
    model_path: &Path,
    csv_path: &Path,
    label_column: Option<&str>,
) -> Result<(IsolationForest, Table)> {
    let (model, _) = load_model(model_path)?;
    let names: Option<Vec<String>> = model.feature_names().map(<[String]>::to_vec);
    let selection = CsvSelection {
        label_column,
        columns: names.as_deref(),
    };
    let table = dataset::read_csv(csv_path, &selection)?;
    model
        .check_feature_count(table.n_features())
        .with_context(|| format!("{} does not fit the model", csv_path.display()))?;
    Ok((model, table))
}

/// Scores every row with a progress bar.
fn score_rows(model: &IsolationForest, data: &[f64]) -> Result<Vec<f64>> {
    let width = model.n_features();
    let rows = data.len() / width;
    let bar = crate::progress_bar(rows as u64, "scoring");
    let mut scores = vec![0.0; rows];
    for (rows, out) in data
        .chunks(SCORE_CHUNK_ROWS * width)
        .zip(scores.chunks_mut(SCORE_CHUNK_ROWS))
    {
        model
            .score_batch_into(rows, out)
            .context("cannot score the records")?;
        bar.inc(out.len() as u64);
    }
    bar.finish_and_clear();
    Ok(scores)
}

/// `trainer score`.
pub fn score(args: &ScoreArgs) -> Result<()> {
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if let Some(csv) = &args.input.csv {
        let (model, table) = load_model_and_table(&args.model, csv, args.label_column.as_deref())?;
        let scores = score_rows(&model, &table.data)?;
        write_scores(
            &mut out,
            &scores,
            model.threshold(),
            table.labels.as_deref(),
        )
        .and_then(|()| out.flush())
        .context("cannot write the scores")?;
        return Ok(());
    }
    let (model, features) = load_model(&args.model)?;
    let path = args.input.jsonl.as_deref().context("--csv or --jsonl")?;
    let lines = dataset::read_jsonl(path)?;
    let label = args
        .label_field
        .as_deref()
        .map(records::label_field)
        .transpose()?;
    let extras = Extras {
        explain: args.explain,
        rows: args.rows,
    };
    let verdicts = judge(&model, &features, &lines, label.as_ref(), None, extras)?;
    write_verdicts(&mut out, &verdicts, model.threshold(), extras)
        .and_then(|()| out.flush())
        .context("cannot write the scores")?;
    let refused = verdicts.iter().filter(|v| v.outcome.is_err()).count();
    if refused > 0 {
        eprintln!(
            "trainer: {refused} of {} records would go to the dead-letter topic",
            verdicts.len()
        );
    }
    Ok(())
}

/// Writes `row,score,anomaly[,label]`, one line per row in input order.
pub fn write_scores(
    out: &mut dyn Write,
    scores: &[f64],
    threshold: f64,
    labels: Option<&[u8]>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "row,score,anomaly{}",
        if labels.is_some() { ",label" } else { "" }
    )?;
    for (row, &score) in scores.iter().enumerate() {
        let anomaly = u8::from(score > threshold);
        match labels {
            Some(labels) => writeln!(out, "{row},{score},{anomaly},{}", labels[row])?,
            None => writeln!(out, "{row},{score},{anomaly}")?,
        }
    }
    Ok(())
}

/// A scored record's largest contributor.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    /// The feature's name.
    pub feature: String,
    /// Whether its value was unusually high or low.
    pub direction: Direction,
    /// Its share of the isolation.
    pub share: f64,
}

/// What a verdict carries besides the score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// The largest contributor to the isolation.
    pub explain: bool,
    /// The row of features the model scored.
    pub rows: bool,
}

/// What the detector would do with one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Its line.
    pub line: u64,
    /// Its id, when it has one.
    pub id: Option<RecordId>,
    /// Its score (and top contributor when asked), or why the detector would refuse it:
    /// (reason, detail), as the dead letter would carry them.
    pub outcome: Result<(f64, Option<Top>), (&'static str, String)>,
    /// Its label, when it has one.
    pub label: Option<u8>,
    /// Its group (the group field's value), when it has one.
    pub group: Option<String>,
    /// The row of features scored, when asked for and the record was scored.
    pub row: Option<Vec<f64>>,
}

/// Reads each record as the detector would and scores the usable ones.
pub fn judge(
    model: &IsolationForest,
    features: &Features,
    lines: &[JsonLine],
    label: Option<&FieldPath>,
    group: Option<&FieldPath>,
    extras: Extras,
) -> Result<Vec<Verdict>> {
    let limits = DecodeLimits::default();
    let width = model.n_features();
    let mut rows = Vec::with_capacity(lines.len() * width);
    let mut verdicts = Vec::with_capacity(lines.len());
    // Per-key features: the file is one partition, read in line order, as the detector
    // reads a partition in offset order.
    let mut store = match features {
        Features::Named(named) if named.is_per_key() => {
            crate::fit::check_file_keys_and_times(named.spec(), "records of a JSON-lines file")?;
            Some(StateStore::new(named))
        }
        _ => None,
    };
    for line in lines {
        let bytes = line.text.as_bytes();
        let read = match (features, store.as_mut()) {
            (Features::Named(named), Some(store)) => {
                let meta = RecordMeta::at(line.line as i64);
                match store.read(named, bytes, meta, &mut rows) {
                    Ok(applied) if !applied.replayed => Ok(applied.id),
                    // Line numbers only increase: no line is a replay of another.
                    Ok(_) => Err(("replayed", format!("line {} read twice", line.line))),
                    Err(e) => Err((e.reason(), e.to_string())),
                }
            }
            (Features::Named(named), None) => named
                .read(bytes, &mut rows)
                .map_err(|e| (e.reason(), e.to_string())),
            (Features::Data, _) => match Transaction::decode(bytes, &limits) {
                Ok(transaction) if transaction.features.len() == width => {
                    rows.extend_from_slice(&transaction.features);
                    Ok(Some(transaction.id))
                }
                Ok(transaction) => {
                    let rejection = Rejection::FeatureCount {
                        expected: width,
                        found: transaction.features.len(),
                    };
                    Err((rejection.reason(), rejection.to_string()))
                }
                Err(error) => Err((error.reason(), error.to_string())),
            },
        };
        let id = match &read {
            Ok(id) => id.clone(),
            // A refused record's id, if it can be told, to name it.
            Err(_) => match features {
                Features::Named(named) => named.record_id(&line.value).ok().flatten(),
                Features::Data => match line.value.get("id") {
                    Some(serde_json::Value::Number(n)) => n.as_i64().map(RecordId::Int),
                    Some(serde_json::Value::String(s)) => Some(RecordId::Str(s.clone())),
                    _ => None,
                },
            },
        };
        let label = match label {
            Some(field) => records::label(&line.value, field)
                .map_err(|e| anyhow::anyhow!("line {}: {e}", line.line))?,
            None => None,
        };
        let group = group
            .and_then(|field| field.lookup(&line.value))
            .map(|value| match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            });
        verdicts.push(Verdict {
            line: line.line,
            id,
            outcome: read.map(|_| (f64::NAN, None)),
            label,
            group,
            row: None,
        });
    }
    let scores = score_rows(model, &rows)?;
    let scored = verdicts
        .iter_mut()
        .filter_map(|v| Some((v.outcome.as_mut().ok()?, &mut v.row)));
    for (index, (((score, top), row_out), &value)) in scored.zip(&scores).enumerate() {
        *score = value;
        let row = &rows[index * width..(index + 1) * width];
        if extras.rows {
            *row_out = Some(row.to_vec());
        }
        if extras.explain {
            let explanation = model.explain(row).context("cannot explain a score")?;
            *top = explanation.contributions.first().map(|c| Top {
                feature: c.name.clone().unwrap_or_else(|| format!("#{}", c.feature)),
                direction: c.direction,
                share: c.share,
            });
        }
    }
    Ok(verdicts)
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break.
fn cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Writes `line,id,score,anomaly,label,reason[,top_feature,direction,share][,features]`, one
/// line per record in input order; a refused record has no score and names its reason. The
/// features are the row as a JSON array whose numbers read back bit for bit.
pub fn write_verdicts(
    out: &mut dyn Write,
    verdicts: &[Verdict],
    threshold: f64,
    extras: Extras,
) -> std::io::Result<()> {
    let explain = extras.explain;
    write!(out, "line,id,score,anomaly,label,reason")?;
    if explain {
        write!(out, ",top_feature,direction,share")?;
    }
    writeln!(out, "{}", if extras.rows { ",features" } else { "" })?;
    for verdict in verdicts {
        let id = verdict
            .id
            .as_ref()
            .map_or(String::new(), |id| cell(&id.to_string()));
        let label = verdict
            .label
            .map_or(String::new(), |label| label.to_string());
        write!(out, "{},{id},", verdict.line)?;
        match &verdict.outcome {
            Ok((score, top)) => {
                write!(out, "{score},{},{label},", u8::from(*score > threshold))?;
                match (explain, top) {
                    (true, Some(top)) => write!(
                        out,
                        ",{},{},{:.4}",
                        cell(&top.feature),
                        top.direction,
                        top.share
                    )?,
                    (true, None) => write!(out, ",,,")?,
                    (false, _) => {}
                }
            }
            Err((reason, _)) => {
                write!(out, ",,{label},{reason}")?;
                write!(out, "{}", if explain { ",,," } else { "" })?;
            }
        }
        if extras.rows {
            // Finite numbers always serialise.
            let row = verdict.row.as_ref().map_or(String::new(), |row| {
                cell(&serde_json::to_string(row).unwrap_or_default())
            });
            write!(out, ",{row}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// What `eval` measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Rows scored.
    pub rows: usize,
    /// Rows labelled 1.
    pub labelled_anomalies: usize,
    /// ROC AUC (None with a single class).
    pub roc_auc: Option<f64>,
    /// Average precision (None without positives).
    pub average_precision: Option<f64>,
    /// Predictions at the model's threshold against the labels.
    pub confusion: Confusion,
    /// The model's threshold.
    pub threshold: f64,
}

/// Measures scores against labels at `threshold`.
pub fn evaluate(scores: &[f64], labels: &[u8], threshold: f64) -> Evaluation {
    let predicted: Vec<bool> = scores.iter().map(|&score| score > threshold).collect();
    Evaluation {
        rows: scores.len(),
        labelled_anomalies: labels.iter().filter(|&&label| label == 1).count(),
        roc_auc: dataset::roc_auc(scores, labels),
        average_precision: dataset::average_precision(scores, labels),
        confusion: Confusion::tally(&predicted, labels),
        threshold,
    }
}

impl Evaluation {
    fn json(&self) -> serde_json::Value {
        let c = &self.confusion;
        serde_json::json!({
            "rows": self.rows,
            "labelled_anomalies": self.labelled_anomalies,
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
            "threshold": self.threshold,
            "precision": c.precision(),
            "recall": c.recall(),
            "f1": c.f1(),
            "true_positives": c.true_positives,
            "false_positives": c.false_positives,
            "false_negatives": c.false_negatives,
            "true_negatives": c.true_negatives,
        })
    }

    fn print(&self) {
        let c = &self.confusion;
        let show =
            |value: Option<f64>| value.map_or("n/a (one class)".to_string(), |v| format!("{v:.4}"));
        println!("rows               {}", self.rows);
        println!("labelled anomalies {}", self.labelled_anomalies);
        println!("ROC AUC            {}", show(self.roc_auc));
        println!("average precision  {}", show(self.average_precision));
        println!("threshold          {:.4}", self.threshold);
        println!(
            "at the threshold   precision {:.4}  recall {:.4}  F1 {:.4}  (TP {} FP {} FN {} TN {})",
            c.precision(),
            c.recall(),
            c.f1(),
            c.true_positives,
            c.false_positives,
            c.false_negatives,
            c.true_negatives
        );
    }
}

/// One group's measures: its anomalies against every normal record, and how often each
/// feature was the largest contributor on its anomalies.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEvaluation {
    /// The measures.
    pub evaluation: Evaluation,
    /// Feature → anomalies of the group whose largest contributor it was.
    pub top_features: BTreeMap<String, usize>,
}

/// Measures each group of anomalies (records labelled 1 with a group) against all the normal
/// records (labelled 0).
pub fn evaluate_groups(verdicts: &[Verdict], threshold: f64) -> BTreeMap<String, GroupEvaluation> {
    let scored: Vec<(f64, u8, Option<&str>, Option<&Top>)> = verdicts
        .iter()
        .filter_map(|v| match (&v.outcome, v.label) {
            (Ok((score, top)), Some(label)) => {
                Some((*score, label, v.group.as_deref(), top.as_ref()))
            }
            _ => None,
        })
        .collect();
    let groups: std::collections::BTreeSet<&str> = scored
        .iter()
        .filter(|s| s.1 == 1)
        .filter_map(|s| s.2)
        .collect();
    groups
        .into_iter()
        .map(|group| {
            let members: Vec<&(f64, u8, Option<&str>, Option<&Top>)> = scored
                .iter()
                .filter(|s| s.1 == 0 || s.2 == Some(group))
                .collect();
            let scores: Vec<f64> = members.iter().map(|s| s.0).collect();
            let labels: Vec<u8> = members.iter().map(|s| s.1).collect();
            let mut top_features = BTreeMap::new();
            for member in members.iter().filter(|s| s.1 == 1) {
                if let Some(top) = member.3 {
                    *top_features.entry(top.feature.clone()).or_insert(0) += 1;
                }
            }
            (
                group.to_string(),
                GroupEvaluation {
                    evaluation: evaluate(&scores, &labels, threshold),
                    top_features,
                },
            )
        })
        .collect()
}

/// `trainer eval`.
pub fn eval(args: &EvalArgs) -> Result<()> {
    if let Some(csv) = &args.input.csv {
        let (model, table) = load_model_and_table(&args.model, csv, Some(&args.label_column))?;
        let scores = score_rows(&model, &table.data)?;
        let labels = table.labels.as_deref().unwrap_or_default();
        let evaluation = evaluate(&scores, labels, model.threshold());
        if args.json {
            println!("{}", evaluation.json());
        } else {
            evaluation.print();
        }
        return Ok(());
    }
    let (model, features) = load_model(&args.model)?;
    let path = args.input.jsonl.as_deref().context("--csv or --jsonl")?;
    let lines = dataset::read_jsonl(path)?;
    let label = records::label_field(&args.label_field)?;
    let group = args
        .group_field
        .as_deref()
        .map(records::label_field)
        .transpose()?;
    let extras = Extras {
        explain: group.is_some(),
        rows: false,
    };
    let verdicts = judge(
        &model,
        &features,
        &lines,
        Some(&label),
        group.as_ref(),
        extras,
    )?;
    anyhow::ensure!(
        args.warm_up < verdicts.len(),
        "--warm-up {} leaves none of the {} records to measure",
        args.warm_up,
        verdicts.len()
    );
    let verdicts = &verdicts[args.warm_up..];
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let (mut refused, mut unlabelled) = (0usize, 0usize);
    for verdict in verdicts {
        match (&verdict.outcome, verdict.label) {
            (Err(_), _) => refused += 1,
            (Ok(_), None) => unlabelled += 1,
            (Ok((score, _)), Some(label)) => {
                scores.push(*score);
                labels.push(label);
            }
        }
    }
    anyhow::ensure!(
        !scores.is_empty(),
        "no labelled record to evaluate ({refused} refused, {unlabelled} without `{}`)",
        args.label_field
    );
    let evaluation = evaluate(&scores, &labels, model.threshold());
    let groups = evaluate_groups(verdicts, model.threshold());
    if args.json {
        let mut json = evaluation.json();
        json["refused"] = refused.into();
        json["unlabelled"] = unlabelled.into();
        if group.is_some() {
            json["groups"] = groups
                .iter()
                .map(|(name, group)| {
                    let mut value = group.evaluation.json();
                    value["top_features"] = serde_json::json!(group.top_features);
                    (name.clone(), value)
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        println!("{json}");
        return Ok(());
    }
    evaluation.print();
    println!("left out           {refused} refused (dead letters), {unlabelled} without a label");
    for (name, group) in &groups {
        let e = &group.evaluation;
        let c = &e.confusion;
        let tops: Vec<String> = group
            .top_features
            .iter()
            .map(|(feature, count)| format!("{feature} {count}"))
            .collect();
        println!(
            "group {name:<12} {} anomalies  ROC AUC {}  precision {:.4}  recall {:.4}  F1 {:.4}  \
             top features: {}",
            e.labelled_anomalies,
            e.roc_auc.map_or("n/a".into(), |v| format!("{v:.4}")),
            c.precision(),
            c.recall(),
            c.f1(),
            tops.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_lines_keep_input_order_and_flag_above_the_threshold() {
        let mut out = Vec::new();
        write_scores(&mut out, &[0.4, 0.7, 0.5], 0.5, Some(&[0, 1, 1])).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "row,score,anomaly,label\n0,0.4,0,0\n1,0.7,1,1\n2,0.5,0,1\n"
        );
    }

    #[test]
    fn verdict_lines_name_refusals_and_quote_ids() {
        let verdicts = [
            Verdict {
                line: 1,
                id: Some(RecordId::Str("a,b".into())),
                outcome: Ok((0.7, None)),
                label: Some(1),
                group: None,
                row: None,
            },
            Verdict {
                line: 3,
                id: None,
                outcome: Err(("not_numeric", "amount is a string".into())),
                label: None,
                group: None,
                row: None,
            },
        ];
        let mut out = Vec::new();
        write_verdicts(&mut out, &verdicts, 0.5, Extras::default()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "line,id,score,anomaly,label,reason\n1,\"a,b\",0.7,1,1,\n3,,,,,not_numeric\n"
        );
    }

    #[test]
    fn rows_are_written_as_json_arrays_that_read_back_bit_for_bit() {
        let row = vec![0.1 + 0.2, -1e-300, 12.0];
        let verdicts = [
            Verdict {
                line: 1,
                id: None,
                outcome: Ok((0.25, None)),
                label: None,
                group: None,
                row: Some(row.clone()),
            },
            Verdict {
                line: 2,
                id: None,
                outcome: Err(("missing_key", "the key field card is missing".into())),
                label: None,
                group: None,
                row: None,
            },
        ];
        let mut out = Vec::new();
        let extras = Extras {
            explain: false,
            rows: true,
        };
        write_verdicts(&mut out, &verdicts, 0.5, extras).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "line,id,score,anomaly,label,reason,features");
        assert_eq!(lines[2], "2,,,,,missing_key,");
        let cell = lines[1].strip_prefix("1,,0.25,0,,,").unwrap();
        let json = cell.trim_matches('"').replace("\"\"", "\"");
        let read: Vec<f64> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            read.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            row.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn evaluation_at_the_threshold() {
        let evaluation = evaluate(&[0.9, 0.2, 0.6, 0.3], &[1, 0, 0, 1], 0.5);
        assert_eq!(evaluation.labelled_anomalies, 2);
        assert_eq!(evaluation.confusion.true_positives, 1);
        assert_eq!(evaluation.confusion.false_positives, 1);
        assert_eq!(evaluation.roc_auc, Some(0.75));
    }

    #[test]
    fn each_group_is_measured_against_all_the_normal_records() {
        let verdict = |score, label, group: Option<&str>, top: Option<&str>| Verdict {
            line: 0,
            id: None,
            outcome: Ok((
                score,
                top.map(|feature| Top {
                    feature: feature.into(),
                    direction: Direction::High,
                    share: 0.5,
                }),
            )),
            label: Some(label),
            group: group.map(str::to_string),
            row: None,
        };
        let verdicts = [
            verdict(0.9, 1, Some("amount"), Some("amount:log")),
            verdict(0.4, 1, Some("amount"), Some("ts:hour")),
            verdict(0.8, 1, Some("night"), Some("ts:hour")),
            verdict(0.6, 0, None, None),
            verdict(0.2, 0, None, None),
        ];
        let groups = evaluate_groups(&verdicts, 0.5);
        assert_eq!(groups.len(), 2);
        let amount = &groups["amount"];
        assert_eq!(
            amount.evaluation.rows, 4,
            "its 2 anomalies and the 2 normal records"
        );
        assert_eq!(amount.evaluation.confusion.true_positives, 1);
        assert_eq!(amount.evaluation.confusion.false_positives, 1);
        assert_eq!(amount.top_features["amount:log"], 1);
        assert_eq!(groups["night"].evaluation.confusion.recall(), 1.0);
    }
}
