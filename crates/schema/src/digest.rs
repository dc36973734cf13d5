//! What stays of a record too large to travel whole: its size and SHA-256 ([`Digest`]), so
//! that the whole record, read again at its partition and offset, can be checked; and the
//! Kafka key an output of such a record gets ([`reduced_key`]).

use std::borrow::Cow;

use sha2::{Digest as _, Sha256};

/// Keys up to this many bytes stay as they are in a reduced output; longer ones are replaced
/// (see [`reduced_key`]).
pub const KEY_PREFIX_BYTES: usize = 256;

/// The size and SHA-256 of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Their length.
    pub bytes: u64,
    /// Their SHA-256, 64 lowercase hexadecimal digits.
    pub sha256: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest {
            bytes: data.len() as u64,
            sha256: format!("{:x}", Sha256::digest(data)),
        }
    }
}

/// The Kafka key of a reduced output: `key` itself when it has at most [`KEY_PREFIX_BYTES`],
/// else `sha256:` and its SHA-256 in hexadecimal (the same key always gives the same
/// replacement, so outputs of one key still share a partition).
pub fn reduced_key(key: &[u8]) -> Cow<'_, [u8]> {
    if key.len() <= KEY_PREFIX_BYTES {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("sha256:{}", Digest::of(key).sha256).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_standard_sha256() {
        // FIPS 180-2's test vector.
        let digest = Digest::of(b"abc");
        assert_eq!(digest.bytes, 3);
        assert_eq!(
            digest.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn long_keys_are_replaced_by_their_hash_and_short_ones_kept() {
        assert_eq!(&*reduced_key(b"4"), b"4");
        let edge = vec![b'k'; KEY_PREFIX_BYTES];
        assert_eq!(&*reduced_key(&edge), &edge[..]);
        let long = vec![b'k'; KEY_PREFIX_BYTES + 1];
        let reduced = reduced_key(&long);
        assert_eq!(reduced.len(), "sha256:".len() + 64);
        assert!(reduced.starts_with(b"sha256:"));
        assert_eq!(
            reduced,
            reduced_key(&long),
            "the same key, the same replacement"
        );
    }
}
