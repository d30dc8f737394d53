//! Products from releases: an approved, released output published into the public
//! product catalog as a dataset or a report, with the scenario it was made for, the source
//! versions it was computed from (read off the lineage graph, not typed in) and its terms.
//!
//! The catalog is public: anyone may read what is offered, by whom, from what, under which
//! terms. The content is the release's watermarked copy, minted again by the gate on every
//! download — to every account when the release went to the public, otherwise only to the
//! release's recipient. A product is listed until its publisher delists it, and it drops out of
//! the catalog by itself while the agreement it was made under is not in force (a suspended or
//! terminated developer takes their products with them, Y§23).

use serde::{Deserialize, Serialize};
use shuyu_core::actor::Principal;
use shuyu_core::clock::Timestamp;
use shuyu_core::error::{FieldError, Validation};
use shuyu_policy::Action;
use shuyu_store::lineage::{self, Link, NodeRef};
use shuyu_store::products::{self, ProductRecord};
use shuyu_store::releases::ReleaseRecord;
use shuyu_store::{StoreError, data_requests, datasets, orgs};
use utoipa::ToSchema;

use crate::EngineError;
use crate::workspace::Workspaces;

/// Recipients that mean "the public": a release to them becomes an open product.
pub const PUBLIC_RECIPIENTS: [&str; 2] = ["社会公众", "public"];

/// What a product offers. API, model and verification products are made from parameterized
/// jobs, not from one release, and are not published here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// 数据集: a table consumers take as it is.
    Dataset,
    /// 数据报告: a published statistical report.
    Report,
}

impl ProductKind {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            ProductKind::Dataset => "dataset",
            ProductKind::Report => "report",
        }
    }

    fn parse(s: &str) -> Option<ProductKind> {
        [ProductKind::Dataset, ProductKind::Report]
            .into_iter()
            .find(|k| k.code() == s)
    }
}

/// Publishing a released output as a product.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The release (it must have left the domain: `released`).
    pub release_id: String,
    /// Dataset or report.
    pub kind: ProductKind,
    /// The title the catalog lists (1–200 characters).
    pub title: String,
    /// What it contains and what it is for (at most 2000 characters).
    #[serde(default)]
    pub summary: String,
    /// The terms of use a consumer accepts (1–2000 characters).
    pub terms: String,
}

/// Delisting a product.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelistRequest {
    /// Why (shown in the catalog).
    pub reason: String,
}

/// A source dataset version a product was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductSource {
    /// The dataset's name.
    pub dataset: String,
    /// Its title.
    pub title: String,
    /// The provider.
    pub provider: String,
    /// The version number the job read.
    pub version: i64,
    /// The version's id.
    pub version_id: String,
}

/// A product as the catalog shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductView {
    /// Its id.
    pub id: String,
    /// Dataset or report.
    pub kind: ProductKind,
    /// Its title.
    pub title: String,
    /// What it contains and what it is for.
    pub summary: String,
    /// The terms of use.
    pub terms: String,
    /// The scenario it was made for.
    pub scenario: String,
    /// The data request (scenario manifest) it was made under.
    pub request_id: String,
    /// The release whose copy it offers.
    pub release_id: String,
    /// The developer organisation that made it.
    pub maker: String,
    /// The operator organisation that published it.
    pub publisher: String,
    /// `open` (every account) or `recipient` (the release's recipient only).
    pub access: String,
    /// Who the release was approved for (its watermark names them).
    pub recipient: String,
    /// The source dataset versions.
    pub sources: Vec<ProductSource>,
    /// Its columns.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: i64,
    /// `listed` or `delisted`.
    pub state: String,
    /// Why it is delisted: the publisher's words, or `agreement_not_in_force`.
    pub delist_reason: Option<String>,
    /// When it was published (RFC 3339).
    pub published_at: String,
    /// When it was delisted.
    pub delisted_at: Option<String>,
    /// Whether the viewer may download it now.
    pub can_download: bool,
    /// Whether the viewer may delist it.
    pub can_delist: bool,
}

/// The reason shown for a product whose agreement chain is not in force.
pub const NOT_IN_FORCE: &str = "agreement_not_in_force";

