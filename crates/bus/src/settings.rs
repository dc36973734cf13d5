//! Kafka client settings as plain key/value pairs: our defaults, `-X key=value` and properties
//! files, the settings a delivery mode cannot do without, and the redaction of secrets in
//! anything printed.

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

/// [`PRODUCER_DEFAULTS`] as owned pairs.
pub fn producer_defaults() -> Vec<(String, String)> {
    PRODUCER_DEFAULTS
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

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
        // Tansu 0.6.0 sleeps out the whole wait after every fetch, even one that found
        // records (tansu-storage service/fetch.rs), so librdkafka's 500 ms made the median
        // latency ~470 ms at 10,000 records/s; 10 ms gives ~25 ms. Kafka answers as soon as
        // records arrive either way; the cost is at most 100 empty fetches a second per
        // broker while idle. 1 ms lowers latency on Tansu a little more, for ~10% of a core
        // of broker CPU per idle consumer (bench/idle_cost.py): `-X fetch.wait.max.ms=1`.
        ("fetch.wait.max.ms", "10"),
    ]
    .iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

/// A setting that cannot be read, or that a mode cannot work with.
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
    /// A user setting contradicts one that a mode requires.
    #[error("{key}={value} contradicts {mode}, which needs {key}={required}")]
    Contradicts {
        /// The setting.
        key: String,
        /// The user's value (never a secret: no required setting is one).
        value: String,
        /// The value the mode needs.
        required: String,
        /// The mode, e.g. "the detector's at-least-once delivery".
        mode: String,
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

/// A Java properties file, as Kafka's own tools read it: `key=value`, `key: value` or
/// `key value` lines, `#` and `!` comments, blank lines, and lines continued by a trailing
/// backslash (long `sasl.jaas.config` values are often written so). Other backslash escapes
/// are kept as written. Errors name the line, never its text, which may hold a secret.
pub fn parse_properties_file_text(text: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut properties = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut logical = line.to_string();
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let logical = logical.trim_end();
        let split = logical
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .ok_or(SettingsError::BadLine { line: index + 1 })?;
        let key = &logical[..split];
        let mut value = logical[split..].trim_start();
        if logical[split..].starts_with(char::is_whitespace) {
            // `key value`, or `key = value` with spaces before the separator.
            value = value
                .strip_prefix(['=', ':'])
                .map_or(value, str::trim_start);
        } else {
            value = value[1..].trim_start();
        }
        if key.is_empty() {
            return Err(SettingsError::BadLine { line: index + 1 });
        }
        properties.push((key.to_string(), value.to_string()));
    }
    Ok(properties)
}

/// An odd number of trailing backslashes continues the line.
fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
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

/// The settings a mode of operation cannot do without (at-least-once delivery, transactions,
/// an idempotent producer), each with the value it needs. A user setting that contradicts one
/// is refused before any client is made ([`Requirements::check`]), so a guarantee is never
/// voided by accident; the required values are then applied over everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    mode: String,
    settings: Vec<(String, String)>,
}

impl Requirements {
    /// No requirement yet, for `mode` (named in errors).
    pub fn new(mode: impl Into<String>) -> Self {
        Self {
            mode: mode.into(),
            settings: Vec::new(),
        }
    }

