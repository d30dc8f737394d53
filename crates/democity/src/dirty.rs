//! Which rows are dirty and how. A dataset of `n` rows gets `d = round(n / 200)`
//! dirty rows (none below 100 rows): the rows are cut into `d` equal strata and
//! one row per stratum is chosen by hashing (seed, dataset, stratum). This gives
//! an exact, evenly spread 0.5 % rate at any scale, and lets anyone ask "is row
//! k dirty?" in O(1) without generating the dataset — which is how references
//! (a legal representative, an employer) avoid pointing at dirty rows.

use crate::calendar::civil_from_days;
use crate::cell::Cell;
use crate::error::GenError;
use crate::rng::{hash, tag};
use crate::spec::{DIRTY_ONE_IN, DatasetSpec, DirtyKind};

/// One planned defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dirt {
    /// 0-based data row.
    pub row: u64,
    /// Column index.
    pub col: usize,
    /// Column name.
    pub field: &'static str,
    /// The defect.
    pub kind: DirtyKind,
    /// A hash to vary the defect's text (which date format, which non-number).
    pub variant: u64,
}

/// The defects a dataset may carry, as (column, kind).
pub(crate) type DirtOptions = &'static [(&'static str, DirtyKind)];

/// The dirty rows of one dataset at one size.
#[derive(Debug, Clone)]
pub(crate) struct DirtyPlan {
    key: u64,
    rows: u64,
    count: u64,
    spec: DatasetSpec,
    options: DirtOptions,
    kinds: Vec<DirtyKind>,
}

impl DirtyPlan {
    /// The plan for `rows` rows of `spec` under `seed`.
    pub(crate) fn new(seed: u64, dataset: u64, spec: DatasetSpec, rows: u64, options: DirtOptions) -> Self {
        let count = if rows < 100 || options.is_empty() {
            0
        } else {
            (rows + DIRTY_ONE_IN / 2) / DIRTY_ONE_IN
        };
        let mut kinds = Vec::new();
        for (_, k) in options {
            if !kinds.contains(k) {
                kinds.push(*k);
            }
        }
        DirtyPlan {
            key: hash(&[seed, tag::DIRTY, dataset]),
            rows,
            count,
            spec,
            options,
            kinds,
        }
    }

    /// Number of dirty rows.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    fn start(&self, stratum: u64) -> u64 {
        (u128::from(stratum) * u128::from(self.rows) / u128::from(self.count)) as u64
    }

    /// The defect of stratum `s` (`s < count`).
    fn at(&self, s: u64) -> Dirt {
        let lo = self.start(s);
        let len = (self.start(s + 1) - lo).max(1);
        let row = lo + hash(&[self.key, s, 0]) % len;
        let kind = self.kinds[(hash(&[self.key, s, 1]) % self.kinds.len() as u64) as usize];
        let fields: Vec<&'static str> = self
            .options
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(f, _)| *f)
            .collect();
        let field = fields[(hash(&[self.key, s, 2]) % fields.len() as u64) as usize];
        let col = self.spec.columns.iter().position(|c| *c == field).unwrap_or(0);
        Dirt {
            row,
            col,
            field,
            kind,
            variant: hash(&[self.key, s, tag::DIRTY_VALUE]),
        }
    }

    /// The defect of row `row`, if it is dirty.
    pub(crate) fn dirt_at(&self, row: u64) -> Option<Dirt> {
        if self.count == 0 || row >= self.rows {
            return None;
        }
        let mut s = (u128::from(row) * u128::from(self.count) / u128::from(self.rows)) as u64;
        while s + 1 < self.count && self.start(s + 1) <= row {
            s += 1;
        }
        while s > 0 && self.start(s) > row {
            s -= 1;
        }
        let d = self.at(s);
        (d.row == row).then_some(d)
    }

    /// Whether row `row` is dirty.
    pub(crate) fn is_dirty(&self, row: u64) -> bool {
        self.dirt_at(row).is_some()
    }

    /// Every defect, by ascending row.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Dirt> + '_ {
        (0..self.count).map(|s| self.at(s))
    }
}

