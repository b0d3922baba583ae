//! Block I/O for the verify step (being written).
