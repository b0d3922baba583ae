//! Parser module (being written).
