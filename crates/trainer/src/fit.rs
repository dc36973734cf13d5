//! `trainer fit` (but `--follow`): training data from a source, the features it names, the
//! forest, and the model file.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dataset::{CsvSelection, Table};
use features::{FeatureParams, FeatureSpec, FieldPath, NamedFeatures, Span};
use iforest::{Contamination, IsolationForest, IsolationForestParams, SplitRule};
use schema::{DecodeLimits, Transaction};

use crate::cli::{FeatureArgs, FitArgs, ParamArgs};
use crate::records::{self, LeftOut, Origin, Record};
use crate::{model, topic};

/// The original pipeline's hyper-parameters, used for its synthetic data.
const SYNTHETIC_TREES: usize = 50;
const SYNTHETIC_SAMPLE_SIZE: usize = 500;
const SYNTHETIC_CONTAMINATION: f64 = 0.01;

/// The named features `--features` asks for, checked (`None`: the `data` array).
pub fn feature_spec(args: &FeatureArgs) -> Result<Option<FeatureSpec>> {
    let Some(list) = &args.features else {
        return Ok(None);
    };
    let per_key = &args.per_key;
    let state_ttl = match per_key.state_ttl.as_str() {
        "never" => None,
        text => Some(Span::parse(text).context("--state-ttl")?),
    };
    let spec = FeatureParams::new(list.as_str())
        .missing(args.missing)
        .id_field(args.id_field.as_str())
        .key_field(per_key.key_field.clone())
        .time_field(per_key.time_field.clone())
        .half_life(per_key.half_life)
        .min_history(per_key.min_history)
        .max_window_records(per_key.max_window_records)
        .state_ttl(state_ttl)
        .check()
        .context("--features")?;
    if let Some(label) = &args.label_field {
        let label = records::label_field(label)?;
        if spec.reads(&label) {
            bail!("--label-field {label} is also a feature: a label is never a feature");
        }
    }
    Ok(Some(spec))
}

/// A fitted model, what it was fitted on, and what was left out.
struct Trained {
    model: IsolationForest,
    fit_time: Duration,
    /// The training rows, row-major.
    rows: Vec<f64>,
    left_out: LeftOut,
    /// (records labelled, those labelled 1), when a label field was given.
    labelled: Option<(usize, usize)>,
}

/// `trainer fit` without `--follow`.
pub fn fit(args: &FitArgs) -> Result<()> {
    let spec = feature_spec(&args.features)?;
    let Trained {
        model,
        fit_time,
        rows,
        left_out,
        labelled,
    } = match &spec {
        Some(spec) => fit_named(args, spec)?,
        None => fit_data(args)?,
    };
    let models_dir = model::models_dir(args.models_dir.as_deref(), &args.out);
    let id = model::save(&model, &args.out, &models_dir)?;
    let flagged = model
        .score_batch(&rows)
        .context("cannot score the training rows")?
        .iter()
        .filter(|&&score| score > model.threshold())
        .count();
    let n_rows = rows.len() / model.n_features();
    println!(
        "trainer: wrote {} (model {id}, {} trees, {} features, threshold {:.4}, fitted in \
         {:.1} ms; {flagged} of {n_rows} training rows above the threshold); kept as {}",
        args.out.display(),
        model.n_trees(),
        model.n_features(),
        model.threshold(),
        fit_time.as_secs_f64() * 1e3,
        models_dir.join(format!("{id}.bin")).display(),
    );
    if let Some(names) = model.feature_names() {
        println!("trainer: features {}", names.join(", "));
    }
    if left_out.total() > 0 {
        println!(
            "trainer: left out {} records that the detector would refuse: {left_out}",
            left_out.total()
        );
    }
    if let Some((labelled, anomalies)) = labelled {
        println!("trainer: {labelled} training records labelled, {anomalies} of them 1");
    }
    Ok(())
}

