//! Building one masked sample from one dataset version: restrict to the approved row scope,
//! draw rows (correlated across a scenario's datasets by person or enterprise), de-identify
//! every approved field by the rule catalog, measure the re-identification risk over the
//! quasi-identifiers and, when it is above the limit, generalize further (and suppress the
//! few records that still stand out) — or withhold the sample.
//!
//! Everything here is pure and synchronous; the full-data batches it reads are the crate's
//! private [`Full`] type and never leave it — what comes out is a masked [`Built`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{cast, concat_batches, filter_record_batch, take};
use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shuyu_import::Column;
use shuyu_mask::catalog::{Rule, ScenarioKeys, default_rule, rule_code, technique};
use shuyu_workflow::requests::RowScope;
use utoipa::ToSchema;

use shuyu_core::error::{FieldError, Validation};

use crate::EngineError;

/// How rows are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Method {
    /// Each person (or enterprise, or row) is in with probability `fraction`, decided by a
    /// keyed hash of its key — the same people in every dataset of the scenario.
    Random,
    /// As `Random`, and at least `min_per_stratum` rows of every value of `by`, so rare
    /// categories (a rare diagnosis, a small county) are in the sample too.
    Stratified {
        /// The field whose values are the strata.
        by: String,
        /// Rows kept at least per stratum.
        min_per_stratum: usize,
    },
}

/// Rows strata may always add above the fraction, however small the draw.
pub const MIN_STRATA_EXTRA: usize = 50;

/// How a sample is drawn and how safe it must be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SampleSpec {
    /// Share of the in-scope people (or rows) drawn, in (0, 1].
    pub fraction: f64,
    /// At most this many rows (those with the smallest draws are kept).
    pub max_rows: usize,
    /// How rows are drawn.
    pub method: Method,
    /// Smallest equivalence class allowed over the quasi-identifiers (k-anonymity) in a
    /// sample of personal data.
    pub k: usize,
    /// Share of a sample's records that may be dropped because they stand out even after
    /// generalization.
    pub suppression: f64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            fraction: 0.1,
            max_rows: 200_000,
            method: Method::Random,
            k: 5,
            suppression: 0.05,
        }
    }
}

impl SampleSpec {
    /// Checks every setting at once; errors name the field and the rule.
    pub fn validate(&self) -> Result<(), EngineError> {
        let mut bad = Vec::new();
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            bad.push(("fraction", "range_0_1"));
        }
        if self.max_rows == 0 {
            bad.push(("max_rows", "positive"));
        }
        if self.k < 2 {
            bad.push(("k", "at_least_2"));
        }
        if !(0.0..=0.5).contains(&self.suppression) {
            bad.push(("suppression", "range_0_half"));
        }
        if let Method::Stratified { by, min_per_stratum } = &self.method {
            if by.is_empty() {
                bad.push(("method.by", "required"));
            }
            if *min_per_stratum == 0 {
                bad.push(("method.min_per_stratum", "positive"));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(EngineError::BadSpec(Validation(
                bad.into_iter().map(|(f, r)| FieldError::new(f, r)).collect(),
            )))
        }
    }
}

/// Whose records a scenario's samples follow, so joins between them still find partners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// People (ID-number keys).
    Person,
    /// Enterprises (credit-code keys).
    Enterprise,
}

impl Entity {
    fn matches(self, field_type: &str) -> bool {
        match self {
            Entity::Person => matches!(field_type, "id_number" | "party_id"),
            Entity::Enterprise => field_type == "uscc",
        }
    }
}

/// A field of a sample and how it was de-identified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SampleField {
    /// Its name.
    pub name: String,
    /// The classifier's type.
    pub field_type: String,
    /// Its grade.
    pub grade: String,
    /// The technique applied (rule code).
    pub technique: String,
    /// Why, when an operator overrode the default for this scenario.
    pub override_reason: Option<String>,
    /// Whether it counts as a quasi-identifier in the risk figures.
    pub quasi_identifier: bool,
    /// How many steps it was generalized beyond its technique to meet the risk limit.
    pub generalized: usize,
}

/// Re-identification risk over the quasi-identifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RiskFigures {
    /// Records measured.
    pub records: usize,
    /// Equivalence classes.
    pub classes: usize,
    /// The smallest class (the sample is k-anonymous for k up to this).
    pub smallest_class: usize,
    /// Records alone in their class.
    pub unique_records: usize,
    /// Share of records alone in their class.
    pub unique_share: f64,
}

