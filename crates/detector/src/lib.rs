//! TODO: detector
