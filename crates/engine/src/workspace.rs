//! The workspace service: opens a workspace when a scenario's data request is approved,
//! rebuilds its samples when a new manifest replaces the one they follow, seals it when the
//! request is no longer approved, shows it, and runs developers' SQL on its samples.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shuyu_audit::entry::Actor;
use shuyu_core::actor::Principal;
use shuyu_core::id::OrgId;
use shuyu_identity::Identity;
use shuyu_import::Column;
use shuyu_keyring::MasterKey;
use shuyu_mask::catalog::ScenarioKeys;
use shuyu_policy::{Action, Resource};
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::log::Event;
use shuyu_store::workspaces::{SampleRecord, WorkspaceRecord};
use shuyu_store::{StoreError, data_requests, datasets, orgs, workspaces};
use shuyu_vault::{Vault, sample_key_id};
use shuyu_workflow::requests::ScenarioManifest;
use shuyu_workflow::service::Lifecycle;
use utoipa::ToSchema;

use crate::EngineError;
use crate::sample::{self, Built, Entity, FieldOverride, Full, Method, Plan, SampleField, SampleRisk, SampleSpec};
use crate::sql::{self, QueryLimits, QueryPage, QueryRequest};
use shuyu_core::error::{FieldError, Validation};

/// The purpose a workspace's keys are wrapped under (binds them to the workspace).
pub fn keys_purpose(workspace_id: &str) -> String {
    format!("shuyu/workspace-keys/v1/{workspace_id}")
}

/// A workspace in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceSummary {
    /// Its id.
    pub id: String,
    /// The scenario.
    pub scenario: String,
    /// The data request it serves.
    pub request_id: String,
    /// The agreement beneath it.
    pub agreement_id: String,
    /// The organisation whose developers use it.
    pub org_id: String,
    /// `open` or `sealed`.
    pub state: String,
    /// The manifest its samples follow.
    pub manifest_digest: String,
    /// When it opened (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// A sample as its users see it: figures and techniques, never the source's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SampleView {
    /// The table name to query it by.
    pub table: String,
    /// The dataset.
    pub dataset_id: String,
    /// The dataset version it was drawn from.
    pub version_id: String,
    /// `shown`, or `withheld` when its risk stayed above the limit.
    pub status: String,
    /// Rows of the version in the approved row scope.
    pub source_rows: i64,
    /// Rows in the sample.
    pub sample_rows: i64,
    /// How it was drawn.
    pub spec: SampleSpec,
    /// Its fields and their techniques.
    pub fields: Vec<SampleField>,
    /// Its measured risk.
    pub risk: SampleRisk,
    /// When it was built (RFC 3339).
    pub built_at: String,
}

/// A workspace with its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceView {
    /// The workspace.
    #[serde(flatten)]
    pub summary: WorkspaceSummary,
    /// Its samples, by table name.
    pub samples: Vec<SampleView>,
    /// Whether the viewer may run SQL on it.
    pub can_query: bool,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Workspaces opened.
    pub opened: Vec<String>,
    /// Workspaces whose samples were rebuilt for a new manifest.
    pub rebuilt: Vec<String>,
    /// Workspaces sealed.
    pub sealed: Vec<String>,
    /// Data requests whose workspace could not be built (logged; retried at the next sync).
    pub failed: Vec<String>,
}

pub(crate) struct Inner {
    pub(crate) identity: Identity,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) vault: Vault,
    pub(crate) master: MasterKey,
    pub(crate) spec: SampleSpec,
    pub(crate) limits: QueryLimits,
    /// One sync at a time (the server's periodic one and an approval's).
    syncing: tokio::sync::Mutex<()>,
    /// Workspace queries running now, per user (`user:…`) and per organisation (`org:…`).
    running: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Jobs' limits.
    pub(crate) job_limits: crate::jobs::JobLimits,
    /// The job runner's state.
    pub(crate) jobs: Arc<crate::jobs::JobRuntime>,
    /// The gate's rules, by grade.
    pub(crate) gate: shuyu_gate::GateConfig,
}

/// A query slot held while a workspace query runs (see `Workspaces::query_slot`).
struct QuerySlot {
    inner: Arc<Inner>,
    keys: [String; 2],
}

impl Drop for QuerySlot {
    fn drop(&mut self) {
        if let Ok(mut running) = self.inner.running.lock() {
            for k in &self.keys {
                if let Some(n) = running.get_mut(k) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        running.remove(k);
                    }
                }
            }
        }
    }
}

/// The workspace service.
#[derive(Clone)]
pub struct Workspaces {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Workspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspaces").finish_non_exhaustive()
    }
}

