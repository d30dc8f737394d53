//! The demo's walk through the authorization lifecycle (Yancheng's two levels), so a new
//! user lands on a populated platform: the operator's demands and development catalog, the
//! authority's call and the operator's application, the operator's call and both demo
//! developers' applications, expert review, decisions, public notice, agreements signed
//! with each party's own key, and one approved data request — with its signed scenario
//! manifest — for each of the four demo scenarios of DEMO_CITY.md.
//!
//! The rules make a call's deadline and a notice period pass in days, so the demo's
//! history runs on a simulated clock over the three weeks before its first start (every
//! audit entry carries that date, in order), and ends before today. The signing keys are
//! generated here on the demo users' behalf and written to `demo-signing-keys.txt` (0600)
//! so they can sign renewals themselves; the platform itself stores public keys only.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use ed25519_dalek::Signer;
use jiff::ToSpan;
use shuyu_catalog::Catalog;
use shuyu_catalog::chain::{EntryEvent, EntryKind, EntryState};
use shuyu_catalog::entries::{EntryDraft, EntryView, FieldRequest};
use shuyu_core::actor::Principal;
use shuyu_core::clock::{Clock, SignedDuration, SimClock};
use shuyu_core::error::UserFacing;
use shuyu_core::i18n::{Lang, render};
use shuyu_store::Store;
use shuyu_workflow::agreement::Event;
use shuyu_workflow::call::CallEvent;
use shuyu_workflow::contracts::{AgreementRequest, SignWhat, message_to_sign};
use shuyu_workflow::requests::{
    DataRequestBody, MaskingOverride, NewDataRequest, RequestItem, ReviewDecision, RowScope,
};
use shuyu_workflow::review::ReviewEvent;
use shuyu_workflow::service::{
    ApplicationBody, Attestations, Audience, DataNeed, Decision, FieldNeed, Lifecycle, LifecycleError, NewCall,
    Scenario, city_today,
};

use shuyu_engine::products::PUBLIC_RECIPIENTS;
use shuyu_engine::{
    EngineError, JobOutputSpec, JobRequest, ProductKind, ProductView, PublishRequest, ReleaseRequest, ReleaseReview,
    Workspaces,
};
use shuyu_gate::ReviewPoint;

use crate::data_cmd::principal_of;

/// One demo scenario: who develops it, what for, and which fields of which datasets.
struct DemoScenario {
    developer: &'static str,
    name: &'static str,
    purpose: &'static str,
    sector: &'static str,
    public_welfare: bool,
    outputs: &'static [&'static str],
    fields: &'static [(&'static str, &'static [(&'static str, &'static str)])],
    /// The operator's overrides of the rule catalog: (dataset, field, technique, reason).
    overrides: &'static [(&'static str, &'static str, &'static str, &'static str)],
}

const SCENARIOS: &[DemoScenario] = &[
    DemoScenario {
        developer: "fintech.huang",
        name: "普惠金融：小微企业信用评估",
        purpose: "以企业登记、社保、纳税、用电数据评估小微企业信用，向银行提供评分模型和接口",
        sector: "finance",
        public_welfare: false,
        outputs: &["model", "verification"],
        fields: &[
            (
                "enterprise",
                &[
                    ("uscc", "关联企业"),
                    ("industry", "行业风险"),
                    ("registered_capital", "经营规模"),
                    ("region", "区域分布"),
                ],
            ),
            (
                "social_insurance",
                &[
                    ("employer_uscc", "关联企业"),
                    ("month", "参保月份"),
                    ("base_wage", "工资总额"),
                ],
            ),
            (
                "tax_payment",
                &[("uscc", "关联企业"), ("year", "纳税年度"), ("revenue_band", "营收区间")],
            ),
            (
                "electricity",
                &[("uscc", "关联企业"), ("month", "用电月份"), ("kwh", "生产活跃度")],
            ),
        ],
        overrides: &[],
    },
    DemoScenario {
        developer: "fintech.huang",
        name: "社保缴纳核验",
        purpose: "经本人授权，向银行回答是否在近 12 个月内缴纳社保满 6 个月（只答是否）",
        sector: "finance",
        public_welfare: false,
        outputs: &["verification"],
        fields: &[("social_insurance", &[("person_id", "核验对象"), ("month", "缴纳月份")])],
        overrides: &[],
    },
    DemoScenario {
        developer: "health.lin",
        name: "医疗健康：分区县疾病负担",
        purpose: "按区县、年龄段和疾病章节统计疾病负担，形成报告（小格抑制）",
        sector: "health",
        public_welfare: true,
        outputs: &["report"],
        fields: &[
            (
                "medical_visit",
                &[
                    ("person_id", "关联人口"),
                    ("visit_date", "就诊时间"),
                    ("icd10", "疾病分类"),
                ],
            ),
            (
                "population",
                &[("person_id", "关联就诊"), ("birth_date", "年龄段"), ("region", "区县")],
            ),
        ],
        overrides: &[("population", "birth_date", "date_to_year", "按年龄段统计，只需出生年份")],
    },
    DemoScenario {
        developer: "health.lin",
        name: "市域治理：公交客流",
        purpose: "按线路和小时统计公交客流，开放为数据集",
        sector: "governance",
        public_welfare: true,
        outputs: &["dataset"],
        fields: &[(
            "bus_ridership",
            &[
                ("line_id", "线路"),
                ("date", "日期"),
                ("hour", "时段"),
                ("boardings", "客流"),
            ],
        )],
        overrides: &[],
    },
];

