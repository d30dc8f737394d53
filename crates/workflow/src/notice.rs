//! Public notice (公示, R-13): results are public for a set period; anyone may object;
//! every objection must be answered, and the notice closes only when the period is over
//! and nothing is left unanswered.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Refused;

/// A notice as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The last day of the notice period.
    pub until: Date,
    /// Each objection: answered or not.
    pub objections: Vec<bool>,
    /// Closed.
    pub closed: bool,
}

/// What can happen to a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum NoticeEvent {
    /// Someone objects (during the period only).
    Object,
    /// The issuer answers objection `index`.
    Answer {
        /// Which objection.
        index: usize,
    },
    /// The issuer closes the notice.
    Close,
}

impl NoticeEvent {
    fn code(self) -> &'static str {
        match self {
            NoticeEvent::Object => "object",
            NoticeEvent::Answer { .. } => "answer",
            NoticeEvent::Close => "close",
        }
    }
}

impl Notice {
    /// Objections not answered yet (they block signing).
    pub fn open_objections(&self) -> u32 {
        self.objections.iter().filter(|a| !**a).count() as u32
    }
}

/// The next notice, or why not. `issuer` says whether the sender issued the notice.
pub fn transition(n: &Notice, event: NoticeEvent, issuer: bool, today: Date) -> Result<Notice, Refused> {
    let state = if n.closed { "closed" } else { "open" };
    let refuse = |rule| Err(Refused::new("notice", state, event.code(), rule));
    if n.closed {
        return refuse("closed");
    }
    let mut next = n.clone();
    match event {
        NoticeEvent::Object if today > n.until => return refuse("period_over"),
        NoticeEvent::Object => next.objections.push(false),
        NoticeEvent::Answer { .. } | NoticeEvent::Close if !issuer => return refuse("issuer_only"),
        NoticeEvent::Answer { index } => match next.objections.get_mut(index) {
            Some(a) if !*a => *a = true,
            Some(_) => return refuse("already_answered"),
            None => return refuse("no_such_objection"),
        },
        NoticeEvent::Close if today <= n.until => return refuse("period_not_over"),
        NoticeEvent::Close if n.open_objections() > 0 => return refuse("objections_open"),
        NoticeEvent::Close => next.closed = true,
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::ToSpan;
    use jiff::civil::date;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_notice_closes_only_after_its_period_with_every_objection_answered(
            steps in proptest::collection::vec((0u8..3, 0usize..4, any::<bool>(), 0i32..4), 0..40)
        ) {
            let mut n = Notice { until: date(2026, 5, 10), objections: Vec::new(), closed: false };
            let mut today = date(2026, 5, 1);
            for (k, i, issuer, d) in steps {
                today = today.checked_add(d.days()).expect("date");
                let e = match k { 0 => NoticeEvent::Object, 1 => NoticeEvent::Answer { index: i }, _ => NoticeEvent::Close };
                if let Ok(next) = transition(&n, e, issuer, today) {
                    prop_assert!(!n.closed);
                    if e == NoticeEvent::Object { prop_assert!(today <= n.until); }
                    if next.closed { prop_assert!(today > n.until && next.open_objections() == 0 && issuer); }
                    n = next;
                }
            }
        }
    }
}
