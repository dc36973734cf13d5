//! Kafka client settings every process shares, as plain key/value pairs (the processes turn
//! them into librdkafka configuration): defaults, `-X key=value` and properties files, and the
//! redaction of secrets in anything printed.

/// Broker address when neither `--brokers` nor `KAFKA_BOOTSTRAP` says otherwise.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";
/// Environment variable naming the brokers.
pub const BOOTSTRAP_ENV: &str = "KAFKA_BOOTSTRAP";
/// What replaces a secret value in logs and messages.
pub const REDACTED: &str = "[redacted]";

/// Producer settings: every write acknowledged by all in-sync replicas, idempotent (no
/// duplicates from retries), batched for a few milliseconds.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "1000000"),
    ("message.timeout.ms", "300000"),
];

/// Consumer settings for a group member that stores offsets itself, only once its outputs are
/// acknowledged (at-least-once), and commits the stored offsets every second.
pub fn consumer_defaults(group: &str) -> Vec<(String, String)> {
    [
        ("group.id", group),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
    ]
    .iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

/// A setting that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// Not `key=value`.
    #[error("expected key=value, not {0:?}")]
    NotKeyValue(String),
    /// A properties-file line that is not `key=value` or `key: value`.
    #[error("line {line}: expected key=value")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
}

/// `key=value` (as kcat's `-X`); the value may contain `=`.
pub fn parse_property(text: &str) -> Result<(String, String), SettingsError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        // The text may hold a secret: name the key only.
        _ => Err(SettingsError::NotKeyValue(
            text.split('=').next().unwrap_or_default().to_string(),
        )),
    }
}

/// A Java properties file, as Kafka's own tools read it: `key=value` or `key: value` lines,
/// `#` and `!` comments, blank lines.
pub fn parse_properties_file_text(text: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut properties = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or(SettingsError::BadLine { line: index + 1 })?;
        let (key, value) = (line[..split].trim(), line[split + 1..].trim());
        if key.is_empty() {
            return Err(SettingsError::BadLine { line: index + 1 });
        }
        properties.push((key.to_string(), value.to_string()));
    }
    Ok(properties)
}

/// True for settings whose values must never be printed: passwords, secrets, tokens, private
/// keys, JAAS/OAuth configurations.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "credentials",
        "sasl.jaas.config",
        "sasl.oauthbearer.config",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// The value to show for `key`: [`REDACTED`] for secrets.
pub fn redact<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_as_kcat_and_kafka_tools_write_them() {
        assert_eq!(
            parse_property("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
        let text = "# comment\n! also\n\nsecurity.protocol = SASL_SSL\nsasl.mechanism: PLAIN\n";
        assert_eq!(
            parse_properties_file_text(text).unwrap(),
            vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.mechanism".into(), "PLAIN".into())
            ]
        );
        assert_eq!(
            parse_properties_file_text("a=1\njunk\n"),
            Err(SettingsError::BadLine { line: 2 })
        );
    }

    #[test]
    fn secrets_are_redacted_and_nothing_else() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.jaas.config",
        ] {
            assert_eq!(redact(key, "hunter2"), REDACTED, "{key}");
        }
        for key in [
            "sasl.username",
            "bootstrap.servers",
            "security.protocol",
            "sasl.mechanism",
        ] {
            assert_eq!(redact(key, "visible"), "visible", "{key}");
        }
        // An error about a malformed secret setting does not repeat its value.
        let error = parse_property("sasl.password").unwrap_err().to_string();
        assert!(error.contains("sasl.password"));
    }

    #[test]
    fn the_detector_stores_offsets_itself() {
        let defaults = consumer_defaults("g");
        let get = |key: &str| {
            defaults
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("enable.auto.offset.store"), Some("false"));
        assert_eq!(get("group.id"), Some("g"));
        assert!(PRODUCER_DEFAULTS.contains(&("acks", "all")));
        assert!(PRODUCER_DEFAULTS.contains(&("enable.idempotence", "true")));
    }
}