fn corrupt(column: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        table: "products",
        column,
        detail: e.to_string(),
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// Checks a text field's length: `required` ones must not be blank.
fn text_rule(errors: &mut Vec<FieldError>, field: &str, value: &str, required: bool, max: usize) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "field_required"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(field, "too_long").arg("max", max));
    }
}

impl Workspaces {
    /// Publishes a released output as a product (the operator among its request's reviewers).
    pub async fn publish_product(&self, p: &Principal, req: &PublishRequest) -> Result<ProductView, EngineError> {
        let r = self.release_record(&req.release_id).await?;
        self.authorize_publisher(p, &r.request_id).await?;
        let mut errors = Vec::new();
        text_rule(&mut errors, "title", &req.title, true, 200);
        text_rule(&mut errors, "summary", &req.summary, false, 2000);
        text_rule(&mut errors, "terms", &req.terms, true, 2000);
        if !errors.is_empty() {
            return Err(EngineError::BadSpec(Validation(errors)));
        }
        let request = data_requests::get(&mut *self.inner.identity.store().read().await?, &r.request_id)
            .await?
            .ok_or(EngineError::NotFound("data_request"))?;
        self.inner.lifecycle.require_in_force(&request.agreement_id).await?;
        if let Some(existing) = products::of_release(&mut *self.inner.identity.store().read().await?, &r.id).await? {
            return Err(EngineError::AlreadyPublished(existing.id));
        }
        // The content as it would leave: minted by the gate, so only a released copy publishes.
        let copy = self.mint_copy(&r).await?;
        let (columns, rows) = shape_of(copy.value())?;
        let sources = self.sources_of_job(&r.job_id).await?;
        let now = self.inner.identity.clock().now();
        let record = ProductRecord {
            id: uuid::Uuid::now_v7().to_string(),
            release_id: r.id.clone(),
            kind: req.kind.code().into(),
            title: req.title.trim().into(),
            summary: req.summary.trim().into(),
            terms: req.terms.trim().into(),
            request_id: r.request_id.clone(),
            scenario: request.scenario.clone(),
            maker_org_id: r.org_id.clone(),
            publisher_org_id: p.org_id.to_string(),
            published_by: p.user_id.to_string(),
            access: if PUBLIC_RECIPIENTS.contains(&r.recipient.as_str()) {
                "open".into()
            } else {
                "recipient".into()
            },
            sources_json: serde_json::to_string(&sources).map_err(|e| EngineError::Task(e.to_string()))?,
            columns_json: serde_json::to_string(&columns).map_err(|e| EngineError::Task(e.to_string()))?,
            row_count: rows,
            state: "listed".into(),
            delist_reason: None,
            published_at: now,
            delisted_at: None,
        };
        let mut e = shuyu_identity::audit::by(p, now, "product.publish", "product", record.id.clone(), None, None);
        e.payload = Some(serde_json::json!({
            "release": r.id, "kind": record.kind, "title": record.title, "access": record.access,
            "scenario": record.scenario, "rows": rows,
        }));
        e.links = vec![Link {
            from: NodeRef::new("release", r.id.clone()),
            to: NodeRef::new("product", record.id.clone()),
            relation: "published_as".into(),
        }];
        let stored = record.clone();
        self.inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    products::insert(tx.conn(), &stored).await?;
                    tx.record(e);
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        self.product_view(Some(p), &record).await
    }

    /// Refuses `p` unless they may publish what is released under data request `request_id`.
    async fn authorize_publisher(&self, p: &Principal, request_id: &str) -> Result<(), EngineError> {
        let resource = self.inner.lifecycle.data_request_resource(request_id).await?;
        self.inner
            .identity
            .authorize(p, Action::ProductPublish, &resource)
            .await?;
        Ok(())
    }

    /// Whether `p` may publish (and delist) what was released under release `release_id`'s
    /// data request.
    pub async fn may_publish(&self, p: &Principal, release_id: &str) -> Result<bool, EngineError> {
        let r = self.release_record(release_id).await?;
        let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
        Ok(self.inner.identity.allows(p, Action::ProductPublish, &resource))
    }

