//! The life of a dataset version as a pure state machine (CONVENTIONS.md,
//! "State machines as data"): persistence and audit wrap [`transition`]; they
//! never re-implement its rules.

use serde::{Deserialize, Serialize};

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Imported; the provider reviews the classification and the error report.
    PendingReview,
    /// Accepted: the dataset's current version.
    Active,
    /// Replaced by a newer accepted version (kept, immutable).
    Superseded,
    /// Rejected by the provider (or refused as core data): its data was destroyed.
    Rejected,
    /// Was current, taken back by the provider: the version before it is current again
    /// (kept, immutable, never current again).
    RolledBack,
}

impl VersionState {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            VersionState::PendingReview => "pending_review",
            VersionState::Active => "active",
            VersionState::Superseded => "superseded",
            VersionState::Rejected => "rejected",
            VersionState::RolledBack => "rolled_back",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<VersionState> {
        [
            VersionState::PendingReview,
            VersionState::Active,
            VersionState::Superseded,
            VersionState::Rejected,
            VersionState::RolledBack,
        ]
        .into_iter()
        .find(|v| v.code() == s)
    }
}

/// What can happen to a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionEvent {
    /// The provider corrects a column's classification.
    Correct,
    /// The provider accepts the version (it holds no core data).
    Accept,
    /// The provider rejects it, or it holds core data.
    Reject,
    /// A newer version was accepted.
    Supersede,
    /// The provider takes the current version back.
    RollBack,
    /// The version it replaced is current again (a rollback).
    Reinstate,
}

/// A transition that the rules do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a version that is {from:?} cannot be {event:?}")]
pub struct IllegalTransition {
    /// The state.
    pub from: VersionState,
    /// The event.
    pub event: VersionEvent,
}

/// The next state, or why not.
pub fn transition(from: VersionState, event: VersionEvent) -> Result<VersionState, IllegalTransition> {
    use VersionEvent as E;
    use VersionState as S;
    match (from, event) {
        (S::PendingReview, E::Correct) => Ok(S::PendingReview),
        (S::PendingReview, E::Accept) => Ok(S::Active),
        (S::PendingReview, E::Reject) => Ok(S::Rejected),
        (S::Active, E::Supersede) => Ok(S::Superseded),
        (S::Active, E::RollBack) => Ok(S::RolledBack),
        (S::Superseded, E::Reinstate) => Ok(S::Active),
        (from, event) => Err(IllegalTransition { from, event }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = VersionEvent> {
        prop_oneof![
            Just(VersionEvent::Correct),
            Just(VersionEvent::Accept),
            Just(VersionEvent::Reject),
            Just(VersionEvent::Supersede),
            Just(VersionEvent::RollBack),
            Just(VersionEvent::Reinstate)
        ]
    }

    proptest! {
        #[test]
        fn rejected_and_rolled_back_versions_never_come_back(events in proptest::collection::vec(event(), 0..20)) {
            let mut s = VersionState::PendingReview;
            let mut reviewed = false;
            for e in events {
                if let Ok(next) = transition(s, e) {
                    prop_assert!(
                        !matches!(s, VersionState::Rejected | VersionState::RolledBack),
                        "a final state moved: {s:?} --{e:?}--> {next:?}"
                    );
                    // Only a reviewed version is ever current, and a superseded one only
                    // becomes current again by a rollback.
                    if next == VersionState::Active {
                        prop_assert!(e == VersionEvent::Accept || (s == VersionState::Superseded && e == VersionEvent::Reinstate));
                    }
                    prop_assert!(!(reviewed && next == VersionState::PendingReview), "back to review");
                    if next != VersionState::PendingReview {
                        reviewed = true;
                    }
                    s = next;
                }
            }
        }
    }

    #[test]
    fn only_reviewed_versions_become_active() {
        assert_eq!(
            transition(VersionState::PendingReview, VersionEvent::Accept),
            Ok(VersionState::Active)
        );
        assert!(transition(VersionState::Active, VersionEvent::Correct).is_err());
        assert!(transition(VersionState::Rejected, VersionEvent::Accept).is_err());
        assert_eq!(VersionState::parse("pending_review"), Some(VersionState::PendingReview));
    }
}