/// Texts a careless export puts in a numeric column.
const NOT_NUMBERS: [&str; 5] = ["N/A", "一万", "--", "未知", "#VALUE!"];
const ID_ALPHABET: &[u8] = b"0123456789X";
const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Applies `dirt` to its cell of a generated row.
pub(crate) fn apply(cells: &mut [Cell], dirt: &Dirt) -> Result<(), GenError> {
    let cell = cells
        .get_mut(dirt.col)
        .ok_or(GenError::Internal("dirty column out of range"))?;
    let v = dirt.variant;
    *cell = match (dirt.kind, &*cell) {
        (DirtyKind::MissingField, _) => Cell::Null,
        (DirtyKind::NotANumber, _) => Cell::Text(NOT_NUMBERS[(v % NOT_NUMBERS.len() as u64) as usize].to_string()),
        (DirtyKind::BadCheckDigit, Cell::Text(id)) if id.len() == 18 && id.is_ascii() => {
            let alphabet = if id.starts_with("91") {
                USCC_ALPHABET
            } else {
                ID_ALPHABET
            };
            let last = id.as_bytes()[17];
            let pos = alphabet.iter().position(|c| *c == last).unwrap_or(0);
            let n = alphabet.len();
            let other = alphabet[(pos + 1 + (v % (n as u64 - 1)) as usize) % n];
            Cell::Text(format!("{}{}", &id[..17], other as char))
        }
        (DirtyKind::BadDate, Cell::Date(day)) => {
            let (y, m, d) = civil_from_days(*day);
            Cell::Text(match v % 4 {
                0 => format!("{y}/{m}/{d}"),
                1 => format!("{d:02}.{m:02}.{y}"),
                2 => format!("{y}年{m}月{d}日"),
                _ => format!("{m}/{d}/{y}"),
            })
        }
        (DirtyKind::BadDate, Cell::Month(y, m)) => Cell::Text(match v % 4 {
            0 => format!("{y}/{m}"),
            1 => format!("{m:02}.{y}"),
            2 => format!("{y}年{m}月"),
            _ => format!("{m}/{y}"),
        }),
        _ => return Err(GenError::Internal("dirty kind does not fit its column")),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::POPULATION;

    const OPTS: DirtOptions = &[
        ("person_id", DirtyKind::BadCheckDigit),
        ("name", DirtyKind::MissingField),
        ("birth_date", DirtyKind::BadDate),
    ];

    #[test]
    fn plan_counts_and_random_access_agree() {
        for rows in [1u64, 99, 100, 299, 300, 1000, 12_345] {
            let plan = DirtyPlan::new(7, 0, POPULATION, rows, OPTS);
            let listed: Vec<u64> = plan.iter().map(|d| d.row).collect();
            assert_eq!(listed.len() as u64, plan.count());
            assert!(listed.windows(2).all(|w| w[0] < w[1]));
            let found: Vec<u64> = (0..rows).filter(|r| plan.is_dirty(*r)).collect();
            assert_eq!(listed, found, "rows={rows}");
            if rows >= 100 {
                let rate = plan.count() as f64 / rows as f64;
                assert!((0.002..=0.01).contains(&rate), "rows={rows} rate={rate}");
            }
        }
    }

    #[test]
    fn defects_break_their_values() {
        let id = shuyu_core::ident::IdNumber::complete("37990119900307123").map(|i| i.to_string());
        let mut cells = vec![Cell::Text(id.unwrap_or_default())];
        for v in 0..20 {
            let mut c = cells.clone();
            let d = Dirt {
                row: 0,
                col: 0,
                field: "person_id",
                kind: DirtyKind::BadCheckDigit,
                variant: v,
            };
            apply(&mut c, &d).ok();
            let Cell::Text(t) = &c[0] else { panic!("text") };
            assert!(shuyu_core::ident::IdNumber::parse(t).is_err());
        }
        let d = Dirt {
            row: 0,
            col: 0,
            field: "x",
            kind: DirtyKind::BadDate,
            variant: 2,
        };
        cells[0] = Cell::Date(0);
        apply(&mut cells, &d).ok();
        assert_eq!(cells[0], Cell::Text("1970年1月1日".into()));
    }
}