const OPERATOR: &str = "yunying.liu";
const AUTHORITY_USER: &str = "admin";
const EXPERTS: [&str; 3] = ["expert.he", "expert.lu", "expert.shi"];
const KEYS_FILE: &str = "demo-signing-keys.txt";

fn explain(lang: Lang, e: impl UserFacing) -> anyhow::Error {
    let mut text = render(lang, &e.message());
    for f in e.field_errors() {
        text.push_str(&format!("\n  - {}: {}", f.field, render(lang, &f.message())));
    }
    anyhow!(text)
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// The fields a scenario needs of each dataset, merged across scenarios (dataset → field → reason).
fn needs() -> BTreeMap<&'static str, BTreeMap<&'static str, &'static str>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for s in SCENARIOS {
        for (dataset, fields) in s.fields {
            let e = out.entry(dataset).or_default();
            for (f, why) in *fields {
                e.entry(f).or_insert(why);
            }
        }
    }
    out
}

struct Walk<'a> {
    life: &'a Lifecycle,
    clock: &'a SimClock,
    lang: Lang,
    keys: BTreeMap<String, ed25519_dalek::SigningKey>,
}

impl Walk<'_> {
    fn today(&self) -> jiff::civil::Date {
        city_today(self.clock.now())
    }

    fn ok<T>(&self, r: Result<T, LifecycleError>) -> Result<T> {
        r.map_err(|e| explain(self.lang, e))
    }

    async fn key_of(&mut self, p: &Principal, username: &str) -> Result<ed25519_dalek::SigningKey> {
        if let Some(k) = self.keys.get(username) {
            return Ok(k.clone());
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness for a signing key: {e}"))?;
        let k = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = base64::engine::general_purpose::STANDARD.encode(k.verifying_key().to_bytes());
        self.ok(self.life.register_signing_key(p, &public).await)?;
        self.keys.insert(username.to_string(), k.clone());
        Ok(k)
    }

    async fn sign(&mut self, p: &Principal, username: &str, id: &str, digest: &str, what: SignWhat) -> Result<()> {
        let k = self.key_of(p, username).await?;
        let sig = base64::engine::general_purpose::STANDARD
            .encode(k.sign(message_to_sign(digest, what).as_bytes()).to_bytes());
        self.ok(self.life.sign_agreement(p, id, what, &sig).await)?;
        Ok(())
    }

    async fn call(&self, issuer: &Principal, audience: Audience, title: &str) -> Result<String> {
        let c = self.ok(self
            .life
            .create_call(
                issuer,
                &NewCall {
                    title: title.into(),
                    conditions: "在本市注册；信用良好；具备数据安全管理制度和数据安全负责人".into(),
                    audience,
                    deadline: self.today().checked_add(3.days()).context("date")?,
                    criteria: vec!["场景价值".into(), "安全能力".into(), "运营能力".into()],
                    notice_days: Some(5),
                    quorum: Some(3),
                },
            )
            .await)?;
        self.ok(self.life.call_event(issuer, &c.id, CallEvent::Publish).await)?;
        Ok(c.id)
    }

    async fn review(&self, issuer: &Principal, experts: &[Principal], app: &str) -> Result<()> {
        let panel: Vec<String> = EXPERTS.iter().map(|s| s.to_string()).collect();
        self.ok(self.life.start_review(issuer, app, &panel).await)?;
        for (i, e) in experts.iter().enumerate() {
            self.ok(self.life.expert(e, app, ReviewEvent::Declare { conflict: false }).await)?;
            let s = 80 + (i as u8) * 5;
            self.ok(self
                .life
                .expert(e, app, ReviewEvent::Score { scores: vec![s, s, s] })
                .await)?;
        }
        self.ok(self
            .life
            .decide(
                issuer,
                app,
                &Decision {
                    approved: true,
                    approval_ref: "示政字〔2026〕12号".into(),
                    reason: "专家评审通过".into(),
                },
            )
            .await)?;
        Ok(())
    }

    /// Drafts, issues and has both parties sign (and the grantee commit to) an agreement.
    async fn agreement(
        &mut self,
        grantor: (&Principal, &str),
        grantee: (&Principal, &str),
        app: &str,
        years: i64,
    ) -> Result<String> {
        let start = self.today();
        let end = start
            .checked_add(years.years())
            .and_then(|d| d.yesterday())
            .context("date")?;
        let draft = self.ok(self
            .life
            .draft_agreement(
                grantor.0,
                app,
                &AgreementRequest {
                    term_start: start,
                    term_end: end,
                    clauses: Default::default(),
                },
            )
            .await)?;
        let id = draft.document.id.clone();
        self.ok(self
            .life
            .agreement_event(grantor.0, &id, Event::Issue { objections_open: 0 })
            .await)?;
        self.sign(grantor.0, grantor.1, &id, &draft.digest, SignWhat::Agreement)
            .await?;
        self.sign(grantee.0, grantee.1, &id, &draft.digest, SignWhat::Agreement)
            .await?;
        self.sign(grantee.0, grantee.1, &id, &draft.digest, SignWhat::Commitment)
            .await?;
        Ok(id)
    }
}

