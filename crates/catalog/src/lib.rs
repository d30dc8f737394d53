//! # shuyu-catalog
//!
//! Datasets (数据资源) and their versions. A provider imports a file: it is
//! validated and sealed into the vault (`shuyu-import`, `shuyu-vault`) as a new
//! version awaiting review; the provider reads the row-level error report and the
//! suggested classification (masked examples only), corrects it, and accepts the
//! version — unless it holds core data, which is refused entry to the domain —
//! or rejects it, which destroys its data (the wrapped keys and the objects).
//! Every step is authorized by the policies and recorded in the audit log, and
//! each version is a lineage node derived from the digest of the uploaded file.
//!
//! The catalog chain (resource → operation → development catalogs, social data)
//! builds on these datasets (issue "Data vault … and the catalogs").

pub mod chain;
pub mod compare;
pub mod dcat;
pub mod entries;
pub mod governance;
pub mod request;
pub mod version;

pub use request::ImportRequest;
/// The field types a provider may choose when correcting a classification.
pub use shuyu_classify::FieldType;

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shuyu_audit::entry::Outcome;
use shuyu_classify::{Grade, Tier};
use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::error::{ErrorKind, FieldError, Message, UserFacing};
use shuyu_core::id::OrgId;
use shuyu_identity::{Identity, IdentityError};
use shuyu_import::{Column, Options, Report};
use shuyu_policy::{Action, Resource};
use shuyu_store::datasets::{self, DatasetRecord, ImportErrorRecord, VersionRecord};
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::{StoreError, orgs};
use shuyu_vault::Vault;

use crate::version::{VersionEvent, VersionState, transition};

