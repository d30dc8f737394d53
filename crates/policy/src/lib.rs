//! # shuyu-policy
//!
//! Authorization. Every request is decided by Cedar policies over entities
//! built from the store; what no policy permits is denied (default deny).
//! The schema and policy files live in `crates/policy/policies/`, are compiled
//! in, parsed and **validated against the schema in strict mode** when
//! [`Policies::load`] runs at start-up — a policy that does not validate stops
//! the server from starting rather than silently denying or allowing.
//!
//! ```
//! use shuyu_policy::{Action, Policies, Resource};
//! let policies = Policies::load().expect("embedded policies validate");
//! assert!(Action::ALL.iter().any(|a| a.name() == "org.create"));
//! # let _ = (policies, Resource::Platform);
//! ```

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use shuyu_core::actor::{Principal, PrincipalId};
use shuyu_core::id::{ApiKeyId, OrgId, UserId};
use shuyu_core::party::{OrgKind, Region, RegionCode, Status};

/// The schema source, compiled in.
pub const SCHEMA_SRC: &str = include_str!("../policies/shuyu.cedarschema");

/// The policy files, compiled in: `(file name, source)`.
pub const POLICY_SRCS: &[(&str, &str)] = &[
    ("kernel.cedar", include_str!("../policies/kernel.cedar")),
    ("audit.cedar", include_str!("../policies/audit.cedar")),
    ("datasets.cedar", include_str!("../policies/datasets.cedar")),
    ("catalogs.cedar", include_str!("../policies/catalogs.cedar")),
    ("lifecycle.cedar", include_str!("../policies/lifecycle.cedar")),
];

/// Why the policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema does not parse.
    #[error("policy schema does not parse: {0}")]
    Schema(String),
    /// A policy file does not parse.
    #[error("policy file {file} does not parse: {detail}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        detail: String,
    },
    /// The policies do not validate against the schema.
    #[error("policies do not validate against the schema: {0}")]
    Validation(String),
    /// An entity or request could not be built (a defect: our entities follow the schema).
    #[error("authorization request could not be built: {0}")]
    Request(String),
}

