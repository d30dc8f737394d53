//! The catalog chain (R-18…R-23) as pure state machines: which event moves an
//! entry of which kind from which state, and nothing else. Who may send an event
//! is the policies' business (`catalogs.cedar`); persistence and audit wrap
//! [`transition`] in [`crate::entries`].
//!
//! - **resource** (公共数据资源目录): the provider registers, the authority confirms
//!   the registration (YP4(二)1);
//! - **operation** (授权运营数据资源目录): the operator's demand on a registered,
//!   authorizable resource, confirmed by the authority (Y§8–9);
//! - **development** (授权开发数据资源目录): the operator classifies, grades and
//!   publishes a confirmed demand (Y§10);
//! - **social** (融合开发社会数据资源目录): a developer applies to bring third-party
//!   data, the operator approves (the import is allowed only then) and, once the
//!   data is in, publishes it (Y§12–13).

use serde::{Deserialize, Serialize};

/// Which catalog an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// 公共数据资源目录.
    Resource,
    /// 授权运营数据资源目录.
    Operation,
    /// 授权开发数据资源目录.
    Development,
    /// 融合开发社会数据资源目录.
    Social,
}

impl EntryKind {
    /// Every kind, in the order of the chain.
    pub const ALL: [EntryKind; 4] = [
        EntryKind::Resource,
        EntryKind::Operation,
        EntryKind::Development,
        EntryKind::Social,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            EntryKind::Resource => "resource",
            EntryKind::Operation => "operation",
            EntryKind::Development => "development",
            EntryKind::Social => "social",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Being written by its keeper; only drafts change content.
    Draft,
    /// Waiting for the decision of the authority (resource, operation) or the operator (social).
    Submitted,
    /// Social data approved: the developer may import it; not yet public.
    Approved,
    /// In its catalog: registered, confirmed or published.
    Published,
    /// Refused (operation demands, social data).
    Rejected,
    /// Taken out by its keeper; final.
    Withdrawn,
}

impl EntryState {
    /// Every state.
    pub const ALL: [EntryState; 6] = [
        EntryState::Draft,
        EntryState::Submitted,
        EntryState::Approved,
        EntryState::Published,
        EntryState::Rejected,
        EntryState::Withdrawn,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            EntryState::Draft => "draft",
            EntryState::Submitted => "submitted",
            EntryState::Approved => "approved",
            EntryState::Published => "published",
            EntryState::Rejected => "rejected",
            EntryState::Withdrawn => "withdrawn",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<EntryState> {
        EntryState::ALL.into_iter().find(|k| k.code() == s)
    }

    /// Whether nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, EntryState::Rejected | EntryState::Withdrawn)
    }
}

/// What can happen to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryEvent {
    /// The keeper sends it for decision.
    Submit,
    /// The decider confirms (resource, operation) or approves (social).
    Approve,
    /// The decider sends it back to the keeper with a reason.
    Return,
    /// The decider refuses it.
    Reject,
    /// Into the public catalog (development by the operator; social once imported).
    Publish,
    /// The keeper takes a published entry back to change it.
    Revise,
    /// The keeper takes it out for good.
    Withdraw,
}

impl EntryEvent {
    /// Every event.
    pub const ALL: [EntryEvent; 7] = [
        EntryEvent::Submit,
        EntryEvent::Approve,
        EntryEvent::Return,
        EntryEvent::Reject,
        EntryEvent::Publish,
        EntryEvent::Revise,
        EntryEvent::Withdraw,
    ];

    /// The stable code (API paths and audit actions).
    pub fn code(self) -> &'static str {
        match self {
            EntryEvent::Submit => "submit",
            EntryEvent::Approve => "approve",
            EntryEvent::Return => "return",
            EntryEvent::Reject => "reject",
            EntryEvent::Publish => "publish",
            EntryEvent::Revise => "revise",
            EntryEvent::Withdraw => "withdraw",
        }
    }

    /// Parses a code.
    pub fn parse(s: &str) -> Option<EntryEvent> {
        EntryEvent::ALL.into_iter().find(|k| k.code() == s)
    }

    /// Who may send it: the keeper (`catalog.edit`), the decider (`catalog.decide`) or the publisher.
    pub fn authority(self) -> Who {
        match self {
            EntryEvent::Submit | EntryEvent::Revise | EntryEvent::Withdraw => Who::Keeper,
            EntryEvent::Approve | EntryEvent::Return | EntryEvent::Reject => Who::Decider,
            EntryEvent::Publish => Who::Publisher,
        }
    }
}

