//! The catalog chain as a service: entries are written by their keepers, moved by
//! [`crate::chain::transition`] under the policies, and every change is audited
//! with a lineage link to what it derives from (dataset → resource entry →
//! operation entry → development entry). Published entries export as DCAT-AP.

use serde::{Deserialize, Serialize};
use shuyu_classify::Grade;
use shuyu_core::actor::Principal;
use shuyu_core::error::{FieldError, Validation};
use shuyu_import::Column;
use shuyu_policy::{Action, Resource};
use shuyu_store::catalogs::{self, EntryRecord};
use shuyu_store::datasets;
use shuyu_store::lineage::{Link, NodeRef};
use shuyu_store::orgs::OrgRecord;
use utoipa::ToSchema;

use crate::chain::{EntryEvent, EntryKind, EntryState, Who, transition};
use crate::{Catalog, CatalogError};

/// How often a resource is updated (DCAT-AP's frequency vocabulary, by its codes).
pub const FREQUENCIES: [&str; 8] = [
    "realtime",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "annual",
    "irregular",
    "never",
];

/// The priority sectors of the rules (B§9), plus `other`.
pub const SECTORS: [&str; 5] = ["health", "finance", "manufacturing", "governance", "other"];

/// A field as an entry lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntryField {
    /// The column's name.
    pub name: String,
    /// Its type code (`id_number`, `date`, …).
    pub field_type: String,
    /// Its grade code (`L1`…`L4`, `important`).
    pub grade: String,
    /// `none`, `trade_secret`, `personal` or `sensitive_personal`.
    pub sensitivity: String,
    /// Why it is needed (operation demands: least necessary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One requested field in a draft.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRequest {
    /// The column's name (in the parent entry, or expected in social data).
    pub name: String,
    /// Why it is needed (required in operation demands).
    #[serde(default)]
    pub reason: Option<String>,
    /// The operator's grade (development entries; never below the provider's).
    #[serde(default)]
    pub grade: Option<String>,
    /// The expected type (social data).
    #[serde(default)]
    pub field_type: Option<String>,
}

/// What a keeper writes when creating or changing a draft. Which parts apply depends on the kind.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryDraft {
    /// The title (1–200 characters).
    pub title: String,
    /// What the data is (1–2000 characters).
    pub description: String,
    /// resource: the provider's dataset (by name); social: the dataset the developer will import into.
    #[serde(default)]
    pub dataset: Option<String>,
    /// operation: the resource entry demanded; development: the confirmed operation entry.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// One of [`FREQUENCIES`].
    #[serde(default)]
    pub update_frequency: Option<String>,
    /// One of [`SECTORS`].
    #[serde(default)]
    pub sector: Option<String>,
    /// Free keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// resource: whether it may be authorized (default yes).
    #[serde(default)]
    pub authorizable: Option<bool>,
    /// resource: the policy basis when it may not be authorized (YP4(二)1).
    #[serde(default)]
    pub restriction_basis: Option<String>,
    /// operation: the fields demanded, each with its reason; development: fields with the operator's grades;
    /// social: the expected fields.
    #[serde(default)]
    pub fields: Vec<FieldRequest>,
    /// operation: what the data is needed for.
    #[serde(default)]
    pub purpose: Option<String>,
    /// social: where the data comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// social: how it was lawfully obtained (consent, contract, licence).
    #[serde(default)]
    pub legal_basis: Option<String>,
}

/// The stored, kind-specific content of an entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EntryBody {
    /// What the data is.
    pub description: String,
    /// The dataset's name (resource, social).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// How often it is updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_frequency: Option<String>,
    /// The sector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Whether it may be authorized (resource entries).
    #[serde(default = "yes")]
    pub authorizable: bool,
    /// The policy basis of a "may not be authorized" mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction_basis: Option<String>,
    /// The fields, with grades (and reasons in demands).
    #[serde(default)]
    pub fields: Vec<EntryField>,
    /// What the data is needed for (demands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Where social data comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How social data was lawfully obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// The grade of the entry: its strictest field's.
    #[serde(default)]
    pub grade: String,
}

fn yes() -> bool {
    true
}

