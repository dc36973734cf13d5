//! Which Kafka APIs a broker says it serves: a raw `ApiVersions` v0 request over plain TCP.
//! librdkafka does not expose its own answer, and some modes need to know before they start
//! (exactly-once needs the transaction APIs, which Tansu 0.6.0 does not list).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use crate::client::ClientSettings;
use crate::error::{Error, Result};

/// Kafka API keys of the transaction protocol, with their names.
pub const TRANSACTION_APIS: [(i16, &str); 5] = [
    (22, "InitProducerId"),
    (24, "AddPartitionsToTxn"),
    (25, "AddOffsetsToTxn"),
    (26, "EndTxn"),
    (28, "TxnOffsetCommit"),
];

/// API key → (lowest, highest) version, as the broker at `address` (`host:port`) lists them.
/// Plain TCP only: a broker behind TLS or SASL cannot be asked this way.
pub fn api_versions(address: &str, timeout: Duration) -> Result<BTreeMap<i16, (i16, i16)>> {
    let io = |source| Error::Io {
        address: address.to_string(),
        source,
    };
    let protocol = |detail: String| Error::Protocol {
        address: address.to_string(),
        detail,
    };
    let socket = address
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| protocol("resolves to no address".into()))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    const CORRELATION: i32 = 0x6b69;
    let client = b"kafka-iforest";
    let mut request = Vec::new();
    request.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    request.extend_from_slice(&0i16.to_be_bytes()); // version 0
    request.extend_from_slice(&CORRELATION.to_be_bytes());
    request.extend_from_slice(&(client.len() as i16).to_be_bytes());
    request.extend_from_slice(client);
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .map_err(io)?;
    stream.write_all(&request).map_err(io)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).map_err(io)?;
    let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(0);
    if !(10..=1 << 20).contains(&size) {
        return Err(protocol(format!("an ApiVersions answer of {size} bytes")));
    }
    let mut answer = vec![0u8; size];
    stream.read_exact(&mut answer).map_err(io)?;
    parse(&answer, CORRELATION).map_err(|detail| protocol(format!("ApiVersions answer: {detail}")))
}

/// Parses an `ApiVersions` v0 response body (after the size); the error says what is wrong.
fn parse(answer: &[u8], correlation: i32) -> Result<BTreeMap<i16, (i16, i16)>, String> {
    let i16_at = |at: usize| -> Result<i16, String> {
        let bytes = answer.get(at..at + 2).ok_or("truncated")?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let i32_at = |at: usize| -> Result<i32, String> {
        let bytes = answer.get(at..at + 4).ok_or("truncated")?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    if i32_at(0)? != correlation {
        return Err("wrong correlation id".into());
    }
    let error = i16_at(4)?;
    if error != 0 {
        return Err(format!("error code {error}"));
    }
    let count = usize::try_from(i32_at(6)?).map_err(|_| "negative count")?;
    let mut versions = BTreeMap::new();
    for index in 0..count {
        let at = 10 + index * 6;
        versions.insert(i16_at(at)?, (i16_at(at + 2)?, i16_at(at + 4)?));
    }
    Ok(versions)
}

/// The transaction APIs missing from `versions`, by name.
pub fn missing_transaction_apis(versions: &BTreeMap<i16, (i16, i16)>) -> Vec<&'static str> {
    TRANSACTION_APIS
        .iter()
        .filter(|(key, _)| !versions.contains_key(key))
        .map(|&(_, name)| name)
        .collect()
}

/// Whether the brokers of `settings` serve the API `key`, as the first bootstrap server that
/// answers `ApiVersions` lists them; None when none can be asked over plain TCP (TLS, SASL)
/// or none answers within `timeout`.
pub fn serves(settings: &ClientSettings, key: i16, timeout: Duration) -> Option<bool> {
    let config = settings.client_config();
    let plain = config
        .get("security.protocol")
        .is_none_or(|protocol| protocol.eq_ignore_ascii_case("plaintext"));
    if !plain {
        return None;
    }
    config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .find_map(|server| api_versions(server, timeout).ok())
        .map(|versions| versions.contains_key(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(correlation: i32, error: i16, apis: &[(i16, i16, i16)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&correlation.to_be_bytes());
        bytes.extend_from_slice(&error.to_be_bytes());
        bytes.extend_from_slice(&(apis.len() as i32).to_be_bytes());
        for (key, low, high) in apis {
            for value in [key, low, high] {
                bytes.extend_from_slice(&value.to_be_bytes());
            }
        }
        bytes
    }

    #[test]
    fn parses_the_listed_apis() {
        let versions = parse(&answer(7, 0, &[(0, 0, 9), (26, 0, 3)]), 7).unwrap();
        assert_eq!(versions.get(&26), Some(&(0, 3)));
        assert_eq!(
            missing_transaction_apis(&versions),
            [
                "InitProducerId",
                "AddPartitionsToTxn",
                "AddOffsetsToTxn",
                "TxnOffsetCommit"
            ]
        );
    }

    #[test]
    fn refuses_bad_answers() {
        assert!(parse(&answer(8, 0, &[]), 7).is_err());
        assert!(parse(&answer(7, 35, &[]), 7).is_err());
        let mut truncated = answer(7, 0, &[(1, 0, 1)]);
        truncated.pop();
        assert!(parse(&truncated, 7).is_err());
    }
}
