//! Privacy models with the optimal full-domain generalization, at parity with ARX.
//!
//! Full-domain generalization publishes every value of a quasi-identifier at one level of its
//! hierarchy; a *node* of the lattice ([`lattice`]) is one level per column. A node is
//! acceptable when its equivalence classes (rows alike in every generalized column) satisfy
//! the privacy models ([`model`]) — except classes that are suppressed whole, as long as the
//! suppressed rows stay within `⌊limit × rows⌋` (ARX's rule). Among acceptable nodes the
//! search returns the one with the lowest utility loss ([`metric`]), as ARX would:
//! the same models, the same metric definitions (ARX's defaults), the same optimum.
//!
//! The search works on u32 dictionary codes packed into u64 class keys, rolls a node's
//! classes up from an already computed finer node, and prunes with the monotone models and
//! with lower bounds of the metric; `search.rs` explains how, and why each prune is sound.
//!
//! **Ties.** Scores equal within a relative 10⁻¹² are a tie, broken by the lowest sum of
//! levels (the least generalized node), then by the lexicographically lowest levels in the
//! caller's column order.

use crate::MaskError;
use crate::generalize::Hierarchy;

mod data;
pub mod lattice;
pub mod metric;
pub mod model;
mod search;
mod table;

pub use metric::Metric;
pub use model::{DistinctLDiversity, EntropyLDiversity, KAnonymity, TCloseness};

use data::Encoded;
use lattice::Lattice;
use model::Models;

/// Which ℓ-diversity, and ℓ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Diversity {
    /// Distinct ℓ-diversity: at least ℓ distinct sensitive values per class.
    Distinct(usize),
    /// Entropy ℓ-diversity (Shannon): the sensitive values' entropy in each class ≥ ln ℓ.
    Entropy(f64),
}

/// What the published table must satisfy, and what to minimize.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// k-anonymity's k (≥ 1; 1 is no constraint).
    pub k: usize,
    /// ℓ-diversity on the sensitive attribute.
    pub l: Option<Diversity>,
    /// t-closeness (equal ground distance) on the sensitive attribute.
    pub t: Option<f64>,
    /// The fraction of rows that may be suppressed (0..=1); ARX allows `⌊limit × rows⌋`.
    pub suppression_limit: f64,
    /// The utility metric to minimize.
    pub metric: Metric,
}

impl Config {
    /// k-anonymity alone, no suppression, discernibility — a starting point to adjust.
    pub fn k_anonymity(k: usize) -> Config {
        Config {
            k,
            l: None,
            t: None,
            suppression_limit: 0.0,
            metric: Metric::Discernibility,
        }
    }
}

/// The optimal generalization.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The hierarchy level chosen for each quasi-identifier (caller's order).
    pub levels: Vec<usize>,
    /// The metric's value (lower is better).
    pub score: f64,
    /// Rows suppressed (in classes that fail a model).
    pub suppressed: usize,
    /// Equivalence classes published (suppressed classes not counted).
    pub classes: usize,
    /// Lattice nodes.
    pub nodes: usize,
    /// Class tables the search built (the bottom one included): how much pruning saved.
    pub tables: usize,
}

/// A table's quasi-identifiers (and sensitive attribute), encoded once for any number of
/// searches.
#[derive(Debug, Clone)]
pub struct Anonymizer {
    enc: Encoded,
    lattice: Lattice,
}

impl Anonymizer {
    /// Encodes the quasi-identifier columns `(name, values)` against their hierarchies (same
    /// order), with the sensitive attribute's values if ℓ-diversity or t-closeness will be
    /// asked for. A value missing from its hierarchy is an error naming column, row and value.
    pub fn new(
        columns: Vec<(String, Vec<String>)>,
        hierarchies: Vec<Hierarchy>,
        sensitive: Option<Vec<String>>,
    ) -> Result<Anonymizer, MaskError> {
        let enc = Encoded::new(&columns, &hierarchies, sensitive.as_deref())?;
        let heights: Vec<usize> = enc.qis.iter().map(|q| q.height).collect();
        let lattice = Lattice::new(&heights)?;
        Ok(Anonymizer { enc, lattice })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.enc.rows
    }

    /// The quasi-identifiers' names.
    pub fn names(&self) -> Vec<&str> {
        self.enc.qis.iter().map(|q| q.name.as_str()).collect()
    }

    /// The generalization lattice.
    pub fn lattice(&self) -> &Lattice {
        &self.lattice
    }

