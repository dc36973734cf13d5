//! A record read for per-key items ([`Reading`]): its id, its key and time where fields hold
//! them, each stateless feature's value, and each per-key item's field value, before the
//! key's history is applied. One parser pass over the bytes
//! ([`NamedFeatures::read_record`]), or a parsed record ([`NamedFeatures::reading_of`]): the
//! same values either way.

use schema::RecordId;
use serde_json::Value;

use crate::extract::{ExtractError, NamedFeatures, Scratch};
use crate::path::FieldPath;
use crate::reader::Slots;
use crate::value::{category_key, Instant, Scalar, MAX_EPOCH_MS};

/// One record as read for per-key items, before its key's history: reuse one across records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub(crate) id: Option<RecordId>,
    /// The key field's key, when records are keyed by a field.
    pub(crate) key: Option<Vec<u8>>,
    /// The time field's time, when records are timed by a field.
    pub(crate) time_ms: Option<i64>,
    /// Per item: a stateless feature's value; a per-key item's field value after its
    /// transform (NaN: missing, and imputed); unused (0) for items without a field.
    pub(crate) values: Vec<f64>,
}

impl Reading {
    /// The record's id (`None`: none; identify it by where it was read).
    pub fn id(&self) -> Option<&RecordId> {
        self.id.as_ref()
    }

    /// Takes the record's id out.
    pub fn take_id(&mut self) -> Option<RecordId> {
        self.id.take()
    }

    /// The key the key field gives (`None` when records are keyed by their Kafka key): a
    /// string's UTF-8 bytes, an integer's decimal digits.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The time the time field gives, epoch milliseconds (`None` when records are timed by
    /// their Kafka timestamp).
    pub fn time_ms(&self) -> Option<i64> {
        self.time_ms
    }
}

/// The key the key field's value gives: a string's bytes, an integer's digits (as
/// [`key_text`]); a refusal for anything else, or for no value.
pub(crate) fn key_from(field: &FieldPath, value: Option<&Scalar>) -> Result<Vec<u8>, ExtractError> {
    let value = match value {
        None | Some(Scalar::Null) => {
            return Err(ExtractError::MissingKey {
                field: Some(field.to_string()),
            })
        }
        Some(value) => value,
    };
    let mut buffer = String::new();
    category_key(value, &mut buffer)
        .map(|key| key.as_bytes().to_vec())
        .ok_or_else(|| ExtractError::InvalidKey {
            field: field.to_string(),
            found: value.quote(),
        })
}

/// The time (epoch milliseconds) the time field's value gives, or its refusal.
pub(crate) fn time_from(field: &FieldPath, value: Option<&Scalar>) -> Result<i64, ExtractError> {
    let value = match value {
        None | Some(Scalar::Null) => {
            return Err(ExtractError::MissingTime {
                field: Some(field.to_string()),
            })
        }
        Some(value) => value,
    };
    Instant::of(value)
        .map(Instant::epoch_ms)
        .ok_or_else(|| ExtractError::NotATimeField {
            field: field.to_string(),
            found: match value.number() {
                Some(n) if n.abs() > MAX_EPOCH_MS => format!("{n} ms"),
                _ => value.quote(),
            },
        })
}

/// The key a field's JSON value gives, as per-key features read it: a string as it is, an
/// integer as its decimal digits (`5411`, `"5411"` and `5411.0` are one key); `None` for
/// anything else. A producer keying records by the same field sends these bytes as the Kafka
/// key, so that a key's records share a partition.
pub fn key_text(value: &Value) -> Option<String> {
    let mut buffer = String::new();
    category_key(&Scalar::of(value), &mut buffer).map(str::to_string)
}

impl NamedFeatures {
    /// Reads a record from its bytes for per-key items: one parser pass, as
    /// [`read`](Self::read), into `reading` (reused; on an error its content is unspecified).
    /// Refusals are those of [`read`](Self::read), plus a key field or time field that is
    /// missing or holds no key or time ([`ExtractError::MissingKey`],
    /// [`ExtractError::InvalidKey`], [`ExtractError::MissingTime`],
    /// [`ExtractError::NotATimeField`]).
    pub fn read_record(&self, bytes: &[u8], reading: &mut Reading) -> Result<(), ExtractError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
        self.plan()
            .read(text, |slots| {
                let slots = slots.ok_or(ExtractError::NotAnObject)?;
                self.fill(slots, reading)
            })
            .map_err(|e| ExtractError::NotJson(e.to_string()))?
    }

    /// [`read_record`](Self::read_record) of a parsed record: the same values.
    pub fn reading_of(&self, record: &Value, reading: &mut Reading) -> Result<(), ExtractError> {
        if !record.is_object() {
            return Err(ExtractError::NotAnObject);
        }
        let slots: Vec<Option<Scalar>> = self
            .plan()
            .paths
            .iter()
            .map(|path| path.lookup(record).map(Scalar::of))
            .collect();
        self.fill(&slots, reading)
    }

    /// Fills `reading` from a record's values, slot by slot.
    fn fill(&self, slots: &Slots<'_>, reading: &mut Reading) -> Result<(), ExtractError> {
        let plan = self.plan();
        let at = |slot: Option<usize>| slot.and_then(|slot| slots[slot].as_ref());
        reading.id = self.id_of(slots[plan.id_slot].as_ref())?;
        reading.key = match (plan.key_slot, self.spec().per_key().key_field()) {
            (Some(slot), Some(field)) => Some(key_from(field, at(Some(slot)))?),
            _ => None,
        };
        reading.time_ms = match (plan.time_slot, self.spec().per_key().time_field()) {
            (Some(slot), Some(field)) => Some(time_from(field, at(Some(slot)))?),
            _ => None,
        };
        reading.values.clear();
        let mut scratch = Scratch::default();
        let items = self.features().iter().zip(self.learned());
        for ((feature, learned), &slot) in items.zip(&plan.feature_slots) {
            let value = match feature.field() {
                Some(_) => self.value(feature, learned, at(slot), &mut scratch, slot)?,
                None => 0.0,
            };
            reading.values.push(value);
        }
        Ok(())
    }
}
