//! Examples of embedding cutter in another Rust tool; run them with `cargo run -p cutter-examples --example <name>`.
