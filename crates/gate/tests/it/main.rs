//! Integration tests of the disclosure gate (one binary).

#![allow(missing_docs)]

mod watermark;
