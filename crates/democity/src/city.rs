//! The generation context: sizes, the dirty-row plans of the two registers
//! that other datasets refer to, and the pickers that choose whom a row refers
//! to. A reference always points at a clean row of the register, so that
//! referential integrity holds for every non-dirty row.

use crate::dirty::DirtyPlan;
use crate::error::GenError;
use crate::firms::{Enterprise, enterprise};
use crate::people::{capacity, core};
use crate::rng::{Draw, hash, permute, tag};
use crate::spec::{self, DatasetSpec};

/// Tries before a picker falls back to the next clean row.
const TRIES: usize = 48;

pub(crate) struct City {
    pub seed: u64,
    pub scale: f64,
    pub people: u64,
    pub firms: u64,
    pub people_dirt: DirtyPlan,
    pub firms_dirt: DirtyPlan,
}

impl City {
    pub(crate) fn new(seed: u64, scale: f64) -> Result<Self, GenError> {
        if !scale.is_finite() || scale <= 0.0 {
            return Err(GenError::InvalidScale(scale));
        }
        let people = spec::POPULATION.rows_at(scale);
        if people > capacity() {
            return Err(GenError::ScaleTooLarge {
                scale,
                needed: people,
                capacity: capacity(),
            });
        }
        let firms = spec::ENTERPRISE.rows_at(scale);
        Ok(City {
            seed,
            scale,
            people,
            firms,
            people_dirt: plan(seed, &spec::POPULATION, people),
            firms_dirt: plan(seed, &spec::ENTERPRISE, firms),
        })
    }

    /// A clean person aged `min_age..=max_age`, accepted with probability `weight(age)`.
    pub(crate) fn pick_person(
        &self,
        r: &mut Draw,
        min_age: i32,
        max_age: i32,
        weight: impl Fn(i32) -> f64,
    ) -> Result<u64, GenError> {
        let mut k = 0;
        for _ in 0..TRIES {
            k = r.below(self.people);
            if self.people_dirt.is_dirty(k) {
                continue;
            }
            let age = core(self.seed, k).age();
            if (min_age..=max_age).contains(&age) && r.chance(weight(age)) {
                return Ok(k);
            }
        }
        self.next_clean(&self.people_dirt, self.people, k)
    }

    /// A clean enterprise; `skew` > 1 concentrates picks on a few large ones
    /// (employers, big electricity users), `active_only` skips closed ones.
    pub(crate) fn pick_enterprise(&self, r: &mut Draw, skew: f64, active_only: bool) -> Result<Enterprise, GenError> {
        let key = hash(&[self.seed, tag::EMPLOYER_RANK]);
        let mut j = 0;
        for _ in 0..TRIES {
            let rank = ((self.firms as f64 * r.unit().powf(skew)) as u64).min(self.firms - 1);
            j = permute(key, rank, self.firms);
            if self.firms_dirt.is_dirty(j) {
                continue;
            }
            let e = enterprise(self.seed, j)?;
            if !active_only || e.is_active() {
                return Ok(e);
            }
        }
        enterprise(self.seed, self.next_clean(&self.firms_dirt, self.firms, j)?)
    }

    fn next_clean(&self, plan: &DirtyPlan, n: u64, from: u64) -> Result<u64, GenError> {
        (0..n)
            .map(|o| (from + o) % n)
            .find(|k| !plan.is_dirty(*k))
            .ok_or(GenError::Internal("no clean row to refer to"))
    }
}

/// The dirty plan of a dataset at `rows` rows.
pub(crate) fn plan(seed: u64, spec: &DatasetSpec, rows: u64) -> DirtyPlan {
    let index = spec::DATASETS.iter().position(|d| d.name == spec.name).unwrap_or(0) as u64;
    DirtyPlan::new(seed, index, *spec, rows, crate::datasets::dirt_options(spec.name))
}