    /// Adds `key` = `value`.
    pub fn require(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// The mode's name.
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// The required settings, in the order given.
    pub fn settings(&self) -> &[(String, String)] {
        &self.settings
    }

    /// Refuses `user`'s settings (in order of precedence: the last of a key wins) when one
    /// gives a required key another value (librdkafka's spellings of one value, such as
    /// `true`/`1` or `all`/`-1`, agree).
    pub fn check(&self, user: &[(String, String)]) -> Result<(), SettingsError> {
        for (key, required) in &self.settings {
            let Some((_, value)) = user.iter().rev().find(|(k, _)| k == key) else {
                continue;
            };
            if canonical(key, value) != canonical(key, required) {
                return Err(SettingsError::Contradicts {
                    key: key.clone(),
                    value: value.clone(),
                    required: required.clone(),
                    mode: self.mode.clone(),
                });
            }
        }
        Ok(())
    }
}

/// One spelling per value, as librdkafka reads them: booleans from `true`/`t`/`1` and
/// `false`/`f`/`0` in any case, `acks=all` as `-1`, other values case-insensitively.
fn canonical(key: &str, value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    match value.as_str() {
        "true" | "t" | "1" if key != "acks" => "true".into(),
        "false" | "f" | "0" if key != "acks" => "false".into(),
        "all" if key == "acks" || key == "request.required.acks" => "-1".into(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn x_properties_parse_as_kcat_takes_them() {
        assert_eq!(
            parse_property("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert_eq!(
            parse_property(" linger.ms = 5 ").unwrap(),
            ("linger.ms".into(), "5".into())
        );
        assert_eq!(
            parse_property("client.id=").unwrap(),
            ("client.id".into(), "".into())
        );
        assert_eq!(
            parse_property("novalue"),
            Err(SettingsError::NotKeyValue("novalue".into()))
        );
        assert!(parse_property("=x").is_err());
        assert!(parse_property("").is_err());
    }

    #[test]
    fn properties_files_parse_as_kafka_tools_read_them() {
        let text = "# comment\n! also\n\n   \nsecurity.protocol = SASL_SSL\r\n\
                    sasl.mechanism: PLAIN\nbootstrap.servers=h1:9092,h2:9092\n\
                    client.id my-client\n  indented=yes\nempty=\n";
        assert_eq!(
            parse_properties_file_text(text).unwrap(),
            pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("bootstrap.servers", "h1:9092,h2:9092"),
                ("client.id", "my-client"),
                ("indented", "yes"),
                ("empty", ""),
            ])
        );
        assert_eq!(parse_properties_file_text("").unwrap(), vec![]);
        assert_eq!(
            parse_properties_file_text("a=1\njunk\n"),
            Err(SettingsError::BadLine { line: 2 })
        );
        assert_eq!(
            parse_properties_file_text("=1\n"),
            Err(SettingsError::BadLine { line: 1 })
        );
    }

    #[test]
    fn continued_lines_join() {
        let text =
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n    \
                    required username=\"u\" \\\n    password=\"p\";\nnext=1\nslash=C:\\\\\n";
        assert_eq!(
            parse_properties_file_text(text).unwrap(),
            pairs(&[
                (
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     username=\"u\" password=\"p\";"
                ),
                ("next", "1"),
                ("slash", "C:\\\\"),
            ])
        );
        // A continuation at the end of the file ends the value.
        assert_eq!(
            parse_properties_file_text("a=1\\").unwrap(),
            pairs(&[("a", "1")])
        );
    }

    #[test]
    fn secrets_are_redacted_and_nothing_else() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "ssl.key.pem",
            "ssl.keystore.key.pem",
            "sasl.jaas.config",
            "SASL.PASSWORD",
            "some.token",
            "aws.credentials",
        ] {
            assert!(is_secret(key), "{key}");
            assert_eq!(redact(key, "hunter2"), REDACTED, "{key}");
        }
        for key in [
            "sasl.username",
            "bootstrap.servers",
            "security.protocol",
            "sasl.mechanism",
            "ssl.ca.location",
            "ssl.certificate.location",
            "group.id",
            "acks",
        ] {
            assert!(!is_secret(key), "{key}");
            assert_eq!(redact(key, "visible"), "visible", "{key}");
        }
    }

    #[test]
    fn errors_never_repeat_a_value() {
        // `sasl.password` with its `=` forgotten: the error names the key, which is all there
        // is; a properties file's bad line is named by number only.
        let error = parse_property("sasl.password").unwrap_err().to_string();
        assert!(error.contains("sasl.password"));
        let error = parse_properties_file_text("sasl.password=x\nhunter2\n")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn producers_are_safe_and_the_detector_stores_offsets_itself() {
        let defaults = consumer_defaults("g");
        let get = |key: &str| {
            defaults
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("group.id"), Some("g"));
        assert_eq!(get("enable.auto.commit"), Some("true"));
        assert_eq!(get("enable.auto.offset.store"), Some("false"));
        assert_eq!(get("auto.offset.reset"), Some("earliest"));
        assert!(get("auto.commit.interval.ms").is_some());
        assert!(PRODUCER_DEFAULTS.contains(&("acks", "all")));
        assert!(PRODUCER_DEFAULTS.contains(&("enable.idempotence", "true")));
        assert!(
            PRODUCER_DEFAULTS.iter().all(|(key, _)| !is_secret(key)),
            "defaults hold no secrets"
        );
    }

    #[test]
    fn a_setting_that_contradicts_a_mode_is_refused_and_one_that_agrees_is_not() {
        let mode = Requirements::new("at-least-once")
            .require("enable.auto.offset.store", "false")
            .require("acks", "all");
        assert_eq!(mode.check(&pairs(&[("linger.ms", "9")])), Ok(()));
        assert_eq!(
            mode.check(&pairs(&[
                ("enable.auto.offset.store", "FALSE"),
                ("acks", "-1")
            ])),
            Ok(())
        );
        assert_eq!(
            mode.check(&pairs(&[("enable.auto.offset.store", "true")])),
            Err(SettingsError::Contradicts {
                key: "enable.auto.offset.store".into(),
                value: "true".into(),
                required: "false".into(),
                mode: "at-least-once".into(),
            })
        );
        let error = mode
            .check(&pairs(&[("acks", "1")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "acks=1 contradicts at-least-once, which needs acks=all"
        );
    }
}
