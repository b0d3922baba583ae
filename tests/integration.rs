//! Integration tests: the `iser-wizard` binary seen from the outside.
