//! The model file: a fixed header, a bincode body, a checksum; checked before use.
//!
//! ```text
//! magic "IFOREST\0" (8) | format version u32 LE (4) | body length u64 LE (8) | body | FNV-1a 64 LE (8)
//! ```
//! The body is the whole [`IsolationForest`] in bincode 2's standard configuration, field by
//! field:
//!
//! ```text
//! version 2: params (with range_check after split_rule), n_features, threshold, summary,
//!            training_rows, sample_size, trees, nodes, path_value, node_size, normals,
//!            ranges (per node min, max; empty unless range-aware), metadata (string map)
//! version 1: the same without range_check, ranges and metadata
//! ```
//!
//! The checksum covers everything before it; FNV-1a is a chain of bijections, so any single
//! changed byte changes it. Loading checks magic, version, length, checksum, then decodes with
//! a size limit and validates the forest's structure, so a damaged file gives a typed error
//! and never a panic or a huge allocation. This build writes version 2 and reads versions 1
//! and 2; a version-1 model loads as range-unaware with no metadata and scores as it did.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::arena::{Arena, Node, SplitRange, Tree};
use crate::error::ModelError;
use crate::model::IsolationForest;
use crate::params::{Contamination, RangeCheck, SplitRule, ValidParams};
use crate::summary::FeatureSummary;

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"IFOREST\0";
/// The format version this build writes (and the newest it reads). Bumped on any change to
/// the body.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = 8 + 4 + 8;
/// At most this many bytes of strings (feature names and metadata, in total) in a model file.
const NAME_BYTES_LIMIT: usize = 1 << 26;
const CHECKSUM_LEN: usize = 8;

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A short content hash of a model file's bytes (16 hex digits), used to name the model that
/// scored a record.
pub fn model_id(model_file_bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(model_file_bytes))
}

impl IsolationForest {
    /// The model file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .unwrap_or_else(|error| unreachable!("a model always encodes: {error}"));
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len() + CHECKSUM_LEN);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&body);
        let checksum = fnv1a(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Reads a model from its file's bytes, checking everything.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                ModelError::Truncated
            } else {
                ModelError::NotAModelFile
            });
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(ModelError::NotAModelFile);
        }
        if bytes.len() < HEADER_LEN {
            return Err(ModelError::Truncated);
        }
        let version =
            u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| ModelError::Truncated)?);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(ModelError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let body_len = u64::from_le_bytes(
            bytes[12..20]
                .try_into()
                .map_err(|_| ModelError::Truncated)?,
        );
        let expected_len = usize::try_from(body_len)
            .ok()
            .and_then(|len| len.checked_add(HEADER_LEN + CHECKSUM_LEN))
            .ok_or(ModelError::Truncated)?;
        if bytes.len() < expected_len {
            return Err(ModelError::Truncated);
        }
        if bytes.len() > expected_len {
            return Err(ModelError::Corrupt(format!(
                "{} bytes after the end the header announces",
                bytes.len() - expected_len
            )));
        }
        let (content, checksum) = bytes.split_at(expected_len - CHECKSUM_LEN);
        let checksum = u64::from_le_bytes(checksum.try_into().map_err(|_| ModelError::Truncated)?);
        if fnv1a(content) != checksum {
            return Err(ModelError::ChecksumMismatch);
        }
        let body = &content[HEADER_LEN..];
        let stored = if version == 1 {
            StoredForest::from(decode::<StoredForestV1>(body)?)
        } else {
            decode::<StoredForest>(body)?
        };
        IsolationForest::try_from(stored).map_err(ModelError::Corrupt)
    }

    /// Writes the model file atomically: a temporary file in the same folder, synced, then
    /// renamed over `path`, so a reader never sees half a model.
    pub fn save<P: AsRef<Path>>(&self, path: P) -> Result<(), ModelError> {
        let path = path.as_ref();
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file_name = path.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file path",
            ))
        })?;
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(file_name);
        temporary_name.push(format!(".{}.tmp", std::process::id()));
        let temporary = path.with_file_name(temporary_name);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&self.to_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        };
        write().map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            io(source)
        })
    }

    /// Reads and checks a model file.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }
}

