//! An application for authorization (授权运营申请, R-12): submitted against an open call,
//! with a scenario list and a data-need list where every requested field has its reason
//! (least necessary); reviewed by experts; decided by the authority, which records the
//! government approval; then on public notice; only a cleared application leads to an
//! agreement.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Refused;

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Being written by the applicant.
    Draft,
    /// Submitted; waiting for the call to close.
    Submitted,
    /// With the expert panel.
    InReview,
    /// Approved (government approval recorded); results on public notice.
    OnNotice,
    /// Notice over, every objection answered: an agreement may be drafted.
    Cleared,
    /// Not approved.
    Rejected,
    /// Withdrawn by the applicant.
    Withdrawn,
}

impl ApplicationState {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            ApplicationState::Draft => "draft",
            ApplicationState::Submitted => "submitted",
            ApplicationState::InReview => "in_review",
            ApplicationState::OnNotice => "on_notice",
            ApplicationState::Cleared => "cleared",
            ApplicationState::Rejected => "rejected",
            ApplicationState::Withdrawn => "withdrawn",
        }
    }

    /// Whether nothing can happen to it any more.
    pub fn is_final(self) -> bool {
        matches!(self, ApplicationState::Rejected | ApplicationState::Withdrawn)
    }
}

/// What can happen to an application, with the facts the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum ApplicationEvent {
    /// The applicant submits: the call must accept applications today; every requested
    /// field must have a reason; the attestations must be complete.
    Submit {
        /// The call accepts applications today.
        call_open: bool,
        /// Requested fields without a reason.
        unreasoned_fields: u32,
        /// Eligibility attestations missing.
        missing_attestations: u32,
    },
    /// The call closed: the panel takes it.
    StartReview,
    /// The authority decides on the panel's aggregate.
    Decide {
        /// Approved or not.
        approved: bool,
        /// The government approval is recorded (required to approve).
        government_approval: bool,
    },
    /// The notice period ended with every objection answered.
    ClearNotice {
        /// The notice machine says it is closed (period over, all answered).
        notice_closed: bool,
    },
    /// The applicant withdraws.
    Withdraw,
}

impl ApplicationEvent {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApplicationEvent::Submit { .. } => "submit",
            ApplicationEvent::StartReview => "start_review",
            ApplicationEvent::Decide { .. } => "decide",
            ApplicationEvent::ClearNotice { .. } => "clear_notice",
            ApplicationEvent::Withdraw => "withdraw",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationActor {
    /// The applicant.
    Applicant,
    /// The authority that issued the call (or the operator, in two-level mode).
    Issuer,
    /// The platform.
    System,
}

/// The next state, or why not.
pub fn transition(
    s: ApplicationState,
    event: ApplicationEvent,
    actor: ApplicationActor,
    _today: Date,
) -> Result<ApplicationState, Refused> {
    use ApplicationActor as A;
    use ApplicationEvent as E;
    use ApplicationState as S;
    let refuse = |rule| Err(Refused::new("application", s.code(), event.code(), rule));
    match (s, event, actor) {
        (S::Draft, E::Submit { call_open, .. }, A::Applicant) if !call_open => refuse("call_closed"),
        (S::Draft, E::Submit { unreasoned_fields, .. }, A::Applicant) if unreasoned_fields > 0 => {
            refuse("reason_required")
        }
        (
            S::Draft,
            E::Submit {
                missing_attestations, ..
            },
            A::Applicant,
        ) if missing_attestations > 0 => refuse("attestations_missing"),
        (S::Draft, E::Submit { .. }, A::Applicant) => Ok(S::Submitted),
        (S::Submitted, E::StartReview, A::Issuer | A::System) => Ok(S::InReview),
        (S::InReview, E::Decide { approved: false, .. }, A::Issuer) => Ok(S::Rejected),
        (
            S::InReview,
            E::Decide {
                government_approval: false,
                ..
            },
            A::Issuer,
        ) => refuse("government_approval"),
        (S::InReview, E::Decide { .. }, A::Issuer) => Ok(S::OnNotice),
        (S::OnNotice, E::ClearNotice { notice_closed: false }, _) => refuse("notice_open"),
        (S::OnNotice, E::ClearNotice { .. }, A::Issuer | A::System) => Ok(S::Cleared),
        (S::Draft | S::Submitted | S::InReview | S::OnNotice, E::Withdraw, A::Applicant) => Ok(S::Withdrawn),
        (_, _, _) if s.is_final() => refuse("final"),
        (_, E::Submit { .. } | E::Withdraw, A::Issuer | A::System) => refuse("applicant_only"),
        _ => refuse("not_in_this_state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = ApplicationEvent> {
        prop_oneof![
            (any::<bool>(), 0u32..2, 0u32..2).prop_map(|(c, u, m)| ApplicationEvent::Submit {
                call_open: c,
                unreasoned_fields: u,
                missing_attestations: m
            }),
            Just(ApplicationEvent::StartReview),
            (any::<bool>(), any::<bool>()).prop_map(|(a, g)| ApplicationEvent::Decide {
                approved: a,
                government_approval: g
            }),
            any::<bool>().prop_map(|n| ApplicationEvent::ClearNotice { notice_closed: n }),
            Just(ApplicationEvent::Withdraw),
        ]
    }

    fn actor() -> impl Strategy<Value = ApplicationActor> {
        prop_oneof![
            Just(ApplicationActor::Applicant),
            Just(ApplicationActor::Issuer),
            Just(ApplicationActor::System)
        ]
    }

    proptest! {
        /// Nothing is cleared without a complete submission to an open call, an approval with
        /// the government's decision recorded, and a closed notice; final states stay final.
        #[test]
        fn only_complete_approved_noticed_applications_are_cleared(steps in proptest::collection::vec((event(), actor()), 0..30)) {
            let mut s = ApplicationState::Draft;
            let (mut submitted_ok, mut approved_ok, mut notice_ok) = (false, false, false);
            for (e, a) in steps {
                if let Ok(next) = transition(s, e, a, date(2026, 1, 1)) {
                    prop_assert!(!s.is_final());
                    match e {
                        ApplicationEvent::Submit { call_open, unreasoned_fields, missing_attestations } =>
                            submitted_ok = call_open && unreasoned_fields == 0 && missing_attestations == 0,
                        ApplicationEvent::Decide { approved, government_approval } if next == ApplicationState::OnNotice =>
                            approved_ok = approved && government_approval,
                        ApplicationEvent::ClearNotice { notice_closed } => notice_ok = notice_closed,
                        _ => {}
                    }
                    if next == ApplicationState::Cleared {
                        prop_assert!(submitted_ok && approved_ok && notice_ok);
                    }
                    s = next;
                }
            }
        }
    }
}
