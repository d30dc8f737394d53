//! A scenario's view of one dataset — the one home of what a scenario may read of it, used by
//! the samples and by the jobs alike:
//! - the **approved fields**, each with how it appears inside a job: as stored; an entity key
//!   (ID numbers, party ids, credit codes) as an opaque keyed 64-bit number, equal for equal
//!   keys across every dataset so joins and distinct counts behave, but no longer the key; any
//!   other identifying field (names, mobiles, cards, addresses, plates, e-mails) withheld
//!   (null); a field the manifest's reviewers generalized (birth date → year) generalized here
//!   too, by the same technique as in the samples;
//! - the **row scope**, one rule ([`Scope`]) compiled once to a DataFusion expression and
//!   evaluated on the stored rows for samples and jobs alike;
//! - the **entity** its records belong to (a person or an enterprise key, else — and for a
//!   record whose key is missing — the record itself), exposed to the engine's own plans as the hidden column [`ENTITY`], with each
//!   record's identity as [`ROW`] — never to the developer's SQL, which is planned against the
//!   approved fields only.
//!
//! [`ScenarioTable`] is the DataFusion `TableProvider` over it: projection pushdown down to the
//! vault read (only the columns a query needs are decrypted), the scope applied in the scan, and
//! the query's own filters evaluated in the scan as well (inexact pushdown).

use std::hash::Hasher as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, new_null_array};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::catalog::TableProvider;
use datafusion::common::{Column as DfColumn, DFSchema};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::ExecutionProps;
use datafusion::functions::string::expr_fn::starts_with;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, cast as cast_expr, col, lit};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;
use shuyu_classify::FieldType;
use shuyu_import::Column;
use shuyu_mask::catalog::{Rule, ScenarioKeys, technique};
use shuyu_workflow::requests::RowScope;

use crate::EngineError;
use crate::sample::{Entity, FieldOverride};

/// The hidden column holding each record's entity (a person's or an enterprise's keyed number,
/// or the record's own identity when the dataset has no such key).
pub(crate) const ENTITY: &str = "__shuyu_entity";
/// The hidden column holding each record's identity (version and position, keyed).
pub(crate) const ROW: &str = "__shuyu_row";
/// Names starting with this are the engine's; a developer's SQL never sees them.
pub(crate) const RESERVED: &str = "__shuyu";

/// How an approved field appears inside a job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JobField {
    /// As stored.
    AsStored,
    /// An entity key as an opaque keyed number (Int64).
    EntityKey,
    /// An identifying field no job may use: null.
    Withheld,
    /// Generalized by a reviewer's override, as in the samples.
    Generalized(Rule),
}

/// One field of the view.
#[derive(Debug, Clone)]
pub(crate) struct ViewField {
    /// Its name.
    pub(crate) name: String,
    /// The classifier's type.
    pub(crate) field_type: FieldType,
    /// How a job sees it.
    pub(crate) job: JobField,
    /// Its type as the developer's SQL is planned (as stored, or as generalized).
    pub(crate) data_type: DataType,
    /// Its type in the engine's plans (an entity key is a number there).
    pub(crate) engine_type: DataType,
}

impl ViewField {
    /// Whether the field directly identifies a person or an enterprise.
    pub(crate) fn identifying(&self) -> bool {
        identifying(self.field_type)
    }

    /// The entity whose key the field holds, if it is one.
    pub(crate) fn entity(&self) -> Option<Entity> {
        entity_of(self.field_type)
    }
}

/// Whether a field of this type directly identifies a person or an enterprise.
pub(crate) fn identifying(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::IdNumber
            | FieldType::Mobile
            | FieldType::BankCard
            | FieldType::Uscc
            | FieldType::PartyId
            | FieldType::PersonName
            | FieldType::Address
            | FieldType::LicensePlate
            | FieldType::Email
    )
}

/// The entity a key of this type stands for.
pub(crate) fn entity_of(t: FieldType) -> Option<Entity> {
    match t {
        FieldType::IdNumber | FieldType::PartyId => Some(Entity::Person),
        FieldType::Uscc => Some(Entity::Enterprise),
        _ => None,
    }
}

