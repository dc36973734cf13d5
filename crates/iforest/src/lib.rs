//! TODO: iforest