macro_rules! actions {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Every action the policies decide. Names match the schema's actions one to one (a test checks).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $(#[doc = $doc] $variant,)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The action's name in the schema and policies.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    MeRead => "me.read", "Read one's own account.";
    MeChangePassword => "me.change_password", "Change one's own password.";
    RegionList => "region.list", "List the city and its counties.";
    OrgList => "org.list", "List organisations.";
    OrgRead => "org.read", "Read an organisation.";
    OrgCreate => "org.create", "Register an organisation.";
    OrgUpdate => "org.update", "Change an organisation.";
    OrgDisable => "org.disable", "Disable an organisation.";
    UserList => "user.list", "List accounts (each then filtered by user.read).";
    UserRead => "user.read", "Read an account.";
    UserCreate => "user.create", "Create an account.";
    UserUpdate => "user.update", "Change an account's name or roles.";
    UserDisable => "user.disable", "Disable an account.";
    UserResetPassword => "user.reset_password", "Issue a new password for an account.";
    AuditRead => "audit.read", "Read audit entries, checkpoints and proofs.";
    AuditCheckpoint => "audit.checkpoint", "Have the platform sign a checkpoint now.";
    AuditExport => "audit.export", "Download an export bundle.";
    AuditCosign => "audit.cosign", "Countersign a checkpoint as a witness.";
    LineageRead => "lineage.read", "Query the lineage graph.";
    DatasetList => "dataset.list", "List datasets (each then filtered by dataset.read).";
    DatasetRead => "dataset.read", "Read a dataset's metadata, versions and error reports.";
    DatasetImport => "dataset.import", "Import a file as a new version of a dataset.";
    DatasetReview => "dataset.review", "Correct a version's classification, accept or reject it.";
    GovernanceRaise => "governance.raise", "Raise a data-quality request or an objection against a dataset.";
    GovernanceRead => "governance.read", "Read a dataset's governance requests and objections.";
    GovernanceAnswer => "governance.answer", "Answer a governance request or objection (the provider).";
    GovernanceClose => "governance.close", "Close a governance item (oversight; its raiser may close it too).";
    CatalogRead => "catalog.read", "Read a catalog entry (published ones are public to every account).";
    CatalogEdit => "catalog.edit", "Create, change, submit, revise or withdraw one's own catalog entry.";
    CatalogDecide => "catalog.decide", "Confirm, approve, return or reject a submitted catalog entry.";
    CatalogPublish => "catalog.publish", "Publish a catalog entry.";
    CallRead => "call.read", "Read a call for applications (published ones are public to every account).";
    CallEdit => "call.edit", "Create, publish or withdraw a call for applications.";
    ApplicationRead => "application.read", "Read an application (its applicant, the call's issuer, oversight).";
    ApplicationEdit => "application.edit", "Write, submit or withdraw one's own application.";
    ApplicationScores => "application.scores", "See an application's review scores (the call's issuer, oversight; never the applicant).";
    ReviewScore => "review.score", "Declare a conflict of interest or score an application under review (experts; the panel is the review machine's).";
    AgreementRead => "agreement.read", "Read an agreement (its parties, oversight).";
    AgreementEdit => "agreement.edit", "Draft, issue, suspend, restore or terminate an agreement (its grantor).";
    AgreementSign => "agreement.sign", "Sign an agreement or the data-security commitment (a party).";
    DataRequestRead => "data_request.read", "Read a data request and its scenario manifests (its requester, its reviewers, oversight).";
    DataRequestEdit => "data_request.edit", "Write, submit, amend or withdraw one's own data request.";
    DataRequestReview => "data_request.review", "Approve, return or reject a data request (a reviewer of its chain).";
    ProductPublish => "product.publish", "Publish a released output of a data request as a product, or delist it (the operator among its reviewers).";
    CustomRequestRead => "custom_request.read", "Read a custom processing request (its requester, its provider, oversight).";
    CustomRequestEdit => "custom_request.edit", "Ask for a custom service, accept its charge or decline (the requester).";
    CustomRequestServe => "custom_request.serve", "Estimate, deliver or decline a custom service (the agreement's grantor).";
    WorkspaceRead => "workspace.read", "See a workspace: its samples, their risk figures and techniques (its organisation; oversight).";
    WorkspaceQuery => "workspace.query", "Run SQL on a workspace's masked samples (its organisation's operators and developers).";
    JobRead => "job.read", "Read a job: its SQL, its state and reason, its outputs' reports (its organisation's operators and developers).";
    ReleasePreview => "release.preview", "See a requested release's output as it would leave, flagged cells marked (the data request's reviewers only).";
    ReleaseDownload => "release.download", "Download a released copy, watermarked for its recipient (the releasing organisation's operators and developers).";
    JobDiagnostics => "job.diagnostics", "Read a failed job's own diagnostics, which may quote full data (the operator's security staff, never the job's own organisation).";
    SigningKeyRegister => "signing_key.register", "Register the public key one signs agreements with.";
    ApiKeyList => "apikey.list", "List an organisation's API keys.";
    ApiKeyCreate => "apikey.create", "Create an API key.";
    ApiKeyRevoke => "apikey.revoke", "Revoke an API key.";
}