/// One test of the row scope on one column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScopeTest {
    /// The value's text starts with this region prefix.
    Prefix(String),
    /// The value is within the period (dates as `Date32`, months as `YYYY-MM` text).
    Between {
        from: Option<String>,
        to: Option<String>,
        date: bool,
    },
}

/// The manifest's row scope on one dataset: a region code (a city covers its counties) on
/// `region`, the period on the first date or month column (an approved one first).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Scope {
    tests: Vec<(String, ScopeTest)>,
}

impl Scope {
    /// The scope of `rows` on a dataset with these columns and approved fields.
    pub(crate) fn of(rows: &RowScope, columns: &[Column], approved: &[String]) -> Scope {
        let mut tests = Vec::new();
        if let (Some(region), Some(c)) = (&rows.region, columns.iter().find(|c| c.name == "region")) {
            let prefix = match region.get(..4) {
                Some(city) if region.ends_with("00") => city,
                _ => region.as_str(),
            };
            tests.push((c.name.clone(), ScopeTest::Prefix(prefix.to_string())));
        }
        if (rows.from.is_some() || rows.to.is_some())
            && let Some(c) = period_column(columns, approved)
        {
            let month = c.class.field_type == FieldType::Month;
            let cut = |d: jiff::civil::Date| {
                let s = d.to_string();
                if month { s.get(..7).unwrap_or(&s).to_string() } else { s }
            };
            tests.push((
                c.name.clone(),
                ScopeTest::Between {
                    from: rows.from.map(cut),
                    to: rows.to.map(cut),
                    date: !month,
                },
            ));
        }
        Scope { tests }
    }

    /// The columns the scope reads.
    pub(crate) fn columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (c, _) in &self.tests {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// The scope as one predicate over columns of `schema`'s types (`None`: every row).
    pub(crate) fn expr(&self, schema: &Schema) -> Option<Expr> {
        let mut predicate: Option<Expr> = None;
        for (column, test) in &self.tests {
            let c = col(DfColumn::from_name(column.clone()));
            let e = match test {
                ScopeTest::Prefix(p) => prefix_test(c, schema.field_with_name(column).ok().map(|f| f.data_type()), p),
                ScopeTest::Between { from, to, date } => {
                    // Dates compare as dates where they are stored as dates, else as their ISO
                    // text (which orders the same); months as `YYYY-MM` text.
                    let stored = schema.field_with_name(column).ok().map(|f| f.data_type().clone());
                    let as_date = *date && stored == Some(DataType::Date32);
                    let bound = |v: &String| {
                        if as_date {
                            cast_expr(lit(v.clone()), DataType::Date32)
                        } else {
                            lit(v.clone())
                        }
                    };
                    let text = !as_date && !matches!(stored, Some(DataType::Utf8 | DataType::LargeUtf8));
                    let c = if text { cast_expr(c, DataType::Utf8) } else { c };
                    let mut e = c.clone().is_not_null();
                    if let Some(f) = from {
                        e = e.and(c.clone().gt_eq(bound(f)));
                    }
                    if let Some(t) = to {
                        e = e.and(c.clone().lt_eq(bound(t)));
                    }
                    e
                }
            };
            predicate = Some(match predicate {
                Some(p) => p.and(e),
                None => e,
            });
        }
        predicate
    }

    /// The rows of `batch` inside the scope.
    pub(crate) fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, EngineError> {
        let Some(predicate) = self.expr(batch.schema().as_ref()) else {
            return Ok(batch.clone());
        };
        Ok(filter_record_batch(batch, &evaluate(&predicate, batch)?)?)
    }
}

/// Evaluates a predicate on a batch (a null counts as false).
fn evaluate(predicate: &Expr, batch: &RecordBatch) -> Result<BooleanArray, EngineError> {
    let df_schema = DFSchema::try_from(batch.schema().as_ref().clone()).map_err(crate::sql::df)?;
    let physical = create_physical_expr(
        predicate,
        &df_schema,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )
    .map_err(crate::sql::df)?;
    let value = physical
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(crate::sql::df)?;
    let mask = value
        .as_boolean_opt()
        .cloned()
        .ok_or_else(|| EngineError::Task("the row scope is not a predicate".into()))?;
    Ok(match arrow::array::Array::nulls(&mask) {
        Some(_) => arrow::compute::prep_null_mask_filter(&mask),
        None => mask,
    })
}

/// The first period column: an approved date or month column, else any.
fn period_column<'a>(columns: &'a [Column], approved: &[String]) -> Option<&'a Column> {
    let is_period = |c: &&Column| matches!(c.class.field_type, FieldType::Date | FieldType::Month);
    columns
        .iter()
        .filter(is_period)
        .find(|c| approved.contains(&c.name))
        .or_else(|| columns.iter().find(is_period))
}

