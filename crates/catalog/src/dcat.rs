//! DCAT-AP 3 in JSON-LD for the public catalogs (Y§10, Y§13, YP6): the catalog
//! as `dcat:Catalog`, each published entry as `dcat:Dataset` with the mandatory
//! properties (title, description) and the recommended ones we hold (publisher,
//! keywords, theme, frequency, access rights, issued/modified, version). Values
//! use the EU vocabularies DCAT-AP names (frequency, access-right), so harvesters
//! that speak DCAT-AP read them without a mapping.

use serde_json::{Value, json};
use shuyu_store::catalogs::EntryRecord;
use shuyu_store::orgs::OrgRecord;

use crate::chain::EntryKind;
use crate::entries::EntryBody;

const FREQ: &str = "http://publications.europa.eu/resource/authority/frequency/";
const ACCESS: &str = "http://publications.europa.eu/resource/authority/access-right/";

/// The JSON-LD context: DCAT, Dublin Core terms, FOAF, ADMS and XSD.
pub fn context() -> Value {
    json!({
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "adms": "http://www.w3.org/ns/adms#",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "shuyu": "urn:shuyu:vocab:"
    })
}

fn frequency(code: &str) -> &'static str {
    match code {
        "realtime" => "CONT",
        "daily" => "DAILY",
        "weekly" => "WEEKLY",
        "monthly" => "MONTHLY",
        "quarterly" => "QUARTERLY",
        "annual" => "ANNUAL",
        "never" => "NEVER",
        _ => "IRREG",
    }
}

fn zh(v: &str) -> Value {
    json!({ "@language": "zh-CN", "@value": v })
}

fn when(t: jiff::Timestamp) -> Value {
    json!({ "@type": "xsd:dateTime", "@value": t.to_string() })
}

fn titles(kind: EntryKind) -> (&'static str, &'static str) {
    match kind {
        EntryKind::Resource => ("公共数据资源目录", "Public data resource catalog"),
        EntryKind::Operation => ("授权运营数据资源目录", "Authorized-operation data resource catalog"),
        EntryKind::Development => ("授权开发数据资源目录", "Development data resource catalog"),
        EntryKind::Social => ("融合开发社会数据资源目录", "Social data fusion catalog"),
    }
}

/// One published entry as a `dcat:Dataset`.
pub fn dataset(base: &str, e: &EntryRecord, org: &OrgRecord, body: &EntryBody) -> Value {
    // Nothing in the domain is open data: every dataset is restricted, and one that
    // may not be authorized is non-public.
    let access = if body.authorizable { "RESTRICTED" } else { "NON_PUBLIC" };
    let mut d = json!({
        "@id": format!("{base}/api/v1/catalogs/entries/{}", e.id),
        "@type": "dcat:Dataset",
        "dct:identifier": e.id,
        "dct:title": zh(&e.title),
        "dct:description": zh(&body.description),
        "dct:publisher": { "@type": "foaf:Agent", "foaf:name": zh(&org.name) },
        "dct:accessRights": { "@id": format!("{ACCESS}{access}") },
        "dct:issued": when(e.published_at.unwrap_or(e.created_at)),
        "dct:modified": when(e.updated_at),
        "adms:versionInfo": e.revision.to_string(),
        "dcat:keyword": body.keywords.iter().map(|k| zh(k)).collect::<Vec<_>>(),
        "shuyu:grade": body.grade,
        "shuyu:fields": body.fields.iter().map(|f| json!({
            "shuyu:name": f.name, "shuyu:type": f.field_type, "shuyu:grade": f.grade,
        })).collect::<Vec<_>>(),
    });
    if let Some(f) = &body.update_frequency {
        d["dct:accrualPeriodicity"] = json!({ "@id": format!("{FREQ}{}", frequency(f)) });
    }
    if let Some(s) = &body.sector {
        d["dcat:theme"] = json!({ "@id": format!("urn:shuyu:sector:{s}") });
    }
    if let Some(p) = &e.parent_id {
        d["dct:source"] = json!({ "@id": format!("{base}/api/v1/catalogs/entries/{p}") });
    }
    if let Some(b) = &body.restriction_basis {
        d["dct:accessRights"]["dct:description"] = zh(b);
    }
    if let Some(s) = &body.source {
        d["dct:provenance"] = json!({ "@type": "dct:ProvenanceStatement", "dct:description": zh(s) });
    }
    d
}

/// The catalog of `kind` holding `datasets`.
pub fn catalog(base: &str, kind: EntryKind, datasets: Vec<Value>) -> Value {
    let (zh_title, en_title) = titles(kind);
    json!({
        "@context": context(),
        "@id": format!("{base}/api/v1/catalogs/{}/dcat", kind.code()),
        "@type": "dcat:Catalog",
        "dct:title": [zh(zh_title), { "@language": "en", "@value": en_title }],
        "dct:description": [
            zh(&format!("{zh_title}：已发布的条目（元数据，不含数据）")),
            { "@language": "en", "@value": format!("{en_title}: the published entries (metadata, no data)") }
        ],
        "dct:publisher": { "@type": "foaf:Agent", "foaf:name": "shuyu" },
        "dcat:dataset": datasets,
    })
}