/// The object an action is about, with the attributes policies read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The platform as a whole (listing).
    Platform,
    /// An organisation (existing or about to be created).
    Org {
        /// Its id.
        id: OrgId,
        /// Its kind.
        kind: OrgKind,
        /// Its region.
        region: RegionCode,
        /// Its status.
        status: Status,
    },
    /// An account (existing or about to be created).
    User {
        /// Its id.
        id: UserId,
        /// Its organisation.
        org: OrgId,
        /// Its organisation's kind.
        org_kind: OrgKind,
        /// Its organisation's region.
        region: RegionCode,
        /// Its roles.
        roles: Vec<String>,
    },
    /// A dataset (existing or about to be created).
    Dataset {
        /// Its id.
        id: String,
        /// Its provider.
        org: OrgId,
        /// The provider's kind.
        org_kind: OrgKind,
        /// The provider's region.
        region: RegionCode,
        /// Its grade code.
        grade: String,
        /// A developer's social dataset whose import the operator approved.
        social_approved: bool,
    },
    /// A call for applications (existing or about to be created).
    Call {
        /// Its id.
        id: String,
        /// The issuing organisation.
        org: OrgId,
        /// That organisation's kind.
        org_kind: OrgKind,
        /// That organisation's region.
        region: RegionCode,
        /// `operator` or `developer`.
        audience: String,
        /// Its state code.
        state: String,
    },
    /// An application to a call (existing or about to be created).
    Application {
        /// Its id.
        id: String,
        /// The applying organisation.
        org: OrgId,
        /// That organisation's kind.
        org_kind: OrgKind,
        /// That organisation's region.
        region: RegionCode,
        /// The organisation that issued the call, with its kind and region.
        call_org: (OrgId, OrgKind, RegionCode),
        /// Its state code.
        state: String,
    },
    /// An agreement (existing or about to be drafted), kept by its grantor.
    Agreement {
        /// Its id.
        id: String,
        /// The grantor.
        org: OrgId,
        /// The grantor's kind.
        org_kind: OrgKind,
        /// The grantor's region.
        region: RegionCode,
        /// The grantee, with its kind and region.
        grantee: (OrgId, OrgKind, RegionCode),
        /// Its state code.
        state: String,
    },
    /// A custom processing request (定制化服务需求), kept by its requester.
    CustomRequest {
        /// Its id.
        id: String,
        /// The requesting organisation.
        org: OrgId,
        /// Its kind.
        org_kind: OrgKind,
        /// Its region.
        region: RegionCode,
        /// The serving organisation (the agreement's grantor), with its kind and region.
        provider: (OrgId, OrgKind, RegionCode),
        /// Its state code.
        state: String,
    },
    /// A data request (一场景一清单一审核), kept by its requester.
    DataRequest {
        /// Its id.
        id: String,
        /// The requesting organisation.
        org: OrgId,
        /// Its kind.
        org_kind: OrgKind,
        /// Its region.
        region: RegionCode,
        /// The review chain: the organisations that must approve.
        reviewers: Vec<OrgId>,
        /// Its state code.
        state: String,
    },
    /// A developer workspace (masked samples of one scenario), kept by the requester.
    Workspace {
        /// Its id.
        id: String,
        /// The organisation whose developers use it.
        org: OrgId,
        /// Its kind.
        org_kind: OrgKind,
        /// Its region.
        region: RegionCode,
        /// `open` or `sealed`.
        state: String,
    },
    /// An entry of the catalog chain (existing or about to be created).
    CatalogEntry {
        /// Its id.
        id: String,
        /// The organisation that keeps it.
        org: OrgId,
        /// That organisation's kind.
        org_kind: OrgKind,
        /// That organisation's region.
        region: RegionCode,
        /// `resource`, `operation`, `development` or `social`.
        kind: String,
        /// Its state code.
        state: String,
    },
    /// An API key (existing or about to be created).
    ApiKey {
        /// Its id.
        id: ApiKeyId,
        /// Its organisation.
        org: OrgId,
        /// Its organisation's kind.
        org_kind: OrgKind,
        /// Its organisation's region.
        region: RegionCode,
        /// Its roles.
        roles: Vec<String>,
    },
}

/// The outcome of one decision, with the policies that decided it (for logs and audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Ids of the policies that determined the decision.
    pub reasons: Vec<String>,
    /// Evaluation errors (a policy that errors does not apply; listed for diagnosis).
    pub errors: Vec<String>,
}

/// The loaded, validated policy set.
#[derive(Debug)]
pub struct Policies {
    schema: Schema,
    set: PolicySet,
    authorizer: Authorizer,
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(&format!("Shuyu::{name}")).map_err(|e| PolicyError::Request(e.to_string()))
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, PolicyError> {
    Ok(EntityUid::from_type_name_and_id(type_name(ty)?, EntityId::new(id)))
}

fn region_uid(code: &RegionCode) -> Result<EntityUid, PolicyError> {
    uid("Region", code.as_str())
}

fn org_uid(id: OrgId) -> Result<EntityUid, PolicyError> {
    uid("Organisation", &id.to_string())
}

fn strings<'a>(it: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(it.into_iter().map(|s| RestrictedExpression::new_string(s.to_string())))
}