/// "The region code starts with `prefix`" on a column of the stored type, the same rule as the
/// samples' (the value's text starts with the prefix). On integer codes no value is formatted —
/// casting every code to text was most of a governed job's overhead: the integers whose text
/// starts with the prefix are one range per digit count, and the six-digit range of region
/// codes comes first, so when every row is in it the other ranges are never evaluated.
fn prefix_test(c: Expr, data_type: Option<&DataType>, prefix: &str) -> Expr {
    let number = prefix
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0 && prefix.bytes().all(|b| b.is_ascii_digit()) && !prefix.starts_with('0'));
    match (data_type, number) {
        (Some(t), Some(n)) if t.is_integer() => {
            let c = if *t == DataType::Int64 {
                c
            } else {
                cast_expr(c, DataType::Int64)
            };
            let digits = prefix.len() as u32;
            let mut widths: Vec<u32> = (0..=(19u32.saturating_sub(digits))).collect();
            // Region codes have six digits: that range first.
            if let Some(six) = 6u32.checked_sub(digits) {
                widths.retain(|w| *w != six);
                widths.insert(0, six);
            }
            let ranges = widths.into_iter().filter_map(|w| {
                let scale = 10i64.checked_pow(w)?;
                let lower = n.checked_mul(scale)?;
                let upper = (n + 1).checked_mul(scale).map_or(i64::MAX, |u| u - 1);
                Some(
                    c.clone()
                        .gt_eq(cast_expr(lit(lower), DataType::Int64))
                        .and(c.clone().lt_eq(cast_expr(lit(upper), DataType::Int64))),
                )
            });
            ranges.reduce(Expr::or).unwrap_or(lit(false))
        }
        (Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View), _) => starts_with(c, lit(prefix.to_string())),
        _ => starts_with(cast_expr(c, DataType::Utf8), lit(prefix.to_string())),
    }
}

/// The key that turns entity keys and record identities into opaque numbers (one per
/// installation, derived from its wrapped secret; it never leaves the engine). The keyed
/// hash states with the domain byte already absorbed are kept, so each value costs only its
/// own bytes.
#[derive(Clone)]
pub(crate) struct EntityKey {
    keys: siphasher::sip::SipHasher24,
    rows: siphasher::sip::SipHasher24,
}

impl std::fmt::Debug for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntityKey(…)")
    }
}

impl EntityKey {
    /// The key from 16 secret bytes.
    pub(crate) fn new(bytes: [u8; 16]) -> EntityKey {
        let domain = |d: u8| {
            let mut h = siphasher::sip::SipHasher24::new_with_key(&bytes);
            h.write_u8(d);
            h
        };
        EntityKey {
            keys: domain(1),
            rows: domain(2),
        }
    }

    /// The opaque number of one key value (SipHash-2-4 under the key).
    pub(crate) fn of(&self, value: &str) -> i64 {
        let mut h = self.keys;
        h.write(value.trim().as_bytes());
        h.finish() as i64
    }

    /// The row identities of one version: the keyed hash with the version already absorbed,
    /// so each row costs one more word, not the version's id again.
    pub(crate) fn rows_of(&self, version: &str) -> RowDigest {
        let mut h = self.rows;
        h.write(version.as_bytes());
        RowDigest(h)
    }

