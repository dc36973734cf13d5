//! `trainer show`: a model file's header, its parameters, and the features it reads.

use anyhow::{Context, Result};
use features::{Features, Learned};
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
    for (feature, learned) in named.features().iter().zip(named.learned()) {
        let summary = match learned {
            Learned::Median(median) => format!("median {median:.6}"),
            Learned::Categories(counts) => {
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
            // Per-key items' stand-ins (training moments, nothing for a count).
            _ => String::new(),
        };
        lines.push(format!(
            "  {:<28} {:<9} {summary}",
            feature.name(),
            feature.transform().name()
        ));
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
}
