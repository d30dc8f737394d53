//! Integration tests of shuyu-mask, one binary: the optimal search on the Adult data against
//! an exhaustive, independently written oracle.

#![allow(missing_docs)]

mod adult;
mod oracle;
