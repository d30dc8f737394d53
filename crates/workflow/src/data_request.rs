//! Data requests — one scenario, one list, one review (一场景一清单一审核, R-24): for an
//! approved scenario, a list of datasets and fields from the development catalog with
//! row scope, purpose, retention and security measures, reviewed by a configurable chain
//! (Binzhou: the authority and each affected provider; Yancheng: the operator). When every
//! reviewer approved, the scenario manifest is issued. Any change is a new review; the
//! agreement ending revokes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::Refused;

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RequestState {
    /// Being written (revision `revision`).
    Draft {
        /// 1 for the first list, +1 for each change.
        revision: u32,
    },
    /// With the reviewers; who has not approved yet.
    InReview {
        /// The revision under review.
        revision: u32,
        /// Reviewers still to approve.
        pending: BTreeSet<String>,
    },
    /// Approved: the manifest of `revision` is in force.
    Approved {
        /// The revision in force.
        revision: u32,
    },
    /// Refused by a reviewer.
    Rejected,
    /// The agreement beneath it ended, or the developer withdrew it.
    Revoked,
}

impl RequestState {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RequestState::Draft { .. } => "draft",
            RequestState::InReview { .. } => "in_review",
            RequestState::Approved { .. } => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Revoked => "revoked",
        }
    }
}

/// What can happen to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum RequestEvent {
    /// The developer submits the list to its review chain.
    Submit {
        /// The chain (Binzhou: the authority and each affected provider; Yancheng: the operator).
        reviewers: BTreeSet<String>,
        /// Fields without a stated purpose (least necessary): must be none.
        unreasoned_fields: u32,
        /// Whether the scenario's agreement is in force.
        agreement_effective: bool,
    },
    /// A reviewer approves.
    Approve,
    /// A reviewer sends it back for changes.
    Return,
    /// A reviewer refuses it.
    Reject,
    /// The developer changes an approved list: a new revision, a new review (the
    /// approved manifest stays in force until the new one is approved).
    Amend,
    /// The agreement ended or the developer withdrew: every door of this scenario closes.
    Revoke,
}

