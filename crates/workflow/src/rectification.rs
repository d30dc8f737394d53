//! Rectification (整改, R-17, B§30, Y§22): a violation found, the holder gets 30 days to
//! rectify, optionally with the agreement suspended meanwhile; the authority accepts the
//! rectification (the agreement is restored) or, when it fails or the deadline passes,
//! the agreement is terminated.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Refused;

/// Days allowed to rectify.
pub const DAYS_TO_RECTIFY: i32 = 30;

/// Where a rectification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationState {
    /// Ordered; waiting for the holder's plan.
    Ordered,
    /// The holder says it is done; the authority checks.
    Reported,
    /// Accepted: the agreement is restored.
    Accepted,
    /// Failed or overdue: the agreement is terminated.
    Failed,
}

impl RectificationState {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            RectificationState::Ordered => "ordered",
            RectificationState::Reported => "reported",
            RectificationState::Accepted => "accepted",
            RectificationState::Failed => "failed",
        }
    }
}

/// A rectification as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    /// Its state.
    pub state: RectificationState,
    /// The last day to report it done.
    pub deadline: Date,
    /// Whether the agreement is suspended meanwhile.
    pub suspended: bool,
}

/// What the agreement must undergo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationEffect {
    /// Suspend it now (every door closed until restored).
    SuspendAgreement,
    /// Restore it.
    RestoreAgreement,
    /// Terminate it.
    TerminateAgreement,
}

/// Orders a rectification on `today`: 30 days, optionally suspending the agreement.
pub fn order(today: Date, suspend: bool) -> (Rectification, Vec<RectificationEffect>) {
    let r = Rectification {
        state: RectificationState::Ordered,
        deadline: today.checked_add(DAYS_TO_RECTIFY.days()).unwrap_or(Date::MAX),
        suspended: suspend,
    };
    let fx = if suspend {
        vec![RectificationEffect::SuspendAgreement]
    } else {
        Vec::new()
    };
    (r, fx)
}

/// What can happen to a rectification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationEvent {
    /// The holder reports it rectified (by the deadline).
    Report,
    /// The authority accepts.
    Accept,
    /// The authority finds it not rectified.
    Reject,
    /// Time passes.
    Tick,
}

impl RectificationEvent {
    fn code(self) -> &'static str {
        match self {
            RectificationEvent::Report => "report",
            RectificationEvent::Accept => "accept",
            RectificationEvent::Reject => "reject",
            RectificationEvent::Tick => "tick",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RectificationActor {
    /// The agreement's holder.
    Holder,
    /// The authority (or the operator, for development agreements).
    Authority,
    /// The platform.
    System,
}

/// The next rectification and what the agreement must undergo, or why not.
pub fn transition(
    r: &Rectification,
    event: RectificationEvent,
    actor: RectificationActor,
    today: Date,
) -> Result<(Rectification, Vec<RectificationEffect>), Refused> {
    use RectificationActor as A;
    use RectificationEvent as E;
    use RectificationState as S;
    let refuse = |rule| Err(Refused::new("rectification", r.state.code(), event.code(), rule));
    let with = |state| Rectification { state, ..*r };
    let failed = || Ok((with(S::Failed), vec![RectificationEffect::TerminateAgreement]));
    match (r.state, event, actor) {
        (S::Accepted | S::Failed, _, _) => refuse("final"),
        (S::Ordered, E::Tick, A::System) if today > r.deadline => failed(),
        (_, E::Tick, A::System) => Ok((*r, Vec::new())),
        (_, E::Tick, _) => refuse("system_only"),
        (S::Ordered, E::Report, A::Holder) if today > r.deadline => refuse("deadline_passed"),
        (S::Ordered, E::Report, A::Holder) => Ok((with(S::Reported), Vec::new())),
        (S::Reported, E::Accept, A::Authority) => {
            let fx = if r.suspended {
                vec![RectificationEffect::RestoreAgreement]
            } else {
                Vec::new()
            };
            Ok((with(S::Accepted), fx))
        }
        (S::Reported | S::Ordered, E::Reject, A::Authority) => failed(),
        (_, E::Report, _) => refuse("holder_only"),
        (_, E::Accept | E::Reject, _) => refuse("authority_only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn thirty_days_then_termination() {
        let (r, fx) = order(date(2026, 6, 1), true);
        assert_eq!(fx, vec![RectificationEffect::SuspendAgreement]);
        assert_eq!(r.deadline, date(2026, 7, 1));
        let (r2, fx) = transition(
            &r,
            RectificationEvent::Tick,
            RectificationActor::System,
            date(2026, 7, 2),
        )
        .expect("tick");
        assert_eq!(
            (r2.state, fx),
            (
                RectificationState::Failed,
                vec![RectificationEffect::TerminateAgreement]
            )
        );
        let (r3, _) = transition(
            &r,
            RectificationEvent::Report,
            RectificationActor::Holder,
            date(2026, 6, 20),
        )
        .expect("report");
        let (r4, fx) = transition(
            &r3,
            RectificationEvent::Accept,
            RectificationActor::Authority,
            date(2026, 7, 10),
        )
        .expect("accept");
        assert_eq!(
            (r4.state, fx),
            (
                RectificationState::Accepted,
                vec![RectificationEffect::RestoreAgreement]
            )
        );
    }

    proptest! {
        #[test]
        fn a_rectification_ends_in_restoration_or_termination_and_stays_there(
            suspend in any::<bool>(),
            steps in proptest::collection::vec((0u8..4, 0u8..3, 0i32..15), 0..30)
        ) {
            let (mut r, _) = order(date(2026, 6, 1), suspend);
            let mut today = date(2026, 6, 1);
            for (e, a, d) in steps {
                today = today.checked_add(d.days()).expect("date");
                let e = [RectificationEvent::Report, RectificationEvent::Accept, RectificationEvent::Reject, RectificationEvent::Tick][e as usize];
                let a = [RectificationActor::Holder, RectificationActor::Authority, RectificationActor::System][a as usize];
                if let Ok((next, fx)) = transition(&r, e, a, today) {
                    prop_assert!(!matches!(r.state, RectificationState::Accepted | RectificationState::Failed));
                    if next.state == RectificationState::Failed { prop_assert_eq!(fx.clone(), vec![RectificationEffect::TerminateAgreement]); }
                    if next.state == RectificationState::Accepted && suspend { prop_assert_eq!(fx.clone(), vec![RectificationEffect::RestoreAgreement]); }
                    if e == RectificationEvent::Report { prop_assert!(today <= r.deadline); }
                    r = next;
                }
            }
        }
    }
}