/// Fits a forest on row-major `data`, timing it.
fn fit_forest(
    params: IsolationForestParams,
    data: &[f64],
    width: usize,
) -> Result<(IsolationForest, Duration)> {
    log::info!(
        "fitting on {} rows × {width} features",
        data.len() / width.max(1)
    );
    let spinner = crate::spinner("fitting");
    let started = Instant::now();
    let model = params.fit(data, width).context("cannot fit the model")?;
    spinner.finish_and_clear();
    Ok((model, started.elapsed()))
}

/// Records carrying `data` arrays (or a table, or the synthetic clusters).
fn fit_data(args: &FitArgs) -> Result<Trained> {
    let source = &args.source;
    let mut left_out = LeftOut::default();
    let mut labelled = None;
    let (table, synthetic) = if let Some(path) = &source.csv {
        let selection = CsvSelection {
            label_column: source.label_column.as_deref(),
            columns: source.columns.as_deref(),
        };
        (dataset::read_csv(path, &selection)?, false)
    } else if let Some(path) = &source.jsonl {
        let lines = dataset::read_jsonl(path)?;
        let label = args
            .features
            .label_field
            .as_deref()
            .map(records::label_field)
            .transpose()?;
        let (table, labels) = data_table(&lines, label.as_ref(), &mut left_out)?;
        labelled = labels;
        (table, false)
    } else if let Some(topic_name) = &source.topic {
        (
            topic::read_training_rows(&source.kafka.settings()?, topic_name, &read_limits(args))?,
            false,
        )
    } else {
        (dataset::synthetic_training_data(args.params.seed), true)
    };
    let params = build_params(&args.params, synthetic, table.feature_names.clone());
    if synthetic {
        log::info!("training on the original pipeline's synthetic clusters");
    }
    let (model, fit_time) = fit_forest(params, &table.data, table.n_features())?;
    Ok(Trained {
        model,
        fit_time,
        rows: table.data,
        left_out,
        labelled,
    })
}

/// The `data` rows of JSON-lines records, decoded as the detector decodes them; records that
/// do not decode, or have another width than the first, are left out.
fn data_table(
    lines: &[dataset::JsonLine],
    label: Option<&FieldPath>,
    left_out: &mut LeftOut,
) -> Result<(Table, Option<(usize, usize)>)> {
    let limits = DecodeLimits::default();
    let mut data = Vec::new();
    let mut width = None;
    let mut kept = 0;
    let mut labels = label.map(|_| (0usize, 0usize));
    for line in lines {
        let origin = Origin::Line(line.line);
        match Transaction::decode(line.text.as_bytes(), &limits) {
            Err(error) => left_out.add(error.reason(), origin, &error),
            Ok(transaction) => {
                let expected = *width.get_or_insert(transaction.features.len());
                if transaction.features.len() != expected {
                    let rejection = schema::Rejection::FeatureCount {
                        expected,
                        found: transaction.features.len(),
                    };
                    left_out.add(rejection.reason(), origin, &rejection);
                    continue;
                }
                data.extend_from_slice(&transaction.features);
                kept += 1;
                if let (Some(field), Some((labelled, ones))) = (label, labels.as_mut()) {
                    let value = records::label(&line.value, field)
                        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
                    if let Some(value) = value {
                        *labelled += 1;
                        *ones += usize::from(value);
                    }
                }
            }
        }
    }
    left_out.check_some_left(kept, "records with `data`")?;
    let width = width.unwrap_or_default();
    Ok((
        Table {
            feature_names: (0..width).map(|index| format!("f{index}")).collect(),
            data,
            labels: None,
        },
        labels,
    ))
}