impl RequestEvent {
    fn code(&self) -> &'static str {
        match self {
            RequestEvent::Submit { .. } => "submit",
            RequestEvent::Approve => "approve",
            RequestEvent::Return => "return",
            RequestEvent::Reject => "reject",
            RequestEvent::Amend => "amend",
            RequestEvent::Revoke => "revoke",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestActor {
    /// The requesting developer (or operator, in one-level mode).
    Requester,
    /// A reviewer, by its id in the chain.
    Reviewer(String),
    /// The platform (agreement ended).
    System,
}

/// What follows a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestEffect {
    /// Issue the signed scenario manifest of this revision (with its diff to the previous one).
    IssueManifest {
        /// The revision.
        revision: u32,
    },
    /// Close the scenario's workspace and access.
    RevokeAccess,
}

/// The next state and effects, or why not.
pub fn transition(
    s: &RequestState,
    event: &RequestEvent,
    actor: &RequestActor,
) -> Result<(RequestState, Vec<RequestEffect>), Refused> {
    use RequestState as S;
    let refuse = |rule| Err(Refused::new("data_request", s.code(), event.code(), rule));
    match (s, event, actor) {
        (S::Rejected | S::Revoked, _, _) => refuse("final"),
        (_, RequestEvent::Revoke, RequestActor::Requester | RequestActor::System) => {
            Ok((S::Revoked, vec![RequestEffect::RevokeAccess]))
        }
        (_, RequestEvent::Revoke, _) => refuse("requester_or_system"),
        (
            S::Draft { revision },
            RequestEvent::Submit {
                reviewers,
                unreasoned_fields,
                agreement_effective,
            },
            RequestActor::Requester,
        ) => {
            if !agreement_effective {
                return refuse("agreement_not_effective");
            }
            if *unreasoned_fields > 0 {
                return refuse("reason_required");
            }
            if reviewers.is_empty() {
                return refuse("no_reviewers");
            }
            Ok((
                S::InReview {
                    revision: *revision,
                    pending: reviewers.clone(),
                },
                Vec::new(),
            ))
        }
        (S::InReview { revision, pending }, ev, RequestActor::Reviewer(who)) => {
            if !pending.contains(who) {
                return refuse("not_a_pending_reviewer");
            }
            match ev {
                RequestEvent::Approve => {
                    let mut rest = pending.clone();
                    rest.remove(who);
                    if rest.is_empty() {
                        Ok((
                            S::Approved { revision: *revision },
                            vec![RequestEffect::IssueManifest { revision: *revision }],
                        ))
                    } else {
                        Ok((
                            S::InReview {
                                revision: *revision,
                                pending: rest,
                            },
                            Vec::new(),
                        ))
                    }
                }
                RequestEvent::Return => Ok((S::Draft { revision: *revision }, Vec::new())),
                RequestEvent::Reject => Ok((S::Rejected, Vec::new())),
                _ => refuse("not_in_this_state"),
            }
        }
        (S::Approved { revision }, RequestEvent::Amend, RequestActor::Requester) => {
            Ok((S::Draft { revision: revision + 1 }, Vec::new()))
        }
        _ => refuse("not_in_this_state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn binzhou_needs_the_authority_and_every_affected_provider() {
        let s = RequestState::Draft { revision: 1 };
        let submit = RequestEvent::Submit {
            reviewers: chain(&["authority", "provider:gongan", "provider:yibao"]),
            unreasoned_fields: 0,
            agreement_effective: true,
        };
        let (s, _) = transition(&s, &submit, &RequestActor::Requester).expect("submit");
        let (s, fx) = transition(&s, &RequestEvent::Approve, &RequestActor::Reviewer("authority".into())).expect("a");
        assert!(fx.is_empty());
        assert!(transition(&s, &RequestEvent::Approve, &RequestActor::Reviewer("authority".into())).is_err());
        let (s, _) = transition(
            &s,
            &RequestEvent::Approve,
            &RequestActor::Reviewer("provider:gongan".into()),
        )
        .expect("b");
        let (s, fx) = transition(
            &s,
            &RequestEvent::Approve,
            &RequestActor::Reviewer("provider:yibao".into()),
        )
        .expect("c");
        assert_eq!(s, RequestState::Approved { revision: 1 });
        assert_eq!(fx, vec![RequestEffect::IssueManifest { revision: 1 }]);
        let (s, _) = transition(&s, &RequestEvent::Amend, &RequestActor::Requester).expect("amend");
        assert_eq!(s, RequestState::Draft { revision: 2 });
    }

    fn event() -> impl Strategy<Value = RequestEvent> {
        prop_oneof![
            (
                proptest::collection::btree_set(prop_oneof![Just("a".to_string()), Just("b".to_string())], 0..3),
                0u32..2,
                any::<bool>()
            )
                .prop_map(|(r, u, e)| RequestEvent::Submit {
                    reviewers: r,
                    unreasoned_fields: u,
                    agreement_effective: e
                }),
            Just(RequestEvent::Approve),
            Just(RequestEvent::Return),
            Just(RequestEvent::Reject),
            Just(RequestEvent::Amend),
            Just(RequestEvent::Revoke),
        ]
    }

    fn actor() -> impl Strategy<Value = RequestActor> {
        prop_oneof![
            Just(RequestActor::Requester),
            Just(RequestActor::Reviewer("a".into())),
            Just(RequestActor::Reviewer("b".into())),
            Just(RequestActor::Reviewer("x".into())),
            Just(RequestActor::System),
        ]
    }

    proptest! {
        /// A manifest is issued only when every reviewer of the chain approved the revision
        /// submitted under an effective agreement with every field reasoned; revocation always
        /// closes access; final states stay final.
        #[test]
        fn a_manifest_needs_every_reviewer_and_revocation_closes_access(steps in proptest::collection::vec((event(), actor()), 0..40)) {
            let mut s = RequestState::Draft { revision: 1 };
            let mut approvals: BTreeSet<String> = BTreeSet::new();
            let mut chain: BTreeSet<String> = BTreeSet::new();
            for (e, a) in steps {
                if let Ok((next, fx)) = transition(&s, &e, &a) {
                    prop_assert!(!matches!(s, RequestState::Rejected | RequestState::Revoked));
                    if let RequestEvent::Submit { reviewers, unreasoned_fields, agreement_effective } = &e {
                        prop_assert!(*agreement_effective && *unreasoned_fields == 0 && !reviewers.is_empty());
                        chain = reviewers.clone();
                        approvals.clear();
                    }
                    if let (RequestEvent::Approve, RequestActor::Reviewer(r)) = (&e, &a) { approvals.insert(r.clone()); }
                    if fx.iter().any(|f| matches!(f, RequestEffect::IssueManifest { .. })) {
                        prop_assert_eq!(&approvals, &chain);
                    }
                    if next == RequestState::Revoked { prop_assert_eq!(fx, vec![RequestEffect::RevokeAccess]); }
                    s = next;
                }
            }
        }
    }
}
