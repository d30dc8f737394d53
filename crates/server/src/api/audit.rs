//! The audit ledger and lineage, for supervisors and the authority.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shuyu_audit::checkpoint::{Checkpoint, Cosignature};
use shuyu_core::clock::Timestamp;
use shuyu_identity::audit::actor;
use shuyu_policy::{Action, Resource};
use shuyu_store::lineage::{NodeRef, Reached};
use shuyu_store::log::{Event, Filter, StoredEntry};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::problem::{ApiError, Problem};

/// A signed tree head.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckpointDto {
    /// The log's name.
    pub origin: String,
    /// Entries covered.
    pub size: u64,
    /// Root hash, base64.
    pub root: String,
    /// Signing time, Unix seconds.
    pub time: i64,
    /// Signing key id.
    pub key_id: String,
    /// Ed25519 signature over the checkpoint text, base64.
    pub signature: String,
}

impl From<Checkpoint> for CheckpointDto {
    fn from(c: Checkpoint) -> Self {
        Self {
            origin: c.origin,
            size: c.size,
            root: c.root,
            time: c.time,
            key_id: c.key_id,
            signature: c.signature,
        }
    }
}

/// A witness's countersignature.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CosignatureDto {
    /// The witness's name.
    pub witness: String,
    /// The witness's public key, SPKI PEM.
    pub public_key: String,
    /// That key's id.
    pub key_id: String,
    /// The cosigned checkpoint's size.
    pub size: u64,
    /// Cosigning time, Unix seconds.
    pub time: i64,
    /// Signature over `cosignature/v1\ntime <time>\n<checkpoint text>`, base64.
    pub signature: String,
}

impl From<Cosignature> for CosignatureDto {
    fn from(c: Cosignature) -> Self {
        Self {
            witness: c.witness,
            public_key: c.public_key,
            key_id: c.key_id,
            size: c.size,
            time: c.time,
            signature: c.signature,
        }
    }
}

impl From<CosignatureDto> for Cosignature {
    fn from(c: CosignatureDto) -> Self {
        Self {
            witness: c.witness,
            public_key: c.public_key,
            key_id: c.key_id,
            size: c.size,
            time: c.time,
            signature: c.signature,
        }
    }
}

/// A checkpoint with the key that signed it and its witnesses.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The checkpoint.
    pub checkpoint: CheckpointDto,
    /// The text the signature covers.
    pub signed_text: String,
    /// The log's public key, SPKI PEM.
    pub public_key: String,
    /// Witness cosignatures received for it.
    pub cosignatures: Vec<CosignatureDto>,
}

/// The log's public identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyDto {
    /// The log's name.
    pub origin: String,
    /// The key id.
    pub key_id: String,
    /// SPKI PEM.
    pub public_key: String,
}

/// An inclusion proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionDto {
    /// The entry.
    pub seq: u64,
    /// The tree size.
    pub tree_size: u64,
    /// The entry's leaf hash (hex).
    pub leaf_hash: String,
    /// The audit path (hex, RFC 6962 order).
    pub proof: Vec<String>,
    /// The root at `tree_size` (hex).
    pub root: String,
}

/// A consistency proof.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyDto {
    /// Older size.
    pub first: u64,
    /// Newer size.
    pub second: u64,
    /// The proof (hex, RFC 6962 order).
    pub proof: Vec<String>,
    /// Root at `first` (hex).
    pub first_root: String,
    /// Root at `second` (hex).
    pub second_root: String,
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryDto {
    /// Its position.
    pub seq: u64,
    /// When it happened.
    pub time: Timestamp,
    /// The entry (parsed from `line`).
    #[schema(value_type = Object)]
    pub entry: serde_json::Value,
    /// The canonical line, exactly as hashed into the Merkle leaf.
    pub line: String,
    /// The purgeable details, unless purged.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// When the details were purged.
    pub purged_at: Option<Timestamp>,
}

