//! [`RecordId`]: a transaction's id, and its Kafka key.

use std::fmt;

use serde_json::Value;

/// A transaction's id: an integer, as the original writes it, or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl RecordId {
    /// What identifies a record that has no id of its own: where it was read,
    /// `<partition>:<offset>` (the Kafka key of its anomaly).
    pub fn position(partition: i32, offset: i64) -> RecordId {
        RecordId::Str(format!("{partition}:{offset}"))
    }
}

impl fmt::Display for RecordId {
    /// The record's Kafka key: the id as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordId::Int(id) => write!(f, "{id}"),
            RecordId::Str(id) => f.write_str(id),
        }
    }
}

impl From<&RecordId> for Value {
    fn from(id: &RecordId) -> Self {
        match id {
            RecordId::Int(id) => Value::from(*id),
            RecordId::Str(id) => Value::from(id.as_str()),
        }
    }
}