/// JSON records read through named features.
fn fit_named(args: &FitArgs, spec: &FeatureSpec) -> Result<Trained> {
    let source = &args.source;
    let records: Vec<Record> = if let Some(path) = &source.csv {
        if let Some(column) = &source.label_column {
            if spec.reads(&FieldPath::parse(column).context("--label-column")?) {
                bail!("--label-column {column} is also a feature: a label is never a feature");
            }
        }
        records::csv_records(path, source.label_column.as_deref())?
    } else if let Some(path) = &source.jsonl {
        dataset::read_jsonl(path)?
            .into_iter()
            .map(Record::from)
            .collect()
    } else if let Some(topic_name) = &source.topic {
        topic::read_training_records(&source.kafka.settings()?, topic_name, &read_limits(args))?
            .into_iter()
            .map(|record| Record {
                origin: Origin::Message {
                    partition: record.partition,
                    offset: record.offset,
                },
                value: record.value,
                key: record.key,
                timestamp_ms: record.timestamp_ms,
            })
            .collect()
    } else {
        bail!("--features needs training records: --jsonl FILE, --csv FILE or --topic T");
    };
    if source.topic.is_none() {
        check_file_keys_and_times(spec, "records of a file")?;
    }
    let labelled = match args.features.label_field.as_deref() {
        Some(field) => Some(count_labels(&records, &records::label_field(field)?)?),
        None => None,
    };
    let (features, rows, left_out) = learn(spec, &records)?;
    let params = build_params(&args.params, false, features.names());
    let (model, fit_time) = fit_forest(params, &rows, features.len())?;
    Ok(Trained {
        model: model::with_features(model, &features),
        fit_time,
        rows,
        left_out,
        labelled,
    })
}

/// Learns the features from `records` and extracts the training rows. Per-key items read
/// each partition's records in the order given (a file's: line order), each key's history
/// as the detector reading that partition would.
pub fn learn(spec: &FeatureSpec, records: &[Record]) -> Result<(NamedFeatures, Vec<f64>, LeftOut)> {
    let fitted = spec
        .fit_records(records.iter().map(Record::training))
        .map_err(|error| match error {
            features::LearnError::NoUsableRecords {
                records: count,
                index,
                first,
            } => anyhow::anyhow!(
                "none of the {count} training records is usable; the first ({}): {}: {first}",
                records[index].origin,
                first.reason()
            ),
            other => anyhow::Error::new(other),
        })?;
    let mut left_out = LeftOut::default();
    for (index, error) in &fitted.rejected {
        left_out.add(error.reason(), records[*index].origin, error);
    }
    Ok((fitted.features, fitted.rows, left_out))
}

/// Refuses per-key items that key records by their Kafka key, or time them by their Kafka
/// timestamp, when `what` (records of a file) have neither.
pub fn check_file_keys_and_times(spec: &FeatureSpec, what: &str) -> Result<()> {
    if !spec.is_per_key() {
        return Ok(());
    }
    let settings = spec.per_key();
    if settings.key_field().is_none() {
        bail!(
            "per-key features key each record by its Kafka key, and {what} have none: name the \
             field that keys them (--key-field card)"
        );
    }
    if settings.time_field().is_none() && spec.needs_time() {
        bail!(
            "per-key features time each record by its Kafka timestamp, and {what} have none: \
             name the field holding their time (--time-field ts), or --state-ttl never without \
             count:WINDOW and since_last"
        );
    }
    Ok(())
}

/// (labelled records, those labelled 1).
fn count_labels(records: &[Record], field: &FieldPath) -> Result<(usize, usize)> {
    let mut counts = (0, 0);
    for record in records {
        if let Some(label) = records::label(&record.value, field)
            .map_err(|e| anyhow::anyhow!("{}: {e}", record.origin))?
        {
            counts.0 += 1;
            counts.1 += usize::from(label);
        }
    }
    Ok(counts)
}

fn read_limits(args: &FitArgs) -> topic::ReadLimits {
    topic::ReadLimits {
        max_records: args.source.max_records,
        timeout: Duration::from_secs_f64(args.source.topic_timeout.max(0.0)),
    }
}

