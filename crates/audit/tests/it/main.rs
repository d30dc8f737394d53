//! Bundle verification: an untouched export verifies; any single-byte change,
//! deletion, insertion or reordering is detected and the line is named.

#![allow(missing_docs)]

mod bundle;