/// What can go wrong with datasets.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Authorization, validation or the store (from the identity service).
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file could not be imported at all.
    #[error(transparent)]
    Import(#[from] shuyu_import::ImportError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] shuyu_vault::VaultError),
    /// The version is not in a state that allows this.
    #[error(transparent)]
    State(#[from] version::IllegalTransition),
    /// The catalog entry is not in a state that allows this.
    #[error(transparent)]
    EntryState(#[from] chain::IllegalEntryTransition),
    /// The governance item is not in a state that allows this.
    #[error(transparent)]
    ItemState(#[from] governance::IllegalItemTransition),
    /// No such dataset or version.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The version holds core data (GB/T 43697): refused entry to the domain.
    #[error("core data is refused entry to the domain (columns: {0})")]
    CoreData(String),
    /// Input values broke rules.
    #[error(transparent)]
    Invalid(#[from] shuyu_core::error::Validation),
    /// Accepting would make breaking changes nobody confirmed (named by their keys).
    #[error("breaking changes not confirmed: {}", .0.join(", "))]
    Unconfirmed(Vec<String>),
    /// There is no earlier version to go back to.
    #[error("no earlier version to roll back to")]
    NothingToRollBack,
}

impl From<FieldError> for CatalogError {
    fn from(e: FieldError) -> Self {
        CatalogError::Invalid(e.into())
    }
}

impl UserFacing for CatalogError {
    fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::Identity(e) => e.kind(),
            CatalogError::Store(e) => e.kind(),
            CatalogError::Import(_) | CatalogError::Invalid(_) => ErrorKind::Invalid,
            CatalogError::Vault(_) => ErrorKind::Internal,
            CatalogError::State(_)
            | CatalogError::EntryState(_)
            | CatalogError::ItemState(_)
            | CatalogError::CoreData(_)
            | CatalogError::Unconfirmed(_)
            | CatalogError::NothingToRollBack => ErrorKind::Conflict,
            CatalogError::NotFound(_) => ErrorKind::NotFound,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            CatalogError::Identity(e) => e.code(),
            CatalogError::Store(e) => e.code(),
            CatalogError::Import(_) => "import_failed",
            CatalogError::Vault(_) => "internal",
            CatalogError::State(_) | CatalogError::EntryState(_) | CatalogError::ItemState(_) => "illegal_transition",
            CatalogError::NotFound(_) => "not_found",
            CatalogError::CoreData(_) => "core_data_refused",
            CatalogError::Invalid(v) => v.code(),
            CatalogError::Unconfirmed(_) => "breaking_change_unconfirmed",
            CatalogError::NothingToRollBack => "nothing_to_roll_back",
        }
    }
    fn message(&self) -> Message {
        let m = Message::new(format!("error.{}", self.code()));
        match self {
            CatalogError::Identity(e) => e.message(),
            CatalogError::Import(e) => m.arg("detail", e.to_string()),
            CatalogError::State(e) => m
                .arg("from", e.from.code())
                .arg("event", format!("{:?}", e.event).to_lowercase()),
            CatalogError::EntryState(e) => m.arg("from", e.from.code()).arg("event", e.event.code()),
            CatalogError::ItemState(e) => m
                .arg("from", e.from.code())
                .arg("event", format!("{:?}", e.event).to_lowercase()),
            CatalogError::NotFound(o) => m.arg_key("object", format!("object.{o}")),
            CatalogError::CoreData(cols) => m.arg("columns", cols.clone()),
            CatalogError::Unconfirmed(keys) => m.arg("changes", keys.join(", ")),
            _ => m,
        }
    }
    fn field_errors(&self) -> Vec<FieldError> {
        match self {
            CatalogError::Identity(e) => e.field_errors(),
            CatalogError::Invalid(v) => v.field_errors(),
            _ => Vec::new(),
        }
    }
}

/// A version as shown to its provider and to oversight: never data, never keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    /// Its id.
    pub id: String,
    /// Its dataset.
    pub dataset_id: String,
    /// Its number within the dataset.
    pub version_no: i64,
    /// Its state.
    pub state: VersionState,
    /// The uploaded file's name.
    pub source_name: String,
    /// Format and encoding read.
    pub format: String,
    /// The text encoding read.
    pub encoding: String,
    /// Data rows read.
    pub rows_read: i64,
    /// Rows kept.
    pub rows_accepted: i64,
    /// Rows quarantined.
    pub rows_quarantined: i64,
    /// Bad values found (the report lists them).
    pub error_count: i64,
    /// The columns, their classification and masked examples.
    pub columns: Vec<Column>,
    /// The version's grade (strictest column).
    pub grade: String,
    /// What it changes against the dataset's current version (while under review).
    pub changes: Vec<compare::Change>,
}

fn view(v: &VersionRecord) -> VersionView {
    VersionView {
        id: v.id.clone(),
        dataset_id: v.dataset_id.clone(),
        version_no: v.version_no,
        state: VersionState::parse(&v.status).unwrap_or(VersionState::Rejected),
        source_name: v.source_name.clone(),
        format: v.format.clone(),
        encoding: v.encoding.clone(),
        rows_read: v.rows_read,
        rows_accepted: v.rows_accepted,
        rows_quarantined: v.rows_quarantined,
        error_count: v.error_count,
        columns: serde_json::from_str(&v.columns_json).unwrap_or_default(),
        grade: v.grade.clone(),
        changes: Vec::new(),
    }
}

/// A version's columns as stored; what does not parse is `Corrupt`, never "no columns"
/// (no columns would pass the core-data check and every comparison).
fn columns_of(v: &VersionRecord) -> Result<Vec<Column>, CatalogError> {
    serde_json::from_str(&v.columns_json).map_err(|e| {
        CatalogError::Store(StoreError::Corrupt {
            table: "dataset_versions",
            column: "columns_json",
            detail: e.to_string(),
        })
    })
}

/// A correction of one column's classification by the provider.
#[derive(Debug, Clone, Default)]
pub struct Correction {
    /// A new type.
    pub field_type: Option<String>,
    /// A new grade code (`L1`…`L4`, `important`, `core`).
    pub grade: Option<String>,
}

/// The datasets service.
#[derive(Clone)]
pub struct Catalog {
    identity: Identity,
    vault: Vault,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

fn dataset_resource(d: &DatasetRecord, org: &shuyu_store::orgs::OrgRecord, social_approved: bool) -> Resource {
    Resource::Dataset {
        id: d.id.clone(),
        org: org.id,
        org_kind: org.kind,
        region: org.region.clone(),
        grade: d.grade.clone(),
        social_approved,
    }
}

fn file_digest(path: &Path) -> Result<String, std::io::Error> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub(crate) fn valid_name(name: &str) -> Result<String, FieldError> {
    let n = name.trim().to_ascii_lowercase();
    let ok = (2..=64).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(n)
    } else {
        Err(FieldError::new("dataset", "dataset_name_chars"))
    }
}

impl Catalog {
    /// The service over the identity service (authorization, clock, store) and the vault.
    pub fn new(identity: Identity, vault: Vault) -> Self {
        Catalog { identity, vault }
    }

    async fn org(&self, id: &str) -> Result<shuyu_store::orgs::OrgRecord, CatalogError> {
        let id: OrgId = id.parse().map_err(|_| CatalogError::NotFound("org"))?;
        orgs::get(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(CatalogError::NotFound("org"))
    }

    /// The policy resource of a dataset; a developer's dataset carries whether its social data was approved.
    async fn resource_of(&self, d: &DatasetRecord, o: &shuyu_store::orgs::OrgRecord) -> Result<Resource, CatalogError> {
        let social =
            o.kind == shuyu_core::party::OrgKind::Developer && self.social_approved(&o.id.to_string(), &d.name).await?;
        Ok(dataset_resource(d, o, social))
    }

    /// Removes what a crash left in the vault: staging files and objects no version refers to.
    pub async fn sweep(&self) -> Result<usize, CatalogError> {
        let known: HashSet<String> = datasets::live_objects(&mut *self.identity.store().read().await?)
            .await?
            .into_iter()
            .collect();
        Ok(self.vault.sweep(&known).await?)
    }

    /// The dataset `name` of the principal's organisation as it would receive an import
    /// (a new record if it does not exist yet), once the principal is allowed to import
    /// into it. Authorization comes first: who may not import learns nothing about naming rules.
    async fn import_target(
        &self,
        p: &Principal,
        name: &str,
        title: Option<&str>,
    ) -> Result<DatasetRecord, CatalogError> {
        let name = name.trim().to_ascii_lowercase();
        let org = self.org(&p.org_id.to_string()).await?;
        let existing = datasets::find(&mut *self.identity.store().read().await?, &org.id.to_string(), &name).await?;
        let now = self.identity.clock().now();
        let dataset = match existing {
            Some(d) => d,
            None => DatasetRecord {
                id: uuid::Uuid::now_v7().to_string(),
                org_id: org.id.to_string(),
                name: name.clone(),
                title: title
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .unwrap_or(&name)
                    .chars()
                    .take(200)
                    .collect(),
                grade: "L1".into(),
                status: "active".into(),
                current_version: None,
                created_at: now,
                updated_at: now,
            },
        };
        let social = org.kind == shuyu_core::party::OrgKind::Developer
            && self.social_approved(&org.id.to_string(), &name).await?;
        self.identity
            .authorize(p, Action::DatasetImport, &dataset_resource(&dataset, &org, social))
            .await?;
        valid_name(&name)?;
        Ok(dataset)
    }

    /// Whether the principal may import into dataset `name` — asked before an upload
    /// is received, so a refused caller does not send gigabytes first.
    pub async fn may_import(&self, p: &Principal, name: &str) -> Result<(), CatalogError> {
        self.import_target(p, name, None).await.map(|_| ())
    }

    /// Imports `file` as a new version of dataset `name` of the principal's organisation
    /// (created on first import, titled `title`). The version awaits review.
    pub async fn import(
        &self,
        p: &Principal,
        name: &str,
        title: Option<&str>,
        file: &Path,
        source_name: &str,
        opts: &Options,
    ) -> Result<(VersionView, Vec<ImportErrorRecord>), CatalogError> {
        let dataset = self.import_target(p, name, title).await?;
        let now = self.identity.clock().now();
        // The format follows the name the provider gave the file, not where it was received.
        let mut opts = opts.clone();
        if opts.format.is_none() {
            opts.format = Some(
                shuyu_import::Format::from_name(source_name)
                    .ok_or_else(|| shuyu_import::ImportError::UnknownFormat(source_name.to_string()))?,
            );
        }
        let version_id = uuid::Uuid::now_v7().to_string();
        let object_path = format!("datasets/{}/{}.parquet", dataset.id, version_id);
        let digest = file_digest(file).map_err(shuyu_import::ImportError::from)?;
        // Reading and validating is CPU-bound: it runs on a blocking thread, not on the server's workers.
        let imported = {
            let (file, opts, vault, vid, path) = (
                file.to_path_buf(),
                opts.clone(),
                self.vault.clone(),
                version_id.clone(),
                object_path.clone(),
            );
            let rt = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                rt.block_on(shuyu_import::import_file(&file, &opts, &vault, &vid, &path))
            })
            .await
            .map_err(|e| {
                shuyu_import::ImportError::Io(std::io::Error::other(format!("the import task stopped: {e}")))
            })??
        };
        let report: Report = imported.report;
        let errors: Vec<ImportErrorRecord> = report
            .errors
            .iter()
            .map(|e| ImportErrorRecord {
                row_no: e.row as i64,
                field: e.field.clone(),
                rule: e.rule.clone(),
                value_digest: e.value_digest.clone(),
            })
            .collect();
        let state = if report.rejected {
            VersionState::Rejected
        } else {
            VersionState::PendingReview
        };
        let record = VersionRecord {
            id: version_id.clone(),
            dataset_id: dataset.id.clone(),
            version_no: 0,
            status: state.code().into(),
            source_name: source_name.chars().take(200).collect(),
            format: serde_json::to_value(report.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            encoding: report.encoding.clone(),
            rows_read: report.rows_read as i64,
            rows_accepted: report.rows_accepted as i64,
            rows_quarantined: report.rows_quarantined as i64,
            error_count: report.error_count as i64,
            object_path: imported.data.as_ref().map(|s| s.path.clone()),
            wrapped_key: imported.data.as_ref().map(|s| s.wrapped_key.clone()),
            bytes: imported.data.as_ref().map(|s| s.bytes as i64).unwrap_or(0),
            quarantine_path: imported.quarantine.as_ref().map(|s| s.path.clone()),
            quarantine_key: imported.quarantine.as_ref().map(|s| s.wrapped_key.clone()),
            columns_json: serde_json::to_string(&report.columns).unwrap_or_default(),
            grade: report.grade.code(),
            created_at: now,
            created_by: p.user_id.to_string(),
            decided_at: None,
            decided_by: None,
        };
        let mut event = shuyu_identity::audit::by(
            p,
            now,
            "dataset.import",
            "dataset_version",
            version_id.clone(),
            None,
            None,
        );
        event.outcome = if report.rejected {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        event.payload = Some(serde_json::json!({
            "dataset": dataset.id, "name": dataset.name, "source": record.source_name, "source_sha256": digest,
            "rows_read": report.rows_read, "rows_accepted": report.rows_accepted,
            "rows_quarantined": report.rows_quarantined, "errors": report.error_count, "grade": record.grade,
        }));
        event.links = vec![Link {
            from: NodeRef::new("source_file", format!("sha256:{digest}")),
            to: NodeRef::new("dataset_version", version_id.clone()),
            relation: "imported_as".into(),
        }];
        let create = shuyu_identity::audit::by(p, now, "dataset.create", "dataset", dataset.id.clone(), None, None);
        let (ds, mut rec, errs) = (dataset.clone(), record.clone(), errors.clone());
        let stored = self
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    if datasets::get(tx.conn(), &ds.id).await?.is_none() {
                        datasets::insert(tx.conn(), &ds).await?;
                        tx.record(create);
                    }
                    rec.version_no = datasets::next_version_no(tx.conn(), &ds.id).await?;
                    datasets::insert_version(tx.conn(), &rec).await?;
                    datasets::insert_errors(tx.conn(), &rec.id, &errs).await?;
                    tx.record(event);
                    Ok::<_, StoreError>(rec)
                })
            })
            .await;
        let stored = match stored {
            Ok(r) => r,
            Err(e) => {
                // Nothing refers to the sealed objects: remove them now rather than leave orphans.
                for path in [&record.object_path, &record.quarantine_path].into_iter().flatten() {
                    let _ = self.vault.delete(path).await;
                }
                return Err(e.into());
            }
        };
        tracing::info!(dataset = %dataset.name, version = %stored.id, rows = stored.rows_accepted, errors = stored.error_count, "imported");
        let mut out = view(&stored);
        // What it would change is shown before anyone accepts it.
        let current = datasets::get(&mut *self.identity.store().read().await?, &stored.dataset_id).await?;
        if let Some(d) = current {
            out.changes = self.changes(&stored, &d).await?;
        }
        Ok((out, errors))
    }

    async fn load(
        &self,
        version_id: &str,
    ) -> Result<(VersionRecord, DatasetRecord, shuyu_store::orgs::OrgRecord), CatalogError> {
        let mut c = self.identity.store().read().await?;
        let v = datasets::get_version(&mut c, version_id)
            .await?
            .ok_or(CatalogError::NotFound("dataset_version"))?;
        let d = datasets::get(&mut c, &v.dataset_id)
            .await?
            .ok_or(CatalogError::NotFound("dataset"))?;
        drop(c);
        let o = self.org(&d.org_id).await?;
        Ok((v, d, o))
    }

    /// One version.
    pub async fn version(&self, p: &Principal, version_id: &str) -> Result<VersionView, CatalogError> {
        let (v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetRead, &self.resource_of(&d, &o).await?)
            .await?;
        let mut out = view(&v);
        out.changes = self.changes(&v, &d).await?;
        Ok(out)
    }

    /// What version `v` (under review) changes against its dataset's current version.
    async fn changes(&self, v: &VersionRecord, d: &DatasetRecord) -> Result<Vec<compare::Change>, CatalogError> {
        if v.status != VersionState::PendingReview.code() {
            return Ok(Vec::new());
        }
        let Some(current_id) = d.current_version.as_deref().filter(|c| *c != v.id) else {
            return Ok(Vec::new());
        };
        let current = datasets::get_version(&mut *self.identity.store().read().await?, current_id)
            .await?
            .ok_or(CatalogError::NotFound("dataset_version"))?;
        Ok(compare::compare(
            &columns_of(&current)?,
            current.rows_accepted,
            &columns_of(v)?,
            v.rows_accepted,
        ))
    }

    /// A page of a version's error report.
    pub async fn errors(
        &self,
        p: &Principal,
        version_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ImportErrorRecord>, CatalogError> {
        let (v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetRead, &self.resource_of(&d, &o).await?)
            .await?;
        Ok(datasets::errors(
            &mut *self.identity.store().read().await?,
            &v.id,
            limit.clamp(1, 10_000),
            offset.max(0),
        )
        .await?)
    }

    /// The datasets the principal may read, with their versions.
    pub async fn list(&self, p: &Principal) -> Result<Vec<(DatasetRecord, Vec<VersionView>)>, CatalogError> {
        self.identity
            .authorize(p, Action::DatasetList, &Resource::Platform)
            .await?;
        let all = datasets::list(&mut *self.identity.store().read().await?, None).await?;
        let mut out = Vec::new();
        for d in all {
            let o = self.org(&d.org_id).await?;
            if self
                .identity
                .allows(p, Action::DatasetRead, &self.resource_of(&d, &o).await?)
            {
                let versions = datasets::versions(&mut *self.identity.store().read().await?, &d.id).await?;
                out.push((d, versions.iter().map(view).collect()));
            }
        }
        Ok(out)
    }

    /// Corrects a column's classification (type and/or grade) of a version under review.
    pub async fn correct(
        &self,
        p: &Principal,
        version_id: &str,
        column: &str,
        c: Correction,
    ) -> Result<VersionView, CatalogError> {
        let (mut v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetReview, &self.resource_of(&d, &o).await?)
            .await?;
        let state = VersionState::parse(&v.status).unwrap_or(VersionState::Rejected);
        transition(state, VersionEvent::Correct)?;
        let mut columns: Vec<Column> = serde_json::from_str(&v.columns_json).unwrap_or_default();
        let before = serde_json::to_value(&columns).unwrap_or_default();
        let col = columns
            .iter_mut()
            .find(|x| x.name == column)
            .ok_or(CatalogError::NotFound("column"))?;
        if let Some(t) = &c.field_type {
            let t: FieldType = t.parse()?;
            let examples = col.examples.clone();
            col.class = shuyu_classify::reclassify(col.class.clone(), t, std::iter::empty());
            col.class.evidence = "set by the provider".into();
            col.examples = examples;
            col.overridden = true;
        }
        if let Some(g) = &c.grade {
            col.class.grade =
                Grade::parse(g).ok_or_else(|| FieldError::new("grade", "unknown_value").arg("value", g))?;
            col.overridden = true;
        }
        v.grade = shuyu_classify::dataset_grade(columns.iter().map(|x| &x.class.grade)).code();
        v.columns_json = serde_json::to_string(&columns).unwrap_or_default();
        let now = self.identity.clock().now();
        let after = serde_json::to_value(&columns).unwrap_or_default();
        let mut event = shuyu_identity::audit::by(
            p,
            now,
            "dataset.classification_correct",
            "dataset_version",
            v.id.clone(),
            Some(&before),
            Some(&after),
        );
        event.payload = Some(serde_json::json!({ "column": column, "field_type": c.field_type, "grade": c.grade }));
        let rec = v.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    datasets::update_version(tx.conn(), &rec).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(view(&v))
    }

    /// Accepts a version under review: it becomes the dataset's current version. A version
    /// holding core data is refused entry instead: its data is destroyed and the reason given.
    pub async fn accept(
        &self,
        p: &Principal,
        version_id: &str,
        confirmed: &[String],
    ) -> Result<VersionView, CatalogError> {
        let (v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetReview, &self.resource_of(&d, &o).await?)
            .await?;
        let columns = columns_of(&v)?;
        // Every breaking change against the current version is confirmed by name, or
        // nothing happens (the provider is told which).
        let unconfirmed: Vec<String> = self
            .changes(&v, &d)
            .await?
            .iter()
            .filter(|c| c.breaking && !confirmed.contains(&c.key()))
            .map(compare::Change::key)
            .collect();
        if !unconfirmed.is_empty() && VersionState::parse(&v.status) == Some(VersionState::PendingReview) {
            return Err(CatalogError::Unconfirmed(unconfirmed));
        }
        let core: Vec<&str> = columns
            .iter()
            .filter(|c| c.class.grade.tier == Tier::Core)
            .map(|c| c.name.as_str())
            .collect();
        if !core.is_empty() {
            let cols = core.join(", ");
            self.destroy(p, v, "dataset.refuse_core_data").await?;
            return Err(CatalogError::CoreData(cols));
        }
        let next = transition(
            VersionState::parse(&v.status).unwrap_or(VersionState::Rejected),
            VersionEvent::Accept,
        )?;
        let now = self.identity.clock().now();
        let previous = d.current_version.clone();
        let mut dataset = d.clone();
        dataset.current_version = Some(v.id.clone());
        dataset.grade = v.grade.clone();
        dataset.updated_at = now;
        let mut rec = v.clone();
        rec.status = next.code().into();
        rec.decided_at = Some(now);
        rec.decided_by = Some(p.user_id.to_string());
        let mut event =
            shuyu_identity::audit::by(p, now, "dataset.accept", "dataset_version", v.id.clone(), None, None);
        event.payload = Some(serde_json::json!({ "dataset": d.id, "grade": v.grade, "rows": v.rows_accepted }));
        if let Some(prev) = &previous {
            event.links = vec![Link {
                from: NodeRef::new("dataset_version", prev.clone()),
                to: NodeRef::new("dataset_version", v.id.clone()),
                relation: "superseded_by".into(),
            }];
        }
        let out = rec.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    if let Some(prev) = previous
                        && let Some(mut old) = datasets::get_version(tx.conn(), &prev).await?
                        && let Ok(s) = transition(
                            VersionState::parse(&old.status).unwrap_or(VersionState::Rejected),
                            VersionEvent::Supersede,
                        )
                    {
                        old.status = s.code().into();
                        datasets::update_version(tx.conn(), &old).await?;
                    }
                    datasets::update_version(tx.conn(), &rec).await?;
                    datasets::update(tx.conn(), &dataset).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(view(&out))
    }

    /// Takes the dataset's current version back: the version it replaced is current again
    /// (its data, classification and grade), the taken-back one is kept as `rolled_back`,
    /// in one audited change. Jobs read the current version from then on and workspaces
    /// rebuild their samples from it at their next sync.
    /// `name` is a dataset of the principal's organisation.
    pub async fn roll_back(&self, p: &Principal, name: &str) -> Result<VersionView, CatalogError> {
        let d = datasets::find(
            &mut *self.identity.store().read().await?,
            &p.org_id.to_string(),
            &name.trim().to_ascii_lowercase(),
        )
        .await?
        .ok_or(CatalogError::NotFound("dataset"))?;
        let o = self.org(&d.org_id).await?;
        self.identity
            .authorize(p, Action::DatasetReview, &self.resource_of(&d, &o).await?)
            .await?;
        self.roll_back_dataset(p, d).await
    }

    /// [`Catalog::roll_back`] from the page of the dataset's current version `version_id`.
    /// Authorized before anything about the version is told (its state is no oracle).
    pub async fn roll_back_from(&self, p: &Principal, version_id: &str) -> Result<VersionView, CatalogError> {
        let (v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetReview, &self.resource_of(&d, &o).await?)
            .await?;
        if d.current_version.as_deref() != Some(v.id.as_str()) {
            return Err(CatalogError::NothingToRollBack);
        }
        self.roll_back_dataset(p, d).await
    }

    /// The rollback itself, once the principal is authorized for `d`.
    async fn roll_back_dataset(&self, p: &Principal, d: DatasetRecord) -> Result<VersionView, CatalogError> {
        let mut conn = self.identity.store().read().await?;
        let current_id = d.current_version.clone().ok_or(CatalogError::NothingToRollBack)?;
        let versions = datasets::versions(&mut conn, &d.id).await?;
        drop(conn);
        let current = versions
            .iter()
            .find(|v| v.id == current_id)
            .cloned()
            .ok_or(CatalogError::NotFound("dataset_version"))?;
        let previous = versions
            .iter()
            .filter(|v| v.status == VersionState::Superseded.code() && v.version_no < current.version_no)
            .max_by_key(|v| v.version_no)
            .cloned()
            .ok_or(CatalogError::NothingToRollBack)?;
        let parse = |v: &VersionRecord| {
            VersionState::parse(&v.status).ok_or_else(|| {
                CatalogError::Store(StoreError::Corrupt {
                    table: "dataset_versions",
                    column: "status",
                    detail: v.status.clone(),
                })
            })
        };
        let now = self.identity.clock().now();
        let mut back = current.clone();
        back.status = transition(parse(&current)?, VersionEvent::RollBack)?.code().into();
        let mut again = previous.clone();
        again.status = transition(parse(&previous)?, VersionEvent::Reinstate)?.code().into();
        again.decided_at = Some(now);
        again.decided_by = Some(p.user_id.to_string());
        let mut dataset = d.clone();
        dataset.current_version = Some(again.id.clone());
        dataset.grade = again.grade.clone();
        dataset.updated_at = now;
        let mut event = shuyu_identity::audit::by(p, now, "dataset.rollback", "dataset", d.id.clone(), None, None);
        event.payload = Some(serde_json::json!({
            "from": current.id, "from_no": current.version_no,
            "to": again.id, "to_no": again.version_no, "grade": again.grade,
        }));
        event.links = vec![Link {
            from: NodeRef::new("dataset_version", current.id.clone()),
            to: NodeRef::new("dataset_version", again.id.clone()),
            relation: "rolled_back_to".into(),
        }];
        let out = again.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    datasets::update_version(tx.conn(), &back).await?;
                    datasets::update_version(tx.conn(), &again).await?;
                    datasets::update(tx.conn(), &dataset).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(view(&out))
    }

    /// Rejects a version under review: its data and keys are destroyed.
    pub async fn reject(&self, p: &Principal, version_id: &str) -> Result<VersionView, CatalogError> {
        let (v, d, o) = self.load(version_id).await?;
        self.identity
            .authorize(p, Action::DatasetReview, &self.resource_of(&d, &o).await?)
            .await?;
        self.destroy(p, v, "dataset.reject").await
    }

    async fn destroy(&self, p: &Principal, v: VersionRecord, action: &str) -> Result<VersionView, CatalogError> {
        let next = transition(
            VersionState::parse(&v.status).unwrap_or(VersionState::Rejected),
            VersionEvent::Reject,
        )?;
        let now = self.identity.clock().now();
        let mut rec = v.clone();
        rec.status = next.code().into();
        // Crypto-shredding: the wrapped keys go first, in the same transaction as the audit entry.
        rec.wrapped_key = None;
        rec.quarantine_key = None;
        rec.decided_at = Some(now);
        rec.decided_by = Some(p.user_id.to_string());
        let event = shuyu_identity::audit::by(p, now, action, "dataset_version", v.id.clone(), None, None);
        let stored = rec.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    datasets::update_version(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        for path in [&v.object_path, &v.quarantine_path].into_iter().flatten() {
            if let Err(e) = self.vault.delete(path).await {
                tracing::warn!(error = %e, object = %path, "could not delete a destroyed version's object; its key is gone");
            }
        }
        Ok(view(&rec))
    }

    /// The system imports on a provider's behalf (the CLI, the demo): authorization as that organisation's provider role.
    pub fn system_principal(org: &shuyu_store::orgs::OrgRecord, user: &shuyu_store::users::UserRecord) -> Principal {
        Principal {
            id: PrincipalId::User(user.id),
            user_id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            org_id: org.id,
            org_name: org.name.clone(),
            org_kind: org.kind,
            region: org.region.clone(),
            roles: user.roles.clone(),
            session_id: None,
            must_change_password: false,
            request_id: None,
        }
    }
}