/// An entry as the API and the console show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// Its id.
    pub id: String,
    /// Its catalog.
    pub kind: EntryKind,
    /// Its state.
    pub state: EntryState,
    /// The keeping organisation.
    pub org_id: String,
    /// That organisation's name.
    pub org_name: String,
    /// What it derives from.
    pub parent_id: Option<String>,
    /// The dataset it describes, once known.
    pub dataset_id: Option<String>,
    /// Its title.
    pub title: String,
    /// Revision number (1 on creation, +1 on each revision).
    pub revision: i64,
    /// The content.
    pub body: EntryBody,
    /// The last decision's reason.
    pub note: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it was last decided on.
    pub decided_at: Option<String>,
    /// When it was published.
    pub published_at: Option<String>,
}

fn entry_view(e: &EntryRecord, org_name: &str) -> EntryView {
    EntryView {
        id: e.id.clone(),
        kind: EntryKind::parse(&e.kind).unwrap_or(EntryKind::Resource),
        state: EntryState::parse(&e.state).unwrap_or(EntryState::Withdrawn),
        org_id: e.org_id.clone(),
        org_name: org_name.to_string(),
        parent_id: e.parent_id.clone(),
        dataset_id: e.dataset_id.clone(),
        title: e.title.clone(),
        revision: e.revision,
        body: serde_json::from_str(&e.body_json).unwrap_or_default(),
        note: e.note.clone(),
        created_at: e.created_at.to_string(),
        updated_at: e.updated_at.to_string(),
        decided_at: e.decided_at.map(|t| t.to_string()),
        published_at: e.published_at.map(|t| t.to_string()),
    }
}

fn entry_resource(e: &EntryRecord, org: &OrgRecord) -> Resource {
    Resource::CatalogEntry {
        id: e.id.clone(),
        org: org.id,
        org_kind: org.kind,
        region: org.region.clone(),
        kind: e.kind.clone(),
        state: e.state.clone(),
    }
}