/// An account-like entity (User or ApiKey): the attributes both types share.
fn member_entity(
    ty: &str,
    id: &str,
    org: OrgId,
    org_kind: OrgKind,
    region: &RegionCode,
    roles: &[&str],
) -> Result<Entity, PolicyError> {
    let attrs = HashMap::from([
        ("org".to_string(), RestrictedExpression::new_entity_uid(org_uid(org)?)),
        (
            "region".to_string(),
            RestrictedExpression::new_entity_uid(region_uid(region)?),
        ),
        (
            "org_kind".to_string(),
            RestrictedExpression::new_string(org_kind.code().to_string()),
        ),
        ("roles".to_string(), strings(roles.iter().copied())),
    ]);
    Entity::new(uid(ty, id)?, attrs, HashSet::from([org_uid(org)?])).map_err(|e| PolicyError::Request(e.to_string()))
}

fn org_entity(id: OrgId, kind: OrgKind, region: &RegionCode, status: Status) -> Result<Entity, PolicyError> {
    let attrs = HashMap::from([
        (
            "kind".to_string(),
            RestrictedExpression::new_string(kind.code().to_string()),
        ),
        (
            "status".to_string(),
            RestrictedExpression::new_string(status.code().to_string()),
        ),
    ]);
    Entity::new(org_uid(id)?, attrs, HashSet::from([region_uid(region)?]))
        .map_err(|e| PolicyError::Request(e.to_string()))
}

impl Policies {
    /// Parses the compiled-in schema and policies and validates them (strict mode).
    pub fn load() -> Result<Self, PolicyError> {
        Self::from_sources(SCHEMA_SRC, POLICY_SRCS)
    }