/// Decodes a whole body.
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ModelError> {
    // Through serde, bincode counts only byte strings against the limit (the feature names
    // and metadata), and allocates a string's claimed length before reading it; other
    // sequences grow as their elements arrive (serde preallocates at most 1 MiB). So the
    // limit is what bounds the allocation a forged length field can cause.
    let config = bincode::config::standard().with_limit::<NAME_BYTES_LIMIT>();
    let (stored, used) = bincode::serde::decode_from_slice(body, config)
        .map_err(|error| ModelError::Corrupt(format!("cannot decode the body: {error}")))?;
    if used != body.len() {
        return Err(ModelError::Corrupt("the body has trailing bytes".into()));
    }
    Ok(stored)
}

/// The body of a model file (version 2), field by field in file order, borrowed from a model.
#[derive(Serialize)]
struct StoredForestRef<'a> {
    params: &'a ValidParams,
    n_features: usize,
    threshold: f64,
    summary: &'a [FeatureSummary],
    training_rows: usize,
    sample_size: usize,
    trees: &'a [Tree],
    nodes: &'a [Node],
    path_value: &'a [f64],
    node_size: &'a [u32],
    normals: &'a [f64],
    ranges: &'a [SplitRange],
    metadata: &'a BTreeMap<String, String>,
}

/// The body of a model file as decoded (version 2), before validation; the same fields as
/// [`StoredForestRef`].
#[derive(Deserialize)]
struct StoredForest {
    params: ValidParams,
    n_features: usize,
    threshold: f64,
    summary: Vec<FeatureSummary>,
    training_rows: usize,
    sample_size: usize,
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    path_value: Vec<f64>,
    node_size: Vec<u32>,
    normals: Vec<f64>,
    ranges: Vec<SplitRange>,
    metadata: BTreeMap<String, String>,
}

/// The body of a version-1 model file: no range check, no ranges, no metadata.
#[derive(Deserialize)]
struct StoredForestV1 {
    params: ParamsV1,
    n_features: usize,
    threshold: f64,
    summary: Vec<FeatureSummary>,
    training_rows: usize,
    sample_size: usize,
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    path_value: Vec<f64>,
    node_size: Vec<u32>,
    normals: Vec<f64>,
}

/// [`ValidParams`] as version 1 stored them (before `range_check`).
#[derive(Deserialize)]
struct ParamsV1 {
    n_trees: usize,
    sample_size: usize,
    max_depth: Option<usize>,
    contamination: Contamination,
    seed: u64,
    split_rule: SplitRule,
    threads: usize,
    feature_names: Option<Vec<String>>,
}