/// The three hands an event can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The organisation that keeps the entry.
    Keeper,
    /// The authority (resource, operation) or the operator (social).
    Decider,
    /// The operator (development, social).
    Publisher,
}

/// A transition that the rules do not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {kind:?} catalog entry that is {from:?} cannot be {event:?}")]
pub struct IllegalEntryTransition {
    /// The entry's kind.
    pub kind: EntryKind,
    /// Its state.
    pub from: EntryState,
    /// The event.
    pub event: EntryEvent,
}

/// The next state, or why not.
pub fn transition(kind: EntryKind, from: EntryState, event: EntryEvent) -> Result<EntryState, IllegalEntryTransition> {
    use EntryEvent as E;
    use EntryKind as K;
    use EntryState as S;
    let next = match (kind, from, event) {
        (_, s, E::Withdraw) if !s.is_final() => Some(S::Withdrawn),
        // Registration, demands and social applications are decided by someone else.
        (K::Resource | K::Operation | K::Social, S::Draft, E::Submit) => Some(S::Submitted),
        (K::Resource | K::Operation | K::Social, S::Submitted, E::Return) => Some(S::Draft),
        (K::Operation | K::Social, S::Submitted, E::Reject) => Some(S::Rejected),
        (K::Resource | K::Operation, S::Submitted, E::Approve) => Some(S::Published),
        (K::Resource | K::Operation, S::Published, E::Revise) => Some(S::Draft),
        // The operator classifies, grades and publishes its own development catalog.
        (K::Development, S::Draft, E::Publish) => Some(S::Published),
        (K::Development, S::Published, E::Revise) => Some(S::Draft),
        // Social data: approval opens the import; publication follows the data.
        (K::Social, S::Submitted, E::Approve) => Some(S::Approved),
        (K::Social, S::Approved, E::Publish) => Some(S::Published),
        (K::Social, S::Published, E::Revise) => Some(S::Approved),
        _ => None,
    };
    next.ok_or(IllegalEntryTransition { kind, from, event })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = EntryKind> {
        proptest::sample::select(EntryKind::ALL.to_vec())
    }
    fn event() -> impl Strategy<Value = EntryEvent> {
        proptest::sample::select(EntryEvent::ALL.to_vec())
    }

    proptest! {
        /// No entry reaches its catalog without the decision the rules require, and final states stay final.
        #[test]
        fn nothing_is_published_without_its_decision(k in kind(), events in proptest::collection::vec(event(), 0..30)) {
            let mut s = EntryState::Draft;
            let mut decided = false;
            for e in events {
                match transition(k, s, e) {
                    Ok(next) => {
                        prop_assert!(!s.is_final(), "{k:?}: final {s:?} moved by {e:?}");
                        if e == EntryEvent::Approve {
                            decided = true;
                        }
                        if next == EntryState::Published && k != EntryKind::Development {
                            prop_assert!(decided, "{k:?} published without approval");
                        }
                        if next == EntryState::Draft {
                            decided = false;
                        }
                        prop_assert_eq!(e.authority() == Who::Publisher, e == EntryEvent::Publish);
                        s = next;
                    }
                    Err(err) => prop_assert_eq!(err.from, s),
                }
            }
        }
    }

    #[test]
    fn the_chain_in_order() {
        use EntryEvent as E;
        use EntryState as S;
        let run = |k, evs: &[E]| evs.iter().try_fold(S::Draft, |s, e| transition(k, s, *e));
        assert_eq!(run(EntryKind::Resource, &[E::Submit, E::Approve]), Ok(S::Published));
        assert_eq!(
            run(EntryKind::Operation, &[E::Submit, E::Return, E::Submit, E::Approve]),
            Ok(S::Published)
        );
        assert_eq!(run(EntryKind::Development, &[E::Publish]), Ok(S::Published));
        assert_eq!(
            run(EntryKind::Social, &[E::Submit, E::Approve, E::Publish]),
            Ok(S::Published)
        );
        // The authority does not confirm its own resource catalog entries into anything else,
        // a development entry needs no approval, social data is not public before it is approved.
        assert!(run(EntryKind::Resource, &[E::Submit, E::Reject]).is_err());
        assert!(run(EntryKind::Development, &[E::Submit]).is_err());
        assert!(run(EntryKind::Social, &[E::Submit, E::Publish]).is_err());
        assert!(run(EntryKind::Social, &[E::Withdraw, E::Submit]).is_err());
        assert_eq!(EntryKind::parse("social"), Some(EntryKind::Social));
        assert_eq!(EntryEvent::parse("revise"), Some(E::Revise));
    }
}
