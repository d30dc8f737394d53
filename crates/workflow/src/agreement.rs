//! Agreements (R-14…R-17): the operation agreement (authority → operator) and the
//! development agreement (operator → developer in two-level mode; a county authority →
//! its developers). Both parties sign, and the grantee also signs the data-security
//! commitment (B§25); only then is it in force. Renewal only inside the last six months;
//! early cancellation on request; suspension while a violation is rectified; expiry and
//! termination close every door beneath the agreement at once, start sealing and
//! destruction, and keep its logs at least six months.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Refused;
use crate::term::Term;

/// Which agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementKind {
    /// 授权运营协议: the authority authorizes an operator.
    Operation,
    /// 授权开发协议: an operator (or a county authority) authorizes a developer.
    Development,
}

/// The two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// Who grants (the authority, or the operator for development agreements).
    Grantor,
    /// Who is granted (the operator, or the developer).
    Grantee,
}

/// Who sends an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// One of the parties.
    Party(Party),
    /// The data authority acting as supervisor of the agreement (sanctions).
    Authority,
    /// The platform itself (time passing).
    System,
}

/// Why an agreement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Its term ran out without renewal.
    Expired,
    /// Cancelled early on request (提前终止).
    Cancelled,
    /// Terminated as a sanction, or because rectification failed (终止 / 撤销).
    Terminated,
}

/// Where an agreement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AgreementState {
    /// Being drafted from the template.
    Draft,
    /// Issued for signature; who has signed so far.
    Signing {
        /// The grantor signed.
        grantor: bool,
        /// The grantee signed.
        grantee: bool,
        /// The grantee signed the data-security commitment.
        commitment: bool,
    },
    /// In force (inside its term).
    Active,
    /// In force on paper, every door closed while a violation is rectified.
    Suspended,
    /// Over. Nothing can happen to it any more.
    Ended {
        /// How it ended.
        how: Ending,
        /// The day it ended.
        on: Date,
    },
}

impl AgreementState {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AgreementState::Draft => "draft",
            AgreementState::Signing { .. } => "signing",
            AgreementState::Active => "active",
            AgreementState::Suspended => "suspended",
            AgreementState::Ended {
                how: Ending::Expired, ..
            } => "expired",
            AgreementState::Ended {
                how: Ending::Cancelled, ..
            } => "cancelled",
            AgreementState::Ended {
                how: Ending::Terminated,
                ..
            } => "terminated",
        }
    }
}

/// An agreement as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Which agreement.
    pub kind: AgreementKind,
    /// Its current term (at most three years by type).
    pub term: Term,
    /// The renewed term that follows the current one, once renewed.
    pub next_term: Option<Term>,
    /// Where it stands.
    pub state: AgreementState,
    /// How many times it was renewed.
    pub renewals: u32,
}

/// What can happen to an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// The grantor issues the draft for signature; `objections_open` is how many
    /// objections from the public notice are still unanswered (they block signing).
    Issue {
        /// Unanswered objections.
        objections_open: u32,
    },
    /// A party signs.
    Sign,
    /// The grantee signs the data-security commitment (数据安全承诺书).
    SignCommitment,
    /// Renewal to a new last day (inside the renewal window only).
    Renew {
        /// The renewed term's last day.
        end: Date,
    },
    /// Suspension while a violation is rectified.
    Suspend,
    /// Rectification accepted: back in force.
    Restore,
    /// Early cancellation, on a party's request.
    Cancel,
    /// Termination as a sanction.
    Terminate,
    /// Time passes (the platform checks every day and at every request).
    Tick,
}

impl Event {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Event::Issue { .. } => "issue",
            Event::Sign => "sign",
            Event::SignCommitment => "sign_commitment",
            Event::Renew { .. } => "renew",
            Event::Suspend => "suspend",
            Event::Restore => "restore",
            Event::Cancel => "cancel",
            Event::Terminate => "terminate",
            Event::Tick => "tick",
        }
    }
}

/// What the world must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Open access under the agreement (it came into force or was restored).
    GrantAccess,
    /// Close every door beneath it at once: sessions, API keys, running jobs, published
    /// APIs, data requests — including work in flight.
    RevokeAccess,
    /// Seal its workspaces and destroy its data (a later issue does the crypto).
    StartSealing,
    /// Keep its audit payloads until at least this day (≥ 6 months, R-16).
    RetainLogsUntil {
        /// The first day they may be purged.
        day: Date,
    },
    /// Delist the products made under it (developer exit, Y§23).
    DelistProducts,
}

