//! Why a record is refused: [`DecodeError`] (not a usable transaction) and [`Rejection`]
//! (what a dead letter carries), each with a stable, machine-readable reason.

/// Why a record is not a usable transaction. [`reason`](Self::reason) is a stable,
/// machine-readable code; `Display` says it for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Larger than the configured limit.
    #[error("the record has {size} bytes, more than the limit of {limit}")]
    Oversized {
        /// Record size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("the record is not UTF-8 text")]
    NotUtf8,
    /// Not JSON.
    #[error("the record is not JSON: {0}")]
    NotJson(String),
    /// Nested deeper than the limit.
    #[error("the record is nested deeper than {limit} levels")]
    TooDeep {
        /// Limit.
        limit: usize,
    },
    /// `NaN` or `Infinity` outside `data` (JSON has no such numbers, so the record could not
    /// be passed on with its fields).
    #[error("the record holds NaN or Infinity, which are not numbers in JSON")]
    NonFiniteLiteral,
    /// A number outside `data` too large for a 64-bit float.
    #[error("a number is beyond the range of a 64-bit float")]
    NumberOutOfRange,
    /// JSON, but not an object.
    #[error("the record is JSON but not an object")]
    NotAnObject,
    /// No `id` field.
    #[error("the record has no `id`")]
    MissingId,
    /// An `id` that is not an integer or a non-empty string.
    #[error("`id` must be an integer or a non-empty string")]
    InvalidId,
    /// No `data` field.
    #[error("the record has no `data`")]
    MissingData,
    /// `data` is not a list.
    #[error("`data` must be a list of numbers, or a list holding one list of numbers")]
    DataNotArray,
    /// `data` is an empty list.
    #[error("`data` is empty")]
    EmptyData,
    /// `data` mixes numbers and lists, or holds rows of different lengths.
    #[error("`data` is ragged: it mixes numbers and lists or rows of different lengths")]
    RaggedData,
    /// `data` holds several rows; a transaction is one row.
    #[error("`data` holds {rows} rows; a transaction is one row")]
    MultipleRows {
        /// Rows found.
        rows: usize,
    },
    /// `data` nests lists inside its row.
    #[error("`data` is nested too deep: a row must be a list of numbers")]
    DataTooDeep,
    /// A value in `data` is not a number.
    #[error("`data` value {index} is not a number")]
    NonNumeric {
        /// Position in the row.
        index: usize,
    },
    /// A value in `data` is `NaN`, `Infinity`, `-Infinity`, or a number beyond the range of a
    /// 64-bit float (which would be infinite).
    #[error("`data` value {index} is not finite (NaN, Infinity or beyond a 64-bit float)")]
    NonFinite {
        /// Position in the row.
        index: usize,
    },
    /// `label` is present but neither 0 nor 1.
    #[error("`label` must be 0 or 1")]
    InvalidLabel,
    /// An anomaly record lacks a field it must have.
    #[error("the record has no valid `{0}`")]
    MissingField(&'static str),
}

impl DecodeError {
    /// The stable, machine-readable reason, as dead letters carry it.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::NotUtf8 => "not_utf8",
            DecodeError::NotJson(_) => "not_json",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::NonFiniteLiteral => "non_finite",
            DecodeError::NumberOutOfRange => "number_out_of_range",
            DecodeError::NotAnObject => "not_an_object",
            DecodeError::MissingId => "missing_id",
            DecodeError::InvalidId => "invalid_id",
            DecodeError::MissingData => "missing_data",
            DecodeError::DataNotArray => "data_not_array",
            DecodeError::EmptyData => "empty_data",
            DecodeError::RaggedData => "ragged_data",
            DecodeError::MultipleRows { .. } => "multiple_rows",
            DecodeError::DataTooDeep => "data_too_deep",
            DecodeError::NonNumeric { .. } => "non_numeric",
            DecodeError::NonFinite { .. } => "non_finite",
            DecodeError::InvalidLabel => "invalid_label",
            DecodeError::MissingField(_) => "missing_field",
        }
    }
}

/// Why the detector refused a record: what a dead letter carries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The record is not a usable transaction.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A usable transaction with another number of features than the model's.
    #[error("the record has {found} features, the model expects {expected}")]
    FeatureCount {
        /// Model's feature count.
        expected: usize,
        /// Record's feature count.
        found: usize,
    },
}

impl Rejection {
    /// The stable, machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Decode(error) => error.reason(),
            Rejection::FeatureCount { .. } => "feature_count",
        }
    }
}