    /// Parses and validates the given schema and policy sources.
    pub fn from_sources(schema_src: &str, policy_srcs: &[(&str, &str)]) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(schema_src).map_err(|e| PolicyError::Schema(e.to_string()))?;
        let mut set = PolicySet::new();
        for (file, src) in policy_srcs {
            let parsed = PolicySet::from_str(src).map_err(|e| PolicyError::Parse {
                file: (*file).to_string(),
                detail: e.to_string(),
            })?;
            for (i, p) in parsed.policies().enumerate() {
                // Name each policy by its @id annotation (unique across files), so verdicts cite it.
                let id = p
                    .annotation("id")
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{file}#{i}"));
                set.add(p.new_id(cedar_policy::PolicyId::new(id)))
                    .map_err(|e| PolicyError::Parse {
                        file: (*file).to_string(),
                        detail: e.to_string(),
                    })?;
            }
        }
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(PolicyError::Validation(errors.join("; ")));
        }
        Ok(Self {
            schema,
            set,
            authorizer: Authorizer::new(),
        })
    }

    /// Number of policies loaded.
    pub fn len(&self) -> usize {
        self.set.policies().count()
    }

    /// Whether no policy is loaded (then everything is denied).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides whether `principal` may perform `action` on `resource`.
    /// `regions` is the region hierarchy (the city and its counties).
    /// Any failure to build the request denies.
    pub fn decide(&self, principal: &Principal, action: Action, resource: &Resource, regions: &[Region]) -> Verdict {
        match self.try_decide(principal, action, resource, regions) {
            Ok(v) => v,
            Err(e) => Verdict {
                allowed: false,
                reasons: Vec::new(),
                errors: vec![e.to_string()],
            },
        }
    }

    fn try_decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: &Resource,
        regions: &[Region],
    ) -> Result<Verdict, PolicyError> {
        let mut entities: Vec<Entity> = Vec::new();
        for r in regions {
            let parents = match &r.parent {
                Some(p) => HashSet::from([region_uid(p)?]),
                None => HashSet::new(),
            };
            entities.push(Entity::new_no_attrs(region_uid(&r.code)?, parents));
        }
        // The principal, and its organisation.
        let roles: Vec<&str> = principal.roles.iter().map(|r| r.code()).collect();
        let (ptype, pid) = match principal.id {
            PrincipalId::User(id) => ("User", id.to_string()),
            PrincipalId::ApiKey(id) => ("ApiKey", id.to_string()),
        };
        let principal_entity = member_entity(
            ptype,
            &pid,
            principal.org_id,
            principal.org_kind,
            &principal.region,
            &roles,
        )?;
        let principal_uid = principal_entity.uid();
        entities.push(principal_entity);
        let mut orgs_added: HashSet<OrgId> = HashSet::new();
        entities.push(org_entity(
            principal.org_id,
            principal.org_kind,
            &principal.region,
            Status::Active,
        )?);
        orgs_added.insert(principal.org_id);

        let resource_uid = match resource {
            Resource::Platform => {
                let u = uid("Platform", "shuyu")?;
                entities.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
                u
            }
            Resource::Org {
                id,
                kind,
                region,
                status,
            } => {
                let e = org_entity(*id, *kind, region, *status)?;
                let u = e.uid();
                if orgs_added.insert(*id) {
                    entities.push(e);
                } else {
                    // The principal's own organisation: replace with the resource's view of it.
                    entities.retain(|x| x.uid() != u);
                    entities.push(e);
                }
                u
            }
            Resource::User {
                org,
                org_kind,
                region,
                roles,
                ..
            } => push_member(
                &mut entities,
                &mut orgs_added,
                "User",
                &resource_id(resource),
                *org,
                *org_kind,
                region,
                roles,
            )?,
            Resource::Dataset {
                id,
                org,
                org_kind,
                region,
                grade,
                social_approved,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "Dataset",
                id,
                (*org, *org_kind, region),
                vec![
                    ("grade", RestrictedExpression::new_string(grade.clone())),
                    ("social_approved", RestrictedExpression::new_bool(*social_approved)),
                ],
                None,
            )?,
            Resource::CatalogEntry {
                id,
                org,
                org_kind,
                region,
                kind,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "CatalogEntry",
                id,
                (*org, *org_kind, region),
                vec![
                    ("kind", RestrictedExpression::new_string(kind.clone())),
                    ("state", RestrictedExpression::new_string(state.clone())),
                ],
                None,
            )?,
            Resource::Call {
                id,
                org,
                org_kind,
                region,
                audience,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "Call",
                id,
                (*org, *org_kind, region),
                vec![
                    ("audience", RestrictedExpression::new_string(audience.clone())),
                    ("state", RestrictedExpression::new_string(state.clone())),
                ],
                None,
            )?,
            Resource::Agreement {
                id,
                org,
                org_kind,
                region,
                grantee,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "Agreement",
                id,
                (*org, *org_kind, region),
                vec![("state", RestrictedExpression::new_string(state.clone()))],
                Some(("grantee", (grantee.0, grantee.1, &grantee.2))),
            )?,
            Resource::CustomRequest {
                id,
                org,
                org_kind,
                region,
                provider,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "CustomRequest",
                id,
                (*org, *org_kind, region),
                vec![("state", RestrictedExpression::new_string(state.clone()))],
                Some(("provider", (provider.0, provider.1, &provider.2))),
            )?,
            Resource::Workspace {
                id,
                org,
                org_kind,
                region,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "Workspace",
                id,
                (*org, *org_kind, region),
                vec![("state", RestrictedExpression::new_string(state.clone()))],
                None,
            )?,
            Resource::DataRequest {
                id,
                org,
                org_kind,
                region,
                reviewers,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "DataRequest",
                id,
                (*org, *org_kind, region),
                vec![
                    ("state", RestrictedExpression::new_string(state.clone())),
                    (
                        "reviewers",
                        RestrictedExpression::new_set(
                            reviewers
                                .iter()
                                .map(|o| org_uid(*o).map(RestrictedExpression::new_entity_uid))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                    ),
                ],
                None,
            )?,
            Resource::Application {
                id,
                org,
                org_kind,
                region,
                call_org,
                state,
            } => push_owned(
                &mut entities,
                &mut orgs_added,
                "Application",
                id,
                (*org, *org_kind, region),
                vec![("state", RestrictedExpression::new_string(state.clone()))],
                Some(("call_org", (call_org.0, call_org.1, &call_org.2))),
            )?,
            Resource::ApiKey {
                org,
                org_kind,
                region,
                roles,
                ..
            } => push_member(
                &mut entities,
                &mut orgs_added,
                "ApiKey",
                &resource_id(resource),
                *org,
                *org_kind,
                region,
                roles,
            )?,
        };
        let action_uid = uid("Action", action.name())?;
        // An action that does not apply to this kind of principal or resource
        // (e.g. an API key administering accounts) is a plain deny, not an error.
        let applies = |types: Option<Box<dyn Iterator<Item = &EntityTypeName> + '_>>, u: &EntityUid| {
            types.is_some_and(|mut it| it.any(|t| t == u.type_name()))
        };
        if !applies(
            self.schema
                .principals_for_action(&action_uid)
                .map(|i| Box::new(i) as Box<dyn Iterator<Item = _>>),
            &principal_uid,
        ) || !applies(
            self.schema
                .resources_for_action(&action_uid)
                .map(|i| Box::new(i) as Box<dyn Iterator<Item = _>>),
            &resource_uid,
        ) {
            return Ok(Verdict {
                allowed: false,
                reasons: vec!["not-applicable".into()],
                errors: Vec::new(),
            });
        }
        let request = Request::new(
            principal_uid,
            action_uid,
            resource_uid,
            Context::empty(),
            Some(&self.schema),
        )
        .map_err(|e| PolicyError::Request(e.to_string()))?;
        let entities =
            Entities::from_entities(entities, Some(&self.schema)).map_err(|e| PolicyError::Request(e.to_string()))?;
        let response = self.authorizer.is_authorized(&request, &self.set, &entities);
        Ok(Verdict {
            allowed: response.decision() == Decision::Allow,
            reasons: response.diagnostics().reason().map(|p| p.to_string()).collect(),
            errors: response.diagnostics().errors().map(|e| e.to_string()).collect(),
        })
    }
}