/// The next agreement and the effects, or why not.
pub type Outcome = Result<(Agreement, Vec<Effect>), Refused>;

fn ended(a: &Agreement, how: Ending, today: Date) -> (Agreement, Vec<Effect>) {
    let next = Agreement {
        state: AgreementState::Ended { how, on: today },
        ..a.clone()
    };
    let keep = today.checked_add(6.months()).unwrap_or(Date::MAX);
    let mut effects = vec![
        Effect::RevokeAccess,
        Effect::StartSealing,
        Effect::RetainLogsUntil { day: keep },
    ];
    if a.kind == AgreementKind::Development {
        effects.push(Effect::DelistProducts);
    }
    (next, effects)
}

/// The next state of agreement `a` after `event` sent by `actor` on `today`.
pub fn transition(a: &Agreement, event: Event, actor: Actor, today: Date) -> Outcome {
    use AgreementState as S;
    // Time first: past its last day, a renewed agreement moves into its next term…
    if today > a.term.end()
        && let Some(next) = a.next_term
    {
        let rolled = Agreement {
            term: next,
            next_term: None,
            ..a.clone()
        };
        return transition(&rolled, event, actor, today);
    }
    let refuse = |rule| Err(Refused::new("agreement", a.state.code(), event.code(), rule));
    let with = |state| Agreement { state, ..a.clone() };
    // …and one that was not renewed is over, whatever else is asked.
    if matches!(a.state, S::Active | S::Suspended) && today > a.term.end() {
        if event == Event::Tick {
            return Ok(ended(a, Ending::Expired, today));
        }
        return refuse("expired");
    }
    match (a.state, event, actor) {
        (_, Event::Tick, Actor::System) => Ok((a.clone(), Vec::new())),
        (_, Event::Tick, _) => refuse("system_only"),
        (S::Draft, Event::Issue { objections_open }, Actor::Party(Party::Grantor)) => {
            if objections_open > 0 {
                return refuse("objections_open");
            }
            if today > a.term.start() {
                return refuse("term_started");
            }
            Ok((
                with(S::Signing {
                    grantor: false,
                    grantee: false,
                    commitment: false,
                }),
                Vec::new(),
            ))
        }
        (S::Draft, Event::Issue { .. }, _) => refuse("grantor_only"),
        (
            S::Signing {
                grantor,
                grantee,
                commitment,
            },
            Event::Sign | Event::SignCommitment,
            Actor::Party(p),
        ) => {
            let (grantor, grantee, commitment) = match (event, p) {
                (Event::Sign, Party::Grantor) if !grantor => (true, grantee, commitment),
                (Event::Sign, Party::Grantee) if !grantee => (grantor, true, commitment),
                (Event::SignCommitment, Party::Grantee) if !commitment => (grantor, grantee, true),
                (Event::SignCommitment, Party::Grantor) => return refuse("grantee_only"),
                _ => return refuse("already_signed"),
            };
            if grantor && grantee && commitment {
                if today > a.term.end() {
                    return refuse("expired");
                }
                Ok((with(S::Active), vec![Effect::GrantAccess]))
            } else {
                Ok((
                    with(S::Signing {
                        grantor,
                        grantee,
                        commitment,
                    }),
                    Vec::new(),
                ))
            }
        }
        (S::Signing { .. }, Event::Sign | Event::SignCommitment, _) => refuse("not_a_party"),
        (S::Active | S::Suspended, Event::Renew { end }, Actor::Party(Party::Grantee | Party::Grantor)) => {
            if !a.term.in_renewal_window(today) {
                return refuse("renewal_window");
            }
            if a.state == S::Suspended {
                return refuse("suspended");
            }
            if a.next_term.is_some() {
                return refuse("already_renewed");
            }
            match a.term.next(end) {
                Ok(term) => Ok((
                    Agreement {
                        next_term: Some(term),
                        renewals: a.renewals + 1,
                        ..a.clone()
                    },
                    Vec::new(),
                )),
                Err(e) => refuse(e.rule()),
            }
        }
        (S::Active, Event::Suspend, Actor::Authority | Actor::Party(Party::Grantor)) => {
            Ok((with(S::Suspended), vec![Effect::RevokeAccess]))
        }
        (S::Suspended, Event::Restore, Actor::Authority | Actor::Party(Party::Grantor)) => {
            Ok((with(S::Active), vec![Effect::GrantAccess]))
        }
        (S::Active | S::Suspended, Event::Cancel, Actor::Party(_)) => Ok(ended(a, Ending::Cancelled, today)),
        (S::Draft | S::Signing { .. }, Event::Cancel, Actor::Party(_)) => Ok(ended(a, Ending::Cancelled, today)),
        (S::Active | S::Suspended, Event::Terminate, Actor::Authority | Actor::Party(Party::Grantor)) => {
            Ok(ended(a, Ending::Terminated, today))
        }
        (S::Ended { .. }, _, _) => refuse("ended"),
        (_, Event::Suspend | Event::Restore | Event::Terminate, Actor::Party(Party::Grantee)) => refuse("grantor_only"),
        _ => refuse("not_in_this_state"),
    }
}

