//! Login, bearer authentication and logout.

use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::clock::{SignedDuration, Timestamp};
use shuyu_core::id::SessionId;
use shuyu_core::party::{Status, Username};
use shuyu_core::secret::Secret;
use shuyu_store::sessions::SessionRecord;
use shuyu_store::throttle::ThrottleRecord;
use shuyu_store::{Conn, StoreError, api_keys, orgs, sessions, throttle, users};

use crate::secrets::{self, KEY_PREFIX, SESSION_PREFIX};
use shuyu_audit::entry::{Actor, Outcome};
use shuyu_store::log::Event;

use crate::{Identity, IdentityError, audit, password};

/// What is known of the client at login (kept with the session for review).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id, for the audit trail.
    pub request_id: Option<String>,
}

/// A new session: the token is shown to the client once and never stored.
#[derive(Debug)]
pub struct IssuedSession {
    /// The bearer token.
    pub token: Secret<String>,
    /// When it stops working (absolute limit; idleness ends it sooner).
    pub expires_at: Timestamp,
    /// Who logged in.
    pub principal: Principal,
}

/// Minimum interval between writes of a session's or key's last-use time.
const TOUCH_INTERVAL: SignedDuration = SignedDuration::from_secs(60);

impl Identity {
    /// Checks a username and password and opens a session.
    ///
    /// Failures are counted per username and per client address; past the
    /// limits, logins are refused until the lock expires, even with the right
    /// password. An unknown username costs the same time as a wrong password.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<IssuedSession, IdentityError> {
        let now = self.clock.now();
        // Normalise like the directory does; an unparseable name is simply unknown.
        let name = Username::parse(username)
            .map(|u| u.as_str().to_string())
            .unwrap_or_else(|_| username.trim().to_lowercase());
        let user_subject = format!("user:{}", name.chars().take(64).collect::<String>());
        let ip_subject = client.ip.as_ref().map(|ip| format!("ip:{ip}"));

        // The attempt is reserved before the password is verified, and counted as a failure
        // until it proves otherwise: concurrent guesses cannot all pass the lock check while
        // argon2 runs (at most the limit's number of attempts is ever verified per window).
        let cfg = self.cfg.clone();
        let subjects: Vec<(String, i64)> = std::iter::once((user_subject.clone(), cfg.max_failures_per_user))
            .chain(ip_subject.clone().map(|s| (s, cfg.max_failures_per_ip)))
            .collect();
        let reserve = subjects.clone();
        let refused = self
            .store
            .write(move |tx| {
                Box::pin(async move {
                    let r = reserve_attempt(tx.conn(), &reserve, now, &cfg).await?;
                    tx.housekeeping("a login attempt reserved");
                    Ok::<_, StoreError>(r)
                })
            })
            .await?;
        if let Some(secs) = refused {
            return Err(IdentityError::Locked { retry_after_secs: secs });
        }

