//! A fast, deterministic Isolation Forest (Liu, Ting & Zhou 2008), with the Extended
//! Isolation Forest (Hariri, Kind & Brunner 2019) as an option, per-feature explanations, and a
//! checked model file. No I/O beyond that file; no Kafka.
//!
//! Anomalies are few and different, so random splits isolate them in few steps. Each tree is
//! grown on a random sample of `ψ` rows (default 256) until every sample is alone or the depth
//! limit `ceil(log2 ψ)` is reached; a point's score is
//! `s(x, ψ) = 2^(−E[h(x)] / c(ψ))`, where `h(x)` is the depth at which it lands (plus `c(n)`
//! for a leaf still holding `n > 1` samples) and `c(n) = 2H(n−1) − 2(n−1)/n` the average path
//! length of an unsuccessful binary-search-tree lookup ([`average_path_length`]). Scores lie in
//! (0, 1]; higher is more anomalous; the threshold is 0.5 (`Contamination::Auto`) or a
//! quantile of the training scores (`Contamination::Fraction(q)`), as in scikit-learn.
//!
//! ```
//! use iforest::{Contamination, IsolationForest, IsolationForestParams};
//!
//! // Two tight clusters, around (2, 2) and (−2, −2).
//! let rows: Vec<[f64; 2]> = (0..500)
//!     .map(|i| {
//!         let jitter = |step: f64| ((i as f64 * step).fract() - 0.5) * 0.6;
//!         let centre = if i % 2 == 0 { 2.0 } else { -2.0 };
//!         [centre + jitter(0.618), centre + jitter(0.414)]
//!     })
//!     .collect();
//! let model = IsolationForestParams::new()
//!     .n_trees(100)
//!     .contamination(Contamination::Fraction(0.01))
//!     .seed(7)
//!     .fit_rows(&rows)?;
//!
//! let path = std::env::temp_dir().join(format!("iforest-doc-{}.bin", std::process::id()));
//! model.save(&path)?;
//! let model = IsolationForest::load(&path)?;
//! # std::fs::remove_file(&path).ok();
//!
//! assert!(model.predict(&[3.9, -3.9])?);           // far from both clusters
//! assert!(!model.predict(&[2.0, 2.0])?);           // inside one
//! let scores = model.score_batch(&[2.0, 2.0, 3.9, -3.9])?;  // many rows at once
//! assert!(scores[1] > scores[0]);
//! let why = model.explain(&[2.0, 9.0])?;           // an unusually high second feature
//! assert_eq!(why.contributions[0].feature, 1);
//! assert_eq!(why.contributions[0].direction, iforest::Direction::High);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//! One job per module; `A → B` means A uses B, and nothing points back (no cycles):
//!
//! ```text
//! fit     → model, arena, params, summary     (fitting makes models)
//! file    → model, arena, params, summary     (the format reads and writes them)
//! explain → model, arena
//! model   → kernel, arena, params, summary
//! kernel  → arena
//! arena, params, summary: no other module     (every module may use error)
//! ```
//!
//! - `params`: [`IsolationForestParams`] (by-value setters) → `check()` → [`ValidParams`]
//!   (getters), as in linfa; one [`ParamsError`] variant per rule. Defaults are listed once,
//!   on [`IsolationForestParams::new`].
//! - `summary`: [`FeatureSummary`] and [`summarise`], the per-feature statistics a model
//!   keeps of its training data (for drift checks).
//! - `arena`: the trees as stored: all trees' nodes in one flat `Vec` of 16-byte nodes
//!   (feature, left child, split) with adjacent children and `u32` indices; a leaf stores its
//!   depth + c(size), so scoring only adds. Its structural validation, and the reference
//!   walk.
//! - `fit`: `fit` on the parameters: checks the data and grows the trees depth-first with an
//!   explicit stack, in a build-time representation of their own, then joins them into an
//!   arena.
//! - `kernel` (and `kernel::avx512`): the scoring layout, derived from the arena at fit and
//!   load time (never stored): each axis-parallel tree re-laid as a complete tree of the
//!   forest's depth, eight trees interleaved, so a step is `i = 2i + 1 + (x[f] >= t)`. With
//!   AVX-512 (detected at run time) one vector walks eight trees, the row's values in
//!   registers; a portable walk gives bit-identical scores elsewhere. All of the crate's
//!   `unsafe` is here. Extended forests, and depth limits above 12, walk the arena.
//! - `model`: [`IsolationForest`]: what a fitted model knows, and scoring.
//! - `explain`: [`Explanation`], the per-feature share of a point's isolation.
//! - `file`: the model file (magic, version, length, bincode body, checksum), [`model_id`];
//!   writes format version 2, reads 1 and 2.
//!
//! # Range-aware isolation
//! With [`RangeCheck::On`], each split also keeps the range of its split value among its
//! training samples, and a row too far outside it ends its path at that split: an unseen
//! category, an hour never seen or an amount far past the largest is isolated at once
//! instead of with the training extreme (the rule is on [`RangeCheck`]). The trees are the
//! same either way; a model stores its mode.
//!
//! # Metadata
//! A model carries a string map ([`IsolationForest::metadata`],
//! [`IsolationForest::with_metadata`]) saved in its file, for what callers keep beside the
//! forest, such as the specification of named features as JSON under `"features"`.
//!
//! # Performance
//! One thread, 100 trees × 256 samples, on a 2.6 GHz Xeon with AVX-512 (`bench/iforest.sh`
//! in the repository prints these beside scikit-learn's, measured in the same run): batch
//! scoring ≈ 0.31 µs per row for 2 to 9 features (≈ 0.5 µs for 36), one row ≈ 0.6 µs, a fit
//! 2–5 ms; scikit-learn 1.9.1 takes 2.4–4.1 µs per row in a batch and ≈ 5 ms per single row.
//! Without AVX-512 (or with the environment variable `IFOREST_PORTABLE` set) batch scoring
//! takes ≈ 0.65 µs per row. The extended forest computes a dot product per step and is
//! several times slower. The range check ([`RangeCheck::On`]) makes the AVX-512 walk about
//! 1.15–1.3× as slow per batch row and the portable walk about 1.7–1.9× (the crate's README
//! has the measurements).
//!
//! # Determinism
//! Tree `t` draws from ChaCha8 seeded with the seed, on stream `t`: the same data and seed give
//! a bit-identical model (and file) for any number of threads, and ChaCha's output does not
//! change between crate versions. Scores add the trees' path lengths in one fixed order, so
//! they are bit-identical between single rows and batches, any number of threads, and the
//! SIMD and portable walks.
//!
//! # Errors
//! Nothing here panics on input: empty or ragged data, NaN or infinite values, rows of the
//! wrong length and damaged model files are typed errors ([`FitError`], [`ScoreError`],
//! [`ModelError`]).
#![deny(missing_docs)]
// `unsafe` lives in the kernel alone, and every unsafe operation says why it is sound.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod arena;
mod error;
mod explain;
mod file;
mod fit;
#[allow(unsafe_code)]
mod kernel;
mod model;
mod params;
mod summary;

pub use arena::average_path_length;
pub use error::{FitError, ModelError, ParamsError, ScoreError};
pub use explain::{Direction, Explanation, FeatureContribution};
pub use file::{model_id, FORMAT_VERSION, MAGIC, OLDEST_FORMAT_VERSION};
pub use model::IsolationForest;
pub use params::{Contamination, IsolationForestParams, RangeCheck, SplitRule, ValidParams};
pub use summary::{summarise, FeatureSummary};