/// The risk of a sample, before and after further generalization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SampleRisk {
    /// Whether the sample holds personal data (then the limit applies).
    pub personal: bool,
    /// The quasi-identifiers measured.
    pub quasi_identifiers: Vec<String>,
    /// The limit: the smallest class allowed.
    pub k: usize,
    /// As drawn and masked by the rule catalog.
    pub initial: RiskFigures,
    /// As shown (after further generalization and suppression).
    pub shown: RiskFigures,
    /// Records dropped because they stood out even after generalization.
    pub suppressed: usize,
    /// Whether the shown sample meets the limit.
    pub meets_limit: bool,
}

/// An operator's override of a field's technique for one scenario, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldOverride {
    /// The field.
    pub field: String,
    /// The rule code to apply instead of the default.
    pub technique: String,
    /// Why (recorded in the manifest).
    pub reason: String,
}

/// The full data of one version, as read from the vault. Crate-private: it never leaves
/// the engine.
pub(crate) struct Full {
    pub(crate) batches: Vec<RecordBatch>,
}

/// What to build: the approved fields of one dataset under one scenario.
pub(crate) struct Plan<'a> {
    pub(crate) columns: &'a [Column],
    pub(crate) approved: &'a [String],
    pub(crate) scope: &'a RowScope,
    pub(crate) entity: Option<Entity>,
    pub(crate) spec: &'a SampleSpec,
    pub(crate) keys: &'a ScenarioKeys,
    pub(crate) overrides: &'a [FieldOverride],
}

/// A built, masked sample.
pub(crate) struct Built {
    pub(crate) batch: RecordBatch,
    pub(crate) fields: Vec<SampleField>,
    pub(crate) risk: SampleRisk,
    pub(crate) source_rows: usize,
}

/// The columns a plan reads from the version: the approved fields plus those it needs to
/// restrict and draw rows (region, period, entity key, stratum).
pub(crate) fn needed_columns(plan: &Plan<'_>) -> Vec<String> {
    let mut out: Vec<String> = plan.approved.to_vec();
    let mut add = |n: Option<&str>| {
        if let Some(n) = n
            && !out.iter().any(|o| o == n)
        {
            out.push(n.to_string());
        }
    };
    add(region_column(plan.columns));
    add(period_column(plan));
    add(key_column(plan));
    if let Method::Stratified { by, .. } = &plan.spec.method {
        add(Some(by.as_str()));
    }
    out
}

fn type_of(c: &Column) -> &'static str {
    c.class.field_type.code()
}

fn region_column(columns: &[Column]) -> Option<&str> {
    columns.iter().find(|c| c.name == "region").map(|c| c.name.as_str())
}

fn period_column<'a>(plan: &Plan<'a>) -> Option<&'a str> {
    let is_period = |c: &&Column| matches!(type_of(c), "date" | "month");
    plan.columns
        .iter()
        .filter(is_period)
        .find(|c| plan.approved.contains(&c.name))
        .or_else(|| plan.columns.iter().find(is_period))
        .map(|c| c.name.as_str())
}

/// The entity key of a dataset: an approved key column of the scenario's entity, else any
/// column of it.
fn key_column<'a>(plan: &Plan<'a>) -> Option<&'a str> {
    let e = plan.entity?;
    plan.columns
        .iter()
        .filter(|c| e.matches(type_of(c)))
        .find(|c| plan.approved.contains(&c.name))
        .or_else(|| plan.columns.iter().find(|c| e.matches(type_of(c))))
        .map(|c| c.name.as_str())
}

/// The scenario's entity: people when any dataset has a person key among its approved
/// fields, else enterprises when any has a credit code, else none.
pub(crate) fn scenario_entity<'a>(
    datasets: impl Iterator<Item = (&'a [Column], &'a [String])> + Clone,
) -> Option<Entity> {
    [Entity::Person, Entity::Enterprise].into_iter().find(|e| {
        datasets
            .clone()
            .any(|(cols, approved)| cols.iter().any(|c| approved.contains(&c.name) && e.matches(type_of(c))))
    })
}

/// A keyed draw in [0, 1) for a key value: SHA-256 of the scenario's draw key and the value
/// (one compression for the short keys drawn here; the key stays inside the domain, so a
/// plain keyed hash suffices — what it must be is unpredictable without the key and the same
/// for the same value in every dataset of the scenario).
struct Draw(Sha256);

