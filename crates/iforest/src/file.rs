//! The model file: a fixed header, a bincode body, a checksum; checked before use.
//!
//! ```text
//! magic "IFOREST\0" (8) | format version u32 LE (4) | body length u64 LE (8) | body | FNV-1a 64 LE (8)
//! ```
//! The body is the whole [`IsolationForest`] (parameters, feature names, threshold, training
//! summary, trees) in bincode 2's standard configuration. The checksum covers everything before
//! it; FNV-1a is a chain of bijections, so any single changed byte changes it. Loading checks
//! magic, version, length, checksum, then decodes with a size limit and validates the forest's
//! structure, so a damaged file gives a typed error and never a panic or a huge allocation.

use std::io::Write;
use std::path::Path;

use crate::error::ModelError;
use crate::forest::{IsolationForest, StoredForest, LEAF_SPLIT};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"IFOREST\0";
/// The format version this build writes and reads. Bumped on any change to the body.
pub const FORMAT_VERSION: u32 = 1;

const HEADER_LEN: usize = 8 + 4 + 8;
/// At most this many bytes of feature names (in total) in a model file.
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
        if version != FORMAT_VERSION {
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
        // Through serde, bincode counts only byte strings against the limit (the feature
        // names), and allocates a string's claimed length before reading it; other sequences
        // grow as their elements arrive (serde preallocates at most 1 MiB). So the limit is
        // what bounds the allocation a forged length field can cause.
        let config = bincode::config::standard().with_limit::<NAME_BYTES_LIMIT>();
        let (stored, used): (StoredForest, usize) = bincode::serde::decode_from_slice(body, config)
            .map_err(|error| ModelError::Corrupt(format!("cannot decode the body: {error}")))?;
        if used != body.len() {
            return Err(ModelError::Corrupt("the body has trailing bytes".into()));
        }
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

    /// Structural checks that make scoring safe: every index in bounds and pointing forward
    /// inside its own tree, every walk reaching a leaf within the tree's depth, finite values.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let width = self.n_features;
        let count = self.nodes.len();
        if width == 0 {
            return Err("no features".into());
        }
        if self.summary.len() != width {
            return Err(format!(
                "{} feature summaries for {width} features",
                self.summary.len()
            ));
        }
        self.params
            .recheck()
            .map_err(|error| format!("invalid parameters: {error}"))?;
        if self.params.n_trees() != self.trees.len() {
            return Err(format!(
                "{} trees, the parameters say {}",
                self.trees.len(),
                self.params.n_trees()
            ));
        }
        if self.sample_size > self.params.sample_size() || self.sample_size > self.training_rows {
            return Err(format!(
                "sample size {} is above the one asked ({}) or the training rows ({})",
                self.sample_size,
                self.params.sample_size(),
                self.training_rows
            ));
        }
        if let Some(names) = self.params.feature_names() {
            if names.len() != width {
                return Err(format!(
                    "{} feature names for {width} features",
                    names.len()
                ));
            }
        }
        if !self.threshold.is_finite() {
            return Err("the threshold is not finite".into());
        }
        if self.sample_size == 0 || self.trees.is_empty() {
            return Err("an empty forest".into());
        }
        if self.path_value.len() != count || self.node_size.len() != count {
            return Err("per-node arrays of different lengths".into());
        }
        let extended = !self.normals.is_empty();
        if extended && self.normals.len() != count * width {
            return Err("hyperplane coefficients do not match the nodes".into());
        }
        if extended != matches!(self.params.split_rule(), crate::SplitRule::Extended { .. }) {
            return Err("the split rule does not match the nodes".into());
        }
        for (index, tree) in self.trees.iter().enumerate() {
            let start = tree.root as usize;
            let end = self
                .trees
                .get(index + 1)
                .map_or(count, |next| next.root as usize);
            let expected_start = if index == 0 {
                0
            } else {
                self.trees[index - 1].root as usize
            };
            if start >= end || start < expected_start || (index == 0 && start != 0) {
                return Err(format!("tree {index} has no nodes of its own"));
            }
            let mut deepest = 0;
            let mut visits = 0;
            let mut stack = vec![(start, 0u32)];
            while let Some((at, depth)) = stack.pop() {
                // A tree visits each of its nodes once; more means shared children (a graph
                // that could take exponential time to walk).
                visits += 1;
                if visits > end - start {
                    return Err(format!("tree {index} shares nodes"));
                }
                let node = self.nodes[at];
                if node.feature as usize >= width {
                    return Err(format!(
                        "node {at} splits on feature {} of {width}",
                        node.feature
                    ));
                }
                if node.split == LEAF_SPLIT {
                    if node.left as usize != at || !self.path_value[at].is_finite() {
                        return Err(format!("leaf {at} is malformed"));
                    }
                    deepest = deepest.max(depth);
                } else {
                    let left = node.left as usize;
                    if !node.split.is_finite() || left <= at || left + 1 >= end {
                        return Err(format!("node {at} has children out of place"));
                    }
                    if depth >= tree.depth {
                        return Err(format!("tree {index} is deeper than it says"));
                    }
                    stack.push((left, depth + 1));
                    stack.push((left + 1, depth + 1));
                }
            }
            if deepest != tree.depth {
                return Err(format!(
                    "tree {index} says depth {}, is {deepest}",
                    tree.depth
                ));
            }
        }
        if self.normals.iter().any(|c| !c.is_finite()) {
            return Err("a hyperplane coefficient is not finite".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Contamination, IsolationForest, IsolationForestParams, ModelError};

    fn model() -> IsolationForest {
        let data: Vec<f64> = (0..200).map(|i| f64::from(i % 17) * 0.5).collect();
        IsolationForestParams::new()
            .n_trees(10)
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
    fn a_file_whose_trees_are_out_of_place_is_corrupt() {
        let mut broken = model();
        let root = broken.trees[1].root as usize;
        broken.nodes[root].left = root as u32; // a split whose children are itself
        assert!(refused(&broken));
        let mut broken = model();
        broken.nodes[0].feature = 2;
        assert!(refused(&broken));
        let mut broken = model();
        broken.trees[0].depth += 1;
        assert!(refused(&broken));
        let mut broken = model();
        broken.threshold = f64::NAN;
        assert!(refused(&broken));
        assert!(!refused(&model()));
    }
}
