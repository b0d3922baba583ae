//! The worksheet record and its renderers.