fn attestations(operator: bool) -> Attestations {
    Attestations {
        good_credit: true,
        security_systems: true,
        security_officer: "刘洋".into(),
        mlps_level3: operator,
        crypto_assessment: operator,
    }
}

fn scenario(s: &DemoScenario) -> Scenario {
    Scenario {
        name: s.name.into(),
        purpose: s.purpose.into(),
        sector: s.sector.into(),
        expected_value: "服务实体经济和公共治理".into(),
        public_welfare: s.public_welfare,
    }
}

fn field_needs(fields: &[(&str, &str)]) -> Vec<FieldNeed> {
    fields
        .iter()
        .map(|(n, r)| FieldNeed {
            name: (*n).into(),
            reason: (*r).into(),
        })
        .collect()
}

/// Walks the lifecycle; `clock` stands three weeks back and is moved forward as the rules need.
/// Returns the approved data requests (scenario, developer, manifest digest).
pub async fn run(
    catalog: &Catalog,
    life: &Lifecycle,
    store: &Store,
    clock: &SimClock,
    data_dir: &Path,
    lang: Lang,
) -> Result<Vec<(String, String, String)>> {
    let who = |u: &'static str| principal_of(store, u, lang);
    let authority = who(AUTHORITY_USER).await?;
    let operator = who(OPERATOR).await?;
    let mut experts = Vec::new();
    for e in EXPERTS {
        experts.push(who(e).await?);
    }
    let mut w = Walk {
        life,
        clock,
        lang,
        keys: BTreeMap::new(),
    };
    let cat = |e: shuyu_catalog::CatalogError| explain(lang, e);

    // The operator's demands on the resource catalog, confirmed by the authority, and the
    // development catalog derived from them.
    let resources = catalog
        .list_entries(&authority, EntryKind::Resource, Some(EntryState::Published))
        .await
        .map_err(cat)?;
    let resource_of = |dataset: &str| -> Result<&EntryView> {
        resources
            .iter()
            .find(|e| e.body.dataset_name.as_deref() == Some(dataset))
            .ok_or_else(|| anyhow!("the demo's resource catalog has no entry for {dataset}"))
    };
    let mut development: BTreeMap<&str, String> = BTreeMap::new();
    for (dataset, fields) in needs() {
        let res = resource_of(dataset)?;
        let grade_of = |f: &str| -> Result<String> {
            res.body
                .fields
                .iter()
                .find(|x| x.name == f)
                .map(|x| x.grade.clone())
                .ok_or_else(|| anyhow!("{dataset} has no field {f}"))
        };
        let demand = catalog
            .create_entry(
                &operator,
                EntryKind::Operation,
                &EntryDraft {
                    title: format!("需求：{}", res.title),
                    description: format!("授权运营场景所需的{}", res.title),
                    parent_id: Some(res.id.clone()),
                    purpose: Some("示范场景开发".into()),
                    fields: fields
                        .iter()
                        .map(|(f, why)| FieldRequest {
                            name: (*f).into(),
                            reason: Some((*why).into()),
                            grade: None,
                            field_type: None,
                        })
                        .collect(),
                    ..EntryDraft::default()
                },
            )
            .await
            .map_err(cat)?;
        catalog
            .act_on_entry(&operator, &demand.id, EntryEvent::Submit, None)
            .await
            .map_err(cat)?;
        catalog
            .act_on_entry(&authority, &demand.id, EntryEvent::Approve, None)
            .await
            .map_err(cat)?;
        let mut dev_fields = Vec::new();
        for f in fields.keys() {
            dev_fields.push(FieldRequest {
                name: (*f).into(),
                reason: None,
                grade: Some(grade_of(f)?),
                field_type: None,
            });
        }
        let dev = catalog
            .create_entry(
                &operator,
                EntryKind::Development,
                &EntryDraft {
                    title: format!("{}（开发）", res.title),
                    description: format!("{}，在运营域内脱敏后用于开发", res.title),
                    parent_id: Some(demand.id.clone()),
                    fields: dev_fields,
                    ..EntryDraft::default()
                },
            )
            .await
            .map_err(cat)?;
        catalog
            .act_on_entry(&operator, &dev.id, EntryEvent::Publish, None)
            .await
            .map_err(cat)?;
        development.insert(dataset, dev.id);
    }

    // The authority's call for operators; the operator's call for developers.
    let op_call = w
        .call(&authority, Audience::Operator, "示范市公共数据授权运营单位申报")
        .await?;
    let op_body = ApplicationBody {
        scenarios: SCENARIOS.iter().map(scenario).collect(),
        data_needs: needs()
            .iter()
            .map(|(dataset, fields)| {
                Ok(DataNeed {
                    entry_id: resource_of(dataset)?.id.clone(),
                    fields: field_needs(&fields.iter().map(|(f, r)| (*f, *r)).collect::<Vec<_>>()),
                })
            })
            .collect::<Result<_>>()?,
        attestations: attestations(true),
    };
    let op_app = w.ok(life.create_application(&operator, &op_call, &op_body).await)?;
    w.ok(life.submit_application(&operator, &op_app.id).await)?;
    let dev_call = w
        .call(&operator, Audience::Developer, "示范数据集团开发主体招募")
        .await?;
    let developers = ["fintech.huang", "health.lin"];
    let mut dev_apps = Vec::new();
    for d in developers {
        let p = who(d).await?;
        let mine: Vec<&DemoScenario> = SCENARIOS.iter().filter(|s| s.developer == d).collect();
        let mut needs: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for s in &mine {
            for (dataset, fields) in s.fields {
                let e = needs.entry(dataset).or_default();
                for f in *fields {
                    if !e.iter().any(|x| x.0 == f.0) {
                        e.push(*f);
                    }
                }
            }
        }
        let body = ApplicationBody {
            scenarios: mine.iter().map(|s| scenario(s)).collect(),
            data_needs: needs
                .iter()
                .map(|(dataset, fields)| DataNeed {
                    entry_id: development[dataset].clone(),
                    fields: field_needs(fields),
                })
                .collect(),
            attestations: attestations(false),
        };
        let app = w.ok(life.create_application(&p, &dev_call, &body).await)?;
        w.ok(life.submit_application(&p, &app.id).await)?;
        dev_apps.push((d, p, app.id));
    }

    // The calls close; experts review; decisions go on public notice.
    clock.advance(days(4));
    w.review(&authority, &experts, &op_app.id).await?;
    for (_, _, app) in &dev_apps {
        w.review(&operator, &experts, app).await?;
    }

    // The notice period over, the agreements: the authority with the operator, the operator
    // with each developer.
    clock.advance(days(6));
    w.ok(life.clear_notice(&authority, &op_app.id).await)?;
    for (_, _, app) in &dev_apps {
        w.ok(life.clear_notice(&operator, app).await)?;
    }
    w.agreement((&authority, AUTHORITY_USER), (&operator, OPERATOR), &op_app.id, 3)
        .await?;
    let mut approved = Vec::new();
    for (d, p, app) in &dev_apps {
        let agreement = w.agreement((&operator, OPERATOR), (p, d), app, 2).await?;
        // One data request per scenario, reviewed by the operator.
        clock.advance(SignedDuration::from_hours(2));
        for s in SCENARIOS.iter().filter(|s| s.developer == *d) {
            let body = DataRequestBody {
                items: s
                    .fields
                    .iter()
                    .map(|(dataset, fields)| RequestItem {
                        entry_id: development[dataset].clone(),
                        fields: field_needs(fields),
                    })
                    .collect(),
                rows: RowScope {
                    region: Some("379900".into()),
                    from: None,
                    to: None,
                },
                purpose: s.purpose.into(),
                retention_days: 180,
                security_measures: "仅在运营域内处理；结果经出域审核；样本脱敏".into(),
                outputs: s.outputs.iter().map(|o| o.to_string()).collect(),
                masking: Vec::new(),
            };
            let r = w.ok(life
                .create_data_request(
                    p,
                    &NewDataRequest {
                        agreement_id: agreement.clone(),
                        scenario: s.name.into(),
                        body,
                    },
                )
                .await)?;
            w.ok(life.data_request_event(p, &r.id, "submit").await)?;
            // The operator overrides the rule catalog where the scenario needs less: an age
            // band needs only the year of birth.
            let overrides: Vec<MaskingOverride> = s
                .overrides
                .iter()
                .map(|(dataset, field, technique, reason)| MaskingOverride {
                    entry_id: development[dataset].clone(),
                    field: field.to_string(),
                    technique: technique.to_string(),
                    reason: reason.to_string(),
                    by_org: String::new(),
                })
                .collect();
            let done = w.ok(life
                .review_data_request_with(&operator, &r.id, ReviewDecision::Approve, None, &overrides)
                .await)?;
            let Some(m) = done.manifest else {
                bail!("the data request of {} has no manifest", s.name);
            };
            approved.push((s.name.to_string(), d.to_string(), m.digest));
        }
    }
    clock.advance(SignedDuration::from_hours(1));

    // The demo users' private keys, for them alone.
    let mut text = String::from("# shuyu demo: the demo users' Ed25519 signing keys (username, private key, base64)\n");
    for (u, k) in &w.keys {
        text.push_str(&format!(
            "{u}\t{}\n",
            base64::engine::general_purpose::STANDARD.encode(k.to_bytes())
        ));
    }
    crate::write_private(&data_dir.join(KEYS_FILE), text.as_bytes())?;
    Ok(approved)
}