fn text_field(errs: &mut Vec<FieldError>, field: &str, v: Option<&str>, max: usize) -> Option<String> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            errs.push(FieldError::new(field, "field_required"));
            None
        }
        Some(s) if s.chars().count() > max => {
            errs.push(FieldError::new(field, "too_long").arg("max", max));
            None
        }
        Some(s) if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) => {
            errs.push(FieldError::new(field, "control_chars"));
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

fn not_applicable(errs: &mut Vec<FieldError>, field: &str, present: bool, kind: EntryKind) {
    if present {
        errs.push(FieldError::new(field, "not_applicable").arg("kind", kind.code()));
    }
}

fn columns_as_fields(columns: &[Column]) -> Vec<EntryField> {
    columns
        .iter()
        .map(|c| EntryField {
            name: c.name.clone(),
            field_type: c.class.field_type.code().into(),
            grade: c.class.grade.code(),
            sensitivity: serde_json::to_value(c.class.sensitivity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            reason: None,
        })
        .collect()
}

fn grade_of(fields: &[EntryField]) -> String {
    let grades: Vec<Grade> = fields.iter().filter_map(|f| Grade::parse(&f.grade)).collect();
    shuyu_classify::dataset_grade(grades.iter()).code()
}

/// Whether grade `a` is less strict than `b`.
fn below(a: Grade, b: Grade) -> bool {
    a != b && a.max(b) == b
}

impl Catalog {
    async fn entry(&self, id: &str) -> Result<(EntryRecord, OrgRecord), CatalogError> {
        let e = catalogs::get_entry(&mut *self.identity.store().read().await?, id)
            .await?
            .ok_or(CatalogError::NotFound("catalog_entry"))?;
        let o = self.org(&e.org_id).await?;
        Ok((e, o))
    }

    /// Checks a draft against its kind's rules and the entries it refers to, collecting
    /// every problem at once; returns the content, its parent and its dataset.
    async fn check_draft(
        &self,
        p: &Principal,
        kind: EntryKind,
        d: &EntryDraft,
    ) -> Result<(String, EntryBody, Option<String>, Option<String>), CatalogError> {
        let mut errs = Vec::new();
        let title = text_field(&mut errs, "title", Some(&d.title), 200);
        let description = text_field(&mut errs, "description", Some(&d.description), 2000);
        if let Some(f) = &d.update_frequency
            && !FREQUENCIES.contains(&f.as_str())
        {
            errs.push(FieldError::new("update_frequency", "unknown_value").arg("value", f));
        }
        if let Some(s) = &d.sector
            && !SECTORS.contains(&s.as_str())
        {
            errs.push(FieldError::new("sector", "unknown_value").arg("value", s));
        }
        if d.keywords.len() > 20 || d.keywords.iter().any(|k| k.trim().is_empty() || k.chars().count() > 40) {
            errs.push(FieldError::new("keywords", "keywords_rule"));
        }
        let mut body = EntryBody {
            description: description.unwrap_or_default(),
            update_frequency: d.update_frequency.clone(),
            sector: d.sector.clone(),
            keywords: d.keywords.iter().map(|k| k.trim().to_string()).collect(),
            authorizable: true,
            ..EntryBody::default()
        };
        let mut parent_id = None;
        let mut dataset_id = None;
        let mut store = self.identity.store().read().await?;
        match kind {
            EntryKind::Resource => {
                not_applicable(&mut errs, "parent_id", d.parent_id.is_some(), kind);
                not_applicable(&mut errs, "fields", !d.fields.is_empty(), kind);
                not_applicable(&mut errs, "source", d.source.is_some(), kind);
                not_applicable(&mut errs, "legal_basis", d.legal_basis.is_some(), kind);
                not_applicable(&mut errs, "purpose", d.purpose.is_some(), kind);
                body.authorizable = d.authorizable.unwrap_or(true);
                if body.authorizable {
                    not_applicable(&mut errs, "restriction_basis", d.restriction_basis.is_some(), kind);
                } else {
                    body.restriction_basis =
                        text_field(&mut errs, "restriction_basis", d.restriction_basis.as_deref(), 500);
                }
                if let Some(name) = text_field(&mut errs, "dataset", d.dataset.as_deref(), 64) {
                    let name = name.to_ascii_lowercase();
                    match datasets::find(&mut store, &p.org_id.to_string(), &name).await? {
                        Some(ds) => match &ds.current_version {
                            Some(v) => {
                                let v = datasets::get_version(&mut store, v)
                                    .await?
                                    .ok_or(CatalogError::NotFound("dataset_version"))?;
                                let cols: Vec<Column> = serde_json::from_str(&v.columns_json).unwrap_or_default();
                                body.fields = columns_as_fields(&cols);
                                body.dataset_name = Some(name);
                                dataset_id = Some(ds.id);
                            }
                            None => errs.push(FieldError::new("dataset", "dataset_not_ready").arg("value", &name)),
                        },
                        None => errs.push(FieldError::new("dataset", "unknown_dataset").arg("value", &name)),
                    }
                }
            }
            EntryKind::Operation | EntryKind::Development => {
                not_applicable(&mut errs, "dataset", d.dataset.is_some(), kind);
                not_applicable(&mut errs, "authorizable", d.authorizable.is_some(), kind);
                not_applicable(&mut errs, "restriction_basis", d.restriction_basis.is_some(), kind);
                not_applicable(&mut errs, "source", d.source.is_some(), kind);
                not_applicable(&mut errs, "legal_basis", d.legal_basis.is_some(), kind);
                let parent_kind = if kind == EntryKind::Operation {
                    EntryKind::Resource
                } else {
                    EntryKind::Operation
                };
                if kind == EntryKind::Operation {
                    body.purpose = text_field(&mut errs, "purpose", d.purpose.as_deref(), 1000);
                } else {
                    not_applicable(&mut errs, "purpose", d.purpose.is_some(), kind);
                }
                let parent = match d.parent_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    None => {
                        errs.push(FieldError::new("parent_id", "field_required"));
                        None
                    }
                    Some(pid) => match catalogs::get_entry(&mut store, pid).await? {
                        Some(pe) if pe.kind == parent_kind.code() && pe.state == EntryState::Published.code() => {
                            Some(pe)
                        }
                        _ => {
                            errs.push(
                                FieldError::new("parent_id", "parent_not_published")
                                    .arg("value", pid)
                                    .arg("kind", parent_kind.code()),
                            );
                            None
                        }
                    },
                };
                if let Some(pe) = parent {
                    let pb: EntryBody = serde_json::from_str(&pe.body_json).unwrap_or_default();
                    if kind == EntryKind::Operation && !pb.authorizable {
                        errs.push(
                            FieldError::new("parent_id", "not_authorizable")
                                .arg("value", &pe.title)
                                .arg("basis", pb.restriction_basis.clone().unwrap_or_default()),
                        );
                    }
                    body.dataset_name = pb.dataset_name.clone();
                    body.fields = if kind == EntryKind::Development && d.fields.is_empty() {
                        pb.fields.clone()
                    } else {
                        Vec::new()
                    };
                    if kind == EntryKind::Operation && d.fields.is_empty() {
                        errs.push(FieldError::new("fields", "field_required"));
                    }
                    let mut seen = std::collections::HashSet::new();
                    for (i, f) in d.fields.iter().enumerate() {
                        let path = format!("fields[{i}]");
                        let Some(pf) = pb.fields.iter().find(|x| x.name == f.name) else {
                            errs.push(FieldError::new(format!("{path}.name"), "not_in_parent").arg("name", &f.name));
                            continue;
                        };
                        if !seen.insert(f.name.clone()) {
                            errs.push(FieldError::new(format!("{path}.name"), "duplicate_field").arg("name", &f.name));
                            continue;
                        }
                        let mut field = pf.clone();
                        field.reason = None;
                        if kind == EntryKind::Operation {
                            not_applicable(&mut errs, &format!("{path}.grade"), f.grade.is_some(), kind);
                            field.reason = text_field(&mut errs, &format!("{path}.reason"), f.reason.as_deref(), 500);
                            if field.reason.is_none() {
                                // Least necessary: the message names the field that lacks its reason.
                                if let Some(last) = errs.last_mut() {
                                    *last = FieldError::new(format!("{path}.reason"), "reason_required")
                                        .arg("name", &f.name);
                                }
                            }
                        } else if let Some(g) = &f.grade {
                            match (Grade::parse(g), Grade::parse(&pf.grade)) {
                                (Some(new), Some(old)) if below(new, old) => errs.push(
                                    FieldError::new(format!("{path}.grade"), "grade_below_provider")
                                        .arg("name", &f.name)
                                        .arg("grade", g)
                                        .arg("provider", &pf.grade),
                                ),
                                (Some(new), _) => field.grade = new.code(),
                                (None, _) => {
                                    errs.push(FieldError::new(format!("{path}.grade"), "unknown_value").arg("value", g))
                                }
                            }
                        }
                        body.fields.push(field);
                    }
                    parent_id = Some(pe.id.clone());
                }
            }
            EntryKind::Social => {
                not_applicable(&mut errs, "parent_id", d.parent_id.is_some(), kind);
                not_applicable(&mut errs, "authorizable", d.authorizable.is_some(), kind);
                not_applicable(&mut errs, "restriction_basis", d.restriction_basis.is_some(), kind);
                not_applicable(&mut errs, "purpose", d.purpose.is_some(), kind);
                body.source = text_field(&mut errs, "source", d.source.as_deref(), 200);
                body.legal_basis = text_field(&mut errs, "legal_basis", d.legal_basis.as_deref(), 1000);
                if let Some(name) = text_field(&mut errs, "dataset", d.dataset.as_deref(), 64) {
                    match crate::valid_name(&name) {
                        Ok(n) => body.dataset_name = Some(n),
                        Err(e) => errs.push(e),
                    }
                }
                for (i, f) in d.fields.iter().enumerate() {
                    let path = format!("fields[{i}]");
                    let ty = f.field_type.clone().unwrap_or_else(|| "text".into());
                    if ty.parse::<shuyu_classify::FieldType>().is_err() {
                        errs.push(FieldError::new(format!("{path}.field_type"), "unknown_value").arg("value", &ty));
                    }
                    not_applicable(&mut errs, &format!("{path}.grade"), f.grade.is_some(), kind);
                    body.fields.push(EntryField {
                        name: f.name.trim().to_string(),
                        field_type: ty,
                        grade: String::new(),
                        sensitivity: String::new(),
                        reason: f.reason.clone(),
                    });
                }
            }
        }
        drop(store);
        body.grade = grade_of(&body.fields);
        if !errs.is_empty() {
            return Err(Validation(errs).into());
        }
        Ok((title.unwrap_or_default(), body, parent_id, dataset_id))
    }

    /// Creates a draft entry in catalog `kind`, kept by the principal's organisation.
    pub async fn create_entry(
        &self,
        p: &Principal,
        kind: EntryKind,
        d: &EntryDraft,
    ) -> Result<EntryView, CatalogError> {
        let org = self.org(&p.org_id.to_string()).await?;
        let now = self.identity.clock().now();
        let mut rec = EntryRecord {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.code().into(),
            org_id: org.id.to_string(),
            parent_id: None,
            dataset_id: None,
            title: String::new(),
            state: EntryState::Draft.code().into(),
            revision: 1,
            body_json: String::new(),
            note: None,
            created_at: now,
            created_by: p.user_id.to_string(),
            updated_at: now,
            decided_at: None,
            decided_by: None,
            published_at: None,
        };
        // Authorization first: who may not keep this catalog learns nothing about its rules.
        self.identity
            .authorize(p, Action::CatalogEdit, &entry_resource(&rec, &org))
            .await?;
        let (title, body, parent_id, dataset_id) = self.check_draft(p, kind, d).await?;
        rec.title = title;
        rec.body_json = serde_json::to_string(&body).unwrap_or_default();
        rec.parent_id = parent_id;
        rec.dataset_id = dataset_id;
        let mut event =
            shuyu_identity::audit::by(p, now, "catalog.create", "catalog_entry", rec.id.clone(), None, None);
        event.payload = Some(serde_json::json!({ "kind": kind.code(), "title": rec.title }));
        let to = NodeRef::new("catalog_entry", rec.id.clone());
        event.links = match (&rec.parent_id, &rec.dataset_id) {
            (Some(parent), _) => vec![Link {
                from: NodeRef::new("catalog_entry", parent.clone()),
                to,
                relation: format!("{}_entry", kind.code()),
            }],
            (None, Some(ds)) => vec![Link {
                from: NodeRef::new("dataset", ds.clone()),
                to,
                relation: "registered_as".into(),
            }],
            _ => Vec::new(),
        };
        let stored = rec.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    catalogs::insert_entry(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(entry_view(&rec, &org.name))
    }

    /// Changes a draft (only drafts change content).
    pub async fn update_entry(&self, p: &Principal, id: &str, d: &EntryDraft) -> Result<EntryView, CatalogError> {
        let (mut rec, org) = self.entry(id).await?;
        self.identity
            .authorize(p, Action::CatalogEdit, &entry_resource(&rec, &org))
            .await?;
        let kind = EntryKind::parse(&rec.kind).ok_or(CatalogError::NotFound("catalog_entry"))?;
        if rec.state != EntryState::Draft.code() {
            return Err(CatalogError::EntryState(crate::chain::IllegalEntryTransition {
                kind,
                from: EntryState::parse(&rec.state).unwrap_or(EntryState::Withdrawn),
                event: EntryEvent::Revise,
            }));
        }
        let (title, body, parent_id, dataset_id) = self.check_draft(p, kind, d).await?;
        let before = serde_json::json!({ "title": rec.title, "body": serde_json::from_str::<serde_json::Value>(&rec.body_json).unwrap_or_default() });
        rec.title = title;
        rec.body_json = serde_json::to_string(&body).unwrap_or_default();
        rec.parent_id = parent_id;
        rec.dataset_id = dataset_id;
        rec.updated_at = self.identity.clock().now();
        let after = serde_json::json!({ "title": rec.title, "body": body });
        let event = shuyu_identity::audit::by(
            p,
            rec.updated_at,
            "catalog.update",
            "catalog_entry",
            rec.id.clone(),
            Some(&before),
            Some(&after),
        );
        let stored = rec.clone();
        self.identity
            .store()
            .write_audited(event, move |tx| {
                Box::pin(async move {
                    catalogs::update_entry(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(entry_view(&rec, &org.name))
    }

    /// Sends `event` to an entry: submit, approve, return, reject, publish, revise or withdraw.
    /// Returns and rejections need a `note` (the reason the keeper reads).
    pub async fn act_on_entry(
        &self,
        p: &Principal,
        id: &str,
        event: EntryEvent,
        note: Option<&str>,
    ) -> Result<EntryView, CatalogError> {
        let (mut rec, org) = self.entry(id).await?;
        let action = match event.authority() {
            Who::Keeper => Action::CatalogEdit,
            Who::Decider => Action::CatalogDecide,
            Who::Publisher => Action::CatalogPublish,
        };
        self.identity.authorize(p, action, &entry_resource(&rec, &org)).await?;
        let kind = EntryKind::parse(&rec.kind).ok_or(CatalogError::NotFound("catalog_entry"))?;
        let from = EntryState::parse(&rec.state).unwrap_or(EntryState::Withdrawn);
        let next = transition(kind, from, event)?;
        let note = note.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if matches!(event, EntryEvent::Return | EntryEvent::Reject) && note.is_none() {
            return Err(FieldError::new("note", "note_required").into());
        }
        if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
            return Err(FieldError::new("note", "too_long").arg("max", 1000).into());
        }
        let mut body: EntryBody = serde_json::from_str(&rec.body_json).unwrap_or_default();
        // Social data is published only once it is in the domain, accepted by its importer.
        if kind == EntryKind::Social && event == EntryEvent::Publish {
            let name = body.dataset_name.clone().unwrap_or_default();
            let ds = datasets::find(&mut *self.identity.store().read().await?, &rec.org_id, &name).await?;
            match ds {
                Some(ds) if ds.current_version.is_some() => {
                    let v = datasets::get_version(
                        &mut *self.identity.store().read().await?,
                        ds.current_version.as_deref().unwrap_or_default(),
                    )
                    .await?
                    .ok_or(CatalogError::NotFound("dataset_version"))?;
                    let cols: Vec<Column> = serde_json::from_str(&v.columns_json).unwrap_or_default();
                    body.fields = columns_as_fields(&cols);
                    body.grade = grade_of(&body.fields);
                    rec.body_json = serde_json::to_string(&body).unwrap_or_default();
                    rec.dataset_id = Some(ds.id);
                }
                _ => {
                    return Err(FieldError::new("dataset", "dataset_not_ready")
                        .arg("value", name)
                        .into());
                }
            }
        }
        let now = self.identity.clock().now();
        rec.state = next.code().into();
        rec.updated_at = now;
        if event.authority() != Who::Keeper {
            rec.decided_at = Some(now);
            rec.decided_by = Some(p.user_id.to_string());
        }
        if matches!(event, EntryEvent::Return | EntryEvent::Reject | EntryEvent::Approve) || note.is_some() {
            rec.note = note.clone();
        }
        if next == EntryState::Published {
            rec.published_at = Some(now);
        }
        if event == EntryEvent::Revise {
            rec.revision += 1;
        }
        let mut audit = shuyu_identity::audit::by(
            p,
            now,
            &format!("catalog.{}", event.code()),
            "catalog_entry",
            rec.id.clone(),
            None,
            None,
        );
        audit.payload = Some(serde_json::json!({
            "kind": kind.code(), "from": from.code(), "to": next.code(), "note": note, "revision": rec.revision,
        }));
        if let Some(ds) = rec
            .dataset_id
            .clone()
            .filter(|_| kind == EntryKind::Social && event == EntryEvent::Publish)
        {
            audit.links = vec![Link {
                from: NodeRef::new("dataset", ds),
                to: NodeRef::new("catalog_entry", rec.id.clone()),
                relation: "published_as".into(),
            }];
        }
        let stored = rec.clone();
        self.identity
            .store()
            .write_audited(audit, move |tx| {
                Box::pin(async move {
                    catalogs::update_entry(tx.conn(), &stored).await?;
                    Ok(())
                })
            })
            .await?;
        Ok(entry_view(&rec, &org.name))
    }

    /// One entry, if the principal may read it.
    pub async fn get_entry(&self, p: &Principal, id: &str) -> Result<EntryView, CatalogError> {
        let (rec, org) = self.entry(id).await?;
        self.identity
            .authorize(p, Action::CatalogRead, &entry_resource(&rec, &org))
            .await?;
        Ok(entry_view(&rec, &org.name))
    }

    /// The entries of catalog `kind` the principal may read (optionally in one state).
    pub async fn list_entries(
        &self,
        p: &Principal,
        kind: EntryKind,
        state: Option<EntryState>,
    ) -> Result<Vec<EntryView>, CatalogError> {
        let all = catalogs::entries(
            &mut *self.identity.store().read().await?,
            kind.code(),
            state.map(EntryState::code),
        )
        .await?;
        let mut out = Vec::new();
        let mut orgs = std::collections::HashMap::new();
        for e in all {
            if !orgs.contains_key(&e.org_id) {
                orgs.insert(e.org_id.clone(), self.org(&e.org_id).await?);
            }
            let org = &orgs[&e.org_id];
            if self.identity.allows(p, Action::CatalogRead, &entry_resource(&e, org)) {
                out.push(entry_view(&e, &org.name));
            }
        }
        Ok(out)
    }

    /// The events the principal may send to entry `e` now: allowed by the chain and by the policies
    /// (the console shows exactly these as buttons).
    pub async fn allowed_events(&self, p: &Principal, e: &EntryView) -> Result<Vec<EntryEvent>, CatalogError> {
        let org = self.org(&e.org_id).await?;
        let r = Resource::CatalogEntry {
            id: e.id.clone(),
            org: org.id,
            org_kind: org.kind,
            region: org.region.clone(),
            kind: e.kind.code().into(),
            state: e.state.code().into(),
        };
        Ok(EntryEvent::ALL
            .into_iter()
            .filter(|ev| transition(e.kind, e.state, *ev).is_ok())
            .filter(|ev| {
                let action = match ev.authority() {
                    Who::Keeper => Action::CatalogEdit,
                    Who::Decider => Action::CatalogDecide,
                    Who::Publisher => Action::CatalogPublish,
                };
                self.identity.allows(p, action, &r)
            })
            .collect())
    }

    /// Whether the principal may create entries in catalog `kind` (the console shows the form only then).
    pub fn may_keep(&self, p: &Principal, kind: EntryKind) -> bool {
        let r = Resource::CatalogEntry {
            id: "new".into(),
            org: p.org_id,
            org_kind: p.org_kind,
            region: p.region.clone(),
            kind: kind.code().into(),
            state: EntryState::Draft.code().into(),
        };
        self.identity.allows(p, Action::CatalogEdit, &r)
    }

    /// Whether the developer's organisation `org_id` has social data approved for dataset `name` (Y§12).
    pub(crate) async fn social_approved(&self, org_id: &str, name: &str) -> Result<bool, CatalogError> {
        let entries = catalogs::entries(
            &mut *self.identity.store().read().await?,
            EntryKind::Social.code(),
            None,
        )
        .await?;
        Ok(entries.iter().any(|e| {
            e.org_id == org_id
                && (e.state == EntryState::Approved.code() || e.state == EntryState::Published.code())
                && serde_json::from_str::<EntryBody>(&e.body_json)
                    .ok()
                    .and_then(|b| b.dataset_name)
                    .as_deref()
                    == Some(name)
        }))
    }

    /// The published entries of catalog `kind` as a DCAT-AP 3 catalog in JSON-LD: public metadata,
    /// no data. `base` is the platform's public URL (the entries' IRIs hang off it).
    pub async fn dcat(&self, kind: EntryKind, base: &str) -> Result<serde_json::Value, CatalogError> {
        let published = catalogs::entries(
            &mut *self.identity.store().read().await?,
            kind.code(),
            Some(EntryState::Published.code()),
        )
        .await?;
        let base = base.trim_end_matches('/');
        let mut datasets = Vec::new();
        let mut orgs = std::collections::HashMap::new();
        for e in &published {
            if !orgs.contains_key(&e.org_id) {
                orgs.insert(e.org_id.clone(), self.org(&e.org_id).await?);
            }
            let org = &orgs[&e.org_id];
            let body: EntryBody = serde_json::from_str(&e.body_json).unwrap_or_default();
            datasets.push(crate::dcat::dataset(base, e, org, &body));
        }
        Ok(crate::dcat::catalog(base, kind, datasets))
    }
}
