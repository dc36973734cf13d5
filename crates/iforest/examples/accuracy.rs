//! ROC AUC on every ODDS table: 100 trees, 256 samples, fitted and scored on all rows, mean
//! over seeds 0..5.
//!
//! `cargo run --release -p iforest --example accuracy -- [ODDS_DIR] [--extended] [--seeds N]
//! [--range-check on|off|both]`
//!
//! `ODDS_DIR` defaults to the environment variable of that name, else `bench/data/odds` in the
//! repository (`bench/fetch-data.sh` fetches the tables there); `--range-check` defaults to
//! the library's default. Prints `dataset rows features auc auc_sd` lines (tab-separated after
//! a header), `auc_sd` being the standard deviation of the per-seed AUCs.
//!
//! `--range-check both` scores each seed's forest without and with the check (the same trees)
//! and prints `dataset rows features auc_off sd_off auc_on sd_on diff diff_sd`: the means, the
//! per-seed spreads, the mean of the per-seed differences (on − off) and their spread.

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
    let mut checks = vec![RangeCheck::default()];
    if let Some(at) = args.iter().position(|a| a == "--range-check") {
        let mode = args
            .get(at + 1)
            .ok_or("--range-check needs on, off or both")?;
        checks = match mode.as_str() {
            "both" => vec![RangeCheck::Off, RangeCheck::On],
            one => vec![one.parse()?],
        };
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
    if checks.len() == 1 {
        println!("dataset\trows\tfeatures\tauc\tauc_sd");
    } else {
        println!("dataset\trows\tfeatures\tauc_off\tsd_off\tauc_on\tsd_on\tdiff\tdiff_sd");
    }
    for path in paths {
        let table = common::read_table(&path)?;
        // Per mode, the AUC of each seed.
        let mut aucs = vec![Vec::new(); checks.len()];
        for seed in 0..seeds {
            for (aucs, &check) in aucs.iter_mut().zip(&checks) {
                let model = IsolationForestParams::new()
                    .n_trees(100)
                    .sample_size(256)
                    .seed(seed)
                    .split_rule(rule)
                    .range_check(check)
                    .fit(&table.data, table.n_features)?;
                let scores = model.score_batch(&table.data)?;
                aucs.push(common::roc_auc(&scores, &table.labels));
            }
        }
        let mut columns: Vec<String> = aucs
            .iter()
            .flat_map(|aucs| {
                let (mean, sd) = mean_and_sd(aucs);
                [format!("{mean:.4}"), format!("{sd:.4}")]
            })
            .collect();
        if let [off, on] = &aucs[..] {
            let differences: Vec<f64> = on.iter().zip(off).map(|(on, off)| on - off).collect();
            let (mean, sd) = mean_and_sd(&differences);
            columns.extend([format!("{mean:+.4}"), format!("{sd:.4}")]);
        }
        println!(
            "{}\t{}\t{}\t{}",
            table.name,
            table.rows(),
            table.n_features,
            columns.join("\t")
        );
    }
    Ok(())
}

/// The mean and the (sample) standard deviation.
fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance =
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len().max(2) - 1) as f64;
    (mean, variance.sqrt())
}
