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
//! - [`contracts`]: agreements drafted, issued and signed with the parties' own Ed25519 keys.
//! - [`requests`]: data requests reviewed by the chain the agreement implies, scenario
//!   manifests signed by the domain, and [`service::Lifecycle::guard`], which every action
//!   beneath an agreement runs through.
//! - [`custom_requests`]: custom processing requests asked under an agreement, served by
//!   its grantor, billed at the accepted estimate.
//! - [`reminders`]: what waits for an organisation, with deadlines.
//! - [`service`]: calls and applications persisted, authorized and audited (the first
//!   steps of the lifecycle wired end to end; the rest follow the same pattern).

pub mod agreement;
pub mod application;
pub mod call;
pub mod contracts;
pub mod custom;
pub mod custom_requests;
pub mod data_request;
pub mod notice;
pub mod rectification;
pub mod reminders;
pub mod requests;
pub mod review;
pub mod service;
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

#[cfg(test)]
mod tests {
    /// Every rule a machine can refuse with has a message in both languages.
    #[test]
    fn every_refusal_rule_is_explained_in_both_languages() {
        let sources = [
            include_str!("agreement.rs"),
            include_str!("application.rs"),
            include_str!("call.rs"),
            include_str!("contracts.rs"),
            include_str!("custom.rs"),
            include_str!("custom_requests.rs"),
            include_str!("data_request.rs"),
            include_str!("notice.rs"),
            include_str!("rectification.rs"),
            include_str!("requests.rs"),
            include_str!("review.rs"),
            include_str!("service.rs"),
            include_str!("term.rs"),
        ];
        let mut rules = std::collections::BTreeSet::new();
        for src in sources {
            // Term rules are only those term.rs names; elsewhere `"term_…` is a field.
            let markers: &[&str] = if src.contains("pub struct Term") {
                &["refuse(\"", "\"term_"]
            } else {
                &["refuse(\""]
            };
            for marker in markers.iter().copied() {
                for piece in src.split(marker).skip(1) {
                    let rule: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    let rule = if marker == "\"term_" {
                        format!("term_{rule}")
                    } else {
                        rule
                    };
                    if !rule.is_empty() && !rule.ends_with('_') {
                        rules.insert(rule);
                    }
                }
            }
        }
        rules.insert("not_a_draft".into());
        rules.insert("call_closed".into());
        rules.insert("call_not_closed".into());
        assert!(rules.len() > 40, "{rules:?}");
        for rule in rules {
            for lang in [shuyu_core::i18n::Lang::ZhCn, shuyu_core::i18n::Lang::En] {
                let key = format!("refusal.{rule}");
                assert_ne!(shuyu_core::i18n::t(lang, &key), key, "{key} missing in {lang:?}");
            }
        }
    }
}