/// An organisation as a policy sees it: id, kind, region.
type OrgRef<'a> = (OrgId, OrgKind, &'a RegionCode);

/// Adds a resource owned by an organisation (it is `in` that organisation and carries
/// `org` and `region`), with its own attributes and, optionally, a second organisation
/// it refers to by attribute (a grantee, a call's issuer). Returns its uid.
#[allow(clippy::too_many_arguments)]
fn push_owned(
    entities: &mut Vec<Entity>,
    orgs_added: &mut HashSet<OrgId>,
    ty: &str,
    id: &str,
    owner: OrgRef<'_>,
    attrs: Vec<(&str, RestrictedExpression)>,
    other: Option<(&str, OrgRef<'_>)>,
) -> Result<EntityUid, PolicyError> {
    let (org, _, region) = owner;
    let mut all = HashMap::from([
        ("org".to_string(), RestrictedExpression::new_entity_uid(org_uid(org)?)),
        (
            "region".to_string(),
            RestrictedExpression::new_entity_uid(region_uid(region)?),
        ),
    ]);
    all.extend(attrs.into_iter().map(|(k, v)| (k.to_string(), v)));
    if let Some((name, (o, _, _))) = other {
        all.insert(name.to_string(), RestrictedExpression::new_entity_uid(org_uid(o)?));
    }
    let u = uid(ty, id)?;
    let e =
        Entity::new(u.clone(), all, HashSet::from([org_uid(org)?])).map_err(|e| PolicyError::Request(e.to_string()))?;
    entities.push(e);
    for (o, k, r) in std::iter::once(owner).chain(other.map(|(_, o)| o)) {
        if orgs_added.insert(o) {
            entities.push(org_entity(o, k, r, Status::Active)?);
        }
    }
    Ok(u)
}

#[allow(clippy::too_many_arguments)]
fn push_member(
    entities: &mut Vec<Entity>,
    orgs_added: &mut HashSet<OrgId>,
    ty: &str,
    id: &str,
    org: OrgId,
    org_kind: OrgKind,
    region: &RegionCode,
    roles: &[String],
) -> Result<EntityUid, PolicyError> {
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    let e = member_entity(ty, id, org, org_kind, region, &roles)?;
    let u = e.uid();
    // The principal may be its own resource (me.read); do not add it twice.
    if !entities.iter().any(|x| x.uid() == u) {
        entities.push(e);
    }
    if orgs_added.insert(org) {
        entities.push(org_entity(org, org_kind, region, Status::Active)?);
    }
    Ok(u)
}

fn resource_id(r: &Resource) -> String {
    match r {
        Resource::Platform => "shuyu".into(),
        Resource::Org { id, .. } => id.to_string(),
        Resource::User { id, .. } => id.to_string(),
        Resource::ApiKey { id, .. } => id.to_string(),
        Resource::Dataset { id, .. } => id.clone(),
        Resource::CatalogEntry { id, .. } => id.clone(),
        Resource::Call { id, .. } => id.clone(),
        Resource::Application { id, .. } => id.clone(),
        Resource::Agreement { id, .. } => id.clone(),
        Resource::DataRequest { id, .. } => id.clone(),
        Resource::CustomRequest { id, .. } => id.clone(),
        Resource::Workspace { id, .. } => id.clone(),
    }
}
