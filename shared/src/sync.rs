//! The sans-IO sync engine.