impl From<StoredEntry> for EntryDto {
    fn from(e: StoredEntry) -> Self {
        Self {
            seq: e.seq,
            time: e.time,
            entry: serde_json::from_str(&e.line).unwrap_or(serde_json::Value::Null),
            line: e.line,
            payload: e.payload.and_then(|p| serde_json::from_str(&p).ok()),
            purged_at: e.purged_at,
        }
    }
}

/// A list of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryList {
    /// The entries.
    pub items: Vec<EntryDto>,
}

/// Range parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First seq (inclusive).
    pub start: u64,
    /// Last seq (exclusive); at most 1000 entries are returned.
    pub end: u64,
}

/// Search parameters (all optional; all given must match).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Acting user id.
    #[serde(default)]
    pub actor_user: Option<String>,
    /// Acting organisation id.
    #[serde(default)]
    pub actor_org: Option<String>,
    /// Action, exact, or a prefix ending in `.` (`user.`).
    #[serde(default)]
    pub action: Option<String>,
    /// Object type.
    #[serde(default)]
    pub object_type: Option<String>,
    /// Object id.
    #[serde(default)]
    pub object_id: Option<String>,
    /// Not before (RFC 3339).
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// Before (RFC 3339).
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Only entries before this seq (to page backwards).
    #[serde(default)]
    pub before_seq: Option<u64>,
    /// At most this many (1–1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
}

impl SearchQuery {
    /// The store filter.
    pub fn filter(&self) -> Filter {
        Filter {
            actor_user: self.actor_user.clone().filter(|s| !s.is_empty()),
            actor_org: self.actor_org.clone().filter(|s| !s.is_empty()),
            action: self.action.clone().filter(|s| !s.is_empty()),
            object_type: self.object_type.clone().filter(|s| !s.is_empty()),
            object_id: self.object_id.clone().filter(|s| !s.is_empty()),
            from: self.from,
            until: self.until,
            before_seq: self.before_seq,
        }
    }
}

/// Inclusion proof parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The entry.
    pub seq: u64,
    /// The tree size (default: the latest checkpoint's).
    #[serde(default)]
    pub tree_size: Option<u64>,
}

/// Consistency proof parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older size.
    pub first: u64,
    /// The newer size.
    pub second: u64,
}

/// Lineage query parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageQuery {
    /// The node, `kind:id` (e.g. `dataset_version:population@v3`).
    pub node: String,
    /// Most steps to follow (default 16, at most 64).
    #[serde(default)]
    pub depth: Option<u32>,
}

/// One edge of a lineage answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageEdgeDto {
    /// Source node, `kind:id`.
    pub from: String,
    /// Derived node, `kind:id`.
    pub to: String,
    /// How it derives.
    pub relation: String,
    /// The audit entry that recorded it.
    pub seq: u64,
    /// Steps from the queried node.
    pub depth: u32,
}

impl From<Reached> for LineageEdgeDto {
    fn from(r: Reached) -> Self {
        Self {
            from: r.from.key(),
            to: r.to.key(),
            relation: r.relation,
            seq: r.seq,
            depth: r.depth,
        }
    }
}

/// A lineage answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageDto {
    /// The queried node.
    pub node: String,
    /// The edges reached, nearest first.
    pub edges: Vec<LineageEdgeDto>,
}

fn ledger_err(e: shuyu_ledger::LedgerError) -> ApiError {
    ApiError::from_user_facing(&e)
}

async fn view(state: &AppState, cp: Checkpoint) -> Result<CheckpointView, ApiError> {
    let cosignatures = state.ledger.cosignatures(cp.size).await.map_err(ledger_err)?;
    Ok(CheckpointView {
        signed_text: cp.text(),
        checkpoint: cp.into(),
        public_key: state.ledger.public_key_pem().to_string(),
        cosignatures: cosignatures.into_iter().map(Into::into).collect(),
    })
}