impl Draw {
    fn new(key: &[u8; 32]) -> Draw {
        let mut h = Sha256::new();
        h.update(b"shuyu-draw-v1\0");
        h.update(key);
        Draw(h)
    }
    fn of(&self, bytes: &[u8]) -> f64 {
        let mut m = self.0.clone();
        m.update(bytes);
        let out = m.finalize();
        let mut w = [0u8; 8];
        w.copy_from_slice(&out[..8]);
        (u64::from_be_bytes(w) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Work split over the machine's cores: `f` on each of `parts` ranges of `0..n`, in order.
fn in_parallel<T: Send>(n: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let parts = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 8);
    if parts == 1 || n < 10_000 {
        return vec![f(0..n)];
    }
    let step = n.div_ceil(parts);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..parts)
            .map(|p| {
                let f = &f;
                s.spawn(move || f(p * step..((p + 1) * step).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn strings(col: &ArrayRef) -> Result<StringArray, EngineError> {
    let c = cast(col, &DataType::Utf8)?;
    Ok(c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(vec![None::<&str>; col.len()])))
}

/// The rows of `batch` inside the row scope — the one rule ([`crate::scenario::Scope`]) jobs
/// apply too.
fn in_scope(batch: &RecordBatch, plan: &Plan<'_>) -> Result<RecordBatch, EngineError> {
    crate::scenario::Scope::of(plan.scope, plan.columns, plan.approved).apply(batch)
}

/// Draws the rows: (row, draw) of those kept, smallest draws first when capped.
fn draw(batch: &RecordBatch, plan: &Plan<'_>) -> Result<Vec<u32>, EngineError> {
    let n = batch.num_rows();
    let d = Draw::new(&plan.keys.random);
    let keys = match key_column(plan) {
        Some(col) => Some(strings(
            batch
                .column_by_name(col)
                .ok_or_else(|| EngineError::Missing(col.into()))?,
        )?),
        None => None,
    };
    let u: Vec<f64> = in_parallel(n, |range| {
        range
            .map(|i| match &keys {
                Some(k) if k.is_valid(i) => d.of(k.value(i).as_bytes()),
                // No key: each row on its own, by its position in the version.
                _ => d.of(format!("row:{i}").as_bytes()),
            })
            .collect::<Vec<f64>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let mut kept: Vec<bool> = u.iter().map(|&x| x < plan.spec.fraction).collect();
    if let Method::Stratified { by, min_per_stratum } = &plan.spec.method {
        let strata = strings(
            batch
                .column_by_name(by)
                .ok_or_else(|| EngineError::NoStratum(by.clone()))?,
        )?;
        let mut groups: HashMap<Option<&str>, Vec<usize>> = HashMap::new();
        for i in 0..n {
            groups
                .entry(strata.is_valid(i).then(|| strata.value(i)))
                .or_default()
                .push(i);
        }
        // Strata bring rare values in, not people: rows added above the fraction are capped at
        // half of what the fraction drew (at least `MIN_STRATA_EXTRA`); past it the drawing is
        // refused rather than quietly shaped.
        let drawn = kept.iter().filter(|k| **k).count();
        let cap = (drawn / 2).max(MIN_STRATA_EXTRA);
        let mut added = 0usize;
        for rows in groups.values_mut() {
            let have = rows.iter().filter(|&&i| kept[i]).count();
            if have < *min_per_stratum {
                rows.sort_by(|&a, &b| u[a].total_cmp(&u[b]));
                let extra: Vec<usize> = rows
                    .iter()
                    .copied()
                    .filter(|&i| !kept[i])
                    .take(min_per_stratum - have)
                    .collect();
                added += extra.len();
                if added > cap {
                    return Err(EngineError::BadSpec(Validation(vec![
                        FieldError::new("method.min_per_stratum", "strata_add_too_many").arg("max", cap),
                    ])));
                }
                for i in extra {
                    kept[i] = true;
                }
            }
        }
    }
    let mut rows: Vec<u32> = (0..n as u32).filter(|&i| kept[i as usize]).collect();
    if rows.len() > plan.spec.max_rows {
        rows.sort_by(|&a, &b| u[a as usize].total_cmp(&u[b as usize]));
        rows.truncate(plan.spec.max_rows);
        rows.sort_unstable();
    }
    Ok(rows)
}

/// Whether a field is a quasi-identifier: a value others may know of a person (dates,
/// categories, places, ages) shown in a linkable form. Pseudonyms, tokens and synthetic
/// values link to nothing outside the scenario; measures are not known to outsiders.
fn quasi_identifier(field_type: &str, name: &str, rule: Rule) -> bool {
    let linkable = matches!(
        rule,
        Rule::AsIs | Rule::DateToMonth | Rule::DateToYear | Rule::Intervals(_) | Rule::DisplayMask
    );
    let known = match field_type {
        "date" | "month" | "category" | "address" => true,
        "integer" => name.contains("age") || name.contains("year"),
        _ => false,
    };
    linkable && known
}

/// One generalization step of a quasi-identifier's value: a day to its month, a month to its
/// year, a county code to its city, a number to its decade, and anything else (or a year,
/// or a city) to `*`.
pub fn coarser(v: &str) -> String {
    let b = v.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        10 if b[4] == b'-' && b[7] == b'-' => v[..7].to_string(),
        7 if b[4] == b'-' && digits(&b[..4]) => v[..4].to_string(),
        6 if digits(b) && !v.ends_with("00") => format!("{}00", &v[..4]),
        1..=3 if digits(b) => {
            let n: u32 = v.parse().unwrap_or(0);
            format!("{}-{}", n / 10 * 10, n / 10 * 10 + 9)
        }
        _ => "*".to_string(),
    }
}

fn figures(cols: &[ArrayRef]) -> Result<RiskFigures, EngineError> {
    let r = shuyu_mask::risk::risk(cols)?;
    Ok(RiskFigures {
        records: r.records,
        classes: r.classes,
        smallest_class: r.smallest_class,
        unique_records: r.unique_records,
        unique_share: r.unique_share,
    })
}

/// Builds the masked sample of `full` under `plan`.
pub(crate) fn build(full: &Full, plan: &Plan<'_>) -> Result<Built, EngineError> {
    let schema = match full.batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(Schema::new(
            needed_columns(plan)
                .iter()
                .map(|n| Field::new(n, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        )),
    };
    let all = concat_batches(&schema, &full.batches)?;
    let scoped = in_scope(&all, plan)?;
    let source_rows = scoped.num_rows();
    let rows = UInt32Array::from(draw(&scoped, plan)?);

    let by_name: BTreeMap<&str, &Column> = plan.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in plan.approved {
        let col = by_name
            .get(name.as_str())
            .ok_or_else(|| EngineError::Missing(name.clone()))?;
        let field_type = type_of(col);
        let grade = col.class.grade.code();
        let over = plan.overrides.iter().find(|o| &o.field == name);
        let rule = match over {
            Some(o) => Rule::from_code(&o.technique).ok_or_else(|| EngineError::BadOverride {
                field: name.clone(),
                technique: o.technique.clone(),
            })?,
            None => default_rule(field_type, &grade),
        };
        let source = scoped
            .column_by_name(name)
            .ok_or_else(|| EngineError::Missing(name.clone()))?;
        let drawn = take(source.as_ref(), &rows, None)?;
        let tech = technique(rule, field_type, name, plan.keys)?;
        // Tokens and pseudonyms cost microseconds a value and depend on the value alone: such a
        // column is masked in parts, one per core. (Synthetic values and noise are drawn by row
        // position, so they are masked whole.)
        let per_value = matches!(rule, Rule::Tokenize | Rule::Pseudonymize);
        let n = if per_value { drawn.len() } else { 0 };
        let parts = match n {
            0 => vec![tech.apply(&drawn)],
            n => in_parallel(n, |r| tech.apply(&drawn.slice(r.start, r.len()))),
        };
        let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let masked = match parts.as_slice() {
            [one] => one.clone(),
            many => arrow::compute::concat(&many.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?,
        };
        fields.push(SampleField {
            name: name.clone(),
            field_type: field_type.to_string(),
            grade,
            technique: rule_code(&rule).to_string(),
            override_reason: over.map(|o| o.reason.clone()),
            quasi_identifier: quasi_identifier(field_type, name, rule),
            generalized: 0,
        });
        arrays.push(masked);
    }

    let personal = plan.columns.iter().any(|c| {
        matches!(
            type_of(c),
            "id_number" | "party_id" | "person_name" | "mobile" | "bank_card"
        )
    });
    let qi: Vec<usize> = (0..fields.len()).filter(|&i| fields[i].quasi_identifier).collect();
    let qi_cols = |arrays: &[ArrayRef]| qi.iter().map(|&i| arrays[i].clone()).collect::<Vec<_>>();
    let initial = figures(&qi_cols(&arrays))?;
    let k = plan.spec.k;
    let mut suppressed = 0;
    let mut keep_rows: Option<Vec<bool>> = None;
    if personal && !qi.is_empty() && initial.records > 0 && initial.smallest_class < k {
        let (levels, values, drop) = generalize(&qi_cols(&arrays), k, plan.spec.suppression)?;
        for (j, &i) in qi.iter().enumerate() {
            if levels[j] > 0 {
                fields[i].generalized = levels[j];
                arrays[i] = Arc::new(values[j].clone());
            }
        }
        suppressed = drop.iter().filter(|d| **d).count();
        if suppressed > 0 {
            keep_rows = Some(drop.iter().map(|d| !d).collect());
        }
    }
    let mut out_fields = Vec::new();
    for (f, a) in fields.iter().zip(&arrays) {
        out_fields.push(Field::new(&f.name, a.data_type().clone(), true));
    }
    let mut batch = RecordBatch::try_new(Arc::new(Schema::new(out_fields)), arrays)?;
    if let Some(keep) = keep_rows {
        batch = filter_record_batch(&batch, &BooleanArray::from(keep))?;
    }
    let shown = figures(&qi.iter().map(|&i| batch.column(i).clone()).collect::<Vec<_>>())?;
    let meets_limit = !personal || qi.is_empty() || shown.records == 0 || shown.smallest_class >= k;
    Ok(Built {
        risk: SampleRisk {
            personal,
            quasi_identifiers: qi.iter().map(|&i| fields[i].name.clone()).collect(),
            k,
            initial,
            shown,
            suppressed,
            meets_limit,
        },
        batch,
        fields,
        source_rows,
    })
}

/// The levels reached, the generalized columns and which rows to drop.
type Generalized = (Vec<usize>, Vec<StringArray>, Vec<bool>);

/// Stands for a missing value inside a hierarchy (hierarchies hold text only).
const NULL: &str = "\u{2205}";

/// Generalizes the quasi-identifiers to the **optimal** full-domain generalization that makes
/// every class hold at least `k` records with at most `suppression` of them dropped — the
/// ARX-parity search of `shuyu_mask::anon`, minimizing ARX's Loss — over hierarchies built
/// from the values by [`coarser`] (day → month → year → `*`, county → city → `*`, number →
/// decade → `*`, anything else → `*`). When no generalization meets `k` every column goes to
/// `*` and nothing is dropped: the caller sees the limit unmet and withholds the sample.
fn generalize(cols: &[ArrayRef], k: usize, suppression: f64) -> Result<Generalized, EngineError> {
    use shuyu_mask::anon::{Anonymizer, Config, Metric};
    use shuyu_mask::generalize::Hierarchy;
    let n = cols.first().map(|c| c.len()).unwrap_or(0);
    let mut columns = Vec::with_capacity(cols.len());
    let mut chains: Vec<HashMap<String, Vec<String>>> = Vec::with_capacity(cols.len());
    let mut hierarchies = Vec::with_capacity(cols.len());
    let mut originals: Vec<Vec<String>> = Vec::with_capacity(cols.len());
    for (j, c) in cols.iter().enumerate() {
        let s = strings(c)?;
        let values: Vec<String> = (0..n)
            .map(|i| {
                if s.is_valid(i) {
                    s.value(i).to_string()
                } else {
                    NULL.to_string()
                }
            })
            .collect();
        let mut chain: HashMap<String, Vec<String>> = HashMap::new();
        for v in &values {
            if !chain.contains_key(v) {
                let mut up = vec![v.clone()];
                while up.last().is_some_and(|x| x != "*") {
                    let next = coarser(up.last().map(String::as_str).unwrap_or("*"));
                    up.push(next);
                }
                chain.insert(v.clone(), up);
            }
        }
        let height = chain.values().map(Vec::len).max().unwrap_or(1);
        let mut text = String::new();
        for up in chain.values_mut() {
            up.resize(height, "*".to_string());
            if up.iter().any(|x| x.contains([';', '\n', '\r'])) {
                return Err(EngineError::Task(format!(
                    "quasi-identifier {j}: a value holds a separator"
                )));
            }
            text.push_str(&up.join(";"));
            text.push('\n');
        }
        hierarchies.push(Hierarchy::from_csv(&text)?);
        originals.push(values.clone());
        columns.push((format!("q{j}"), values));
        chains.push(chain);
    }
    let anonymizer = Anonymizer::new(columns, hierarchies, None)?;
    let config = Config {
        k,
        l: None,
        t: None,
        suppression_limit: suppression,
        metric: Metric::Loss,
    };
    let (levels, out, drop) = match anonymizer.search(&config) {
        Ok(solution) => {
            let published = anonymizer.apply(&config, &solution.levels)?;
            let mut drop = vec![false; n];
            let mut out: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n); cols.len()];
            for (i, row) in published.iter().enumerate() {
                // A suppressed record shows `*` everywhere although its generalization does not.
                let mut starred_only = true;
                for (j, v) in row.iter().enumerate() {
                    out[j].push((*v != NULL).then(|| v.to_string()));
                    starred_only &= *v == "*";
                }
                drop[i] = starred_only
                    && (0..cols.len()).any(|j| {
                        let original = &originals[j][i];
                        chains[j]
                            .get(original)
                            .and_then(|up| up.get(solution.levels[j]))
                            .is_some_and(|g| g != "*")
                    });
            }
            (solution.levels, out, drop)
        }
        Err(shuyu_mask::MaskError::NoSolution) => {
            let levels: Vec<usize> = chains.iter().map(|c| chain_height(c) - 1).collect();
            (levels, vec![vec![Some("*".to_string()); n]; cols.len()], vec![false; n])
        }
        Err(e) => return Err(e.into()),
    };
    let arrays = out.into_iter().map(StringArray::from).collect();
    Ok((levels, arrays, drop))
}

fn chain_height(chain: &HashMap<String, Vec<String>>) -> usize {
    chain.values().map(Vec::len).max().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarser_climbs_each_kind_of_value_to_the_top() {
        let mut v = "1985-03-01".to_string();
        let mut path = vec![v.clone()];
        while v != "*" {
            v = coarser(&v);
            path.push(v.clone());
        }
        assert_eq!(path, ["1985-03-01", "1985-03", "1985", "*"]);
        assert_eq!(coarser("379902"), "379900");
        assert_eq!(coarser("379900"), "*");
        assert_eq!(coarser("37"), "30-39");
        assert_eq!(coarser("30-39"), "*");
        assert_eq!(coarser("汉族"), "*");
    }

    #[test]
    fn a_spec_names_every_bad_setting() {
        let s = SampleSpec {
            fraction: 0.0,
            max_rows: 0,
            k: 1,
            suppression: 0.9,
            method: Method::Stratified {
                by: String::new(),
                min_per_stratum: 0,
            },
        };
        let Err(EngineError::BadSpec(bad)) = s.validate() else {
            panic!("accepted");
        };
        let names: Vec<&str> = bad.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "fraction",
                "max_rows",
                "k",
                "suppression",
                "method.by",
                "method.min_per_stratum"
            ]
        );
        assert!(SampleSpec::default().validate().is_ok());
    }

    #[test]
    fn generalization_reaches_k_or_reports_it_cannot() {
        // 40 people: birth days all different, two counties.
        let days: Vec<String> = (0..40)
            .map(|i| format!("19{:02}-0{}-1{}", 60 + i % 3, 1 + i % 2, i % 10))
            .collect();
        let regions: Vec<&str> = (0..40).map(|i| if i % 2 == 0 { "379901" } else { "379902" }).collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(days.iter().map(String::as_str).collect::<Vec<_>>())),
            Arc::new(StringArray::from(regions)),
        ];
        let (levels, values, drop) = generalize(&cols, 5, 0.0).expect("generalize");
        assert!(levels[0] >= 1, "{levels:?}");
        let after: Vec<ArrayRef> = values.into_iter().map(|v| Arc::new(v) as ArrayRef).collect();
        assert!(shuyu_mask::risk::risk(&after).expect("risk").smallest_class >= 5);
        assert!(drop.iter().all(|d| !d));
        // Two records in all: k = 5 cannot be met, and there is no budget to drop them.
        let two: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec!["a", "b"]))];
        let (_, values, drop) = generalize(&two, 5, 0.0).expect("generalize");
        assert_eq!(values[0].value(0), "*");
        assert!(drop.iter().all(|d| !d));
    }

    #[test]
    fn one_record_that_stands_out_is_dropped_rather_than_everyone_generalized() {
        // 40 people of one county born in 1985, one of another county: with room to drop 2
        // records the optimum keeps everything as is and drops the one.
        let mut regions = vec!["379901"; 40];
        regions.push("379902");
        let years = vec!["1985"; 41];
        let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(regions)), Arc::new(StringArray::from(years))];
        let (levels, values, drop) = generalize(&cols, 5, 0.05).expect("generalize");
        assert_eq!(levels, [0, 0]);
        assert_eq!(drop.iter().filter(|d| **d).count(), 1);
        assert!(drop[40]);
        assert_eq!(values[0].value(0), "379901");
        // Without that room, the county is generalized to the city instead.
        let (levels, values, drop) = generalize(&cols, 5, 0.0).expect("generalize");
        assert_eq!(levels, [1, 0]);
        assert_eq!(values[0].value(40), "379900");
        assert!(drop.iter().all(|d| !d));
    }
}