        let user = users::find_by_username(&mut *self.store.read().await?, &name).await?;
        let verified = match &user {
            Some(u) => {
                let (pw, phc) = (password.to_string(), u.password_hash.expose().clone());
                run_blocking(move || password::verify(&pw, &phc)).await.unwrap_or(false)
            }
            None => {
                let pw = password.to_string();
                run_blocking(move || {
                    password::verify_dummy(&pw);
                    false
                })
                .await
                .unwrap_or(false)
            }
        };
        let (kind, id) = match &user {
            Some(u) => ("user", u.id.to_string()),
            // An unknown name is not stored as typed (it may be someone's mistyped password).
            None => ("username", format!("sha256:{}", secrets::digest(&name))),
        };
        let Some(user) = user.filter(|_| verified) else {
            let mut event = Event::new(now, Actor::system("anonymous"), "auth.login_failed", kind, id);
            event.outcome = Outcome::Failure;
            event.request = client.request_id.clone();
            event.payload = Some(serde_json::json!({ "client_ip": client.ip }));
            let cfg = self.cfg.clone();
            let locked = self
                .store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.record(event);
                        lock_if_spent(tx.conn(), &subjects, now, &cfg).await
                    })
                })
                .await?;
            tracing::info!(username = %name, locked = locked.is_some(), "login failed");
            return Err(match locked {
                Some(secs) => IdentityError::Locked { retry_after_secs: secs },
                None => IdentityError::InvalidCredentials,
            });
        };

        // Checked again after verifying: guesses that ran beside this attempt may have locked
        // the account meanwhile, and a lock holds even against the right password.
        {
            let mut c = self.store.read().await?;
            if let Some(t) = throttle::get(&mut c, &user_subject).await?
                && let Some(until) = t.locked_until
                && until > now
            {
                return Err(IdentityError::Locked {
                    retry_after_secs: until.duration_since(now).as_secs().max(1),
                });
            }
        }
        let org = orgs::get(&mut *self.store.read().await?, user.org_id)
            .await?
            .ok_or(IdentityError::Disabled)?;
        if user.status != Status::Active || org.status != Status::Active {
            return Err(IdentityError::Disabled);
        }
        let token = secrets::new_token(SESSION_PREFIX)?;
        let record = SessionRecord {
            id: SessionId::generate(),
            token_hash: secrets::digest(token.expose()),
            user_id: user.id,
            created_at: now,
            expires_at: now + self.cfg.session_ttl,
            last_seen_at: now,
            revoked_at: None,
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.as_ref().map(|s| s.chars().take(200).collect()),
        };
        let session = record.clone();
        let clear_subject = format!("user:{}", user.username);
        let mut event = Event::new(now, Actor::default(), "auth.login", "session", record.id.to_string());
        event.actor = audit::actor(&Principal {
            id: PrincipalId::User(user.id),
            user_id: user.id,
            username: String::new(),
            display_name: String::new(),
            org_id: org.id,
            org_name: String::new(),
            org_kind: org.kind,
            region: org.region.clone(),
            roles: user.roles.clone(),
            session_id: None,
            must_change_password: false,
            request_id: None,
        });
        event.request = client.request_id.clone();
        event.payload = Some(serde_json::json!({ "client_ip": client.ip, "user_agent": record.user_agent }));
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    sessions::insert(tx.conn(), &session).await?;
                    throttle::clear(tx.conn(), &clear_subject).await?;
                    // The address's reserved attempt was not a failure: given back.
                    if let Some(ip) = ip_subject
                        && let Some(mut t) = throttle::get(tx.conn(), &ip).await?
                    {
                        t.failures = (t.failures - 1).max(0);
                        throttle::put(tx.conn(), &t).await?;
                    }
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        tracing::info!(username = %user.username, session = %record.id, "login succeeded");
        let principal = Principal {
            id: PrincipalId::User(user.id),
            user_id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            org_id: org.id,
            org_name: org.name.clone(),
            org_kind: org.kind,
            region: org.region.clone(),
            roles: user.roles.clone(),
            session_id: Some(record.id),
            must_change_password: user.must_change_password,
            request_id: client.request_id.clone(),
        };
        Ok(IssuedSession {
            token,
            expires_at: record.expires_at,
            principal,
        })
    }

    /// Resolves a bearer token (session token or API key) to its principal.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, IdentityError> {
        let now = self.clock.now();
        let bearer = bearer.trim();
        let hash = secrets::digest(bearer);
        let mut c = self.store.read().await?;
        if bearer.starts_with(SESSION_PREFIX) {
            let s = sessions::find_by_token_hash(&mut c, &hash)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            if s.revoked_at.is_some() {
                return Err(IdentityError::Unauthenticated);
            }
            if s.expires_at <= now || s.last_seen_at + self.cfg.session_idle <= now {
                return Err(IdentityError::Expired);
            }
            let user = users::get(&mut c, s.user_id)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            let org = orgs::get(&mut c, user.org_id)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            if user.status != Status::Active || org.status != Status::Active {
                return Err(IdentityError::Disabled);
            }
            if now.duration_since(s.last_seen_at) >= TOUCH_INTERVAL {
                let id = s.id;
                self.store
                    .write(move |tx| {
                        Box::pin(async move {
                            sessions::touch(tx.conn(), id, now).await?;
                            tx.housekeeping("a session's last-use time");
                            Ok::<_, StoreError>(())
                        })
                    })
                    .await?;
            }
            Ok(Principal {
                id: PrincipalId::User(user.id),
                user_id: user.id,
                username: user.username,
                display_name: user.display_name,
                org_id: org.id,
                org_name: org.name,
                org_kind: org.kind,
                region: org.region,
                roles: user.roles,
                session_id: Some(s.id),
                must_change_password: user.must_change_password,
                request_id: None,
            })
        } else if bearer.starts_with(KEY_PREFIX) {
            let k = api_keys::find_by_secret_hash(&mut c, &hash)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            // Its holder has the secret: telling revoked from expired tells them what to do.
            if k.revoked_at.is_some() {
                return Err(IdentityError::KeyRevoked);
            }
            if k.expires_at.is_some_and(|e| e <= now) {
                return Err(IdentityError::KeyExpired);
            }
            let creator = users::get(&mut c, k.created_by)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            let org = orgs::get(&mut c, k.org_id)
                .await?
                .ok_or(IdentityError::Unauthenticated)?;
            // A key stops with its organisation and with the person who made it.
            if creator.status != Status::Active || org.status != Status::Active {
                return Err(IdentityError::Disabled);
            }
            if k.last_used_at.is_none_or(|t| now.duration_since(t) >= TOUCH_INTERVAL) {
                let id = k.id;
                self.store
                    .write(move |tx| {
                        Box::pin(async move {
                            api_keys::touch(tx.conn(), id, now).await?;
                            tx.housekeeping("an API key's last-use time");
                            Ok::<_, StoreError>(())
                        })
                    })
                    .await?;
            }
            Ok(Principal {
                id: PrincipalId::ApiKey(k.id),
                user_id: creator.id,
                username: creator.username,
                display_name: k.name,
                org_id: org.id,
                org_name: org.name,
                org_kind: org.kind,
                region: org.region,
                // A key acts with no more than its creator may now: roles the creator lost
                // since the key was made are gone from the key too.
                roles: k.roles.intersection(&creator.roles),
                session_id: None,
                must_change_password: false,
                request_id: None,
            })
        } else {
            Err(IdentityError::Unauthenticated)
        }
    }

    /// Ends the principal's session (no-op for API keys, which are revoked instead).
    pub async fn logout(&self, principal: &Principal) -> Result<(), IdentityError> {
        if let Some(id) = principal.session_id {
            let now = self.clock.now();
            let event = audit::by(principal, now, "auth.logout", "session", id.to_string(), None, None);
            self.store
                .write(move |tx| {
                    Box::pin(async move {
                        sessions::revoke(tx.conn(), id, now).await?;
                        tx.record(event);
                        Ok::<_, StoreError>(())
                    })
                })
                .await?;
        }
        Ok(())
    }
}

