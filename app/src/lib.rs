//! chibo app