/// The hyper-parameters asked for; unset ones default to the library's, or to the original
/// pipeline's for its synthetic data.
pub fn build_params(
    args: &ParamArgs,
    synthetic: bool,
    names: Vec<String>,
) -> IsolationForestParams {
    let (default_trees, default_samples, default_contamination) = if synthetic {
        (
            SYNTHETIC_TREES,
            SYNTHETIC_SAMPLE_SIZE,
            Contamination::Fraction(SYNTHETIC_CONTAMINATION),
        )
    } else {
        (100, 256, Contamination::Auto)
    };
    let split = match args.split {
        SplitRule::Extended { .. } => SplitRule::Extended {
            extension_level: args.extension_level,
        },
        axis => axis,
    };
    let params = IsolationForestParams::new();
    let params = match args.range_check {
        Some(range_check) => params.range_check(range_check),
        None => params,
    };
    params
        .n_trees(args.trees.unwrap_or(default_trees))
        .sample_size(args.sample_size.unwrap_or(default_samples))
        .max_depth(args.max_depth)
        .contamination(args.contamination.unwrap_or(default_contamination))
        .seed(args.seed)
        .split_rule(split)
        .threads(args.threads)
        .feature_names(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_args() -> ParamArgs {
        ParamArgs {
            trees: None,
            sample_size: None,
            max_depth: None,
            contamination: None,
            seed: 42,
            split: SplitRule::Axis,
            extension_level: None,
            range_check: None,
            threads: 1,
        }
    }

    #[test]
    fn synthetic_defaults_are_the_original_pipelines() {
        let params = build_params(&param_args(), true, vec![]).check().unwrap();
        assert_eq!(params.n_trees(), 50);
        assert_eq!(params.sample_size(), 500);
        assert_eq!(params.contamination(), Contamination::Fraction(0.01));
        let params = build_params(&param_args(), false, vec![]).check().unwrap();
        assert_eq!((params.n_trees(), params.sample_size()), (100, 256));
        assert_eq!(params.range_check(), iforest::RangeCheck::default());
        let off = ParamArgs {
            range_check: Some(iforest::RangeCheck::Off),
            ..param_args()
        };
        let params = build_params(&off, false, vec![]).check().unwrap();
        assert_eq!(params.range_check(), iforest::RangeCheck::Off);
    }

    #[test]
    fn a_label_field_is_never_a_feature() {
        let args = FeatureArgs {
            features: Some("amount,label".into()),
            missing: features::Missing::DeadLetter,
            id_field: "id".into(),
            label_field: Some("/label".into()),
            per_key: Default::default(),
        };
        let error = feature_spec(&args).unwrap_err().to_string();
        assert!(
            error.contains("--label-field /label is also a feature"),
            "{error}"
        );
        let fine = FeatureArgs {
            features: Some("amount".into()),
            ..args
        };
        assert_eq!(feature_spec(&fine).unwrap().unwrap().names(), ["amount"]);
    }

    #[test]
    fn per_key_flags_make_the_specification() {
        let args = FeatureArgs {
            features: Some("amount:log:zscore,count:10m".into()),
            missing: features::Missing::DeadLetter,
            id_field: "id".into(),
            label_field: None,
            per_key: crate::cli::PerKeyArgs {
                key_field: Some("card".into()),
                time_field: Some("/meta/ts".into()),
                half_life: 7.5,
                min_history: 9,
                max_window_records: 64,
                state_ttl: "never".into(),
            },
        };
        let spec = feature_spec(&args).unwrap().unwrap();
        let settings = spec.per_key();
        assert_eq!(
            (
                settings.key_field().map(ToString::to_string),
                settings.time_field().map(ToString::to_string),
                settings.half_life(),
                settings.min_history(),
                settings.max_window_records(),
                settings.state_ttl(),
            ),
            (
                Some("card".into()),
                Some("/meta/ts".into()),
                7.5,
                9,
                64,
                None
            )
        );
        assert!(check_file_keys_and_times(&spec, "records of a file").is_ok());
        let mut kafka = args.clone();
        kafka.per_key.key_field = None;
        let spec = feature_spec(&kafka).unwrap().unwrap();
        let error = check_file_keys_and_times(&spec, "records of a file").unwrap_err();
        assert!(error.to_string().contains("--key-field"), "{error}");
        let mut ttl = args.clone();
        ttl.per_key.state_ttl = "7 days".into();
        let error = format!("{:#}", feature_spec(&ttl).unwrap_err());
        assert!(
            error.contains("--state-ttl") && error.contains("\"7 days\""),
            "{error}"
        );
        let mut label = args;
        label.label_field = Some("card".into());
        let error = feature_spec(&label).unwrap_err().to_string();
        assert!(
            error.contains("also a feature"),
            "the key field is read: {error}"
        );
    }
}
