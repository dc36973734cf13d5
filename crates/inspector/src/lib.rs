//! TODO: inspector