    /// The opaque numbers of a column of keys (nulls stay null).
    fn column(&self, a: &ArrayRef) -> Result<ArrayRef, EngineError> {
        let text = cast(a, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let out: Int64Array = text.iter().map(|v| v.map(|v| self.of(v))).collect();
        Ok(Arc::new(out))
    }
}

/// Shaped batches by the row group they came from.
type Groups = Vec<(usize, Vec<RecordBatch>)>;

/// The row identities of one version ([`EntityKey::rows_of`]).
#[derive(Clone, Copy)]
pub(crate) struct RowDigest(siphasher::sip::SipHasher24);

impl RowDigest {
    /// The opaque identity of row `ordinal`.
    pub(crate) fn of(&self, ordinal: u64) -> i64 {
        let mut h = self.0;
        h.write_u64(ordinal);
        h.finish() as i64
    }
}

/// Rows and bytes read by a job's scans, against its limit.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    pub(crate) rows: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) max_rows: u64,
}

/// Where a view's rows come from.
#[derive(Clone)]
pub(crate) enum Rows {
    /// No rows: planning (check-only mode, and the developer's SQL before compiling).
    None,
    /// A dataset version in the vault.
    Vault {
        vault: shuyu_vault::Vault,
        path: String,
        wrapped: String,
    },
    /// Rows in memory (the offline gate, tests).
    Batches(Vec<RecordBatch>),
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rows::None => "None",
            Rows::Vault { .. } => "Vault",
            Rows::Batches(_) => "Batches",
        })
    }
}

/// What a view is of: its table's name in SQL, the dataset and the version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names<'a> {
    pub(crate) table: &'a str,
    pub(crate) dataset: &'a str,
    pub(crate) version: &'a str,
}

/// What a scenario may read of one dataset version.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The table's name in SQL.
    pub(crate) table: String,
    /// The dataset.
    pub(crate) dataset_id: String,
    /// The version.
    pub(crate) version_id: String,
    /// The approved fields, in the manifest's order.
    pub(crate) fields: Vec<ViewField>,
    /// The row scope.
    pub(crate) scope: Scope,
    /// The stored column holding the entity key, if the dataset has one.
    pub(crate) entity_column: Option<String>,
    /// The entity that column stands for.
    pub(crate) entity: Option<Entity>,
    /// The stored types of every column of the version.
    stored: Vec<(String, DataType, FieldType)>,
}

