//! One submission per rendered form. A console form that starts something heavy or
//! irreversible (an import) carries a random token; the first post with it goes ahead,
//! a second one — a double click, a script and the browser both posting, a reload — is
//! answered with the first one's outcome and does nothing. Kept in memory, per server:
//! a token outlives its page by minutes, not restarts.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many tokens are remembered (the oldest are forgotten first).
const REMEMBERED: usize = 4096;

/// What became of a form's first post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Still being processed.
    Pending,
    /// Done: where its result is.
    Done(String),
}

/// The tokens seen, by user and token.
#[derive(Debug, Default)]
pub struct Submissions {
    inner: Mutex<(HashMap<String, Seen>, VecDeque<String>)>,
}

impl Submissions {
    /// A new token for a form about to be rendered.
    pub fn token() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Claims `token` for `user`'s submission: `None` if this is the first post, else what
    /// became of the first one.
    pub fn begin(&self, user: &str, token: &str) -> Option<Seen> {
        let key = format!("{user}\u{1f}{token}");
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seen, order) = &mut *g;
        if let Some(s) = seen.get(&key) {
            return Some(s.clone());
        }
        seen.insert(key.clone(), Seen::Pending);
        order.push_back(key);
        while order.len() > REMEMBERED {
            if let Some(old) = order.pop_front() {
                seen.remove(&old);
            }
        }
        None
    }

    /// Records the outcome of the first post: where its result is, or `None` when it failed
    /// (the token is released, so the corrected form may be sent again).
    pub fn finish(&self, user: &str, token: &str, result: Option<String>) {
        let key = format!("{user}\u{1f}{token}");
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seen, order) = &mut *g;
        match result {
            Some(url) => {
                if let Some(s) = seen.get_mut(&key) {
                    *s = Seen::Done(url);
                }
            }
            None => {
                seen.remove(&key);
                order.retain(|k| k != &key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_through_once_and_a_failed_one_may_be_sent_again() {
        let s = Submissions::default();
        assert_eq!(s.begin("u", "t"), None);
        assert_eq!(s.begin("u", "t"), Some(Seen::Pending));
        assert_eq!(s.begin("other", "t"), None, "per user");
        s.finish("u", "t", Some("/x".into()));
        assert_eq!(s.begin("u", "t"), Some(Seen::Done("/x".into())));
        assert_eq!(s.begin("u", "f"), None);
        s.finish("u", "f", None);
        assert_eq!(s.begin("u", "f"), None, "released after a failure");
        for i in 0..REMEMBERED + 1 {
            s.begin("v", &i.to_string());
        }
        assert_eq!(s.begin("v", "0"), None, "the oldest is forgotten");
    }
}