impl From<StoredForestV1> for StoredForest {
    /// A version-1 model is range-unaware and has no metadata.
    fn from(v1: StoredForestV1) -> Self {
        let p = v1.params;
        StoredForest {
            params: ValidParams {
                n_trees: p.n_trees,
                sample_size: p.sample_size,
                max_depth: p.max_depth,
                contamination: p.contamination,
                seed: p.seed,
                split_rule: p.split_rule,
                range_check: RangeCheck::Off,
                threads: p.threads,
                feature_names: p.feature_names,
            },
            n_features: v1.n_features,
            threshold: v1.threshold,
            summary: v1.summary,
            training_rows: v1.training_rows,
            sample_size: v1.sample_size,
            trees: v1.trees,
            nodes: v1.nodes,
            path_value: v1.path_value,
            node_size: v1.node_size,
            normals: v1.normals,
            ranges: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }
}

impl Serialize for IsolationForest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let arena = &self.arena;
        StoredForestRef {
            params: &self.params,
            n_features: arena.n_features,
            threshold: self.threshold,
            summary: &self.summary,
            training_rows: self.training_rows,
            sample_size: self.sample_size,
            trees: &arena.trees,
            nodes: &arena.nodes,
            path_value: &arena.path_value,
            node_size: &arena.node_size,
            normals: &arena.normals,
            ranges: &arena.ranges,
            metadata: &self.metadata,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IsolationForest {
    /// Decodes, then validates: a forest that decodes but is inconsistent is an error, never
    /// a model.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredForest::deserialize(deserializer)?;
        IsolationForest::try_from(stored).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<StoredForest> for IsolationForest {
    type Error = String;

    /// Validates the parts, then derives the scoring layout.
    fn try_from(stored: StoredForest) -> Result<Self, String> {
        let arena = Arena {
            n_features: stored.n_features,
            trees: stored.trees,
            nodes: stored.nodes,
            path_value: stored.path_value,
            node_size: stored.node_size,
            normals: stored.normals,
            ranges: stored.ranges,
        };
        IsolationForest::checked(
            stored.params,
            stored.threshold,
            stored.summary,
            stored.training_rows,
            stored.sample_size,
            arena,
            stored.metadata,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::SplitRange;
    use crate::{Contamination, IsolationForest, IsolationForestParams, ModelError, RangeCheck};

    /// A range-unaware model.
    fn model() -> IsolationForest {
        let data: Vec<f64> = (0..200).map(|i| f64::from(i % 17) * 0.5).collect();
        IsolationForestParams::new()
            .n_trees(10)
            .range_check(RangeCheck::Off)
            .fit(&data, 2)
            .unwrap()
    }

    fn refused(model: &IsolationForest) -> bool {
        matches!(
            IsolationForest::from_bytes(&model.to_bytes()),
            Err(ModelError::Corrupt(_))
        )
    }

    #[test]
    fn a_file_whose_parameters_break_a_rule_is_corrupt() {
        let mut broken = model();
        broken.params.contamination = Contamination::Fraction(2.0);
        assert!(refused(&broken));
        let mut broken = model();
        broken.params.n_trees = 11;
        assert!(refused(&broken));
        let mut broken = model();
        broken.sample_size = broken.training_rows + 1;
        assert!(refused(&broken));
    }

    #[test]
    fn a_file_whose_split_ranges_are_broken_is_corrupt() {
        let ranged = || {
            let data: Vec<f64> = (0..200).map(|i| f64::from(i % 17) * 0.5).collect();
            IsolationForestParams::new()
                .n_trees(10)
                .range_check(RangeCheck::On)
                .fit(&data, 2)
                .unwrap()
        };
        assert!(!refused(&ranged()));
        let mut broken = ranged();
        broken.arena.ranges[0] = SplitRange { min: 2.0, max: 1.0 };
        assert!(refused(&broken));
        let mut broken = ranged();
        broken.arena.ranges[0].max = f64::NAN;
        assert!(refused(&broken));
        let mut broken = ranged();
        broken.arena.ranges[3].min = f64::NEG_INFINITY;
        assert!(refused(&broken));
        let mut broken = ranged();
        broken.arena.ranges.pop();
        assert!(refused(&broken));
        // The parameters and the nodes must agree on the range check, either way.
        let mut broken = ranged();
        broken.arena.ranges.clear();
        assert!(refused(&broken));
        let mut broken = ranged();
        broken.params.range_check = RangeCheck::Off;
        assert!(refused(&broken));
        let mut broken = model();
        broken.params.range_check = RangeCheck::On;
        assert!(refused(&broken));
    }

    #[test]
    fn a_file_whose_trees_are_out_of_place_is_corrupt() {
        let mut broken = model();
        let root = broken.arena.trees[1].root as usize;
        broken.arena.nodes[root].left = root as u32; // a split whose children are itself
        assert!(refused(&broken));
        let mut broken = model();
        broken.arena.nodes[0].feature = 2;
        assert!(refused(&broken));
        let mut broken = model();
        broken.arena.trees[0].depth += 1;
        assert!(refused(&broken));
        let mut broken = model();
        broken.threshold = f64::NAN;
        assert!(refused(&broken));
        assert!(!refused(&model()));
    }
}
