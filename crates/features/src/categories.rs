//! A category feature's training counts ([`CategoryCounts`]) and its two encodings: the
//! relative frequency (`category`) and the surprisal in bits (`rarity`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::item::Transform;

/// A category feature's training counts; a category encodes as its relative frequency
/// (`category`) or its surprisal in bits (`rarity`).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryCounts {
    counts: BTreeMap<String, u64>,
    total: u64,
    most_frequent: String,
    /// Each category's (frequency, rarity), derived from the counts.
    encoded: HashMap<Box<str>, (f64, f64), BuildHasherDefault<Fnv>>,
}

/// FNV-1a: category keys are short, and SipHash's protection against chosen collisions is
/// not needed for keys learned from training data (a record's key is only looked up).
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl CategoryCounts {
    /// From counts (each at least 1; at least one category), or `None`.
    pub(crate) fn new(counts: BTreeMap<String, u64>) -> Option<CategoryCounts> {
        if counts.values().any(|&count| count == 0) {
            return None;
        }
        let total = counts
            .values()
            .try_fold(0u64, |total, &count| total.checked_add(count))?;
        // The largest count; among equals, the first in key order.
        let most_frequent = counts
            .iter()
            .fold(
                None,
                |best: Option<(&String, u64)>, (key, &count)| match best {
                    Some((_, best_count)) if best_count >= count => best,
                    _ => Some((key, count)),
                },
            )?
            .0
            .clone();
        let encoded = counts
            .iter()
            .map(|(key, &count)| {
                let frequency = count as f64 / total as f64;
                (
                    key.as_str().into(),
                    (frequency, surprisal(count as f64, total)),
                )
            })
            .collect();
        Some(CategoryCounts {
            counts,
            total,
            most_frequent,
            encoded,
        })
    }

    /// Occurrences of each category in training, in key order.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Training values counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most frequent category (the first in key order among equals): what stands in for
    /// a missing one under [`Missing::Impute`](crate::Missing::Impute).
    pub fn most_frequent(&self) -> &str {
        &self.most_frequent
    }

    /// A category's relative frequency in training; 0 for one never seen.
    pub fn frequency(&self, category: &str) -> f64 {
        self.encoded
            .get(category)
            .map_or(0.0, |&(frequency, _)| frequency)
    }

    /// A category's surprisal in bits, −log2(count / total); a category never seen counts as
    /// half an occurrence, so it is one bit rarer than a category seen once:
    /// [`unseen_rarity`](Self::unseen_rarity).
    pub fn rarity(&self, category: &str) -> f64 {
        self.encoded
            .get(category)
            .map_or_else(|| self.unseen_rarity(), |&(_, rarity)| rarity)
    }

    /// The rarity of a category never seen in training: −log2(0.5 / total).
    pub fn unseen_rarity(&self) -> f64 {
        surprisal(0.5, self.total)
    }

    /// `category` encoded as `transform` asks (its frequency, or its rarity).
    pub(crate) fn encode(&self, transform: Transform, category: &str) -> f64 {
        if transform == Transform::Rarity {
            self.rarity(category)
        } else {
            self.frequency(category)
        }
    }
}

/// −log2(count / total), in bits.
fn surprisal(count: f64, total: u64) -> f64 {
    (total as f64 / count).log2()
}