impl View {
    /// The view of a version with these classified columns under a scenario: its approved
    /// fields, its overrides, its row scope; `prefer` is the scenario's entity.
    pub(crate) fn new(
        names: Names<'_>,
        columns: &[Column],
        approved: &[String],
        overrides: &[FieldOverride],
        scope: Scope,
        prefer: Option<Entity>,
    ) -> Result<View, EngineError> {
        let mut fields = Vec::with_capacity(approved.len());
        for name in approved {
            let c = columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| EngineError::Missing(name.clone()))?;
            let t = c.class.field_type;
            let stored = shuyu_import::arrow_type(t);
            let generalized = match overrides.iter().find(|o| &o.field == name) {
                Some(o) => {
                    let rule = Rule::from_code(&o.technique).ok_or_else(|| EngineError::BadOverride {
                        field: name.clone(),
                        technique: o.technique.clone(),
                    })?;
                    matches!(rule, Rule::DateToMonth | Rule::DateToYear | Rule::Intervals(_)).then_some(rule)
                }
                None => None,
            };
            let (job, data_type, engine_type) = if entity_of(t).is_some() {
                (JobField::EntityKey, stored, DataType::Int64)
            } else if identifying(t) {
                (JobField::Withheld, stored.clone(), stored)
            } else if let Some(rule) = generalized {
                (JobField::Generalized(rule), DataType::Utf8, DataType::Utf8)
            } else {
                (JobField::AsStored, stored.clone(), stored)
            };
            fields.push(ViewField {
                name: name.clone(),
                field_type: t,
                job,
                data_type,
                engine_type,
            });
        }
        let of_entity = |e: Entity| columns.iter().find(|c| entity_of(c.class.field_type) == Some(e));
        let key = prefer
            .and_then(of_entity)
            .or_else(|| of_entity(Entity::Person))
            .or_else(|| of_entity(Entity::Enterprise));
        Ok(View {
            table: names.table.to_string(),
            dataset_id: names.dataset.to_string(),
            version_id: names.version.to_string(),
            fields,
            scope,
            entity_column: key.map(|c| c.name.clone()),
            entity: key.and_then(|c| entity_of(c.class.field_type)),
            stored: columns
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        shuyu_import::arrow_type(c.class.field_type),
                        c.class.field_type,
                    )
                })
                .collect(),
        })
    }

    /// A view of in-memory rows with every column shown as it is, no scope, and each record its
    /// own entity (the offline gate: an output checker's own files).
    pub(crate) fn of_batch(table: &str, schema: &Schema, types: &std::collections::HashMap<String, FieldType>) -> View {
        let fields = schema
            .fields()
            .iter()
            .map(|f| ViewField {
                name: f.name().clone(),
                field_type: types.get(f.name()).copied().unwrap_or(FieldType::Text),
                job: JobField::AsStored,
                data_type: f.data_type().clone(),
                engine_type: f.data_type().clone(),
            })
            .collect();
        View {
            table: table.to_string(),
            dataset_id: table.to_string(),
            version_id: table.to_string(),
            fields,
            scope: Scope::default(),
            entity_column: None,
            entity: None,
            stored: schema
                .fields()
                .iter()
                .map(|f| {
                    (
                        f.name().clone(),
                        f.data_type().clone(),
                        types.get(f.name()).copied().unwrap_or(FieldType::Text),
                    )
                })
                .collect(),
        }
    }

    /// The field of that name.
    pub(crate) fn field(&self, name: &str) -> Option<&ViewField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The schema a developer's SQL is planned against: the approved fields.
    pub(crate) fn sql_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.fields
                .iter()
                .map(|f| Field::new(&f.name, f.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema of the engine's own plans: the approved fields, then the hidden entity and
    /// row columns.
    fn engine_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .fields
            .iter()
            .map(|f| Field::new(&f.name, f.engine_type.clone(), true))
            .collect();
        fields.push(Field::new(ENTITY, DataType::Int64, true));
        fields.push(Field::new(ROW, DataType::Int64, false));
        Arc::new(Schema::new(fields))
    }

    fn stored_type(&self, name: &str) -> Option<&DataType> {
        self.stored.iter().find(|(n, _, _)| n == name).map(|(_, t, _)| t)
    }
}

/// The table provider of a [`View`]: what a job's session (or the check-only planner) holds.
#[derive(Clone)]
pub(crate) struct ScenarioTable {
    view: Arc<View>,
    schema: SchemaRef,
    rows: Rows,
    key: EntityKey,
    masking: ScenarioKeys,
    meter: Arc<Meter>,
}

