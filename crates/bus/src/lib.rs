//! TODO: bus
