//! Records in and out: one as read ([`Incoming`]), and what the detector writes: an
//! [`Output`] record, the topic it goes to ([`Destination`]) and how much of its source record
//! it carries ([`Form`]).

/// Where an output record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The anomalies topic.
    Anomalies,
    /// The dead-letter topic.
    DeadLetters,
}

/// How much of its record an output carries; each form is smaller than the one before, and
/// an output the broker refuses for itself is sent again in the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Form {
    /// The whole anomaly or dead letter.
    Whole,
    /// Reduced to fit: a reduced anomaly (verdict, id, features, the record's digest) or a
    /// reduced dead letter (the first bytes of the record and its digest).
    Reduced,
    /// A minimal dead letter: where the record is, its digest and why nothing more was
    /// written.
    Minimal,
}

/// A record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Which topic.
    pub destination: Destination,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub payload: Vec<u8>,
    /// How much of its record it carries.
    pub form: Form,
    /// The index, in its batch, of the record it is about.
    pub source: usize,
}

/// One record as read from Kafka.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value (a tombstone has none).
    pub payload: Option<&'a [u8]>,
    /// The record's Kafka timestamp, epoch milliseconds (per-key features without a time
    /// field time records by it).
    pub timestamp_ms: Option<i64>,
}

impl Incoming<'_> {
    /// The record as a dead letter names it.
    pub fn source<'a>(&'a self, topic: &'a str) -> schema::SourceRecord<'a> {
        schema::SourceRecord {
            topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key,
            value: self.payload.unwrap_or_default(),
        }
    }
}
