//! Custom processing requests (定制化服务需求, R-26): a requester asks for a processing
//! service; the operator estimates its cost; the requester accepts the charge (or not);
//! the operator delivers; the charge is billed to the requester.

use serde::{Deserialize, Serialize};

use crate::Refused;

/// Where a custom request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CustomState {
    /// Asked; waiting for the estimate.
    Requested,
    /// Estimated at `cost_cents`; waiting for the requester.
    Estimated {
        /// The estimate, in cents (CNY fen).
        cost_cents: u64,
    },
    /// Accepted at `cost_cents`; being done.
    Accepted {
        /// The accepted charge.
        cost_cents: u64,
    },
    /// Delivered; `cost_cents` is billed to the requester.
    Delivered {
        /// The charge billed.
        cost_cents: u64,
    },
    /// Declined by the operator or the requester, or withdrawn.
    Closed,
}

impl CustomState {
    fn code(self) -> &'static str {
        match self {
            CustomState::Requested => "requested",
            CustomState::Estimated { .. } => "estimated",
            CustomState::Accepted { .. } => "accepted",
            CustomState::Delivered { .. } => "delivered",
            CustomState::Closed => "closed",
        }
    }
}

/// What can happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum CustomEvent {
    /// The operator estimates the cost.
    Estimate {
        /// In cents.
        cost_cents: u64,
    },
    /// The requester accepts the estimate.
    AcceptCharge,
    /// The operator delivers.
    Deliver,
    /// Either side declines (before delivery).
    Decline,
}

impl CustomEvent {
    fn code(self) -> &'static str {
        match self {
            CustomEvent::Estimate { .. } => "estimate",
            CustomEvent::AcceptCharge => "accept_charge",
            CustomEvent::Deliver => "deliver",
            CustomEvent::Decline => "decline",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomActor {
    /// Who asked (and pays).
    Requester,
    /// The operator.
    Operator,
}

/// The next state, or why not.
pub fn transition(s: CustomState, event: CustomEvent, actor: CustomActor) -> Result<CustomState, Refused> {
    use CustomActor as A;
    use CustomEvent as E;
    use CustomState as S;
    let refuse = |rule| Err(Refused::new("custom_request", s.code(), event.code(), rule));
    match (s, event, actor) {
        (S::Requested | S::Estimated { .. }, E::Estimate { cost_cents }, A::Operator) => {
            Ok(S::Estimated { cost_cents })
        }
        (S::Estimated { cost_cents }, E::AcceptCharge, A::Requester) => Ok(S::Accepted { cost_cents }),
        (S::Accepted { cost_cents }, E::Deliver, A::Operator) => Ok(S::Delivered { cost_cents }),
        (S::Requested | S::Estimated { .. } | S::Accepted { .. }, E::Decline, _) => Ok(S::Closed),
        (S::Delivered { .. } | S::Closed, _, _) => refuse("final"),
        (_, E::AcceptCharge, A::Operator) => refuse("requester_only"),
        (_, E::Estimate { .. } | E::Deliver, A::Requester) => refuse("operator_only"),
        _ => refuse("not_in_this_state"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The requester is billed exactly the estimate it accepted, and only on delivery.
        #[test]
        fn billed_only_what_the_requester_accepted(steps in proptest::collection::vec((0u8..4, any::<bool>(), 0u64..100_000), 0..30)) {
            let mut s = CustomState::Requested;
            let mut accepted = None;
            for (e, op, cost) in steps {
                let e = match e { 0 => CustomEvent::Estimate { cost_cents: cost }, 1 => CustomEvent::AcceptCharge, 2 => CustomEvent::Deliver, _ => CustomEvent::Decline };
                let a = if op { CustomActor::Operator } else { CustomActor::Requester };
                if let Ok(next) = transition(s, e, a) {
                    if let (CustomState::Estimated { cost_cents }, CustomEvent::AcceptCharge) = (s, e) { accepted = Some(cost_cents); }
                    if let CustomState::Delivered { cost_cents } = next { prop_assert_eq!(Some(cost_cents), accepted); }
                    s = next;
                }
            }
        }
    }
}
