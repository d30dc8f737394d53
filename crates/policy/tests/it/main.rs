//! Policy tests: the policies validate, the action list matches the schema,
//! and the decision table of ARCHITECTURE.md holds.

#![allow(missing_docs)]

mod decisions;