/// The latest signed checkpoint, with its witnesses (one is signed if none exists yet).
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CheckpointView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn latest_checkpoint(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<CheckpointView>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let cp = match state.ledger.latest().await.map_err(ledger_err)? {
        Some(cp) => cp,
        None => state.ledger.sign_checkpoint().await.map_err(ledger_err)?,
    };
    Ok(Json(view(&state, cp).await?))
}

/// Signs a checkpoint of the log as it is now.
#[utoipa::path(post, path = "/api/v1/audit/checkpoint", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = CheckpointView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn sign_checkpoint(State(state): State<AppState>, Auth(p): Auth) -> Result<Json<CheckpointView>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditCheckpoint, &Resource::Platform)
        .await?;
    let cp = state.ledger.sign_checkpoint().await.map_err(ledger_err)?;
    Ok(Json(view(&state, cp).await?))
}

/// The checkpoint signed for one tree size.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/{size}", tag = "audit", security(("bearer" = [])),
    params(("size" = u64, Path, description = "Tree size")),
    responses(
        (status = 200, description = "OK", body = CheckpointView),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No checkpoint of that size (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn checkpoint_at(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(size): Path<String>,
) -> Result<Json<CheckpointView>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let size: u64 = size
        .parse()
        .map_err(|_| ledger_err(shuyu_ledger::LedgerError::UnknownCheckpoint(0)))?;
    let cp = state
        .ledger
        .checkpoint(size)
        .await
        .map_err(ledger_err)?
        .ok_or_else(|| ledger_err(shuyu_ledger::LedgerError::UnknownCheckpoint(size)))?;
    Ok(Json(view(&state, cp).await?))
}

/// The log's public key (no login needed: it is what everyone verifies with).
#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, description = "OK", body = PublicKeyDto)))]
pub async fn public_key(State(state): State<AppState>) -> Json<PublicKeyDto> {
    Json(PublicKeyDto {
        origin: state.ledger.origin().to_string(),
        key_id: state.ledger.key_id(),
        public_key: state.ledger.public_key_pem().to_string(),
    })
}

/// Proof that an entry is in the tree of a given size.
#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", security(("bearer" = [])),
    params(InclusionQuery),
    responses(
        (status = 200, description = "OK", body = InclusionDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Outside the log (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn inclusion(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionDto>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let r = state.ledger.inclusion(q.seq, q.tree_size).await.map_err(ledger_err)?;
    Ok(Json(InclusionDto {
        seq: r.seq,
        tree_size: r.tree_size,
        leaf_hash: r.leaf_hash,
        proof: r.proof,
        root: r.root,
    }))
}

/// Proof that one tree is a prefix of a later one.
#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", security(("bearer" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "OK", body = ConsistencyDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Outside the log (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn consistency(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyDto>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let r = state.ledger.consistency(q.first, q.second).await.map_err(ledger_err)?;
    Ok(Json(ConsistencyDto {
        first: r.first,
        second: r.second,
        proof: r.proof,
        first_root: r.first_root,
        second_root: r.second_root,
    }))
}

/// Entries by position.
#[utoipa::path(get, path = "/api/v1/audit/entries", tag = "audit", security(("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, description = "OK", body = EntryList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn entries(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<EntryList>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let list = state.ledger.entries(q.start, q.end).await.map_err(ledger_err)?;
    Ok(Json(EntryList {
        items: list.into_iter().map(Into::into).collect(),
    }))
}

/// Searches entries by actor, action, object and time, newest first.
#[utoipa::path(get, path = "/api/v1/audit/search", tag = "audit", security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "OK", body = EntryList),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter does not parse (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn search(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<EntryList>, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditRead, &Resource::Platform)
        .await?;
    let list = state
        .ledger
        .search(&q.filter(), q.limit.unwrap_or(100))
        .await
        .map_err(ledger_err)?;
    Ok(Json(EntryList {
        items: list.into_iter().map(Into::into).collect(),
    }))
}

/// Submits a witness's cosignature of a checkpoint.
#[utoipa::path(post, path = "/api/v1/audit/cosignatures", tag = "audit", security(("bearer" = [])),
    request_body = CosignatureDto,
    responses(
        (status = 201, description = "Accepted and stored", body = CosignatureDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such checkpoint (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The cosignature does not verify (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn cosign(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CosignatureDto>,
) -> Result<(StatusCode, Json<CosignatureDto>), ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditCosign, &Resource::Platform)
        .await?;
    let cos: Cosignature = body.into();
    state
        .ledger
        .add_cosignature(cos.clone(), actor(&p), p.request_id.clone())
        .await
        .map_err(ledger_err)?;
    Ok((StatusCode::CREATED, Json(cos.into())))
}

/// Downloads an export bundle (tar): `entries.jsonl`, `checkpoint.json`, `log-public-key.pem`.
/// Verify it offline with `shuyu audit verify DIR`.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "A tar archive of the bundle", body = Vec<u8>, content_type = "application/x-tar"),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn export(State(state): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    state
        .identity
        .authorize(&p, Action::AuditExport, &Resource::Platform)
        .await?;
    export_response(&state, &p).await
}

/// The export download, shared with the console. The download itself is recorded.
pub async fn export_response(state: &AppState, p: &shuyu_core::actor::Principal) -> Result<Response, ApiError> {
    let (cp, tar) = state.ledger.export_tar().await.map_err(ledger_err)?;
    let mut event = Event::new(
        state.identity.clock().now(),
        actor(p),
        "audit.export",
        "checkpoint",
        cp.size.to_string(),
    );
    event.request = p.request_id.clone();
    state.identity.store().append(vec![event]).await?;
    let mut res = tar.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"shuyu-audit-{}.tar\"", cp.size)) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

fn node(raw: &str) -> Result<NodeRef, ApiError> {
    NodeRef::parse(raw).ok_or_else(|| {
        let mut e = ApiError::simple(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        e.fields.push(
            shuyu_core::error::FieldError::new("node", "invalid_value")
                .arg("path", "node")
                .arg("detail", "kind:id"),
        );
        e
    })
}

/// Answers a lineage query in either direction.
async fn lineage(
    state: &AppState,
    p: &shuyu_core::actor::Principal,
    q: &LineageQuery,
    forward: bool,
) -> Result<Json<LineageDto>, ApiError> {
    state
        .identity
        .authorize(p, Action::LineageRead, &Resource::Platform)
        .await?;
    let n = node(&q.node)?;
    let depth = q.depth.unwrap_or(16);
    let edges = if forward {
        state.ledger.derived(&n, depth).await
    } else {
        state.ledger.sources(&n, depth).await
    }
    .map_err(ledger_err)?;
    Ok(Json(LineageDto {
        node: n.key(),
        edges: edges.into_iter().map(Into::into).collect(),
    }))
}

/// What derives from a node (dataset version → samples → jobs → outputs → products …).
#[utoipa::path(get, path = "/api/v1/lineage/derived", tag = "audit", security(("bearer" = [])),
    params(LineageQuery),
    responses(
        (status = 200, description = "OK", body = LineageDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The node is not kind:id (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn derived(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<LineageQuery>,
) -> Result<Json<LineageDto>, ApiError> {
    lineage(&state, &p, &q, true).await
}

/// Where a node came from.
#[utoipa::path(get, path = "/api/v1/lineage/sources", tag = "audit", security(("bearer" = [])),
    params(LineageQuery),
    responses(
        (status = 200, description = "OK", body = LineageDto),
        (status = 401, description = "Not authenticated (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Denied by the authorization policies (problem+json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The node is not kind:id (problem+json)", body = Problem, content_type = "application/problem+json")
    ))]
pub async fn sources(
    State(state): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<LineageQuery>,
) -> Result<Json<LineageDto>, ApiError> {
    lineage(&state, &p, &q, false).await
}
