//! TODO: trainer
