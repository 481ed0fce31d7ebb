//! chibo relay library.
