//! A call for applications (申报通知, R-11): the authority — or, in two-level mode, the
//! operator for developers — publishes conditions and a deadline; applications are
//! accepted until the deadline, then the call closes.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Refused;

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Being written.
    Draft,
    /// Public; applications accepted until the deadline (inclusive).
    Open,
    /// Past its deadline: applications go to review.
    Closed,
    /// Withdrawn before it closed.
    Withdrawn,
}

impl CallState {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            CallState::Draft => "draft",
            CallState::Open => "open",
            CallState::Closed => "closed",
            CallState::Withdrawn => "withdrawn",
        }
    }
}

/// What can happen to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEvent {
    /// Publish with its deadline.
    Publish,
    /// Withdraw (only before it closes).
    Withdraw,
    /// Time passes.
    Tick,
}

impl CallEvent {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            CallEvent::Publish => "publish",
            CallEvent::Withdraw => "withdraw",
            CallEvent::Tick => "tick",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallActor {
    /// Whoever issued the call (the authority, or the operator in two-level mode).
    Issuer,
    /// Anyone else.
    Other,
    /// The platform (time).
    System,
}

/// A call as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// Its state.
    pub state: CallState,
    /// The last day applications are accepted.
    pub deadline: Date,
}

/// The next call, or why not.
pub fn transition(c: &Call, event: CallEvent, actor: CallActor, today: Date) -> Result<Call, Refused> {
    let refuse = |rule| Err(Refused::new("call", c.state.code(), event.code(), rule));
    let with = |state| Call { state, ..*c };
    match (c.state, event, actor) {
        (CallState::Open, CallEvent::Tick, CallActor::System) if today > c.deadline => Ok(with(CallState::Closed)),
        (_, CallEvent::Tick, CallActor::System) => Ok(*c),
        (_, CallEvent::Tick, _) => refuse("system_only"),
        (_, _, CallActor::Other | CallActor::System) => refuse("issuer_only"),
        (CallState::Draft, CallEvent::Publish, _) if c.deadline < today => refuse("deadline_passed"),
        (CallState::Draft, CallEvent::Publish, _) => Ok(with(CallState::Open)),
        (CallState::Draft | CallState::Open, CallEvent::Withdraw, _) if today <= c.deadline => {
            Ok(with(CallState::Withdrawn))
        }
        _ => refuse("not_in_this_state"),
    }
}

/// Whether the call accepts an application on `today`.
pub fn accepts_applications(c: &Call, today: Date) -> bool {
    c.state == CallState::Open && today <= c.deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn applications_until_the_deadline_then_closed() {
        let c = Call {
            state: CallState::Draft,
            deadline: date(2026, 3, 31),
        };
        assert!(transition(&c, CallEvent::Publish, CallActor::Other, date(2026, 3, 1)).is_err());
        let c = transition(&c, CallEvent::Publish, CallActor::Issuer, date(2026, 3, 1)).expect("publish");
        assert!(accepts_applications(&c, date(2026, 3, 31)));
        assert!(!accepts_applications(&c, date(2026, 4, 1)));
        let c = transition(&c, CallEvent::Tick, CallActor::System, date(2026, 4, 1)).expect("tick");
        assert_eq!(c.state, CallState::Closed);
        assert!(transition(&c, CallEvent::Withdraw, CallActor::Issuer, date(2026, 4, 2)).is_err());
    }

    proptest! {
        #[test]
        fn a_call_never_accepts_after_its_deadline(steps in proptest::collection::vec((0u8..3, 0u8..3, 0i32..20), 0..30)) {
            let mut c = Call { state: CallState::Draft, deadline: date(2026, 3, 31) };
            let mut today = date(2026, 3, 1);
            for (e, a, d) in steps {
                today = today.checked_add(d.days()).expect("date");
                let e = [CallEvent::Publish, CallEvent::Withdraw, CallEvent::Tick][e as usize];
                let a = [CallActor::Issuer, CallActor::Other, CallActor::System][a as usize];
                if let Ok(next) = transition(&c, e, a, today) {
                    prop_assert!(!(matches!(c.state, CallState::Closed | CallState::Withdrawn) && next != c));
                    c = next;
                }
                if accepts_applications(&c, today) {
                    prop_assert!(today <= c.deadline);
                }
            }
        }
    }
}
