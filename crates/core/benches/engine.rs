//! Engine benchmark (being written by the engine work).
fn main() {}
