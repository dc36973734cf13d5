//! TODO: generator