/// Samples of the demo city's real files, imported into a real (temporary) vault.
#[cfg(test)]
mod city_tests {
    use std::collections::HashSet;

    use arrow::array::{Array, StringArray};
    use shuyu_keyring::MasterKey;
    use shuyu_vault::Vault;

    use super::*;

    struct Imported {
        columns: Vec<Column>,
        full: Full,
    }

    async fn import(name: &str, dir: &std::path::Path, vault: &Vault) -> Imported {
        let opts = shuyu_democity::Options { scale: 0.01, seed: 7 };
        let info = shuyu_democity::generate_dataset(dir, &opts, name, &mut |_, _, _| {})
            .expect("generate")
            .expect("a demo dataset");
        let version = format!("v-{name}");
        let imported = shuyu_import::import_file(
            &dir.join(&info.file),
            &shuyu_import::Options::default(),
            vault,
            &version,
            &format!("{name}.parquet"),
        )
        .await
        .expect("import");
        let sealed = imported.data.expect("rows");
        let batches = vault
            .read(&version, &sealed.path, &sealed.wrapped_key, None)
            .await
            .expect("read");
        Imported {
            columns: imported.report.columns,
            full: Full { batches },
        }
    }

    fn keys(b: u8) -> ScenarioKeys {
        ScenarioKeys {
            pseudonym: [b; 32],
            token: [b.wrapping_add(1); 32],
            random: [b.wrapping_add(2); 32],
        }
    }