/// A product the demo makes from a scenario: a job on full data, its release to the public,
/// and its publication.
struct DemoProduct {
    scenario: &'static str,
    output: &'static str,
    sql: &'static str,
    remedy: &'static str,
    kind: ProductKind,
    title: &'static str,
    summary: &'static str,
    terms: &'static str,
    reasons: &'static str,
}

const PRODUCTS: [DemoProduct; 2] = [
    DemoProduct {
        scenario: "医疗健康：分区县疾病负担",
        output: "burden_by_region",
        sql: "SELECT p.region, v.icd10, COUNT(*) AS visits FROM medical_visit v \
              JOIN population p ON v.person_id = p.person_id GROUP BY p.region, v.icd10",
        remedy: "suppress",
        kind: ProductKind::Report,
        title: "示范市分区县门诊疾病负担报告",
        summary: "按区县和疾病分类（ICD-10）统计的门诊就诊人次；小于 10 的格子及可据边际反推的格子已抑制。",
        terms: "公开发布，可自由引用，须注明来源“示范市公共数据授权运营平台”；不得尝试识别个人。",
        reasons: "统计表，小格已按规则一次、二次抑制，符合公共卫生报告用途",
    },
    DemoProduct {
        scenario: "市域治理：公交客流",
        output: "ridership_by_hour",
        sql: "SELECT hour, SUM(boardings) AS boardings, COUNT(*) AS records FROM bus_ridership GROUP BY hour",
        remedy: "suppress",
        kind: ProductKind::Dataset,
        title: "示范市公交分时段客流",
        summary: "全市公交按运营时段（05–23 时）汇总的上车人次和记录数，供线网优化和出行研究使用。",
        terms: "开放数据，可自由使用和再分发，须注明来源；不得与其他数据关联以识别个人出行。",
        reasons: "按线路和时段汇总，不含个人信息，符合开放数据集用途",
    },
];