/// Reserves one attempt against each subject's limit: `Some(retry_after)` when a subject is
/// locked or its attempts of the window are spent (reserved by attempts still verifying).
async fn reserve_attempt(
    c: &mut Conn,
    subjects: &[(String, i64)],
    now: Timestamp,
    cfg: &crate::IdentityConfig,
) -> Result<Option<i64>, StoreError> {
    let mut counters = Vec::new();
    for (subject, max) in subjects {
        let mut t = throttle::get(&mut *c, subject).await?.unwrap_or(ThrottleRecord {
            subject: subject.clone(),
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        if let Some(until) = t.locked_until
            && until > now
        {
            return Ok(Some(until.duration_since(now).as_secs().max(1)));
        }
        if t.window_start + cfg.failure_window <= now {
            t.failures = 0;
            t.window_start = now;
            t.locked_until = None;
        }
        if t.failures >= *max {
            // Spent by attempts that have not finished verifying: refused like a lock.
            return Ok(Some(cfg.lockout.as_secs().max(1)));
        }
        t.failures += 1;
        counters.push(t);
    }
    for t in &counters {
        throttle::put(&mut *c, t).await?;
    }
    Ok(None)
}

/// After a failed attempt (already counted when it was reserved): locks each subject whose
/// failures reached its limit; returns the lock's remaining seconds if any is now locked.
async fn lock_if_spent(
    c: &mut Conn,
    subjects: &[(String, i64)],
    now: Timestamp,
    cfg: &crate::IdentityConfig,
) -> Result<Option<i64>, StoreError> {
    let mut locked = None;
    for (subject, max) in subjects {
        let Some(mut t) = throttle::get(&mut *c, subject).await? else {
            continue;
        };
        if t.failures >= *max && t.locked_until.is_none_or(|u| u <= now) {
            t.locked_until = Some(now + cfg.lockout);
            throttle::put(&mut *c, &t).await?;
        }
        if t.locked_until.is_some_and(|u| u > now) {
            locked = Some(t.locked_until.map_or(0, |u| u.duration_since(now).as_secs().max(1)));
        }
    }
    Ok(locked)
}

/// Runs CPU-heavy work (argon2) off the async executor's threads; `None` if
/// the task could not finish (runtime shutting down).
pub(crate) async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}