    /// The public catalog: listed products, newest first (`all` adds delisted ones).
    pub async fn products(&self, viewer: Option<&Principal>, all: bool) -> Result<Vec<ProductView>, EngineError> {
        let records = products::all(&mut *self.inner.identity.store().read().await?).await?;
        let mut out = Vec::new();
        for r in &records {
            let v = self.product_view(viewer, r).await?;
            if all || v.state == "listed" {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// One product (public, listed or not).
    pub async fn product(&self, viewer: Option<&Principal>, id: &str) -> Result<ProductView, EngineError> {
        let r = self.product_record(id).await?;
        self.product_view(viewer, &r).await
    }

    /// The product a release was published as, if any.
    pub async fn product_of_release(
        &self,
        viewer: Option<&Principal>,
        release_id: &str,
    ) -> Result<Option<ProductView>, EngineError> {
        match products::of_release(&mut *self.inner.identity.store().read().await?, release_id).await? {
            Some(r) => Ok(Some(self.product_view(viewer, &r).await?)),
            None => Ok(None),
        }
    }

    /// Delists a product (its publisher's operator), with a reason the catalog shows.
    pub async fn delist_product(
        &self,
        p: &Principal,
        id: &str,
        req: &DelistRequest,
    ) -> Result<ProductView, EngineError> {
        let r = self.product_record(id).await?;
        self.authorize_publisher(p, &r.request_id).await?;
        let mut errors = Vec::new();
        text_rule(&mut errors, "reason", &req.reason, true, 500);
        if !errors.is_empty() {
            return Err(EngineError::BadSpec(Validation(errors)));
        }
        let now = self.inner.identity.clock().now();
        let mut e = shuyu_identity::audit::by(p, now, "product.delist", "product", r.id.clone(), None, None);
        e.payload = Some(serde_json::json!({ "reason": req.reason.trim() }));
        let (id, reason) = (r.id.clone(), req.reason.trim().to_string());
        let changed = self
            .inner
            .identity
            .store()
            .write(move |tx| {
                Box::pin(async move {
                    let changed = products::delist(tx.conn(), &id, &reason, now).await?;
                    if changed {
                        tx.record(e);
                    } else {
                        tx.housekeeping("product already delisted");
                    }
                    Ok::<_, StoreError>(changed)
                })
            })
            .await?;
        if !changed {
            return Err(EngineError::ProductDelisted(r.id.clone()));
        }
        self.product_view(Some(p), &self.product_record(&r.id).await?).await
    }

    /// The product's content as CSV — the release's watermarked copy, minted again — for every
    /// account when it is open, else for its recipient's organisation.
    pub async fn download_product(&self, p: &Principal, id: &str) -> Result<shuyu_gate::Released<String>, EngineError> {
        let r = self.product_record(id).await?;
        let view = self.product_view(Some(p), &r).await?;
        if view.state != "listed" {
            return Err(EngineError::ProductDelisted(r.id.clone()));
        }
        if !view.can_download {
            return Err(EngineError::NotRecipient(view.recipient));
        }
        let release = self.release_record(&r.release_id).await?;
        let copy = self.mint_copy(&release).await?;
        let now = self.inner.identity.clock().now();
        let mut e = shuyu_identity::audit::by(p, now, "product.download", "product", r.id.clone(), None, None);
        e.payload = Some(serde_json::json!({ "release": r.release_id }));
        self.record(e).await?;
        Ok(copy)
    }

    async fn product_record(&self, id: &str) -> Result<ProductRecord, EngineError> {
        products::get(&mut *self.inner.identity.store().read().await?, id)
            .await?
            .ok_or(EngineError::NotFound("product"))
    }

    /// The source dataset versions a job read, from the lineage graph.
    async fn sources_of_job(&self, job_id: &str) -> Result<Vec<ProductSource>, EngineError> {
        let mut c = self.inner.identity.store().read().await?;
        let reached = lineage::sources(&mut c, &NodeRef::new("job", job_id.to_string()), 1).await?;
        let mut out: Vec<ProductSource> = Vec::new();
        for edge in reached
            .iter()
            .filter(|e| e.relation == "read_by" && e.from.kind == "dataset_version")
        {
            let Some(v) = datasets::get_version(&mut c, &edge.from.id).await? else {
                continue;
            };
            let Some(d) = datasets::get(&mut c, &v.dataset_id).await? else {
                continue;
            };
            let provider = orgs::get(&mut c, d.org_id.parse().map_err(|_| EngineError::NotFound("org"))?)
                .await?
                .map(|o| o.name)
                .unwrap_or_default();
            if !out.iter().any(|s| s.version_id == v.id) {
                out.push(ProductSource {
                    dataset: d.name,
                    title: d.title,
                    provider,
                    version: v.version_no,
                    version_id: v.id,
                });
            }
        }
        out.sort_by(|a, b| a.dataset.cmp(&b.dataset));
        Ok(out)
    }

    /// A product as `viewer` sees it: its state as of now (the agreement chain may have fallen
    /// out of force) and what the viewer may do with it.
    async fn product_view(&self, viewer: Option<&Principal>, r: &ProductRecord) -> Result<ProductView, EngineError> {
        let (maker, publisher, agreement) = {
            let mut c = self.inner.identity.store().read().await?;
            let name = |o: Option<orgs::OrgRecord>| o.map(|o| o.name).unwrap_or_default();
            let maker = match r.maker_org_id.parse() {
                Ok(id) => name(orgs::get(&mut c, id).await?),
                Err(_) => String::new(),
            };
            let publisher = match r.publisher_org_id.parse() {
                Ok(id) => name(orgs::get(&mut c, id).await?),
                Err(_) => String::new(),
            };
            let agreement = data_requests::get(&mut c, &r.request_id).await?.map(|d| d.agreement_id);
            (maker, publisher, agreement)
        };
        let in_force = match agreement {
            Some(a) => self.inner.lifecycle.require_in_force(&a).await.is_ok(),
            None => false,
        };
        let (state, delist_reason) = match (r.state.as_str(), in_force) {
            ("listed", true) => ("listed".to_string(), None),
            ("listed", false) => ("delisted".to_string(), Some(NOT_IN_FORCE.to_string())),
            (s, _) => (s.to_string(), r.delist_reason.clone()),
        };
        let release: ReleaseRecord = self.release_record(&r.release_id).await?;
        let listed = state == "listed";
        let (can_download, can_delist) = match viewer {
            Some(p) => {
                let resource = self.inner.lifecycle.data_request_resource(&r.request_id).await?;
                let publisher = self.inner.identity.allows(p, Action::ProductPublish, &resource);
                // The recipient by its directory id, never by a name that another
                // organisation could also write.
                let recipient = r.access == "open"
                    || release
                        .recipient_org_id
                        .as_deref()
                        .is_some_and(|id| id == p.org_id.to_string());
                (listed && (recipient || publisher), r.state == "listed" && publisher)
            }
            None => (false, false),
        };
        Ok(ProductView {
            id: r.id.clone(),
            kind: ProductKind::parse(&r.kind).ok_or(StoreError::Corrupt {
                table: "products",
                column: "kind",
                detail: r.kind.clone(),
            })?,
            title: r.title.clone(),
            summary: r.summary.clone(),
            terms: r.terms.clone(),
            scenario: r.scenario.clone(),
            request_id: r.request_id.clone(),
            release_id: r.release_id.clone(),
            maker,
            publisher,
            access: r.access.clone(),
            recipient: release.recipient,
            sources: serde_json::from_str(&r.sources_json).map_err(corrupt("sources_json"))?,
            columns: serde_json::from_str(&r.columns_json).map_err(corrupt("columns_json"))?,
            rows: r.row_count,
            state,
            delist_reason,
            published_at: rfc3339(r.published_at),
            delisted_at: r.delisted_at.map(rfc3339),
            can_download,
            can_delist,
        })
    }
}

/// The header and the number of rows of a released CSV copy.
fn shape_of(csv_text: &str) -> Result<(Vec<String>, i64), EngineError> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let task = |e: csv::Error| EngineError::Task(e.to_string());
    let columns = reader.headers().map_err(task)?.iter().map(str::to_string).collect();
    let mut rows = 0i64;
    for record in reader.records() {
        record.map_err(task)?;
        rows += 1;
    }
    Ok((columns, rows))
}
