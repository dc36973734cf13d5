//! What the broker is started with, checked.

use std::net::SocketAddr;

use crate::{Cli, Error, TopicSpec};

/// Checked settings: a loopback listen address (if any) and at least one topic.
#[derive(Debug, Clone)]
pub struct Config {
    listen: Option<SocketAddr>,
    topics: Vec<TopicSpec>,
}

impl Config {
    /// Checks the settings. The listen address must be a loopback one: the mock broker
    /// itself listens on 127.0.0.1 only, and the cluster's metadata sends every client
    /// there, so a client on another machine could connect but never be served. Topics
    /// default to [`TopicSpec::pipeline`]; a name given twice is refused.
    pub fn new(listen: Option<SocketAddr>, topics: Vec<TopicSpec>) -> Result<Config, Error> {
        if let Some(address) = listen {
            if !address.ip().is_loopback() {
                return Err(Error::NotLoopback(address));
            }
        }
        let topics = if topics.is_empty() {
            TopicSpec::pipeline()
        } else {
            topics
        };
        for (i, topic) in topics.iter().enumerate() {
            if topics[..i].iter().any(|other| other.name == topic.name) {
                return Err(Error::DuplicateTopic(topic.name.clone()));
            }
        }
        Ok(Config { listen, topics })
    }

    /// From the command line.
    pub fn from_cli(cli: &Cli) -> Result<Config, Error> {
        Config::new(cli.listen, cli.topics.clone())
    }

    /// The chosen address, if any.
    pub fn listen(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The topics to create at start.
    pub fn topics(&self) -> &[TopicSpec] {
        &self.topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_must_be_loopback() {
        let outside: SocketAddr = "0.0.0.0:9092".parse().unwrap();
        assert!(matches!(
            Config::new(Some(outside), vec![]),
            Err(Error::NotLoopback(_))
        ));
        let inside: SocketAddr = "127.0.0.1:9092".parse().unwrap();
        assert_eq!(
            Config::new(Some(inside), vec![]).unwrap().listen(),
            Some(inside)
        );
        let inside_v6: SocketAddr = "[::1]:0".parse().unwrap();
        assert!(Config::new(Some(inside_v6), vec![]).is_ok());
    }

    #[test]
    fn topics_default_to_the_pipeline() {
        let config = Config::new(None, vec![]).unwrap();
        assert_eq!(config.topics(), TopicSpec::pipeline());
    }

    #[test]
    fn named_topics_replace_the_default() {
        let config = Config::new(None, vec![TopicSpec::new("t", 6)]).unwrap();
        assert_eq!(config.topics(), [TopicSpec::new("t", 6)]);
    }

    #[test]
    fn a_topic_cannot_be_named_twice() {
        let twice = vec![TopicSpec::new("t", 1), TopicSpec::new("t", 3)];
        assert!(
            matches!(Config::new(None, twice), Err(Error::DuplicateTopic(name)) if name == "t")
        );
    }
}