    /// Checks a configuration; returns the models and the suppression limit in rows.
    fn prepare(&self, c: &Config) -> Result<(Models, u64), MaskError> {
        let bad = |detail: String| MaskError::Config {
            technique: "anonymize",
            detail,
        };
        if c.k < 1 {
            return Err(bad(format!("k = {}: k must be at least 1", c.k)));
        }
        if !(c.suppression_limit.is_finite() && (0.0..=1.0).contains(&c.suppression_limit)) {
            return Err(bad(format!(
                "suppression limit {}: it must be a fraction in [0, 1]",
                c.suppression_limit
            )));
        }
        match c.l {
            Some(Diversity::Distinct(l)) if l < 1 => return Err(bad(format!("ℓ = {l}: ℓ must be at least 1"))),
            Some(Diversity::Entropy(l)) if !(l.is_finite() && l >= 1.0) => {
                return Err(bad(format!("ℓ = {l}: ℓ must be at least 1")));
            }
            _ => {}
        }
        if let Some(t) = c.t
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(bad(format!("t = {t}: t must be at least 0")));
        }
        if (c.l.is_some() || c.t.is_some()) && self.enc.sensitive.is_none() {
            return Err(bad("ℓ-diversity and t-closeness need a sensitive attribute".into()));
        }
        let limit = (c.suppression_limit * self.enc.rows as f64).floor() as u64;
        Ok((Models::new(c.k, c.l, c.t), limit))
    }

    fn solution(&self, f: search::Found) -> Solution {
        Solution {
            levels: self.lattice.levels_vec(f.node),
            score: f.score,
            suppressed: f.suppressed as usize,
            classes: f.classes,
            nodes: self.lattice.size(),
            tables: f.tables,
        }
    }

    /// The optimal full-domain generalization under `config`: the acceptable node with the
    /// lowest score (ties as in the module docs), or [`MaskError::NoSolution`].
    pub fn search(&self, config: &Config) -> Result<Solution, MaskError> {
        let (models, limit) = self.prepare(config)?;
        let found = search::Search::new(&self.enc, self.lattice.clone(), models, config.metric, limit).run();
        found.map(|f| self.solution(f)).ok_or(MaskError::NoSolution)
    }

    /// The same optimum by evaluating every node without pruning — the baseline the pruned
    /// search is measured against, and a cross-check for it.
    pub fn search_exhaustive(&self, config: &Config) -> Result<Solution, MaskError> {
        let (models, limit) = self.prepare(config)?;
        search::exhaustive(&self.enc, &self.lattice, &models, config.metric, limit)
            .map(|f| self.solution(f))
            .ok_or(MaskError::NoSolution)
    }

    /// The quasi-identifiers of every row generalized to `levels`, with the rows of classes
    /// that fail the models under `config` replaced by `*` in every quasi-identifier — the
    /// table to publish (row-major, columns in the caller's order). Errors if `levels` is not
    /// a node of the lattice or `config` is invalid; it does not check the suppression limit
    /// (a [`Solution`] from [`Anonymizer::search`] respects it).
    pub fn apply(&self, config: &Config, levels: &[usize]) -> Result<Vec<Vec<&str>>, MaskError> {
        let (models, _) = self.prepare(config)?;
        let node = self.lattice.node(levels).ok_or_else(|| MaskError::Config {
            technique: "anonymize",
            detail: format!(
                "levels {levels:?} are not a node of the lattice {:?}",
                self.lattice.heights()
            ),
        })?;
        let with_sensitive = models.needs_sensitive();
        let mut g = table::Grouper::default();
        let b = table::bottom(&self.enc, with_sensitive, &mut g);
        let t = table::rollup(&self.enc, &b, self.lattice.levels(0), self.lattice.levels(node), &mut g);
        let mut checker = search::Checker::default();
        checker.evaluate(&self.enc, &models, &t, with_sensitive);
        let failed: std::collections::HashSet<u64> = checker.failed.iter().map(|(k, _)| *k).collect();
        let lv = self.lattice.levels(node);
        let mut out = Vec::with_capacity(self.enc.rows);
        for row in 0..self.enc.rows {
            let mut key = 0u64;
            let mut values = Vec::with_capacity(self.enc.qis.len());
            for (q, qi) in self.enc.qis.iter().enumerate() {
                let level = usize::from(lv[q]);
                let code = qi.up[level][qi.rows[row] as usize];
                key |= u64::from(code) << qi.shift;
                values.push(qi.values[level][code as usize].as_str());
            }
            if failed.contains(&key) {
                values.iter_mut().for_each(|v| *v = "*");
            }
            out.push(values);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
