//! # shuyu-workflow
//!
//! Who may touch which data, for what, until when (R-11… … ),
//! as pure state machines: each is `transition(state, event, actor, today)` returning
//! the next state and the **effects** the outside world must carry out (close every
//! door beneath an agreement, start sealing, keep the logs ≥ 6 months, issue a
//! scenario manifest…), or a refusal saying which rule forbids it. Nothing here does
//! I/O: persistence, authorization and audit wrap these functions and never
//! re-implement their rules (CONVENTIONS.md, "State machines as data").
//!
//! - [`term`]: an agreement's term, at most three years by construction; the renewal window.
//! - [`call`]: a call for applications (申报通知) and its deadline.
//! - [`application`]: an application (授权运营申请) from draft to decision.
//! - [`review`]: expert review (综合评审) with conflict declarations and scores.
//! - [`notice`]: public notice (公示) with objections that must be answered.
//! - [`agreement`]: operation and development agreements: signing, renewal, suspension,
//!   cancellation, expiry, termination.
//! - [`rectification`]: 30 days to rectify, then restoration or termination.
//! - [`data_request`]: one scenario, one list, one review (一场景一清单一审核).
//! - [`custom`]: custom processing requests (定制化服务需求), charged to the requester.

pub mod agreement;
pub mod application;
pub mod call;
pub mod custom;
pub mod data_request;
pub mod notice;
pub mod rectification;
pub mod review;
pub mod term;

pub use jiff::civil::Date;

/// Why a transition was refused: the machine, the state, the event and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: {event} is not allowed when {state} ({rule})")]
pub struct Refused {
    /// Which machine (`agreement`, `call`, …).
    pub machine: &'static str,
    /// The state's code.
    pub state: &'static str,
    /// The event's code.
    pub event: &'static str,
    /// The rule's stable code (`renewal_window`, `not_a_party`, `objections_open`, …).
    pub rule: &'static str,
}

impl Refused {
    pub(crate) fn new(machine: &'static str, state: &'static str, event: &'static str, rule: &'static str) -> Self {
        Refused {
            machine,
            state,
            event,
            rule,
        }
    }
}
