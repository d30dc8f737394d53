//! The eight datasets: how each row is made, which defects each may carry,
//! and the driver that streams rows through the dirty plan into a sink.

use std::path::Path;
use std::sync::Arc;

use shuyu_core::ident::Sex;

use crate::calendar::{as_of_day, days_from_civil, month_back};
use crate::cell::Cell;
use crate::city::{City, plan};
use crate::dirty::{Dirt, DirtOptions, apply};
use crate::error::GenError;
use crate::firms::enterprise;
use crate::people::{core, person};
use crate::rng::{Draw, tag};
use crate::sink::{CsvSink, GbkCsvSink, JsonlSink, ParquetSink, RowSink, XlsxSink, medical_visit_schema};
use crate::spec::{self, DatasetSpec, DirtyKind};
use crate::{DatasetInfo, DirtyRow};

use DirtyKind::{BadCheckDigit as Bcd, BadDate, MissingField as Missing, NotANumber as Nan};

/// The defects each dataset may carry. Parquet has typed dates and numbers, so
/// `medical_visit` only gets missing values and bad check digits; `tax_payment`
/// has no date column, so no `bad_date`.
pub(crate) fn dirt_options(dataset: &str) -> DirtOptions {
    match dataset {
        "population" => &[
            ("person_id", Bcd),
            ("name", Missing),
            ("gender", Missing),
            ("birth_date", Missing),
            ("ethnicity", Missing),
            ("region", Missing),
            ("address", Missing),
            ("phone", Missing),
            ("birth_date", BadDate),
        ],
        "enterprise" => &[
            ("uscc", Bcd),
            ("legal_rep_id", Bcd),
            ("name", Missing),
            ("legal_rep_id", Missing),
            ("industry", Missing),
            ("registered_capital", Missing),
            ("established", Missing),
            ("region", Missing),
            ("status", Missing),
            ("established", BadDate),
            ("registered_capital", Nan),
        ],
        "social_insurance" => &[
            ("person_id", Bcd),
            ("employer_uscc", Bcd),
            ("person_id", Missing),
            ("employer_uscc", Missing),
            ("month", Missing),
            ("base_wage", Missing),
            ("pension", Missing),
            ("month", BadDate),
            ("base_wage", Nan),
            ("pension", Nan),
            ("medical", Nan),
            ("unemployment", Nan),
        ],
        "medical_visit" => &[
            ("person_id", Bcd),
            ("person_id", Missing),
            ("hospital_code", Missing),
            ("visit_date", Missing),
            ("icd10", Missing),
            ("cost_total", Missing),
            ("insurance_paid", Missing),
        ],
        "tax_payment" => &[
            ("uscc", Bcd),
            ("uscc", Missing),
            ("year", Missing),
            ("quarter", Missing),
            ("revenue_band", Missing),
            ("tax_paid", Missing),
            ("year", Nan),
            ("quarter", Nan),
            ("tax_paid", Nan),
        ],
        "electricity" => &[
            ("uscc", Bcd),
            ("account_id", Missing),
            ("month", Missing),
            ("kwh", Missing),
            ("arrears", Missing),
            ("month", BadDate),
            ("kwh", Nan),
            ("arrears", Nan),
        ],
        "property" => &[
            ("owner_id", Bcd),
            ("owner_id", Missing),
            ("region", Missing),
            ("area_m2", Missing),
            ("assessed_value", Missing),
            ("registered", Missing),
            ("registered", BadDate),
            ("area_m2", Nan),
            ("assessed_value", Nan),
        ],
        "bus_ridership" => &[
            ("line_id", Missing),
            ("date", Missing),
            ("hour", Missing),
            ("boardings", Missing),
            ("date", BadDate),
            ("hour", Nan),
            ("boardings", Nan),
        ],
        _ => &[],
    }
}

/// Progress is reported every this many rows.
const PROGRESS_EVERY: u64 = 16_384;

