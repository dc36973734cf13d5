//! [`KafkaArgs`]: the connection flags every process takes (`--brokers`, `-X`,
//! `--client-config`), as clap parses them, and their conversion into [`ClientSettings`],
//! which is all the rest of the code sees.

use std::fmt;
use std::path::PathBuf;

use crate::client::ClientSettings;
use crate::error::{Error, Result};
use crate::settings;

/// Connection flags, flattened into every process's command line. `Debug` shows the `-X`
/// settings with secrets redacted.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, global = true, env = settings::BOOTSTRAP_ENV, default_value = settings::DEFAULT_BROKERS, value_name = "HOST:PORT")]
    pub brokers: String,
    /// A librdkafka property, as kcat takes it (repeatable): -X security.protocol=SASL_SSL.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A Java properties file of librdkafka settings, as Kafka's own tools take it.
    #[arg(long, global = true, value_name = "FILE")]
    pub client_config: Option<PathBuf>,
}

impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|property| match property.split_once('=') {
                Some((key, value)) => format!("{key}={}", settings::redact(key.trim(), value)),
                None => property.clone(),
            })
            .collect();
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("properties", &properties)
            .field("client_config", &self.client_config)
            .finish()
    }
}

impl KafkaArgs {
    /// The settings these flags give: the properties file's, then `-X`'s (which win).
    pub fn settings(&self) -> Result<ClientSettings> {
        let mut properties = Vec::new();
        if let Some(path) = &self.client_config {
            let text = std::fs::read_to_string(path).map_err(|source| Error::ClientConfigFile {
                path: path.clone(),
                source,
            })?;
            properties.extend(
                settings::parse_properties_file_text(&text).map_err(|source| {
                    Error::ClientConfigLine {
                        path: path.clone(),
                        source: Box::new(source),
                    }
                })?,
            );
        }
        for property in &self.properties {
            properties.push(settings::parse_property(property)?);
        }
        Ok(ClientSettings {
            brokers: self.brokers.clone(),
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn file_then_x_then_brokers_and_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(
            &file,
            "security.protocol=SASL_SSL\nsasl.password=FromFile\nlinger.ms=50\n",
        )
        .unwrap();
        let args = KafkaArgs {
            brokers: "h:1".into(),
            properties: vec!["linger.ms=7".into(), "sasl.password=TopSecret-1".into()],
            client_config: Some(file),
        };
        let config = args.settings().unwrap().producer_config(None).unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("h:1"));
        assert_eq!(config.get("linger.ms"), Some("7"), "-X wins over the file");
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.password"), Some("TopSecret-1"));
        assert!(!format!("{args:?}").contains("TopSecret"), "{args:?}");
    }

    #[test]
    fn the_command_line_takes_x_repeated_and_a_properties_file() {
        let cli = Cli::try_parse_from([
            "p",
            "--brokers",
            "b:1",
            "-X",
            "a=1",
            "-Xb=2",
            "--client-config",
            "f.properties",
        ])
        .unwrap();
        assert_eq!(cli.kafka.brokers, "b:1");
        assert_eq!(cli.kafka.properties, ["a=1", "b=2"]);
        assert_eq!(
            cli.kafka.client_config.as_deref(),
            Some(std::path::Path::new("f.properties"))
        );
        let error = Cli::try_parse_from(["p", "-X", "novalue"])
            .unwrap()
            .kafka
            .settings()
            .unwrap_err();
        assert!(error.to_string().contains("novalue"), "{error}");
    }

    #[test]
    fn a_missing_file_and_a_bad_line_are_named_without_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.properties");
        let args = KafkaArgs {
            brokers: "h:1".into(),
            properties: vec![],
            client_config: Some(missing.clone()),
        };
        let error = args.settings().unwrap_err().to_string();
        assert!(error.contains("nope.properties"), "{error}");
        let bad = dir.path().join("bad.properties");
        std::fs::write(&bad, "sasl.password=x\nhunter2\n").unwrap();
        let args = KafkaArgs {
            client_config: Some(bad),
            ..args
        };
        let error = args.settings().unwrap_err().to_string();
        assert!(
            error.contains("line 2") && !error.contains("hunter2"),
            "{error}"
        );
    }
}
