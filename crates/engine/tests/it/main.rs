//! Integration tests of the engine (one binary: see CONVENTIONS.md).

#![allow(missing_docs)]

mod acro;
mod gate;