impl std::fmt::Debug for ScenarioTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioTable")
            .field("table", &self.view.table)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ScenarioTable {
    /// The provider the developer's SQL is planned against (approved fields, no rows).
    pub(crate) fn for_planning(view: Arc<View>) -> ScenarioTable {
        let schema = view.sql_schema();
        ScenarioTable {
            view,
            schema,
            rows: Rows::None,
            key: EntityKey::new([0; 16]),
            masking: ScenarioKeys {
                pseudonym: [0; 32],
                token: [0; 32],
                random: [0; 32],
            },
            meter: Arc::default(),
        }
    }

    /// The provider the engine's own plan runs on (approved fields and the hidden columns).
    pub(crate) fn for_engine(
        view: Arc<View>,
        rows: Rows,
        key: EntityKey,
        masking: ScenarioKeys,
        meter: Arc<Meter>,
    ) -> ScenarioTable {
        let schema = view.engine_schema();
        ScenarioTable {
            view,
            schema,
            rows,
            key,
            masking,
            meter,
        }
    }

    /// The stored columns to read for these view columns (and the scope's).
    fn stored_columns(&self, wanted: &[usize]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        for &i in wanted {
            let name = self.schema.field(i).name();
            match name.as_str() {
                ENTITY => {
                    if let Some(e) = &self.view.entity_column {
                        add(e)
                    }
                }
                ROW => {}
                n => add(n),
            }
        }
        for c in self.view.scope.columns() {
            add(&c);
        }
        out
    }

    /// Counts a decoded batch against the job's scan limit.
    fn count(&self, b: &RecordBatch) -> DfResult<()> {
        let n = b.num_rows() as u64;
        self.meter
            .bytes
            .fetch_add(b.get_array_memory_size() as u64, Ordering::Relaxed);
        let total = self.meter.rows.fetch_add(n, Ordering::Relaxed) + n;
        if self.meter.max_rows > 0 && total > self.meter.max_rows {
            return Err(DataFusionError::External(Box::new(EngineError::TooManyRows(
                self.meter.max_rows,
            ))));
        }
        Ok(())
    }

    /// Shapes rows held in memory (the offline gate, tests), numbering each row by its
    /// position.
    fn shape_batches(
        &self,
        b: &[RecordBatch],
        columns: &[String],
        wanted: &[usize],
        out: &SchemaRef,
        filters: &[Expr],
    ) -> DfResult<Vec<RecordBatch>> {
        let projected = b
            .iter()
            .map(|batch| {
                let idx: Vec<usize> = columns
                    .iter()
                    .map(|c| batch.schema().index_of(c))
                    .collect::<Result<_, _>>()?;
                Ok(batch.project(&idx)?)
            })
            .collect::<DfResult<Vec<_>>>()?;
        self.shape_run(projected, 0, wanted, out, filters)
    }

    /// Counts, shapes and filters consecutive stored batches whose first row is row `first`
    /// of the version; keeps the batches that still have rows.
    fn shape_run(
        &self,
        batches: Vec<RecordBatch>,
        mut first: u64,
        wanted: &[usize],
        out: &SchemaRef,
        filters: &[Expr],
    ) -> DfResult<Vec<RecordBatch>> {
        let mut shaped = Vec::with_capacity(batches.len());
        for b in batches {
            self.count(&b)?;
            let s = prefilter(&self.shape(&b, first, wanted, out)?, filters)?;
            first += b.num_rows() as u64;
            if s.num_rows() > 0 {
                shaped.push(s);
            }
        }
        Ok(shaped)
    }

    /// Decodes a vault object's row groups and shapes them, the groups spread over the
    /// machine's cores (each row numbered by its position in the version, whichever thread
    /// decodes it); the result is in the object's order.
    fn shape_groups(
        &self,
        opened: &shuyu_vault::Opened,
        wanted: &[usize],
        out: &SchemaRef,
        filters: &[Expr],
    ) -> DfResult<Vec<RecordBatch>> {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let groups = opened.row_groups();
        let mut firsts = Vec::with_capacity(groups);
        let mut at = 0u64;
        for g in 0..groups {
            firsts.push(at);
            at += opened.rows_in(g);
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, groups.max(1));
        let work = || -> DfResult<Groups> {
            let mut mine = Vec::new();
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups || stop.load(Ordering::Relaxed) {
                    return Ok(mine);
                }
                let run = opened
                    .decode(g)
                    .map_err(vault_error)
                    .and_then(|b| self.shape_run(b, firsts[g], wanted, out, filters));
                match run {
                    Ok(shaped) => mine.push((g, shaped)),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        };
        let results: Vec<DfResult<Groups>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(DataFusionError::Internal("a decoding thread panicked".into())))
                })
                .collect()
        });
        let mut all = Vec::with_capacity(groups);
        for r in results {
            all.extend(r?);
        }
        all.sort_by_key(|(g, _)| *g);
        Ok(all.into_iter().flat_map(|(_, b)| b).collect())
    }

    /// One stored batch as the view's projected columns: scoped, keyed, withheld, generalized.
    fn shape(&self, batch: &RecordBatch, first: u64, wanted: &[usize], out: &SchemaRef) -> DfResult<RecordBatch> {
        let n = batch.num_rows();
        let keep = match self.view.scope.expr(batch.schema().as_ref()) {
            Some(p) => Some(evaluate(&p, batch).map_err(|e| DataFusionError::External(Box::new(e)))?),
            None => None,
        };
        let scoped = match &keep {
            Some(k) => filter_record_batch(batch, k)?,
            None => batch.clone(),
        };
        let digest = self.key.rows_of(&self.view.version_id);
        let rows_of = || -> Int64Array {
            match &keep {
                Some(k) => k
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k == &Some(true))
                    .map(|(i, _)| Some(digest.of(first + i as u64)))
                    .collect(),
                None => (0..n as u64).map(|i| Some(digest.of(first + i))).collect(),
            }
        };
        let ext = |e: EngineError| DataFusionError::External(Box::new(e));
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(wanted.len());
        for &i in wanted {
            let field = self.schema.field(i);
            let array: ArrayRef = match field.name().as_str() {
                ENTITY => match &self.view.entity_column {
                    // A record without a key (a household's meter, a dirty row) is an entity
                    // of its own.
                    Some(c) => {
                        let keys = self
                            .key
                            .column(scoped.column_by_name(c).ok_or_else(|| missing(c))?)
                            .map_err(ext)?;
                        if keys.null_count() == 0 {
                            keys
                        } else {
                            let rows = rows_of();
                            let keys = keys.as_primitive::<arrow::datatypes::Int64Type>();
                            Arc::new(
                                keys.iter()
                                    .zip(rows.iter())
                                    .map(|(k, r)| k.or(r))
                                    .collect::<Int64Array>(),
                            )
                        }
                    }
                    // No key: each record is its own entity.
                    None => Arc::new(rows_of()),
                },
                ROW => Arc::new(rows_of()),
                name => {
                    let stored = scoped.column_by_name(name).ok_or_else(|| missing(name))?;
                    let f = self.view.field(name).ok_or_else(|| missing(name))?;
                    match &f.job {
                        JobField::AsStored => stored.clone(),
                        JobField::EntityKey => self.key.column(stored).map_err(ext)?,
                        JobField::Withheld => new_null_array(&f.engine_type, scoped.num_rows()),
                        JobField::Generalized(rule) => {
                            let t = technique(*rule, f.field_type.code(), name, &self.masking)
                                .map_err(|e| ext(EngineError::Mask(e)))?;
                            let g = t.apply(stored).map_err(|e| ext(EngineError::Mask(e)))?;
                            cast(&g, &f.engine_type)?
                        }
                    }
                }
            };
            arrays.push(array);
        }
        Ok(RecordBatch::try_new_with_options(
            out.clone(),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(scoped.num_rows())),
        )?)
    }
}

