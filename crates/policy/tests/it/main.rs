//! Policy tests: the policies validate, the action list matches the schema,
//! and the decision table of ARCHITECTURE.md holds.

mod decisions;
