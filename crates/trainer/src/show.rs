//! `trainer show`: a model file's header, its parameters, and the features it reads.

use anyhow::{Context, Result};
use features::{Features, Learned, PerKey};
use iforest::IsolationForest;

use crate::cli::ShowArgs;

/// Most categories listed per category feature.
const CATEGORIES_SHOWN: usize = 5;

/// `trainer show`.
pub fn show(args: &ShowArgs) -> Result<()> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let model = IsolationForest::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable model", args.model.display()))?;
    // A features entry that cannot be read does not hide the rest of the file: it is
    // reported (and the command fails) after the header.
    let features = crate::model::features_of(&model);
    let params = model.params();
    println!("model              {}", args.model.display());
    println!("id                 {}", iforest::model_id(&bytes));
    // The header: magic (8 bytes), then the format version (u32, little-endian); the file
    // loaded, so both are there.
    let version = bytes
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    println!("format version     {version}");
    println!("trees              {}", model.n_trees());
    println!(
        "sample size        {} (asked {})",
        model.sample_size(),
        params.sample_size()
    );
    println!(
        "max depth          {}",
        params
            .max_depth()
            .map_or("ceil(log2(sample size))".to_string(), |d| d.to_string())
    );
    println!("split rule         {:?}", params.split_rule());
    println!("range check        {}", params.range_check());
    println!("contamination      {}", params.contamination());
    println!("seed               {}", params.seed());
    println!("training rows      {}", model.training_rows());
    println!("threshold          {}", model.threshold());
    if let Ok(features) = &features {
        for line in describe_features(features) {
            println!("{line}");
        }
    }
    println!("features           {}", model.n_features());
    println!(
        "  {:<28} {:>12} {:>12} {:>12} {:>12}",
        "name", "min", "max", "mean", "std dev"
    );
    for (index, summary) in model.summary().iter().enumerate() {
        let name = model
            .feature_names()
            .and_then(|names| names.get(index).cloned())
            .unwrap_or_else(|| format!("#{index}"));
        println!(
            "  {:<28} {:>12.4} {:>12.4} {:>12.4} {:>12.4}",
            name, summary.min, summary.max, summary.mean, summary.std_dev
        );
    }
    features
        .map(|_| ())
        .with_context(|| format!("{} is not a usable model", args.model.display()))
}

/// What the model reads, one line each: the kind of input, then each named feature with what
/// it learned.
pub fn describe_features(features: &Features) -> Vec<String> {
    let Features::Named(named) = features else {
        return vec!["reads              the `data` array of each record".to_string()];
    };
    let mut lines = vec![format!(
        "reads              named features; missing fields: {}; id field: {}",
        named.spec().missing(),
        named.id_field()
    )];
    if named.is_per_key() {
        let settings = named.spec().per_key();
        let field = |field: Option<&features::FieldPath>, otherwise: &str| {
            field.map_or(otherwise.to_string(), |f| format!("field {f}"))
        };
        lines.push(format!(
            "per key            keyed by {}; timed by {}; half-life {} records; own moments \
             after {} values; at most {} times per key; forgotten after {}",
            field(settings.key_field(), "the Kafka key"),
            field(settings.time_field(), "the Kafka timestamp"),
            settings.half_life(),
            settings.min_history(),
            settings.max_window_records(),
            settings
                .state_ttl()
                .map_or("never".to_string(), |ttl| format!("{ttl} without a record")),
        ));
    }
    for (feature, learned) in named.features().iter().zip(named.learned()) {
        let kind = feature
            .per_key()
            .map_or(feature.transform().name(), |per_key| per_key.kind());
        let summary = match (learned, feature.per_key()) {
            (Learned::Median(median), None) => format!("median {median:.6}"),
            (Learned::Median(median), Some(PerKey::Delta | PerKey::SinceLast)) => {
                format!("median {median:.6} (a key's first record)")
            }
            (Learned::Median(median), Some(_)) => {
                format!("median {median:.6} (no value yet)")
            }
            (Learned::Moments { mean, std, median }, _) => format!(
                "training mean {mean:.6}, std {std:.6} (a young key's); median z-score \
                 {median:.6}"
            ),
            (Learned::Nothing, _) => "nothing learned (0 for a key's first record)".to_string(),
            (Learned::Categories(counts), _) => {
                let mut by_count: Vec<(&String, &u64)> = counts.counts().iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let shown: Vec<String> = by_count
                    .iter()
                    .take(CATEGORIES_SHOWN)
                    .map(|(key, &count)| {
                        format!(
                            "{key:?} {:.1}%",
                            100.0 * count as f64 / counts.total() as f64
                        )
                    })
                    .collect();
                let more = by_count.len().saturating_sub(CATEGORIES_SHOWN);
                let unseen = if feature.transform() == features::Transform::Rarity {
                    format!("; unseen {:.2} bits", counts.unseen_rarity())
                } else {
                    String::new()
                };
                format!(
                    "{} categories in {} values: {}{}{unseen}",
                    by_count.len(),
                    counts.total(),
                    shown.join(", "),
                    if more > 0 {
                        format!(", … {more} more")
                    } else {
                        String::new()
                    }
                )
            }
            // What a later build may learn.
            (_, _) => String::new(),
        };
        lines.push(format!("  {:<28} {kind:<10} {summary}", feature.name()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_features_are_listed_with_what_they_learned() {
        let records: Vec<_> = (0..8)
            .map(|i| json!({"amount": i, "mcc": (["a", "b", "c", "d", "e", "f", "a", "a"][i])}))
            .collect();
        let named = features::FeatureParams::new("amount:log,mcc:category")
            .check()
            .unwrap()
            .fit(&records)
            .unwrap()
            .features;
        let lines = describe_features(&Features::Named(named));
        assert!(
            lines[0].contains("missing fields: dead-letter; id field: id"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("amount:log") && lines[1].contains("median 1.497"),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("6 categories in 8 values: \"a\" 37.5%, \"b\" 12.5%")
                && lines[2].ends_with("… 1 more"),
            "{lines:?}"
        );
        assert!(describe_features(&Features::Data)[0].contains("`data`"));
    }

    #[test]
    fn per_key_settings_and_items_are_listed() {
        let records: Vec<_> = (0..40)
            .map(|i| json!({"card": i % 4, "amount": 10 + i % 9, "ts": 60_000 * i}))
            .collect();
        let named =
            features::FeatureParams::new("amount:log:zscore,amount:delta,count:10m,since_last")
                .key_field(Some("card".into()))
                .time_field(Some("ts".into()))
                .half_life(8.0)
                .check()
                .unwrap()
                .fit(&records)
                .unwrap()
                .features;
        let lines = describe_features(&Features::Named(named));
        assert!(
            lines[1].contains("keyed by field card; timed by field ts; half-life 8 records")
                && lines[1].contains("own moments after 5 values")
                && lines[1].contains("at most 1000 times per key; forgotten after 7d"),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("amount:log:zscore            zscore")
                && lines[2].contains("training mean"),
            "{lines:?}"
        );
        assert!(
            lines[3].contains("amount:delta") && lines[3].contains("a key's first record"),
            "{lines:?}"
        );
        assert!(
            lines[4].contains("count:10m") && lines[4].contains(" count "),
            "{lines:?}"
        );
        assert!(
            lines[5].contains("since_last") && lines[5].contains("median 240"),
            "{lines:?}"
        );
    }
}
