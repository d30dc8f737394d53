//! Expert review (综合评审, R-13): each expert first declares conflicts of interest; a
//! conflicted expert does not score; the others score every published criterion; the
//! review closes when enough experts scored, and the authority sees the aggregate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Refused;

/// One expert's place in the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ExpertState {
    /// Assigned; has not declared yet.
    Assigned,
    /// Declared a conflict: recused.
    Recused,
    /// Declared no conflict; may score.
    Cleared,
    /// Scored, one score per criterion (0–100).
    Scored {
        /// The scores, in the criteria's order.
        scores: Vec<u8>,
    },
}

/// A review as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Number of published criteria.
    pub criteria: usize,
    /// How many scores are needed to close.
    pub quorum: usize,
    /// The experts, by id.
    pub experts: BTreeMap<String, ExpertState>,
    /// Closed: no more declarations or scores.
    pub closed: bool,
}

/// What can happen in a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum ReviewEvent {
    /// An expert declares whether they have a conflict of interest.
    Declare {
        /// Whether they do.
        conflict: bool,
    },
    /// An expert scores every criterion.
    Score {
        /// One score per criterion, 0–100.
        scores: Vec<u8>,
    },
    /// The authority closes the review.
    Close,
}

impl ReviewEvent {
    fn code(&self) -> &'static str {
        match self {
            ReviewEvent::Declare { .. } => "declare",
            ReviewEvent::Score { .. } => "score",
            ReviewEvent::Close => "close",
        }
    }
}

/// Who sends an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewActor {
    /// An expert, by id.
    Expert(String),
    /// The authority running the review.
    Authority,
}

impl Review {
    /// How many experts scored.
    pub fn scored(&self) -> usize {
        self.experts
            .values()
            .filter(|e| matches!(e, ExpertState::Scored { .. }))
            .count()
    }

    /// The mean score per criterion over the experts who scored (recused experts excluded).
    pub fn aggregate(&self) -> Vec<f64> {
        let all: Vec<&Vec<u8>> = self
            .experts
            .values()
            .filter_map(|e| match e {
                ExpertState::Scored { scores } => Some(scores),
                _ => None,
            })
            .collect();
        (0..self.criteria)
            .map(|i| {
                if all.is_empty() {
                    0.0
                } else {
                    all.iter().map(|s| f64::from(s[i])).sum::<f64>() / all.len() as f64
                }
            })
            .collect()
    }
}

/// The next review, or why not.
pub fn transition(r: &Review, event: &ReviewEvent, actor: &ReviewActor) -> Result<Review, Refused> {
    let state = if r.closed { "closed" } else { "open" };
    let refuse = |rule| Err(Refused::new("review", state, event.code(), rule));
    if r.closed {
        return refuse("closed");
    }
    let mut next = r.clone();
    match (event, actor) {
        (ReviewEvent::Close, ReviewActor::Authority) => {
            if r.scored() < r.quorum {
                return refuse("quorum");
            }
            next.closed = true;
        }
        (ReviewEvent::Close, _) => return refuse("authority_only"),
        (_, ReviewActor::Authority) => return refuse("experts_only"),
        (ev, ReviewActor::Expert(id)) => {
            let Some(current) = r.experts.get(id) else {
                return refuse("not_assigned");
            };
            let new = match (current, ev) {
                (ExpertState::Assigned, ReviewEvent::Declare { conflict: true }) => ExpertState::Recused,
                (ExpertState::Assigned, ReviewEvent::Declare { conflict: false }) => ExpertState::Cleared,
                (ExpertState::Assigned, ReviewEvent::Score { .. }) => return refuse("declare_first"),
                (ExpertState::Recused, ReviewEvent::Score { .. }) => return refuse("recused"),
                (ExpertState::Cleared, ReviewEvent::Score { scores }) => {
                    if scores.len() != r.criteria {
                        return refuse("every_criterion");
                    }
                    if scores.iter().any(|s| *s > 100) {
                        return refuse("score_range");
                    }
                    ExpertState::Scored { scores: scores.clone() }
                }
                (ExpertState::Scored { .. }, ReviewEvent::Score { .. }) => return refuse("already_scored"),
                _ => return refuse("already_declared"),
            };
            next.experts.insert(id.clone(), new);
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn review() -> Review {
        Review {
            criteria: 3,
            quorum: 2,
            experts: ["e1", "e2", "e3"]
                .iter()
                .map(|e| (e.to_string(), ExpertState::Assigned))
                .collect(),
            closed: false,
        }
    }

    #[test]
    fn conflicted_experts_do_not_score_and_the_aggregate_is_over_scorers() {
        let e = |s: &str| ReviewActor::Expert(s.into());
        let r = review();
        let r = transition(&r, &ReviewEvent::Declare { conflict: true }, &e("e1")).expect("declare");
        assert_eq!(
            transition(
                &r,
                &ReviewEvent::Score {
                    scores: vec![90, 90, 90]
                },
                &e("e1")
            )
            .map_err(|x| x.rule),
            Err("recused")
        );
        assert_eq!(
            transition(
                &r,
                &ReviewEvent::Score {
                    scores: vec![90, 90, 90]
                },
                &e("e2")
            )
            .map_err(|x| x.rule),
            Err("declare_first")
        );
        let mut r = r;
        for (id, s) in [("e2", vec![80, 60, 70]), ("e3", vec![60, 80, 90])] {
            r = transition(&r, &ReviewEvent::Declare { conflict: false }, &e(id)).expect("declare");
            r = transition(&r, &ReviewEvent::Score { scores: s }, &e(id)).expect("score");
        }
        assert_eq!(r.aggregate(), vec![70.0, 70.0, 80.0]);
        let r = transition(&r, &ReviewEvent::Close, &ReviewActor::Authority).expect("close");
        assert!(transition(&r, &ReviewEvent::Close, &ReviewActor::Authority).is_err());
    }

    proptest! {
        #[test]
        fn no_recused_expert_ever_scores_and_closing_needs_a_quorum(
            steps in proptest::collection::vec((0u8..4, 0usize..4, any::<bool>(), proptest::collection::vec(0u8..120, 2..4)), 0..40)
        ) {
            let mut r = review();
            for (kind, who, conflict, scores) in steps {
                let actor = if who == 3 { ReviewActor::Authority } else { ReviewActor::Expert(format!("e{}", who + 1)) };
                let ev = match kind { 0 => ReviewEvent::Declare { conflict }, 1 | 2 => ReviewEvent::Score { scores }, _ => ReviewEvent::Close };
                if let Ok(next) = transition(&r, &ev, &actor) {
                    prop_assert!(!r.closed);
                    for (id, st) in &next.experts {
                        if matches!(r.experts.get(id), Some(ExpertState::Recused)) {
                            prop_assert_eq!(st, &ExpertState::Recused);
                        }
                        if let ExpertState::Scored { scores } = st {
                            prop_assert!(scores.len() == 3 && scores.iter().all(|s| *s <= 100));
                        }
                    }
                    if next.closed { prop_assert!(next.scored() >= next.quorum); }
                    r = next;
                }
            }
        }
    }
}