    fn all_names(c: &[Column]) -> Vec<String> {
        c.iter().map(|c| c.name.clone()).collect()
    }

    fn column_strings(b: &RecordBatch, name: &str) -> Vec<String> {
        let s = strings(b.column_by_name(name).expect("column")).expect("strings");
        (0..s.len())
            .filter(|&i| s.is_valid(i))
            .map(|i| s.value(i).to_string())
            .collect()
    }

    fn originals(full: &Full, name: &str) -> HashSet<String> {
        full.batches.iter().flat_map(|b| column_strings(b, name)).collect()
    }

    #[tokio::test]
    async fn a_population_sample_at_sf_001_shows_no_identifier_and_meets_k() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Vault::local(dir.path(), MasterKey::generate().expect("key")).expect("vault");
        let pop = import("population", &dir.path().join("files"), &vault).await;
        let approved = all_names(&pop.columns);
        let spec = SampleSpec::default();
        let scope = RowScope::default();
        let plan = Plan {
            columns: &pop.columns,
            approved: &approved,
            scope: &scope,
            entity: Some(Entity::Person),
            spec: &spec,
            keys: &keys(1),
            overrides: &[],
        };
        let built = build(&pop.full, &plan).expect("build");
        let rows = built.batch.num_rows();
        assert!(rows > 500 && rows < 1500, "about 10 % of 10 000 people: {rows}");

