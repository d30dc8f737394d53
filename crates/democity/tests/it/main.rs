//! Integration tests of the demo-city generator, one binary (see CONVENTIONS).
#![allow(missing_docs)]

mod common;
mod determinism;
mod files;
mod realism;
mod validity;