/// One dataset of a manifest, resolved to its current version.
pub(crate) struct Source {
    pub(crate) table: String,
    pub(crate) dataset_id: String,
    pub(crate) version: datasets::VersionRecord,
    pub(crate) columns: Vec<Column>,
    pub(crate) approved: Vec<String>,
}

impl Workspaces {
    /// The service over the vault (the only reader of full data), with default sampling and
    /// query limits.
    pub fn new(identity: Identity, lifecycle: Lifecycle, vault: Vault, master: MasterKey) -> Workspaces {
        Workspaces {
            inner: Arc::new(Inner {
                identity,
                lifecycle,
                vault,
                master,
                spec: SampleSpec::default(),
                limits: QueryLimits::default(),
                syncing: tokio::sync::Mutex::new(()),
                running: std::sync::Mutex::new(std::collections::HashMap::new()),
                job_limits: crate::jobs::JobLimits::default(),
                jobs: Arc::default(),
                gate: shuyu_gate::GateConfig::default(),
            }),
        }
    }

    /// The same service running jobs under `limits`.
    pub fn with_job_limits(self, limits: crate::jobs::JobLimits) -> Workspaces {
        let i = &self.inner;
        Workspaces {
            inner: Arc::new(Inner {
                identity: i.identity.clone(),
                lifecycle: i.lifecycle.clone(),
                vault: i.vault.clone(),
                master: i.master.clone(),
                spec: i.spec.clone(),
                limits: i.limits,
                syncing: tokio::sync::Mutex::new(()),
                running: std::sync::Mutex::new(std::collections::HashMap::new()),
                job_limits: limits,
                jobs: i.jobs.clone(),
                gate: i.gate.clone(),
            }),
        }
    }

    /// The same service drawing samples by `spec` and running queries under `limits`.
    pub fn with_settings(self, spec: SampleSpec, limits: QueryLimits) -> Result<Workspaces, EngineError> {
        spec.validate()?;
        let i = &self.inner;
        Ok(Workspaces {
            inner: Arc::new(Inner {
                identity: i.identity.clone(),
                lifecycle: i.lifecycle.clone(),
                vault: i.vault.clone(),
                master: i.master.clone(),
                spec,
                limits,
                syncing: tokio::sync::Mutex::new(()),
                running: std::sync::Mutex::new(std::collections::HashMap::new()),
                job_limits: i.job_limits,
                jobs: i.jobs.clone(),
                gate: i.gate.clone(),
            }),
        })
    }

    /// The same service judging outputs by `gate` (rules per grade).
    pub fn with_gate(self, gate: shuyu_gate::GateConfig) -> Workspaces {
        let i = &self.inner;
        Workspaces {
            inner: Arc::new(Inner {
                identity: i.identity.clone(),
                lifecycle: i.lifecycle.clone(),
                vault: i.vault.clone(),
                master: i.master.clone(),
                spec: i.spec.clone(),
                limits: i.limits,
                syncing: tokio::sync::Mutex::new(()),
                running: std::sync::Mutex::new(std::collections::HashMap::new()),
                job_limits: i.job_limits,
                jobs: i.jobs.clone(),
                gate,
            }),
        }
    }

    /// The platform's sampling settings (the loosest a developer may ask for).
    pub fn default_spec(&self) -> SampleSpec {
        self.inner.spec.clone()
    }

    /// Brings workspaces in line with data requests: opens one for every approved request
    /// without one, rebuilds the samples of one whose manifest was replaced, seals one whose
    /// request is no longer approved. Safe to call at any time, from anywhere (one at a time).
    pub async fn sync(&self) -> Result<SyncReport, EngineError> {
        let _one = self.inner.syncing.lock().await;
        let store = self.inner.identity.store();
        let requests = data_requests::all(&mut *store.read().await?).await?;
        let mut report = SyncReport::default();
        for r in requests {
            let existing = workspaces::of_request(&mut *store.read().await?, &r.id).await?;
            if r.state != "approved" {
                if let Some(w) = existing
                    && w.state == "open"
                {
                    self.set_state(&w, "sealed", &r.state).await?;
                    report.sealed.push(w.id);
                }
                continue;
            }
            let manifests = data_requests::manifests(&mut *store.read().await?, &r.id).await?;
            let Some(m) = manifests.first() else { continue };
            // One request's failure (a damaged version, say) does not hold up the others: it is
            // reported and retried at the next sync.
            let (outcome, list) = match existing {
                None => (self.build(None, &m.manifest_json, &m.digest).await, &mut report.opened),
                Some(w) if w.manifest_digest != m.digest || w.state != "open" || self.stale(&w).await? => (
                    self.build(Some(w), &m.manifest_json, &m.digest).await,
                    &mut report.rebuilt,
                ),
                Some(_) => continue,
            };
            match outcome {
                Ok(id) => list.push(id),
                Err(e) => {
                    tracing::error!(request = %r.id, error = %e, "could not build the workspace of a data request");
                    report.failed.push(r.id.clone());
                }
            }
        }
        Ok(report)
    }

