//! Topics named on the command line: `NAME[:PARTITIONS]`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A topic to create at start, with its partition count (one replica: there is one broker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions, at least 1.
    pub partitions: i32,
}

impl TopicSpec {
    /// A topic of `partitions` partitions.
    pub fn new(name: &str, partitions: i32) -> Self {
        Self {
            name: name.to_string(),
            partitions,
        }
    }

    /// The pipeline's topics, as `scripts/topics.sh` creates them on other brokers:
    /// transactions (3 partitions), anomalies and dead letters (1 each).
    pub fn pipeline() -> Vec<TopicSpec> {
        use schema::topics::{ANOMALIES, DEAD_LETTERS, TRANSACTIONS, TRANSACTION_PARTITIONS};
        vec![
            TopicSpec::new(TRANSACTIONS, TRANSACTION_PARTITIONS),
            TopicSpec::new(ANOMALIES, 1),
            TopicSpec::new(DEAD_LETTERS, 1),
        ]
    }
}

impl FromStr for TopicSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::TopicSpec {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let (name, partitions) = match spec.split_once(':') {
            None => (spec, 1),
            Some((name, partitions)) => {
                let partitions = partitions
                    .parse::<i32>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad("partitions must be a positive number"))?;
                (name, partitions)
            }
        };
        if name.is_empty() {
            return Err(bad("the topic needs a name"));
        }
        // Kafka's own rule for topic names, so that no client refuses what we created.
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.len() > 249 || !name.chars().all(legal) || name == "." || name == ".." {
            return Err(bad(
                "a topic name is at most 249 of the characters a-z A-Z 0-9 . _ -",
            ));
        }
        Ok(TopicSpec::new(name, partitions))
    }
}

impl fmt::Display for TopicSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.partitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_alone_has_one_partition() {
        assert_eq!(
            "anomalies".parse::<TopicSpec>().unwrap(),
            TopicSpec::new("anomalies", 1)
        );
    }

    #[test]
    fn partitions_follow_a_colon() {
        assert_eq!(
            "tx:3".parse::<TopicSpec>().unwrap(),
            TopicSpec::new("tx", 3)
        );
    }

    #[test]
    fn partitions_must_be_positive() {
        for spec in ["tx:0", "tx:-1", "tx:x", "tx:"] {
            assert!(
                matches!(spec.parse::<TopicSpec>(), Err(Error::TopicSpec { .. })),
                "{spec}"
            );
        }
    }

    #[test]
    fn names_follow_kafkas_rule() {
        for spec in ["", ":3", "a b", "a/b", "..", &"x".repeat(250)] {
            assert!(
                matches!(spec.parse::<TopicSpec>(), Err(Error::TopicSpec { .. })),
                "{spec}"
            );
        }
        assert!("transactions.dlq".parse::<TopicSpec>().is_ok());
    }

    #[test]
    fn the_pipeline_topics_match_the_schema() {
        let topics = TopicSpec::pipeline();
        assert_eq!(topics[0], TopicSpec::new(schema::topics::TRANSACTIONS, 3));
        assert_eq!(topics.len(), 3);
    }
}
