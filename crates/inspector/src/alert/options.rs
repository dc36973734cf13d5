//! `alert`'s flags, checked once into [`AlertOptions`].

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use iforest::IsolationForest;

use crate::cli::AlertArgs;

/// A checked `alert` configuration.
#[derive(Debug)]
pub struct AlertOptions {
    /// Webhook URL.
    pub webhook: String,
    /// Anomalies topic.
    pub topic: String,
    /// Read from the oldest anomaly.
    pub from_beginning: bool,
    /// Grouping window.
    pub group_window: Duration,
    /// Messages per minute.
    pub max_per_minute: u32,
    /// Time-out of one post.
    pub timeout: Duration,
    /// Tries per message (at least 1).
    pub tries: u32,
    /// First retry wait.
    pub backoff: Duration,
    /// Stop after this long.
    pub run_for: Option<Duration>,
    /// The model for explanations.
    pub model: Option<IsolationForest>,
}

fn seconds(flag: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag} must be a number of seconds, 0 or more, not {value}"))
}

impl AlertOptions {
    /// Checks the flags and loads the model; a missing or unreadable model is said once and
    /// the messages go without explanations.
    pub fn from_args(args: &AlertArgs) -> Result<Self> {
        if args.max_per_minute == 0 {
            bail!("--max-per-minute must be at least 1");
        }
        if args.tries == 0 {
            bail!("--tries must be at least 1");
        }
        if !(args.webhook.starts_with("http://") || args.webhook.starts_with("https://")) {
            bail!("--webhook must be an http:// or https:// URL");
        }
        let timeout = seconds("--timeout", args.timeout)?;
        if timeout.is_zero() {
            bail!("--timeout must be more than 0 seconds");
        }
        let model = match IsolationForest::load(&args.model) {
            Ok(model) => Some(model),
            Err(error) => {
                log::warn!(
                    "no model ({}: {error}): messages go without the top feature",
                    args.model.display()
                );
                None
            }
        };
        Ok(Self {
            webhook: args.webhook.clone(),
            topic: args.topic.clone(),
            from_beginning: args.from_beginning,
            group_window: seconds("--group-window", args.group_window)?,
            max_per_minute: args.max_per_minute,
            timeout,
            tries: args.tries,
            backoff: seconds("--backoff", args.backoff)?,
            run_for: args.seconds.map(|s| seconds("--seconds", s)).transpose()?,
            model,
        })
    }
}