    /// Runs [`Workspaces::sync`] at once, whenever an agreement or data request changes, and
    /// every `every` (time alone can end an agreement), logging failures.
    pub fn spawn_syncer(self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut changes = self.inner.lifecycle.subscribe();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                match self.sync().await {
                    Ok(r)
                        if !(r.opened.is_empty()
                            && r.rebuilt.is_empty()
                            && r.sealed.is_empty()
                            && r.failed.is_empty()) =>
                    {
                        tracing::info!(
                            opened = r.opened.len(),
                            rebuilt = r.rebuilt.len(),
                            sealed = r.sealed.len(),
                            "workspaces synced"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "the workspace sync failed"),
                }
                tokio::select! {
                    r = changes.changed() => if r.is_err() { return },
                    _ = tick.tick() => {}
                }
            }
        })
    }

    async fn set_state(&self, w: &WorkspaceRecord, state: &str, why: &str) -> Result<(), EngineError> {
        let now = self.inner.identity.clock().now();
        let mut next = w.clone();
        next.state = state.to_string();
        next.updated_at = now;
        let mut event = Event::new(
            now,
            Actor::system("engine:workspaces"),
            "workspace.seal",
            "workspace",
            w.id.clone(),
        );
        event.payload = Some(serde_json::json!({ "request": w.request_id, "request_state": why }));
        let read_at = w.updated_at;
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    workspaces::update(tx.conn(), &next, read_at).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok(())
    }

    /// Whether a sample of the workspace was drawn from a version that is no longer its
    /// dataset's current one (a newer version accepted, or a rollback): its samples follow
    /// the data the jobs read.
    async fn stale(&self, w: &WorkspaceRecord) -> Result<bool, EngineError> {
        let mut conn = self.inner.identity.store().read().await?;
        for s in workspaces::samples(&mut conn, &w.id).await? {
            let current = datasets::get(&mut conn, &s.dataset_id)
                .await?
                .and_then(|d| d.current_version);
            if current.as_deref().is_some_and(|c| c != s.version_id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The workspace's keys: made and wrapped when it opens, unwrapped for each build.
    pub(crate) fn keys(&self, wrapped: &str, id: &str) -> Result<ScenarioKeys, EngineError> {
        let raw = zeroize::Zeroizing::new(self.inner.master.unwrap(&keys_purpose(id), wrapped)?);
        let part = |i: usize| {
            let mut k = [0u8; 32];
            if let Some(s) = raw.get(i * 32..(i + 1) * 32) {
                k.copy_from_slice(s);
            }
            k
        };
        Ok(ScenarioKeys {
            pseudonym: part(0),
            token: part(1),
            random: part(2),
        })
    }

    pub(crate) async fn sources(&self, manifest: &ScenarioManifest) -> Result<Vec<Source>, EngineError> {
        let mut conn = self.inner.identity.store().read().await?;
        let mut out: Vec<Source> = Vec::new();
        let mut names = HashSet::new();
        for d in &manifest.datasets {
            let Some(dataset_id) = &d.dataset_id else { continue };
            let Some(dataset) = datasets::get(&mut conn, dataset_id).await? else {
                return Err(EngineError::NotFound("dataset"));
            };
            let Some(version_id) = &dataset.current_version else {
                continue;
            };
            let Some(version) = datasets::get_version(&mut conn, version_id).await? else {
                return Err(EngineError::NotFound("dataset_version"));
            };
            let columns: Vec<Column> =
                serde_json::from_str(&version.columns_json).map_err(|e| StoreError::Corrupt {
                    table: "dataset_versions",
                    column: "columns_json",
                    detail: e.to_string(),
                })?;
            let mut table = dataset.name.clone();
            let mut n = 2;
            while !names.insert(table.clone()) {
                table = format!("{}_{n}", dataset.name);
                n += 1;
            }
            out.push(Source {
                table,
                dataset_id: dataset.id.clone(),
                version,
                columns,
                approved: d.fields.clone(),
            });
        }
        Ok(out)
    }

    /// Builds (or rebuilds) a workspace's samples and stores them with the workspace.
    async fn build(
        &self,
        existing: Option<WorkspaceRecord>,
        manifest_json: &str,
        digest: &str,
    ) -> Result<String, EngineError> {
        let manifest = parse_manifest(manifest_json)?;
        let now = self.inner.identity.clock().now();
        let (workspace, read_at) = match existing {
            Some(w) => {
                let read_at = w.updated_at;
                (w, Some(read_at))
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                let mut secret = zeroize::Zeroizing::new(vec![0u8; 96]);
                getrandom::fill(&mut secret).map_err(|e| shuyu_keyring::KeyringError::Random(e.to_string()))?;
                let keys_wrapped = self.inner.master.wrap(&keys_purpose(&id), &secret)?;
                (
                    WorkspaceRecord {
                        id,
                        request_id: manifest.request_id.clone(),
                        agreement_id: manifest.agreement_id.clone(),
                        org_id: manifest.requester_org.clone(),
                        scenario: manifest.scenario.name.clone(),
                        manifest_digest: digest.to_string(),
                        keys_wrapped,
                        state: "open".into(),
                        created_at: now,
                        updated_at: now,
                    },
                    None,
                )
            }
        };
        let keys = self.keys(&workspace.keys_wrapped, &workspace.id)?;
        let sources = self.sources(&manifest).await?;
        let entity = sample::scenario_entity(sources.iter().map(|s| (s.columns.as_slice(), s.approved.as_slice())));
        let overrides = overrides_of(&manifest);

        // A table redrawn with its own settings keeps them across rebuilds.
        let previous = match read_at {
            Some(_) => workspaces::samples(&mut *self.inner.identity.store().read().await?, &workspace.id).await?,
            None => Vec::new(),
        };
        let mut records = Vec::new();
        let mut events = Vec::new();
        for s in &sources {
            let spec = previous
                .iter()
                .find(|p| p.table_name == s.table)
                .and_then(|p| serde_json::from_str::<SampleSpec>(&p.spec_json).ok())
                .unwrap_or_else(|| self.inner.spec.clone());
            let d = Drawing {
                keys: &keys,
                entity,
                spec: &spec,
                scope: &manifest.rows,
                overrides: overrides.get(&s.dataset_id).cloned().unwrap_or_default(),
            };
            match self.make_sample(&workspace.id, s, d, now).await {
                Ok(Some((r, e))) => {
                    records.push(r);
                    events.push(e);
                }
                Ok(None) => {}
                Err(e) => {
                    self.discard(&records).await;
                    return Err(e);
                }
            }
        }
        let mut next = workspace.clone();
        next.manifest_digest = digest.to_string();
        next.state = "open".into();
        next.updated_at = now;
        let mut opened = Event::new(
            now,
            Actor::system("engine:workspaces"),
            if read_at.is_some() {
                "workspace.rebuild"
            } else {
                "workspace.open"
            },
            "workspace",
            workspace.id.clone(),
        );
        opened.payload = Some(serde_json::json!({
            "request": manifest.request_id, "manifest": digest, "scenario": manifest.scenario.name,
            "samples": records.iter().map(|r| serde_json::json!({"table": r.table_name, "status": r.status, "rows": r.sample_rows})).collect::<Vec<_>>(),
        }));
        opened.links = vec![Link {
            from: NodeRef::new("data_request", manifest.request_id.clone()),
            to: NodeRef::new("workspace", workspace.id.clone()),
            relation: "opened_as".into(),
        }];
        let id = workspace.id.clone();
        let records_kept = records.clone();
        let stored = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    match read_at {
                        Some(at) => {
                            workspaces::update(tx.conn(), &next, at).await?;
                            workspaces::delete_samples(tx.conn(), &next.id).await?;
                        }
                        None => workspaces::insert(tx.conn(), &next).await?,
                    }
                    for r in &records {
                        workspaces::insert_sample(tx.conn(), r).await?;
                    }
                    tx.record(opened);
                    for e in events {
                        tx.record(e);
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        self.settle(stored, &records_kept, &previous).await?;
        Ok(id)
    }

    /// Draws, masks and measures one dataset's sample and, when it meets the risk limit, seals
    /// it in the vault under its own key. Returns its record and its audit entry (none when the
    /// version has no stored rows).
    async fn make_sample(
        &self,
        workspace_id: &str,
        s: &Source,
        d: Drawing<'_>,
        now: shuyu_core::clock::Timestamp,
    ) -> Result<Option<(SampleRecord, Event)>, EngineError> {
        let (Some(path), Some(wrapped)) = (&s.version.object_path, &s.version.wrapped_key) else {
            return Ok(None);
        };
        let spec = d.spec.clone();
        let built = self.draw(s, d, path, wrapped).await?;
        let sample_id = uuid::Uuid::now_v7().to_string();
        let shown = built.risk.meets_limit;
        let (object_path, wrapped_key) = if shown {
            let path = format!("samples/{workspace_id}/{sample_id}.parquet");
            let mut w = self
                .inner
                .vault
                .writer(&sample_key_id(&sample_id), &path, built.batch.schema())?;
            if let Err(e) = w.write(&built.batch) {
                self.inner.vault.abandon(w);
                return Err(e.into());
            }
            let sealed = self.inner.vault.seal(w).await?;
            (Some(sealed.path), Some(sealed.wrapped_key))
        } else {
            (None, None)
        };
        let record = SampleRecord {
            id: sample_id.clone(),
            workspace_id: workspace_id.to_string(),
            table_name: s.table.clone(),
            dataset_id: s.dataset_id.clone(),
            version_id: s.version.id.clone(),
            spec_json: serde_json::to_string(&spec).unwrap_or_default(),
            fields_json: serde_json::to_string(&built.fields).unwrap_or_default(),
            risk_json: serde_json::to_string(&built.risk).unwrap_or_default(),
            status: if shown { "shown" } else { "withheld" }.into(),
            source_rows: built.source_rows as i64,
            sample_rows: built.batch.num_rows() as i64,
            object_path,
            wrapped_key,
            created_at: now,
        };
        let mut e = Event::new(
            now,
            Actor::system("engine:workspaces"),
            "sample.build",
            "sample",
            sample_id.clone(),
        );
        e.payload = Some(serde_json::json!({
            "workspace": workspace_id, "table": s.table, "version": s.version.id, "spec": spec,
            "rows": record.sample_rows, "source_rows": record.source_rows, "status": record.status,
            "smallest_class": built.risk.shown.smallest_class, "k": built.risk.k,
            "suppressed": built.risk.suppressed,
            "techniques": built.fields.iter().map(|f| (f.name.clone(), f.technique.clone())).collect::<HashMap<_, _>>(),
        }));
        e.links = vec![Link {
            from: NodeRef::new("dataset_version", s.version.id.clone()),
            to: NodeRef::new("sample", sample_id),
            relation: "sampled_from".into(),
        }];
        Ok(Some((record, e)))
    }

    /// After storing new samples in place of `replaced`: on success the replaced samples'
    /// files go (nothing refers to them any more); on failure the new ones go instead.
    async fn settle(
        &self,
        stored: Result<(), StoreError>,
        new: &[SampleRecord],
        replaced: &[SampleRecord],
    ) -> Result<(), EngineError> {
        match stored {
            Ok(()) => {
                self.discard(replaced).await;
                Ok(())
            }
            Err(e) => {
                self.discard(new).await;
                Err(e.into())
            }
        }
    }

    /// Deletes the files of samples that were not (or are no longer) stored.
    async fn discard(&self, records: &[SampleRecord]) {
        for r in records {
            if let Some(p) = &r.object_path {
                let _ = self.inner.vault.delete(p).await;
            }
        }
    }

    /// Reads a version's needed columns and builds its sample on a worker thread.
    async fn draw(&self, s: &Source, d: Drawing<'_>, path: &str, wrapped: &str) -> Result<Built, EngineError> {
        let columns = s.columns.clone();
        let approved = s.approved.clone();
        let scope = d.scope.clone();
        let spec = d.spec.clone();
        let keys = d.keys.clone();
        let entity = d.entity;
        let overrides = d.overrides;
        let needed = sample::needed_columns(&Plan {
            columns: &columns,
            approved: &approved,
            scope: &scope,
            entity,
            spec: &spec,
            keys: &keys,
            overrides: &overrides,
        });
        let available: HashSet<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let needed: Vec<String> = needed.into_iter().filter(|c| available.contains(c.as_str())).collect();
        let full = Full {
            batches: self
                .inner
                .vault
                .read(&s.version.id, path, wrapped, Some(&needed))
                .await?,
        };
        tokio::task::spawn_blocking(move || {
            sample::build(
                &full,
                &Plan {
                    columns: &columns,
                    approved: &approved,
                    scope: &scope,
                    entity,
                    spec: &spec,
                    keys: &keys,
                    overrides: &overrides,
                },
            )
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))?
    }

    /// Records one audit event on its own (an access that changes nothing else).
    pub(crate) async fn record(&self, e: shuyu_store::log::Event) -> Result<(), EngineError> {
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    tx.record(e);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn resource(&self, w: &WorkspaceRecord) -> Result<Resource, EngineError> {
        let org_id: OrgId = w.org_id.parse().map_err(|_| StoreError::Corrupt {
            table: "workspaces",
            column: "org_id",
            detail: "not an organisation id".into(),
        })?;
        let org = orgs::get(&mut *self.inner.identity.store().read().await?, org_id)
            .await?
            .ok_or(EngineError::NotFound("org"))?;
        Ok(Resource::Workspace {
            id: w.id.clone(),
            org: org.id,
            org_kind: org.kind,
            region: org.region,
            state: w.state.clone(),
        })
    }

    /// Authorizes `action` on what `p` may not even know exists: a denial is audited and
    /// answers `NotFound(object)`, exactly as an object that does not exist — another
    /// organisation's workspace, job or release is no existence oracle.
    pub(crate) async fn authorize_hidden(
        &self,
        p: &Principal,
        action: Action,
        resource: &Resource,
        object: &'static str,
    ) -> Result<(), EngineError> {
        match self.inner.identity.authorize(p, action, resource).await {
            Ok(()) => Ok(()),
            Err(shuyu_identity::IdentityError::Forbidden { .. }) => Err(EngineError::NotFound(object)),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn load(&self, id: &str) -> Result<WorkspaceRecord, EngineError> {
        workspaces::get(&mut *self.inner.identity.store().read().await?, id)
            .await?
            .ok_or(EngineError::NotFound("workspace"))
    }

    /// The workspaces the principal may see.
    pub async fn list(&self, p: &Principal) -> Result<Vec<WorkspaceSummary>, EngineError> {
        let all = workspaces::all(&mut *self.inner.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for w in all {
            if self
                .inner
                .identity
                .allows(p, Action::WorkspaceRead, &self.resource(&w).await?)
            {
                out.push(summary(&w));
            }
        }
        Ok(out)
    }

    /// The workspace of a data request, if one is open or was.
    pub async fn of_request(&self, p: &Principal, request_id: &str) -> Result<Option<WorkspaceSummary>, EngineError> {
        let Some(w) = workspaces::of_request(&mut *self.inner.identity.store().read().await?, request_id).await? else {
            return Ok(None);
        };
        let allowed = self
            .inner
            .identity
            .allows(p, Action::WorkspaceRead, &self.resource(&w).await?);
        Ok(allowed.then(|| summary(&w)))
    }

    /// One workspace with its samples' figures and techniques.
    pub async fn get(&self, p: &Principal, id: &str) -> Result<WorkspaceView, EngineError> {
        let w = self.load(id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::WorkspaceRead, &resource, "workspace")
            .await?;
        let samples = workspaces::samples(&mut *self.inner.identity.store().read().await?, &w.id).await?;
        let corrupt = |column: &'static str, e: serde_json::Error| StoreError::Corrupt {
            table: "samples",
            column,
            detail: e.to_string(),
        };
        let mut views = Vec::new();
        for s in samples {
            views.push(SampleView {
                table: s.table_name.clone(),
                dataset_id: s.dataset_id.clone(),
                version_id: s.version_id.clone(),
                status: s.status.clone(),
                source_rows: s.source_rows,
                sample_rows: s.sample_rows,
                spec: serde_json::from_str(&s.spec_json).map_err(|e| corrupt("spec_json", e))?,
                fields: serde_json::from_str(&s.fields_json).map_err(|e| corrupt("fields_json", e))?,
                risk: serde_json::from_str(&s.risk_json).map_err(|e| corrupt("risk_json", e))?,
                built_at: s.created_at.to_string(),
            });
        }
        Ok(WorkspaceView {
            can_query: self.inner.identity.allows(p, Action::WorkspaceQuery, &resource),
            summary: summary(&w),
            samples: views,
        })
    }

    /// Redraws one sample of an open workspace with its developer's settings — a smaller
    /// fraction, or stratified by a field so rare values are in it — never looser than the
    /// platform's: fraction and suppression at most, k at least, the configured ones; at most
    /// [`MAX_PER_STRATUM`] rows per stratum. Beneath the agreement; audited. The table keeps
    /// these settings when a new manifest rebuilds the workspace.
    pub async fn redraw(
        &self,
        p: &Principal,
        id: &str,
        table: &str,
        spec: &SampleSpec,
    ) -> Result<WorkspaceView, EngineError> {
        let w = self.open_for_query(p, id).await?;
        let floor = &self.inner.spec;
        let mut errs = match spec.validate() {
            Ok(()) => Vec::new(),
            Err(EngineError::BadSpec(v)) => v.0,
            Err(e) => return Err(e),
        };
        if spec.fraction > floor.fraction {
            errs.push(FieldError::new("fraction", "too_large").arg("max", floor.fraction));
        }
        if spec.max_rows > floor.max_rows {
            errs.push(FieldError::new("max_rows", "too_large").arg("max", floor.max_rows));
        }
        if spec.k < floor.k {
            errs.push(FieldError::new("k", "too_small").arg("min", floor.k));
        }
        if spec.suppression > floor.suppression {
            errs.push(FieldError::new("suppression", "too_large").arg("max", floor.suppression));
        }
        if let Method::Stratified { min_per_stratum, .. } = &spec.method
            && *min_per_stratum > MAX_PER_STRATUM
        {
            errs.push(FieldError::new("min_per_stratum", "too_large").arg("max", MAX_PER_STRATUM));
        }
        if !errs.is_empty() {
            return Err(EngineError::BadSpec(Validation(errs)));
        }
        let work = async {
            let _one = self.inner.syncing.lock().await;
            let store = self.inner.identity.store();
            let manifests = data_requests::manifests(&mut *store.read().await?, &w.request_id).await?;
            let m = manifests
                .iter()
                .find(|m| m.digest == w.manifest_digest)
                .ok_or(EngineError::NotFound("manifest"))?;
            let manifest = parse_manifest(&m.manifest_json)?;
            let keys = self.keys(&w.keys_wrapped, &w.id)?;
            let sources = self.sources(&manifest).await?;
            let entity = sample::scenario_entity(sources.iter().map(|s| (s.columns.as_slice(), s.approved.as_slice())));
            let source = sources
                .iter()
                .find(|s| s.table == table)
                .ok_or(EngineError::NotFound("sample"))?;
            // Strata are approved, discrete, non-identifying fields only (a category, a code, a
            // county, a month — never an identifier, an exact date or an amount): stratifying by
            // an identifier (one row per stratum) or an unapproved field would draw the people
            // behind it into the sample; the drawing itself caps the rows strata add.
            if let Method::Stratified { by, .. } = &spec.method {
                let allowed = source.approved.contains(by)
                    && source.columns.iter().any(|c| {
                        &c.name == by
                            && matches!(
                                c.class.field_type,
                                shuyu_classify::FieldType::Category
                                    | shuyu_classify::FieldType::Text
                                    | shuyu_classify::FieldType::Integer
                                    | shuyu_classify::FieldType::Month
                            )
                    });
                if !allowed {
                    return Err(EngineError::BadSpec(Validation(vec![
                        FieldError::new("method.by", "stratum_not_allowed")
                            .arg("value", by.chars().take(64).collect::<String>()),
                    ])));
                }
            }
            let old = workspaces::samples(&mut *store.read().await?, &w.id)
                .await?
                .into_iter()
                .filter(|s| s.table_name == table)
                .collect::<Vec<_>>();
            let now = self.inner.identity.clock().now();
            let d = Drawing {
                keys: &keys,
                entity,
                spec,
                scope: &manifest.rows,
                overrides: overrides_of(&manifest).remove(&source.dataset_id).unwrap_or_default(),
            };
            let Some((record, built)) = self.make_sample(&w.id, source, d, now).await? else {
                return Err(EngineError::NotFound("sample"));
            };
            let mut asked = shuyu_identity::audit::by(p, now, "sample.redraw", "workspace", w.id.clone(), None, None);
            asked.payload = Some(serde_json::json!({ "table": table, "spec": spec, "sample": record.id }));
            let kept = vec![record.clone()];
            let (ws_id, table) = (w.id.clone(), table.to_string());
            let stored = store
                .write(move |tx| {
                    Box::pin(async move {
                        workspaces::delete_sample(tx.conn(), &ws_id, &table).await?;
                        workspaces::insert_sample(tx.conn(), &record).await?;
                        tx.record(asked);
                        tx.record(built);
                        Ok::<_, StoreError>(())
                    })
                })
                .await;
            self.settle(stored, &kept, &old).await
        };
        match self
            .inner
            .lifecycle
            .guard(&w.agreement_id, async { Ok(work.await) })
            .await
        {
            Ok(r) => r?,
            Err(e) => return Err(e.into()),
        }
        self.get(p, id).await
    }

    /// Takes one of the principal's query slots (and one of its organisation's), given back when
    /// the returned guard drops: one attacker's queries cannot take every query thread.
    fn query_slot(&self, p: &Principal) -> Result<QuerySlot, EngineError> {
        let keys = [format!("user:{}", p.user_id), format!("org:{}", p.org_id)];
        let caps = [self.inner.limits.per_user, self.inner.limits.per_org];
        let mut running = self
            .inner
            .running
            .lock()
            .map_err(|_| EngineError::Task("query slots poisoned".into()))?;
        for (k, cap) in keys.iter().zip(caps) {
            let n = running.get(k).copied().unwrap_or(0);
            if n >= cap {
                return Err(EngineError::QueryBusy(n));
            }
        }
        for k in &keys {
            *running.entry(k.clone()).or_default() += 1;
        }
        Ok(QuerySlot {
            inner: self.inner.clone(),
            keys,
        })
    }

    /// An open workspace `p` may run work in (queries, jobs): sealed is said only to those who
    /// may read it; to others it does not exist.
    pub(crate) async fn open_for_query(
        &self,
        p: &Principal,
        workspace_id: &str,
    ) -> Result<WorkspaceRecord, EngineError> {
        let w = self.load(workspace_id).await?;
        let resource = self.resource(&w).await?;
        self.authorize_hidden(p, Action::WorkspaceRead, &resource, "workspace")
            .await?;
        // The permission before the state: oversight, who may see the workspace but never
        // query it, hears "forbidden" whether it is open or sealed; its own developers hear
        // that it is sealed.
        if w.state != "open" {
            let as_open = match &resource {
                Resource::Workspace {
                    id,
                    org,
                    org_kind,
                    region,
                    ..
                } => Resource::Workspace {
                    id: id.clone(),
                    org: *org,
                    org_kind: *org_kind,
                    region: region.clone(),
                    state: "open".into(),
                },
                other => other.clone(),
            };
            if self.inner.identity.allows(p, Action::WorkspaceQuery, &as_open) {
                return Err(EngineError::Sealed(w.id.clone()));
            }
        }
        self.inner
            .identity
            .authorize(p, Action::WorkspaceQuery, &resource)
            .await?;
        Ok(w)
    }

    /// Runs one SQL query on the workspace's shown samples, beneath its agreement (refused
    /// when the agreement is not in force, and cut short when it stops being so). Every query
    /// is an audit entry — its text, its outcome and the rows returned.
    pub async fn query(&self, p: &Principal, id: &str, req: &QueryRequest) -> Result<QueryPage, EngineError> {
        let w = self.open_for_query(p, id).await?;
        let _slot = self.query_slot(p)?;
        let samples = workspaces::samples(&mut *self.inner.identity.store().read().await?, &w.id).await?;
        let limits = self.inner.limits;
        let vault = self.inner.vault.clone();
        let work = async move {
            let mut tables = Vec::new();
            for s in samples {
                let (Some(path), Some(wrapped)) = (&s.object_path, &s.wrapped_key) else {
                    continue;
                };
                let batches = vault.read(&sample_key_id(&s.id), path, wrapped, None).await?;
                tables.push((s.table_name.clone(), batches));
            }
            sql::run(tables, req, limits).await
        };
        let outcome = self
            .inner
            .lifecycle
            .guard(&w.agreement_id, async { Ok(work.await) })
            .await;
        let now = self.inner.identity.clock().now();
        let mut event = shuyu_identity::audit::by(p, now, "workspace.query", "workspace", w.id.clone(), None, None);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(req.sql.as_bytes()));
        let (result, status) = match outcome {
            Ok(Ok(page)) => {
                let rows = page.rows.len();
                (Ok(page), serde_json::json!({ "outcome": "ok", "rows": rows }))
            }
            Ok(Err(e)) => {
                let code = shuyu_core::error::UserFacing::code(&e);
                (Err(e), serde_json::json!({ "outcome": code }))
            }
            Err(e) => {
                let code = shuyu_core::error::UserFacing::code(&e);
                (Err(e.into()), serde_json::json!({ "outcome": code }))
            }
        };
        event.payload = Some(serde_json::json!({
            "sql": crate::sql::recorded(&req.sql), "sql_sha256": digest, "offset": req.offset, "limit": req.limit, "result": status,
        }));
        if result.is_err() {
            event.outcome = shuyu_audit::entry::Outcome::Failure;
        }
        self.record(event).await?;
        result
    }
}

/// What one drawing needs besides its source.
struct Drawing<'a> {
    keys: &'a ScenarioKeys,
    entity: Option<Entity>,
    spec: &'a SampleSpec,
    scope: &'a shuyu_workflow::requests::RowScope,
    overrides: Vec<FieldOverride>,
}

/// A stored manifest (a stored value that does not parse is `Corrupt`, never a default).
pub(crate) fn parse_manifest(json: &str) -> Result<ScenarioManifest, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "scenario_manifests",
        column: "manifest_json",
        detail: e.to_string(),
    })
}

/// The reviewers' overrides of the rule catalog in a manifest, by dataset.
pub(crate) fn overrides_of(manifest: &ScenarioManifest) -> HashMap<String, Vec<FieldOverride>> {
    let mut out: HashMap<String, Vec<FieldOverride>> = HashMap::new();
    for d in &manifest.datasets {
        let Some(dataset) = &d.dataset_id else { continue };
        for m in manifest.masking.iter().filter(|m| m.entry_id == d.entry_id) {
            out.entry(dataset.clone()).or_default().push(FieldOverride {
                field: m.field.clone(),
                technique: m.technique.clone(),
                reason: m.reason.clone(),
            });
        }
    }
    out
}

/// Rows per stratum a developer may ask for at most.
pub const MAX_PER_STRATUM: usize = 1000;

fn summary(w: &WorkspaceRecord) -> WorkspaceSummary {
    WorkspaceSummary {
        id: w.id.clone(),
        scenario: w.scenario.clone(),
        request_id: w.request_id.clone(),
        agreement_id: w.agreement_id.clone(),
        org_id: w.org_id.clone(),
        state: w.state.clone(),
        manifest_digest: w.manifest_digest.clone(),
        created_at: w.created_at.to_string(),
        updated_at: w.updated_at.to_string(),
    }
}