/// Streams `rows` rows of `spec` into `sink`, applying the dataset's dirty plan.
fn emit(
    city: &City,
    spec: &DatasetSpec,
    mut sink: Box<dyn RowSink>,
    progress: &mut dyn FnMut(&str, u64, u64),
    mut make: impl FnMut(u64, Option<&Dirt>) -> Result<Vec<Cell>, GenError>,
) -> Result<DatasetInfo, GenError> {
    let rows = spec.rows_at(city.scale);
    let dirt_plan = plan(city.seed, spec, rows);
    let mut planned = dirt_plan.iter().peekable();
    let mut dirty = Vec::with_capacity(dirt_plan.count() as usize);
    progress(spec.name, 0, rows);
    for r in 0..rows {
        let dirt = planned.next_if(|d| d.row == r);
        let mut cells = make(r, dirt.as_ref())?;
        if let Some(d) = &dirt {
            apply(&mut cells, d)?;
            dirty.push(DirtyRow {
                row: r + 1,
                field: d.field.to_string(),
                kind: d.kind.code().to_string(),
            });
        }
        sink.write(r + 1, &cells)?;
        if (r + 1).is_multiple_of(PROGRESS_EVERY) {
            progress(spec.name, r + 1, rows);
        }
    }
    sink.finish()?;
    if !rows.is_multiple_of(PROGRESS_EVERY) {
        progress(spec.name, rows, rows);
    }
    Ok(DatasetInfo {
        name: spec.name.to_string(),
        file: spec.file.to_string(),
        format: spec.format.to_string(),
        encoding: spec.encoding.to_string(),
        rows,
        columns: spec.columns.iter().map(|c| c.to_string()).collect(),
        dirty,
    })
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// Rounds a non-negative amount in yuan to cents.
fn cents(yuan: f64) -> i64 {
    (yuan.max(0.0) * 100.0).round() as i64
}

/// `cents × rate_per_mille / 1000`, rounded half up, in whole cents.
fn share(cents: i64, per_mille: i64) -> i64 {
    (cents * per_mille + 500) / 1000
}

/// Writes every dataset into `out`, in the order of [`spec::DATASETS`].
pub(crate) fn write_all(
    city: &City,
    out: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Vec<DatasetInfo>, GenError> {
    Ok(vec![
        population(city, out, progress)?,
        enterprises(city, out, progress)?,
        social_insurance(city, out, progress)?,
        medical_visits(city, out, progress)?,
        tax_payments(city, out, progress)?,
        electricity(city, out, progress)?,
        property(city, out, progress)?,
        bus_ridership(city, out, progress)?,
    ])
}

/// Writes the one dataset named `name` into `out`, or `None` for a name not in [`spec::DATASETS`].
pub(crate) fn write_one(
    city: &City,
    out: &Path,
    name: &str,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Option<DatasetInfo>, GenError> {
    type Writer = fn(&City, &Path, &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError>;
    let writers: [(&str, Writer); 8] = [
        (spec::POPULATION.name, population),
        (spec::ENTERPRISE.name, enterprises),
        (spec::SOCIAL_INSURANCE.name, social_insurance),
        (spec::MEDICAL_VISIT.name, medical_visits),
        (spec::TAX_PAYMENT.name, tax_payments),
        (spec::ELECTRICITY.name, electricity),
        (spec::PROPERTY.name, property),
        (spec::BUS_RIDERSHIP.name, bus_ridership),
    ];
    writers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, w)| w(city, out, progress))
        .transpose()
}

fn population(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::POPULATION;
    let sink = Box::new(CsvSink::create(&out.join(spec.file), spec)?);
    emit(city, spec, sink, progress, |i, _| {
        let p = person(city.seed, i)?;
        let birth = core(city.seed, i).birth_day;
        Ok(vec![
            text(p.id.as_str()),
            text(p.name),
            text(if p.sex == Sex::Male { "男" } else { "女" }),
            Cell::Date(birth),
            text(p.ethnicity),
            text(p.region),
            text(p.address),
            text(p.phone),
        ])
    })
}

fn enterprises(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::ENTERPRISE;
    let sink = Box::new(GbkCsvSink::create(&out.join(spec.file), spec)?);
    emit(city, spec, sink, progress, |j, _| {
        let e = enterprise(city.seed, j)?;
        let mut r = Draw::new(city.seed, tag::LEGAL_REP, j);
        let rep = city.pick_person(&mut r, 22, 80, |_| 1.0)?;
        Ok(vec![
            text(e.uscc.as_str()),
            text(e.name),
            text(core(city.seed, rep).id()?.as_str()),
            text(e.industry),
            Cell::Int(e.registered_capital as i64),
            Cell::Date(e.established_day),
            text(e.region),
            text(e.status),
        ])
    })
}

/// One contribution row of a career: months back from [`AS_OF`](crate::AS_OF), job number.
type Paid = (u32, usize);

/// The contributions of one person in one pass: the jobs (employer code, monthly base
/// in cents) and the months paid, oldest first.
struct Career {
    person_id: String,
    jobs: Vec<(String, i64)>,
    paid: Vec<Paid>,
    next: usize,
}

/// Tries to find an employer not already used by the person.
const EMPLOYER_TRIES: usize = 8;

/// The career of worker `w`: person `permute(w mod people)` in pass `w / people`.
///
/// Pass 0 is the person's main career over the 24 months: usually employed
/// throughout, sometimes changing job once or twice, sometimes starting late or
/// stopping early, now and then an unpaid month. A later pass (only needed when
/// the rows outnumber what the main careers give) is a second job at an
/// employer the person has not worked for, so a person never pays twice for
/// the same month to the same employer. People outside 18–64 or on a dirty
/// register row have no career (`None`).
fn career(city: &City, order: u64, w: u64) -> Result<Option<Career>, GenError> {
    let k = crate::rng::permute(order, w % city.people, city.people);
    if city.people_dirt.is_dirty(k) || !(18..=64).contains(&core(city.seed, k).age()) {
        return Ok(None);
    }
    let pass = w / city.people;
    let mut used: Vec<String> = Vec::new();
    for p in 0..pass {
        if let Some(c) = career(city, order, p * city.people + w % city.people)? {
            used.extend(c.jobs.into_iter().map(|(u, _)| u));
        }
    }
    let mut r = Draw::new(city.seed, tag::WORKER, w);
    let (first, last) = if pass == 0 && r.chance(0.75) {
        (23u32, 0u32)
    } else {
        let first = r.below(24) as u32;
        (first, first - r.below(u64::from(first) + 1) as u32)
    };
    let months = first - last + 1;
    let jobs_wanted = if pass > 0 {
        1
    } else {
        r.weighted(&[(1u32, 0.7), (2, 0.25), (3, 0.05)]).min(months)
    };
    let mut wage = if r.chance(0.02) {
        r.pareto(25_000.0, 1.4).min(2_000_000.0)
    } else {
        r.lognormal(6_000.0, 0.5).max(3_000.0)
    };
    // Job j starts at month `cuts[j]` (months back, descending).
    let mut cuts = vec![first];
    for j in 1..jobs_wanted {
        let earliest = cuts[j as usize - 1];
        if earliest <= last {
            break;
        }
        cuts.push(earliest - 1 - r.below(u64::from(earliest - last)) as u32);
    }
    let mut jobs = Vec::new();
    let mut paid = Vec::new();
    for (j, &start) in cuts.iter().enumerate() {
        let stop = if j + 1 < cuts.len() { cuts[j + 1] + 1 } else { last };
        let mut employer = None;
        for _ in 0..EMPLOYER_TRIES {
            let e = city.pick_enterprise(&mut r, 3.0, true)?;
            let code = e.uscc.to_string();
            let previous = jobs.last().map(|(u, _): &(String, i64)| u.as_str());
            if !used.contains(&code) && previous != Some(code.as_str()) {
                employer = Some(code);
                break;
            }
        }
        let Some(code) = employer else {
            if pass > 0 {
                break;
            }
            continue;
        };
        let job = jobs.len();
        jobs.push((code, cents(wage)));
        wage *= r.lognormal(1.05, 0.1);
        let unpaid =
            (start - stop >= 3 && r.chance(0.1)).then(|| stop + 1 + r.below(u64::from(start - stop - 1)) as u32);
        paid.extend((stop..=start).rev().filter(|m| Some(*m) != unpaid).map(|m| (m, job)));
    }
    if paid.is_empty() {
        return Ok(None);
    }
    Ok(Some(Career {
        person_id: core(city.seed, k).id()?.to_string(),
        jobs,
        paid,
        next: 0,
    }))
}

fn social_insurance(
    city: &City,
    out: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<DatasetInfo, GenError> {
    let spec = &spec::SOCIAL_INSURANCE;
    let sink = Box::new(CsvSink::create(&out.join(spec.file), spec)?);
    let order = crate::rng::hash(&[city.seed, tag::WORKER]);
    let mut worker = 0u64;
    let mut misses = 0u64;
    let mut current: Option<Career> = None;
    emit(city, spec, sink, progress, |_, _| {
        let c = loop {
            match &mut current {
                Some(c) if c.next < c.paid.len() => break c,
                _ => {
                    current = if misses > 2 * city.people {
                        // A city too small to have enough working-age people for its
                        // rows: anyone clean pays, at any employer (duplicates possible).
                        let mut r = Draw::new(city.seed, tag::WORKER, worker);
                        let k = city.pick_person(&mut r, 0, 200, |_| 1.0)?;
                        let e = city.pick_enterprise(&mut r, 1.0, false)?;
                        let first = r.below(24) as u32;
                        Some(Career {
                            person_id: core(city.seed, k).id()?.to_string(),
                            jobs: vec![(e.uscc.to_string(), cents(r.lognormal(6_000.0, 0.5).max(3_000.0)))],
                            paid: (0..=first).rev().map(|m| (m, 0)).collect(),
                            next: 0,
                        })
                    } else {
                        career(city, order, worker)?
                    };
                    misses = if current.is_some() { 0 } else { misses + 1 };
                    worker += 1;
                }
            }
        };
        let (back, job) = c.paid[c.next];
        c.next += 1;
        let (uscc, wage_cents) = &c.jobs[job];
        let (y, m) = month_back(back);
        // Bases are reset each January; the later year is about 4 % higher.
        let base = if y == crate::calendar::AS_OF.0 {
            share(*wage_cents, 1040)
        } else {
            *wage_cents
        };
        Ok(vec![
            text(c.person_id.clone()),
            text(uscc.clone()),
            Cell::Month(y, m),
            Cell::Dec(base, 2),
            Cell::Dec(share(base, 80), 2),
            Cell::Dec(share(base, 20), 2),
            Cell::Dec(share(base, 5), 2),
        ])
    })
}

/// ICD-10 codes with relative visit frequencies: a few common complaints and a
/// long tail of rare diseases seen a handful of times per million visits.
const ICD10: &[(&str, f64)] = &[
    ("J06.9", 12.0),
    ("I10", 10.0),
    ("E11.9", 7.0),
    ("Z00.0", 5.0),
    ("K29.7", 5.0),
    ("M54.5", 4.0),
    ("J20.9", 4.0),
    ("I25.1", 3.0),
    ("E78.5", 3.0),
    ("J18.9", 2.0),
    ("K21.9", 2.0),
    ("N39.0", 2.0),
    ("R51", 2.0),
    ("L30.9", 2.0),
    ("H10.9", 1.5),
    ("M17.9", 1.5),
    ("I63.9", 1.5),
    ("J45.9", 1.0),
    ("K80.2", 0.8),
    ("O80", 0.6),
    ("F32.9", 0.5),
    ("N18.9", 0.4),
    ("C34.9", 0.3),
    ("C16.9", 0.2),
    ("C50.9", 0.2),
    ("G40.9", 0.2),
    ("C22.0", 0.15),
    ("A15.0", 0.05),
    ("Q90.9", 0.003),
    ("C91.0", 0.005),
    ("G12.2", 0.001),
    ("G71.0", 0.001),
    ("D66", 0.0008),
    ("E75.2", 0.0005),
    ("E84.9", 0.0003),
    ("B50.9", 0.0003),
    ("A82.9", 0.0001),
];

fn medical_visits(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::MEDICAL_VISIT;
    let sink = Box::new(ParquetSink::create(
        &out.join(spec.file),
        Arc::new(medical_visit_schema()),
    )?);
    let hospitals: Vec<(u32, f64)> = (1..=40).map(|h| (h, 1.0 / f64::from(h))).collect();
    emit(city, spec, sink, progress, |v, _| {
        let mut r = Draw::new(city.seed, tag::VISIT, v);
        // The old and the very young see doctors most.
        let k = city.pick_person(&mut r, 0, 120, |age| {
            if age < 6 {
                0.6
            } else {
                0.2 + 0.8 * f64::from(age.min(90)) / 90.0
            }
        })?;
        let hospital = r.weighted(&hospitals);
        let icd = r.weighted(ICD10);
        let mut cost = if r.chance(0.08) {
            r.lognormal(9_000.0, 0.8)
        } else {
            r.lognormal(180.0, 0.9)
        };
        if icd.starts_with('C') {
            cost *= 5.0;
        }
        let cost_cents = cents(cost.max(5.0));
        let paid_cents = if r.chance(0.1) {
            0
        } else {
            (cost_cents as f64 * (0.5 + 0.4 * r.unit())).floor() as i64
        };
        Ok(vec![
            text(format!("V{:012}", v + 1)),
            text(core(city.seed, k).id()?.as_str()),
            text(format!("H3799{hospital:02}")),
            Cell::Date(as_of_day() - r.below(730) as i64),
            text(icd),
            Cell::Dec(cost_cents, 2),
            Cell::Dec(paid_cents.min(cost_cents), 2),
        ])
    })
}

fn tax_payments(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::TAX_PAYMENT;
    let sink = Box::new(XlsxSink::create(&out.join(spec.file), spec)?);
    let first_year = crate::calendar::AS_OF.0 - 2;
    let mut current: Option<crate::firms::Enterprise> = None;
    emit(city, spec, sink, progress, |row, _| {
        // Row r is enterprise r / 12, year (r % 12) / 4, quarter r % 4: every
        // enterprise files 12 quarterly returns over the last three years.
        let j = (row / 12).min(city.firms - 1);
        let e = match current.take() {
            Some(e) if e.index == j => e,
            _ => enterprise(city.seed, j)?,
        };
        let e = current.insert(e);
        let year = first_year + ((row % 12) / 4) as i32;
        let quarter = (row % 4) as u32 + 1;
        let mut firm = Draw::new(city.seed, tag::TAX_FIRM, j);
        let size = (e.registered_capital as f64 / 1.0e6).powf(0.6);
        let annual = firm.lognormal(2.0e6 * size, 1.0);
        let mut q = Draw::new(city.seed, tag::TAX_ROW, row);
        let quarter_end = days_from_civil(year, quarter * 3, if quarter == 1 || quarter == 4 { 31 } else { 30 });
        let trading = e.established_day <= quarter_end && (e.is_active() || year < crate::calendar::AS_OF.0);
        let revenue = if trading {
            annual / 4.0 * q.lognormal(1.0, 0.25) * 1.06f64.powi(year - first_year)
        } else {
            0.0
        };
        let (band, rate) = match revenue * 4.0 {
            x if x < 1.0e6 => ("<1M", 0.01),
            x if x < 1.0e7 => ("1M-10M", 0.03),
            x if x < 1.0e8 => ("10M-100M", 0.05),
            _ => (">100M", 0.06),
        };
        let tax = revenue * rate * q.lognormal(1.0, 0.3);
        Ok(vec![
            text(e.uscc.as_str()),
            Cell::Int(i64::from(year)),
            Cell::Int(i64::from(quarter)),
            text(band),
            Cell::Dec(cents(tax), 2),
        ])
    })
}

fn electricity(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::ELECTRICITY;
    let sink = Box::new(JsonlSink::create(&out.join(spec.file), spec)?);
    emit(city, spec, sink, progress, |row, dirt| {
        let mut r = Draw::new(city.seed, tag::ELECTRICITY, row);
        // A bad check digit needs a code to corrupt, so such a row is always an enterprise's.
        let forced = dirt.is_some_and(|d| d.kind == Bcd);
        let is_firm = r.chance(0.3) || forced;
        let (uscc, kwh, arrears) = if is_firm {
            let e = city.pick_enterprise(&mut r, 2.0, true)?;
            let kwh = r.lognormal(4_000.0, 1.8).min(5.0e7);
            let arrears = if r.chance(0.9) { 0.0 } else { r.lognormal(5_000.0, 1.5) };
            (text(e.uscc.as_str()), kwh, arrears)
        } else {
            let kwh = r.lognormal(180.0, 0.6);
            let arrears = if r.chance(0.93) { 0.0 } else { r.lognormal(120.0, 1.0) };
            (Cell::Null, kwh, arrears)
        };
        let (y, m) = month_back(r.below(12) as u32);
        Ok(vec![
            text(format!("DL{:010}", row + 1)),
            uscc,
            Cell::Month(y, m),
            Cell::Dec((kwh * 10.0).round() as i64, 1),
            Cell::Dec(cents(arrears), 2),
        ])
    })
}

fn property(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::PROPERTY;
    let sink = Box::new(CsvSink::create(&out.join(spec.file), spec)?);
    let first = days_from_civil(1998, 1, 1);
    emit(city, spec, sink, progress, |row, _| {
        let mut r = Draw::new(city.seed, tag::PROPERTY, row);
        let county = r.weighted(&[(0usize, 0.45), (1, 0.35), (2, 0.20)]);
        let (owner, area) = if r.chance(0.15) {
            let e = city.pick_enterprise(&mut r, 2.0, false)?;
            (e.uscc.to_string(), r.lognormal(600.0, 1.3).clamp(20.0, 200_000.0) * 0.7)
        } else {
            let k = city.pick_person(&mut r, 18, 120, |_| 1.0)?;
            (
                core(city.seed, k).id()?.to_string(),
                r.lognormal(95.0, 0.35).clamp(15.0, 800.0),
            )
        };
        let price = [15_000.0, 11_000.0, 5_200.0][county] * r.lognormal(1.0, 0.25);
        let area_cents = cents(area);
        Ok(vec![
            text(format!("BDC{:010}", row + 1)),
            text(owner),
            text(spec::COUNTIES[county].0),
            Cell::Dec(area_cents, 2),
            Cell::Dec(cents(area_cents as f64 / 100.0 * price), 2),
            Cell::Date(as_of_day() - r.below((as_of_day() - first) as u64) as i64),
        ])
    })
}

/// Number of bus lines.
pub(crate) const BUS_LINES: u64 = 120;
/// Service hours: 05:00 to 23:00.
const BUS_HOURS: std::ops::RangeInclusive<u64> = 5..=23;
/// Relative boardings by hour on a weekday (5 … 23): peaks at 7–8 and 17–18.
const WEEKDAY_PROFILE: [f64; 19] = [
    0.3, 0.8, 1.9, 2.0, 1.1, 0.8, 0.8, 0.9, 0.8, 0.7, 0.8, 1.1, 1.9, 1.8, 1.0, 0.7, 0.5, 0.3, 0.15,
];
/// … and on a weekend: no commute, a broad midday hump.
const WEEKEND_PROFILE: [f64; 19] = [
    0.1, 0.3, 0.6, 0.8, 1.0, 1.1, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.1,
];

fn bus_ridership(city: &City, out: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<DatasetInfo, GenError> {
    let spec = &spec::BUS_RIDERSHIP;
    let sink = Box::new(CsvSink::create(&out.join(spec.file), spec)?);
    let rows = spec.rows_at(city.scale);
    let hours = BUS_HOURS.end() - BUS_HOURS.start() + 1;
    let per_day = BUS_LINES * hours;
    // Rows are (date, line, hour) cells of the last 60 days; a scale that needs
    // more cells than 60 days hold reaches further back.
    let days = 60u64.max(rows.div_ceil(per_day));
    let cells = days * per_day;
    let first_day = as_of_day() - days as i64 + 1;
    let line_base: Vec<f64> = (0..BUS_LINES)
        .map(|l| Draw::new(city.seed, tag::BUS_LINE, l).lognormal(45.0, 0.7))
        .collect();
    emit(city, spec, sink, progress, |row, _| {
        // Stratified sampling: row r takes a random cell of the r-th of `rows`
        // equal slices of the cells, so rows are ordered by date and never repeat.
        let mut r = Draw::new(city.seed, tag::BUS_ROW, row);
        let lo = (u128::from(row) * u128::from(cells) / u128::from(rows)) as u64;
        let hi = (u128::from(row + 1) * u128::from(cells) / u128::from(rows)) as u64;
        let c = lo + r.below((hi - lo).max(1));
        let day = first_day + (c / per_day) as i64;
        let line = (c % per_day) / hours;
        let h = (c % hours) as usize;
        let weekend = crate::calendar::weekday(day) >= 5;
        let profile = if weekend {
            WEEKEND_PROFILE[h]
        } else {
            WEEKDAY_PROFILE[h]
        };
        let boardings = line_base[line as usize] * profile * r.lognormal(1.0, 0.2) * if weekend { 0.75 } else { 1.0 };
        Ok(vec![
            text(format!("L{:03}", line + 1)),
            Cell::Date(day),
            Cell::Int((*BUS_HOURS.start() + h as u64) as i64),
            Cell::Int(boardings.round() as i64),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dirt_option_names_a_column_of_its_dataset() {
        for spec in spec::DATASETS {
            let opts = dirt_options(spec.name);
            assert!(!opts.is_empty(), "{}", spec.name);
            for (field, _) in opts {
                assert!(spec.columns.contains(field), "{}.{field}", spec.name);
            }
        }
    }
}
