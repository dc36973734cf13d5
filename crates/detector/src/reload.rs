//! Hot reload of the model: on SIGHUP, or when the model file is replaced (the trainer
//! replaces it atomically), the new file is loaded and validated; a valid model is swapped in
//! between two batches, so no record is dropped or scored twice, and an invalid one is refused
//! while the old one stays in use.

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

/// Watches the model file and SIGHUP.
pub struct ModelWatcher {
    path: PathBuf,
    seen: Option<Fingerprint>,
    requested: Arc<AtomicBool>,
    last_check: Instant,
}

/// How often the file's metadata is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl ModelWatcher {
    /// Watches `path` (as loaded now) and listens for SIGHUP.
    pub fn new(path: &Path) -> Self {
        let requested = Arc::new(AtomicBool::new(false));
        if let Err(error) =
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&requested))
        {
            log::warn!(
                "cannot listen for SIGHUP ({error}); the model reloads only when its file changes"
            );
        }
        Self {
            path: path.to_path_buf(),
            seen: fingerprint(path),
            requested,
            last_check: Instant::now(),
        }
    }

    /// Called between batches: reloads when asked or when the file changed, and swaps a valid
    /// new model into `scorer`. Returns true when the model changed.
    pub fn poll(&mut self, scorer: &mut Scorer) -> bool {
        let signalled = self.requested.swap(false, Ordering::Relaxed);
        if !signalled && self.last_check.elapsed() < CHECK_EVERY {
            return false;
        }
        self.last_check = Instant::now();
        let now = fingerprint(&self.path);
        if !signalled && now == self.seen {
            return false;
        }
        self.seen = now;
        let reason = if signalled {
            "SIGHUP"
        } else {
            "the model file changed"
        };
        match Model::load(&self.path) {
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
                    "{reason}: new model refused, keeping {}: {error:#}",
                    scorer.model().id
                );
                false
            }
        }
    }
}

fn swap(scorer: &mut Scorer, model: Model, reason: &str) {
    let (new, old) = (&model.forest, &scorer.model().forest);
    if new.n_features() != old.n_features() {
        log::warn!(
            "the new model takes {} features, the old one {}: records of the old width will be dead letters",
            new.n_features(),
            old.n_features()
        );
    }
    let old = scorer.replace_model(model);
    log::info!(
        "{reason}: model {} in use (was {}), threshold {:.4}",
        scorer.model().id,
        old.id,
        scorer.model().forest.threshold()
    );
}