/// Whether access under `a` is open on `today`: in force, not suspended, inside its term.
pub fn is_effective(a: &Agreement, today: Date) -> bool {
    a.state == AgreementState::Active && (a.term.contains(today) || a.next_term.is_some_and(|t| t.contains(today)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn draft(kind: AgreementKind) -> Agreement {
        Agreement {
            kind,
            term: Term::new(date(2026, 1, 1), date(2028, 12, 31)).expect("term"),
            next_term: None,
            state: AgreementState::Draft,
            renewals: 0,
        }
    }

    fn signed(kind: AgreementKind) -> Agreement {
        let g = Actor::Party(Party::Grantor);
        let e = Actor::Party(Party::Grantee);
        let d = date(2025, 12, 20);
        let mut a = transition(&draft(kind), Event::Issue { objections_open: 0 }, g, d)
            .expect("issue")
            .0;
        for (ev, who) in [(Event::Sign, g), (Event::Sign, e), (Event::SignCommitment, e)] {
            a = transition(&a, ev, who, d).expect("sign").0;
        }
        a
    }

    #[test]
    fn in_force_only_after_both_signatures_and_the_commitment() {
        let g = Actor::Party(Party::Grantor);
        let e = Actor::Party(Party::Grantee);
        let d = date(2025, 12, 20);
        let blocked = transition(
            &draft(AgreementKind::Operation),
            Event::Issue { objections_open: 1 },
            g,
            d,
        );
        assert_eq!(blocked.map_err(|r| r.rule), Err("objections_open"));
        let a = transition(
            &draft(AgreementKind::Operation),
            Event::Issue { objections_open: 0 },
            g,
            d,
        )
        .expect("issue")
        .0;
        let a = transition(&a, Event::Sign, g, d).expect("grantor").0;
        let a = transition(&a, Event::Sign, e, d).expect("grantee").0;
        assert!(!is_effective(&a, date(2026, 1, 2)), "no commitment yet");
        assert_eq!(
            transition(&a, Event::SignCommitment, g, d).map_err(|r| r.rule),
            Err("grantee_only")
        );
        let (a, fx) = transition(&a, Event::SignCommitment, e, d).expect("commitment");
        assert_eq!(fx, vec![Effect::GrantAccess]);
        assert!(is_effective(&a, date(2026, 1, 2)));
        assert!(!is_effective(&a, date(2025, 12, 31)), "not before its term");
    }

    #[test]
    fn renewal_only_inside_the_last_six_months_and_never_beyond_three_years_at_once() {
        let a = signed(AgreementKind::Operation);
        let e = Actor::Party(Party::Grantee);
        let early = transition(
            &a,
            Event::Renew {
                end: date(2031, 12, 31),
            },
            e,
            date(2028, 6, 29),
        );
        assert_eq!(early.map_err(|r| r.rule), Err("renewal_window"));
        let long = transition(&a, Event::Renew { end: date(2032, 1, 1) }, e, date(2028, 7, 1));
        assert_eq!(long.map_err(|r| r.rule), Err("term_too_long"));
        let (r, _) = transition(
            &a,
            Event::Renew {
                end: date(2031, 12, 31),
            },
            e,
            date(2028, 7, 1),
        )
        .expect("renew");
        assert_eq!(
            (r.next_term.map(|t| t.start()), r.renewals),
            (Some(date(2029, 1, 1)), 1)
        );
        assert_eq!(
            transition(
                &r,
                Event::Renew {
                    end: date(2031, 12, 31)
                },
                e,
                date(2028, 8, 1)
            )
            .map_err(|x| x.rule),
            Err("already_renewed")
        );
        // Still in force for the rest of the current term, then in the next one.
        assert!(is_effective(&r, date(2028, 12, 31)));
        let (r, fx) = transition(&r, Event::Tick, Actor::System, date(2030, 1, 1)).expect("tick");
        assert!(fx.is_empty() && is_effective(&r, date(2030, 1, 1)));
        assert_eq!(r.term.end(), date(2031, 12, 31));
    }

    #[test]
    fn expiry_closes_every_door_and_keeps_the_logs_six_months() {
        let a = signed(AgreementKind::Development);
        assert_eq!(
            transition(&a, Event::Sign, Actor::Party(Party::Grantee), date(2029, 1, 1)).map_err(|r| r.rule),
            Err("expired")
        );
        let (x, fx) = transition(&a, Event::Tick, Actor::System, date(2029, 1, 1)).expect("tick");
        assert_eq!(x.state.code(), "expired");
        assert!(fx.contains(&Effect::RevokeAccess) && fx.contains(&Effect::StartSealing));
        assert!(
            fx.contains(&Effect::DelistProducts),
            "a developer's products are delisted"
        );
        assert!(fx.contains(&Effect::RetainLogsUntil { day: date(2029, 7, 1) }));
    }

    fn actor() -> impl Strategy<Value = Actor> {
        prop_oneof![
            Just(Actor::Party(Party::Grantor)),
            Just(Actor::Party(Party::Grantee)),
            Just(Actor::Authority),
            Just(Actor::System)
        ]
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u32..2).prop_map(|n| Event::Issue { objections_open: n }),
            Just(Event::Sign),
            Just(Event::SignCommitment),
            (0i32..2000).prop_map(|d| Event::Renew {
                end: date(2027, 1, 1).checked_add(d.days()).expect("date")
            }),
            Just(Event::Suspend),
            Just(Event::Restore),
            Just(Event::Cancel),
            Just(Event::Terminate),
            Just(Event::Tick),
        ]
    }

    proptest! {
        /// Over any run of events across six years: access is open only while in force inside
        /// the term; every ending revokes, seals and retains logs ≥ 6 months; an ended agreement
        /// never moves; no term ever exceeds three years from its last renewal's start.
        #[test]
        fn every_terminal_path_revokes_and_nothing_moves_after_the_end(
            kind in prop_oneof![Just(AgreementKind::Operation), Just(AgreementKind::Development)],
            steps in proptest::collection::vec((event(), actor(), 0i32..40), 0..60)
        ) {
            let mut a = draft(kind);
            let mut today = date(2025, 12, 1);
            let mut open = false;
            for (ev, who, days) in steps {
                today = today.checked_add(days.days()).expect("date");
                let before = a.clone();
                match transition(&a, ev, who, today) {
                    Ok((next, fx)) => {
                        if let AgreementState::Ended { .. } = before.state {
                            prop_assert!(next == before && fx.is_empty(), "ended agreement moved");
                        }
                        let was_ended = matches!(before.state, AgreementState::Ended { .. });
                        if let (AgreementState::Ended { .. }, false) = (next.state, was_ended) {
                            prop_assert!(fx.contains(&Effect::RevokeAccess));
                            prop_assert!(fx.contains(&Effect::StartSealing));
                            let keep = today.checked_add(6.months()).expect("date");
                            let retained = fx.iter().any(|f| matches!(f, Effect::RetainLogsUntil { day } if *day >= keep));
                            prop_assert!(retained, "logs kept at least six months");
                        }
                        if next.state == AgreementState::Suspended && before.state != AgreementState::Suspended {
                            prop_assert!(fx.contains(&Effect::RevokeAccess));
                        }
                        if fx.contains(&Effect::GrantAccess) { open = true; }
                        if fx.contains(&Effect::RevokeAccess) { open = false; }
                        if let Some(t) = next.next_term {
                            prop_assert_eq!(Some(t.start()), next.term.end().tomorrow().ok());
                        }
                        a = next;
                    }
                    Err(r) => prop_assert_eq!(r.state, before.state.code()),
                }
                if is_effective(&a, today) {
                    prop_assert!(open, "effective without access granted");
                    prop_assert!(a.term.contains(today));
                }
            }
        }
    }
}