fn vault_error(e: shuyu_vault::VaultError) -> DataFusionError {
    DataFusionError::External(Box::new(EngineError::Vault(e)))
}

fn missing(c: &str) -> DataFusionError {
    DataFusionError::External(Box::new(EngineError::Missing(c.to_string())))
}

#[async_trait]
impl TableProvider for ScenarioTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // The query's filters are evaluated in the scan too (and again above it).
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let out = Arc::new(self.schema.project(&wanted)?);
        let columns = self.stored_columns(&wanted);
        let mut batches = match &self.rows {
            Rows::None => Vec::new(),
            Rows::Batches(b) => self.shape_batches(b, &columns, &wanted, &out, filters)?,
            Rows::Vault { vault, path, wrapped } => {
                let opened = vault
                    .open(&self.view.version_id, path, wrapped, Some(&columns))
                    .await
                    .map_err(vault_error)?;
                let (me, out, filters) = (self.clone(), out.clone(), filters.to_vec());
                tokio::task::spawn_blocking(move || me.shape_groups(&opened, &wanted, &out, &filters))
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))??
            }
        };
        // Two partitions, so aggregations use both cores.
        let half = batches.len().div_ceil(2);
        let partitions: Vec<Vec<RecordBatch>> = if batches.len() > 1 {
            let second = batches.split_off(half);
            vec![batches, second]
        } else {
            vec![batches]
        };
        Ok(MemorySourceConfig::try_new_exec(&partitions, out, None)?)
    }
}

