//! # shuyu-identity
//!
//! Who may act: the directory of organisations and accounts (R-03…R-10),
//! their credentials, and the gate every request passes.
//!
//! - Passwords are hashed with argon2id; logins are throttled per username and
//!   per client address, with the counters in the database (shared by replicas).
//! - Sessions and API keys are opaque 256-bit bearer tokens; only their SHA-256
//!   digests are stored; both expire and can be revoked; keys record last use.
//! - Every administrative operation is authorized by `shuyu-policy` before it
//!   touches the store, and runs in one store transaction.
//!
//! ```no_run
//! # async fn demo(identity: shuyu_identity::Identity) -> Result<(), shuyu_identity::IdentityError> {
//! use shuyu_identity::ClientInfo;
//! let session = identity.login("admin", "the-password", &ClientInfo::default()).await?;
//! let principal = identity.authenticate(session.token.expose()).await?;
//! assert_eq!(principal.username, "admin");
//! # Ok(()) }
//! ```

use std::sync::{Arc, RwLock};

use shuyu_core::actor::Principal;
use shuyu_core::clock::{SharedClock, SignedDuration};
use shuyu_core::party::Region;
use shuyu_policy::{Action, Policies, Resource};
use shuyu_store::Store;

pub mod audit;
mod auth;
pub mod bootstrap;
mod directory;
mod error;
pub mod password;
pub mod secrets;

pub use auth::{ClientInfo, IssuedSession};
pub use directory::{
    ApiKeyView, IssuedApiKey, NewApiKey, NewOrg, NewUser, OrgPatch, UserPatch, org_resource, user_resource,
};
pub use error::IdentityError;

/// Tunables of authentication. The defaults follow common practice for
/// government systems (MLPS 2.0 asks for lockout and session timeouts).
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// How long a session lives at most.
    pub session_ttl: SignedDuration,
    /// How long a session may sit unused before it ends.
    pub session_idle: SignedDuration,
    /// Failed logins for one username, within `failure_window`, before it locks.
    pub max_failures_per_user: i64,
    /// Failed logins from one address, within `failure_window`, before it locks.
    pub max_failures_per_ip: i64,
    /// The window in which failures are counted.
    pub failure_window: SignedDuration,
    /// How long a lock lasts.
    pub lockout: SignedDuration,
    /// The longest validity an API key may be given, in days.
    pub api_key_max_days: i64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            session_ttl: SignedDuration::from_hours(12),
            session_idle: SignedDuration::from_hours(2),
            max_failures_per_user: 5,
            max_failures_per_ip: 50,
            failure_window: SignedDuration::from_mins(15),
            lockout: SignedDuration::from_mins(15),
            api_key_max_days: 366,
        }
    }
}

/// The identity service: login, authentication, and the directory.
#[derive(Clone)]
pub struct Identity {
    store: Store,
    policies: Arc<Policies>,
    clock: SharedClock,
    cfg: IdentityConfig,
    regions: Arc<RwLock<Arc<Vec<Region>>>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds the service and loads the region hierarchy from the store.
    pub async fn new(
        store: Store,
        policies: Arc<Policies>,
        clock: SharedClock,
        cfg: IdentityConfig,
    ) -> Result<Self, IdentityError> {
        let this = Self {
            store,
            policies,
            clock,
            cfg,
            regions: Arc::new(RwLock::new(Arc::new(Vec::new()))),
        };
        this.reload_regions().await?;
        Ok(this)
    }

    /// The store underneath (for health checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock in use.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The configuration in use.
    pub fn config(&self) -> &IdentityConfig {
        &self.cfg
    }

    /// The city and its counties, as last loaded.
    pub fn regions(&self) -> Arc<Vec<Region>> {
        self.regions
            .read()
            .map(|r| Arc::clone(&r))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    /// Re-reads the regions from the store (after `init` or a seed added some).
    pub async fn reload_regions(&self) -> Result<(), IdentityError> {
        let list = shuyu_store::regions::list(&mut *self.store.read().await?).await?;
        match self.regions.write() {
            Ok(mut g) => *g = Arc::new(list),
            Err(e) => *e.into_inner() = Arc::new(list),
        }
        Ok(())
    }

    /// Whether `principal` may perform `action` on `resource` (no error, for menus and filters).
    pub fn allows(&self, principal: &Principal, action: Action, resource: &Resource) -> bool {
        let verdict = self.policies.decide(principal, action, resource, &self.regions());
        if !verdict.errors.is_empty() {
            tracing::warn!(action = action.name(), errors = ?verdict.errors, "policy evaluation errors");
        }
        verdict.allowed
    }

    /// Like [`Identity::allows`], but an error when denied — and a denied
    /// attempt is itself recorded in the audit log (outcome `denied`).
    pub async fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
    ) -> Result<(), IdentityError> {
        if self.allows(principal, action, resource) {
            return Ok(());
        }
        tracing::info!(action = action.name(), principal = %principal.username, "denied by policy");
        let (kind, id) = resource_ref(resource);
        let mut event = audit::by(principal, self.clock.now(), action.name(), kind, id, None, None);
        event.outcome = shuyu_audit::entry::Outcome::Denied;
        if let Err(e) = self.store.append(vec![event]).await {
            tracing::error!(error = %e, "could not record a denied attempt");
        }
        Err(IdentityError::Forbidden { action: action.name() })
    }
}

/// The audit object of a policy resource.
fn resource_ref(r: &Resource) -> (&'static str, String) {
    match r {
        Resource::Platform => ("platform", "shuyu".into()),
        Resource::Org { id, .. } => ("org", id.to_string()),
        Resource::User { id, .. } => ("user", id.to_string()),
        Resource::ApiKey { id, .. } => ("api_key", id.to_string()),
        Resource::Dataset { id, .. } => ("dataset", id.clone()),
        Resource::CatalogEntry { id, .. } => ("catalog_entry", id.clone()),
        Resource::Call { id, .. } => ("call", id.clone()),
        Resource::Application { id, .. } => ("application", id.clone()),
        Resource::Agreement { id, .. } => ("agreement", id.clone()),
        Resource::DataRequest { id, .. } => ("data_request", id.clone()),
        Resource::CustomRequest { id, .. } => ("custom_request", id.clone()),
        Resource::Workspace { id, .. } => ("workspace", id.clone()),
    }
}
