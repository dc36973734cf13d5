//! ROC AUC on every ODDS table: 100 trees, 256 samples, fitted and scored on all rows, mean
//! over seeds 0..5.
//!
//! `cargo run --release -p iforest --example accuracy -- [ODDS_DIR] [--extended] [--seeds N]
//! [--range-check on|off]`
//!
//! `ODDS_DIR` defaults to the environment variable of that name, else `bench/data/odds` in the
//! repository (`bench/fetch-data.sh` fetches the tables there); `--range-check` defaults to
//! the library's default. Prints `dataset rows features auc auc_sd` lines (tab-separated after
//! a header), `auc_sd` being the standard deviation of the per-seed AUCs.

#[allow(dead_code)]
mod common;

use iforest::{IsolationForestParams, RangeCheck, SplitRule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let extended = args.iter().any(|a| a == "--extended");
    args.retain(|a| a != "--extended");
    let mut seeds = 5u64;
    if let Some(at) = args.iter().position(|a| a == "--seeds") {
        seeds = args.get(at + 1).ok_or("--seeds needs a number")?.parse()?;
        args.drain(at..at + 2);
    }
    let mut range_check = RangeCheck::default();
    if let Some(at) = args.iter().position(|a| a == "--range-check") {
        range_check = args
            .get(at + 1)
            .ok_or("--range-check needs on or off")?
            .parse()?;
        args.drain(at..at + 2);
    }
    let dir = common::odds_dir(args.into_iter().next());
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| {
            format!(
                "{}: {e} (bench/fetch-data.sh fetches the tables)",
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "csv"))
        .collect();
    paths.sort();
    let rule = if extended {
        SplitRule::Extended {
            extension_level: None,
        }
    } else {
        SplitRule::Axis
    };
    println!("dataset\trows\tfeatures\tauc\tauc_sd");
    for path in paths {
        let table = common::read_table(&path)?;
        let mut aucs = Vec::new();
        for seed in 0..seeds {
            let model = IsolationForestParams::new()
                .n_trees(100)
                .sample_size(256)
                .seed(seed)
                .split_rule(rule)
                .range_check(range_check)
                .fit(&table.data, table.n_features)?;
            let scores = model.score_batch(&table.data)?;
            aucs.push(common::roc_auc(&scores, &table.labels));
        }
        let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
        let variance = aucs.iter().map(|auc| (auc - mean).powi(2)).sum::<f64>()
            / (aucs.len().max(2) - 1) as f64;
        println!(
            "{}\t{}\t{}\t{:.4}\t{:.4}",
            table.name,
            table.rows(),
            table.n_features,
            mean,
            variance.sqrt()
        );
    }
    Ok(())
}