/// The query's own filters on the scan's rows, where they can be evaluated there (the filter
/// above the scan stays, so one that cannot is simply left to it).
fn prefilter(batch: &RecordBatch, filters: &[Expr]) -> DfResult<RecordBatch> {
    let mut current = batch.clone();
    for f in filters {
        let Ok(mask) = evaluate(f, &current) else { continue };
        current = filter_record_batch(&current, &mask)?;
    }
    Ok(current)
}

impl View {
    /// Checks the stored version has what the view reads (a manifest naming a column the
    /// version lost is an error naming it).
    pub(crate) fn check_stored(&self) -> Result<(), EngineError> {
        for f in &self.fields {
            if self.stored_type(&f.name).is_none() {
                return Err(EngineError::Missing(f.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray};

    use super::*;

    /// The regions kept under a region scope, over a region column of `array`'s type.
    fn seen(array: ArrayRef, prefix: &str) -> Vec<String> {
        let schema = Arc::new(Schema::new(vec![Field::new("region", array.data_type().clone(), true)]));
        let batch = RecordBatch::try_new(schema, vec![array]).expect("batch");
        let scope = Scope {
            tests: vec![("region".to_string(), ScopeTest::Prefix(prefix.to_string()))],
        };
        let kept = scope.apply(&batch).expect("scope");
        let mut regions: Vec<String> = (0..kept.num_rows())
            .map(|r| shuyu_gate::output::cell_text(kept.column(0), r).unwrap_or_default())
            .collect();
        regions.sort();
        regions
    }

    #[test]
    fn the_region_scope_keeps_the_same_rows_whatever_the_stored_type() {
        let codes = [379901i64, 379999, 380001, 379900, 37990, 3799011, 279901];
        let ints: ArrayRef = Arc::new(Int64Array::from(codes.to_vec()));
        let texts: ArrayRef = Arc::new(StringArray::from(
            codes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ));
        let narrow: ArrayRef = Arc::new(Int32Array::from(codes.iter().map(|c| *c as i32).collect::<Vec<_>>()));
        for array in [ints, narrow, texts] {
            let kind = array.data_type().clone();
            // A city covers its counties; a county only itself (and, as text, 3799011).
            let city = seen(array.clone(), "3799");
            let county = seen(array.clone(), "379901");
            assert_eq!(city, ["37990", "379900", "379901", "3799011", "379999"], "{kind}");
            assert_eq!(county, ["379901", "3799011"], "{kind}");
        }
    }

    #[test]
    fn entity_numbers_are_equal_for_equal_keys_and_differ_across_keys() {
        let a = EntityKey::new([7; 16]);
        let b = EntityKey::new([8; 16]);
        assert_eq!(a.of("379901199001011234"), a.of(" 379901199001011234 "));
        assert_ne!(a.of("379901199001011234"), a.of("379901199001011235"));
        assert_ne!(a.of("379901199001011234"), b.of("379901199001011234"));
        assert_ne!(a.rows_of("v1").of(3), a.rows_of("v2").of(3));
        assert_ne!(a.rows_of("v1").of(3), a.rows_of("v1").of(4));
    }

    /// Members stored by earlier jobs are compared with new ones entity by entity: the numbers
    /// must stay exactly SipHash-2-4 of (domain, bytes) under the key, however they are computed.
    #[test]
    fn entity_and_row_numbers_are_the_stored_definition() {
        use std::hash::Hasher as _;
        let key = [3u8; 16];
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write_u8(1);
        h.write(b"379901199001011234");
        assert_eq!(EntityKey::new(key).of("379901199001011234"), h.finish() as i64);
        let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
        h.write_u8(2);
        h.write(b"v1");
        h.write_u64(42);
        assert_eq!(EntityKey::new(key).rows_of("v1").of(42), h.finish() as i64);
    }
}