        // No original ID number, mobile or name appears anywhere in the sample.
        let mut secrets = HashSet::new();
        for c in &pop.columns {
            if matches!(type_of(c), "id_number" | "mobile" | "person_name") {
                secrets.extend(originals(&pop.full, &c.name));
            }
        }
        assert!(
            secrets.len() > 10_000,
            "IDs, mobiles and names of the population: {}",
            secrets.len()
        );
        for f in built.batch.schema().fields() {
            for v in column_strings(&built.batch, f.name()) {
                assert!(!secrets.contains(&v), "{} shows an original value", f.name());
            }
        }
        // The classification detectors find no mobile and no name; the only column they take
        // for ID numbers is the person key, whose values are FF1 tokens.
        for f in built.batch.schema().fields() {
            let values = column_strings(&built.batch, f.name());
            let class = shuyu_classify::classify_field(f.name(), values.iter().map(String::as_str));
            let t = class.field_type.code();
            assert!(t != "mobile" && t != "person_name", "{} is detected as {t}", f.name());
            if t == "id_number" {
                let field = built.fields.iter().find(|x| &x.name == f.name()).expect("field");
                assert_eq!(field.technique, "ff1_token", "{}", f.name());
            }
        }
        // It meets the configured k over its quasi-identifiers.
        assert!(built.risk.personal);
        assert!(!built.risk.quasi_identifiers.is_empty());
        assert!(built.risk.meets_limit, "{:?}", built.risk);
        assert!(built.risk.shown.smallest_class >= spec.k, "{:?}", built.risk);
        assert!(
            built.risk.initial.smallest_class < spec.k,
            "the rule catalog alone does not reach k: {:?}",
            built.risk
        );
        assert!(built.risk.suppressed <= (spec.suppression * rows as f64) as usize + 1);
        let generalized: Vec<_> = built.fields.iter().filter(|f| f.generalized > 0).collect();
        assert!(!generalized.is_empty());
    }

    #[tokio::test]
    async fn samples_of_one_scenario_join_and_another_scenario_cannot_link_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = Vault::local(dir.path(), MasterKey::generate().expect("key")).expect("vault");
        let files = dir.path().join("files");
        let pop = import("population", &files, &vault).await;
        let visits = import("medical_visit", &files, &vault).await;
        let spec = SampleSpec::default();
        let scope = RowScope::default();
        let pop_fields = vec!["person_id".to_string(), "region".to_string()];
        let visit_fields = vec!["person_id".to_string(), "icd10".to_string()];
        let entity = scenario_entity(
            [
                (pop.columns.as_slice(), pop_fields.as_slice()),
                (visits.columns.as_slice(), visit_fields.as_slice()),
            ]
            .into_iter(),
        );
        assert_eq!(entity, Some(Entity::Person));
        let sample = |imp: &Imported, fields: &Vec<String>, k: &ScenarioKeys| {
            build(
                &imp.full,
                &Plan {
                    columns: &imp.columns,
                    approved: fields,
                    scope: &scope,
                    entity,
                    spec: &spec,
                    keys: k,
                    overrides: &[],
                },
            )
            .expect("build")
        };
        let (a, b) = (keys(1), keys(9));
        let p = sample(&pop, &pop_fields, &a);
        let v = sample(&visits, &visit_fields, &a);
        let people: HashSet<String> = column_strings(&p.batch, "person_id").into_iter().collect();
        let visitors = column_strings(&v.batch, "person_id");
        assert!(!visitors.is_empty());
        // Correlated draws: every sampled visit's patient who lives in the population file is
        // in the population sample too — the join finds its partner.
        let residents = originals(&pop.full, "person_id");
        let token = |imp: &Imported, fields: &Vec<String>, k: &ScenarioKeys| {
            column_strings(&sample(imp, fields, k).batch, "person_id")
        };
        let joined = visitors.iter().filter(|t| people.contains(*t)).count();
        let of_residents = {
            // How many of the sampled visits are of residents: the same count, drawn from the originals.
            let all_visitors = originals(&visits.full, "person_id");
            let share =
                all_visitors.iter().filter(|x| residents.contains(*x)).count() as f64 / all_visitors.len() as f64;
            (share * visitors.len() as f64) as usize
        };
        assert!(
            joined as f64 >= 0.9 * of_residents as f64,
            "joined {joined} of ~{of_residents}"
        );
        // The same scenario builds the same sample; another scenario's tokens match nothing.
        assert_eq!(token(&pop, &pop_fields, &a), column_strings(&p.batch, "person_id"));
        let other: HashSet<String> = token(&pop, &pop_fields, &b).into_iter().collect();
        assert!(other.is_disjoint(&people) || other.intersection(&people).count() < 3);
    }

    #[test]
    fn the_row_scope_keeps_only_the_county_asked_for() {
        use shuyu_classify::{FieldClass, FieldType, Grade, Level, Sensitivity};
        let class = |name: &str, t: FieldType| Column {
            name: name.into(),
            class: FieldClass {
                field: name.into(),
                field_type: t,
                sensitivity: Sensitivity::None,
                grade: Grade::general(Level::L1),
                confidence: 1.0,
                evidence: String::new(),
                sampled: 0,
            },
            required: false,
            examples: vec![],
            overridden: false,
        };
        let columns = vec![class("region", FieldType::Category), class("day", FieldType::Date)];
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("region", DataType::Utf8, true),
                Field::new("day", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["379901", "379902", "379901", "379901"])),
                Arc::new(StringArray::from(vec![
                    "2025-01-05",
                    "2025-01-06",
                    "2024-12-31",
                    "2025-02-01",
                ])),
            ],
        )
        .expect("batch");
        let scope = RowScope {
            region: Some("379901".into()),
            from: Some(jiff::civil::date(2025, 1, 1)),
            to: Some(jiff::civil::date(2025, 1, 31)),
        };
        let spec = SampleSpec {
            fraction: 1.0,
            ..SampleSpec::default()
        };
        let approved = vec!["region".to_string(), "day".to_string()];
        let plan = Plan {
            columns: &columns,
            approved: &approved,
            scope: &scope,
            entity: None,
            spec: &spec,
            keys: &keys(3),
            overrides: &[],
        };
        let built = build(&Full { batches: vec![batch] }, &plan).expect("build");
        assert_eq!(built.source_rows, 1);
        assert_eq!(column_strings(&built.batch, "day"), ["2025-01-05"]);
        // A city code covers its counties.
        let city = RowScope {
            region: Some("379900".into()),
            ..RowScope::default()
        };
        let plan = Plan { scope: &city, ..plan };
        let b2 = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("region", DataType::Utf8, true),
                Field::new("day", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["379901", "379902", "389901"])),
                Arc::new(StringArray::from(vec!["2025-01-05", "2025-01-06", "2025-01-07"])),
            ],
        )
        .expect("batch");
        assert_eq!(build(&Full { batches: vec![b2] }, &plan).expect("build").source_rows, 2);
    }
}