/// The demo's products (DEMO_CITY.md): the disease-burden scenario's job runs on full data
/// inside the domain, its output is released to the public after two reviewers' six points and
/// published as a report; the bus-ridership scenario's likewise becomes a dataset.
pub async fn products(ws: &Workspaces, store: &Store, lang: Lang) -> Result<Vec<ProductView>> {
    let eng = |e: EngineError| explain(lang, e);
    let developer = principal_of(store, "health.lin", lang).await?;
    let publisher = principal_of(store, OPERATOR, lang).await?;
    let mut reviewers = Vec::new();
    for party in crate::city::PARTIES {
        for (username, _, _) in party.users {
            if *username != "health.lin" {
                reviewers.push(principal_of(store, username, lang).await?);
            }
        }
    }
    let spaces = ws.list(&developer).await.map_err(eng)?;
    let mut made = Vec::new();
    for plan in &PRODUCTS {
        let w = spaces
            .iter()
            .find(|w| w.scenario == plan.scenario)
            .ok_or_else(|| anyhow!("no demo workspace for {}", plan.scenario))?;
        let spec = JobRequest {
            outputs: vec![JobOutputSpec {
                name: plan.output.into(),
                sql: plan.sql.into(),
            }],
        };
        let job = ws.submit_job(&developer, &w.id, &spec).await.map_err(eng)?;
        ws.run_queued().await.map_err(eng)?;
        let job = ws.job(&developer, &job.id).await.map_err(eng)?;
        if job.state != "done" {
            bail!(
                "the demo job {} ended {}: {}",
                plan.output,
                job.state,
                job.reason.unwrap_or_default()
            );
        }
        let release = ws
            .request_release(
                &developer,
                &ReleaseRequest {
                    job_id: job.id.clone(),
                    output: plan.output.into(),
                    recipient: PUBLIC_RECIPIENTS[0].into(),
                    remedy: Some(plan.remedy.into()),
                },
            )
            .await
            .map_err(eng)?;
        // What still does not pass after the remedy is overridden, with the reason, on the log.
        let overrides: BTreeMap<String, String> = release
            .report
            .not_passed()
            .into_iter()
            .map(|id| (id, plan.reasons.to_string()))
            .collect();
        let mut state = release.state.clone();
        for r in &reviewers {
            if state != "requested" {
                break;
            }
            if !ws.release(r, &release.id).await.is_ok_and(|v| v.can_review) {
                continue;
            }
            let review = ReleaseReview {
                approve: true,
                points: ReviewPoint::ALL.iter().map(|p| (*p, true)).collect(),
                reasons: plan.reasons.into(),
                overrides: overrides.clone(),
            };
            state = ws.review_release(r, &release.id, &review).await.map_err(eng)?.state;
        }
        if state != "released" {
            bail!("the demo release of {} is {state}", plan.output);
        }
        let product = ws
            .publish_product(
                &publisher,
                &PublishRequest {
                    release_id: release.id.clone(),
                    kind: plan.kind,
                    title: plan.title.into(),
                    summary: plan.summary.into(),
                    terms: plan.terms.into(),
                },
            )
            .await
            .map_err(eng)?;
        made.push(product);
    }
    Ok(made)
}
