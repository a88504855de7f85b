//! Examples of embedding cutter; see the examples/ folder.
