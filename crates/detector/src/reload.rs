//! Hot reload of the model: when asked through a [`ReloadTrigger`] (the binary sets it on
//! SIGHUP), or when the model file is replaced (the trainer replaces it atomically), the new
//! file is loaded and validated; a valid model is swapped in between two batches, so no record
//! is dropped or scored twice, and an invalid one is refused while the old one stays in use.
//! No signal handler is installed here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::scoring::{Model, Scorer};

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode: metadata.ino(),
    })
}

/// A request to reload the model, made from outside the run (the binary makes one on
/// SIGHUP); cheap to clone, every clone is the same request flag.
#[derive(Debug, Clone, Default)]
pub struct ReloadTrigger(Arc<AtomicBool>);

impl ReloadTrigger {
    /// A trigger nobody has pulled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for a reload before the next batch.
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// The flag itself, for code that sets it directly (such as `signal_hook::flag::register`,
    /// which may only store into an `AtomicBool` from a signal handler).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// Whether a reload was asked for since the last call.
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Watches the model file and the reload trigger.
pub struct ModelWatcher {
    /// None: the model was handed over in memory, there is no file to read again.
    path: Option<PathBuf>,
    seen: Option<Fingerprint>,
    requested: ReloadTrigger,
    last_check: Instant,
}

/// How often the file's metadata is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl ModelWatcher {
    /// Watches `path` (as loaded now), if there is one, and `requested`.
    pub fn new(path: Option<&Path>, requested: ReloadTrigger) -> Self {
        Self {
            path: path.map(Path::to_path_buf),
            seen: path.and_then(fingerprint),
            requested,
            last_check: Instant::now(),
        }
    }

    /// Called between batches: reloads when asked or when the file changed, and swaps a valid
    /// new model into `scorer`. Returns true when the model changed.
    pub fn poll(&mut self, scorer: &mut Scorer) -> bool {
        let signalled = self.requested.take();
        let Some(path) = &self.path else {
            if signalled {
                log::warn!("reload requested, but the model was not read from a file");
            }
            return false;
        };
        if !signalled && self.last_check.elapsed() < CHECK_EVERY {
            return false;
        }
        self.last_check = Instant::now();
        let now = fingerprint(path);
        if !signalled && now == self.seen {
            return false;
        }
        self.seen = now;
        let reason = if signalled {
            "reload requested"
        } else {
            "the model file changed"
        };
        match Model::load(path) {
            Ok(model) if model.id == scorer.model().id => {
                log::info!("{reason}: model {} is already in use", model.id);
                false
            }
            Ok(model) => {
                swap(scorer, model, reason);
                true
            }
            Err(error) => {
                log::error!(
                    "{reason}: new model refused, keeping {}: {:#}",
                    scorer.model().id,
                    anyhow::Error::new(error)
                );
                false
            }
        }
    }
}

fn swap(scorer: &mut Scorer, model: Model, reason: &str) {
    let (new, old) = (&model.forest, &scorer.model().forest);
    let data = |model: &Model| matches!(model.features(), features::Features::Data);
    if data(&model) && data(scorer.model()) && new.n_features() != old.n_features() {
        log::warn!(
            "the new model takes {} features, the old one {}: records of the old width will be dead letters",
            new.n_features(),
            old.n_features()
        );
    }
    let old = scorer.replace_model(model);
    let model = scorer.model();
    log::info!(
        "{reason}: model {} in use (was {}), threshold {:.4}; reads {}",
        model.id,
        old.id,
        model.forest.threshold(),
        model.describe_features()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use iforest::IsolationForestParams;
    use schema::DecodeLimits;

    #[test]
    fn a_pulled_trigger_reloads_the_file_before_the_next_batch() {
        let dir = std::env::temp_dir().join(format!("detector-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.bin");
        crate::scoring::tests::model().save(&path).unwrap();
        let mut scorer = Scorer::new(
            Model::load(&path).unwrap(),
            DecodeLimits::default(),
            "transactions",
        );
        let trigger = ReloadTrigger::new();
        let mut watcher = ModelWatcher::new(Some(&path), trigger.clone());
        let data: Vec<f64> = (0..200).map(|i| f64::from(i % 17)).collect();
        let other = IsolationForestParams::new().seed(99).fit(&data, 2).unwrap();
        other.save(&path).unwrap();
        trigger.request();
        assert!(watcher.poll(&mut scorer), "the trigger reloads at once");
        assert_eq!(scorer.model().id, Model::load(&path).unwrap().id);
        assert!(!trigger.take(), "the request was used up");
        // A model handed over in memory has no file: a request changes nothing.
        let mut without_file = ModelWatcher::new(None, trigger.clone());
        trigger.request();
        assert!(!without_file.poll(&mut scorer));
    }
}
