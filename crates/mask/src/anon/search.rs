//! The optimal search over the generalization lattice.
//!
//! Every node gets a lower bound of its score from its levels alone ([`Scorer::level_bound`]);
//! nodes are visited in order of that bound (ties: lower level sum, then lexicographically
//! lower levels — the tie-break of the result), and the search stops at the first node whose
//! bound exceeds the best score found: every later node's bound is at least as high. A node
//! is scored only if it can still win, and only if it is anonymous:
//!
//! - **Anonymity** is decided first for the union-closed part of the models (k-anonymity,
//!   the size and distinct-value conditions of ℓ-diversity), which is monotone (see
//!   [`super::model`]): a node that fails fails everywhere below it, one that passes passes
//!   everywhere above. A node of unknown status is settled by a binary search along a chain
//!   from it to the top (each step the successor with the least bound), and the result is
//!   spread to the whole down-set of the last failing node and up-set of the first passing
//!   one — a few class tables settle hundreds of nodes. Models that are not union-closed
//!   (entropy ℓ-diversity, t-closeness) are checked on the node itself, never used to prune.
//! - **Discernibility** bounds also come from finer nodes: `Σ c²` over all classes (ARX's
//!   DM*) only grows under generalization and never exceeds the score, so a node inherits the
//!   largest DM* of the tables computed below it.
//! - With no suppression allowed and only union-closed models, an anonymous node suppresses
//!   nothing, so entropy and loss equal the level bound: no class table is needed to score.
//!
//! Class tables are rolled up from the computed node below with the fewest entries (the
//! bottom, built from the rows once, is always there); computed tables are kept for later
//! roll-ups within a memory budget.

use std::collections::HashMap;

use super::data::Encoded;
use super::lattice::Lattice;
use super::metric::{Metric, Scorer, Suppression};
use super::model::{Class, Models};
use super::table::{Grouper, Table, bottom, rollup};

const UNKNOWN: u8 = 0;
const FAIL: u8 = 1;
const PASS: u8 = 2;

/// Scores within this relative distance are a tie (decided by the level sum, then the
/// levels): float sums of the same quantity in different orders differ in the last bits, and
/// a tie must not depend on that.
pub(crate) const TIE: f64 = 1e-12;

/// Whether two scores tie.
pub(crate) fn ties(a: f64, b: f64) -> bool {
    (a - b).abs() <= TIE * a.abs().max(b.abs())
}

/// What the search found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub node: usize,
    pub score: f64,
    pub suppressed: u64,
    pub classes: usize,
    pub tables: usize,
}

/// What one node's classes say under the models.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Eval {
    /// Rows in classes failing the union-closed part of the models.
    pub mono_suppressed: u64,
    /// Rows in classes failing any model.
    pub suppressed: u64,
    /// Classes published.
    pub kept_classes: usize,
    /// `Σ c²` over all classes (DM*).
    pub square_sum: u128,
    /// `Σ c²` over the published classes.
    pub kept_square_sum: u128,
}

/// Reused buffers for checking classes.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    classes: Grouper,
    class_of: Vec<u32>,
    offsets: Vec<u32>,
    pairs: Vec<(u32, u32)>,
    /// `(class key, rows)` of the classes suppressed at the last evaluation.
    pub failed: Vec<(u64, u32)>,
}

impl Checker {
    /// Checks every class of a node's table against the models.
    pub fn evaluate(&mut self, enc: &Encoded, models: &Models, table: &Table, with_sensitive: bool) -> Eval {
        let mut e = Eval::default();
        self.failed.clear();
        if !with_sensitive {
            for (k, c) in table.keys.iter().zip(&table.counts) {
                let sq = u128::from(*c) * u128::from(*c);
                e.square_sum += sq;
                if *c >= models.min_size {
                    e.kept_classes += 1;
                    e.kept_square_sum += sq;
                } else {
                    e.suppressed += u64::from(*c);
                    self.failed.push((*k, *c));
                }
            }
            e.mono_suppressed = e.suppressed;
            return e;
        }
        // Entries are (class, sensitive value) pairs: group them by class, then lay each
        // class's values out contiguously.
        let smask = enc.sens_mask();
        self.classes.reset(table.len());
        self.class_of.clear();
        for (k, c) in table.keys.iter().zip(&table.counts) {
            let i = self.classes.add(k & !smask, *c);
            self.class_of.push(i as u32);
        }
        let n = self.classes.keys().len();
        self.offsets.clear();
        self.offsets.resize(n + 1, 0);
        for i in &self.class_of {
            self.offsets[*i as usize + 1] += 1;
        }
        for i in 0..n {
            self.offsets[i + 1] += self.offsets[i];
        }
        self.pairs.clear();
        self.pairs.resize(table.len(), (0, 0));
        let mut fill: Vec<u32> = self.offsets[..n].to_vec();
        for ((k, c), i) in table.keys.iter().zip(&table.counts).zip(&self.class_of) {
            let slot = &mut fill[*i as usize];
            self.pairs[*slot as usize] = ((k & smask) as u32, *c);
            *slot += 1;
        }
        let global: &[f64] = enc.sensitive.as_ref().map_or(&[], |s| &s.global);
        for i in 0..n {
            let size = self.classes.counts()[i];
            let values = &self.pairs[self.offsets[i] as usize..self.offsets[i + 1] as usize];
            let sq = u128::from(size) * u128::from(size);
            e.square_sum += sq;
            let mono = models.holds_monotone(size, values.len());
            if !mono {
                e.mono_suppressed += u64::from(size);
            }
            let class = Class {
                size,
                sensitive: values,
                global,
            };
            if mono && models.holds(&class) {
                e.kept_classes += 1;
                e.kept_square_sum += sq;
            } else {
                e.suppressed += u64::from(size);
                self.failed.push((self.classes.keys()[i], size));
            }
        }
        e
    }

    /// Suppressed rows per code of every column at `levels`, from the last evaluation.
    pub fn suppressed_codes(&self, enc: &Encoded, levels: &[u8], codes: &mut [Vec<u32>]) {
        for (q, qi) in enc.qis.iter().enumerate() {
            let buf = &mut codes[q];
            buf.clear();
            buf.resize(qi.values[usize::from(levels[q])].len(), 0);
        }
        for (k, c) in &self.failed {
            for (q, buf) in codes.iter_mut().enumerate() {
                buf[enc.code(*k, q)] += c;
            }
        }
    }
}

/// One search: the data, the models, the metric and what has been learned so far.
pub(crate) struct Search<'a> {
    enc: &'a Encoded,
    lat: Lattice,
    models: Models,
    scorer: Scorer,
    limit: u64,
    with_sensitive: bool,
    status: Vec<u8>,
    tables: HashMap<usize, Table>,
    /// Cached nodes by table size, smallest first: the first one below a node is its source.
    by_size: Vec<(usize, usize)>,
    /// The last table built that did not fit the cache.
    spare: Option<(usize, Table)>,
    cached: usize,
    budget: usize,
    grouper: Grouper,
    checker: Checker,
    codes: Vec<Vec<u32>>,
    built: usize,
}

impl<'a> Search<'a> {
    pub fn new(enc: &'a Encoded, lat: Lattice, models: Models, metric: Metric, limit: u64) -> Search<'a> {
        let with_sensitive = models.needs_sensitive();
        let scorer = Scorer::new(metric, enc);
        let size = lat.size();
        let mut s = Search {
            enc,
            lat,
            models,
            scorer,
            limit,
            with_sensitive,
            status: vec![UNKNOWN; size],
            tables: HashMap::new(),
            by_size: Vec::new(),
            spare: None,
            cached: 0,
            // Keep up to 64 tables' worth of the bottom's entries (at least a million).
            budget: (enc.rows * 64).max(1 << 20),
            grouper: Grouper::default(),
            checker: Checker::default(),
            codes: vec![Vec::new(); enc.qis.len()],
            built: 0,
        };
        let b = bottom(enc, with_sensitive, &mut s.grouper);
        s.built += 1;
        s.keep(0, b);
        s
    }

    fn keep(&mut self, node: usize, t: Table) {
        if node != 0 && self.cached + t.len() > self.budget {
            self.spare = Some((node, t));
            return;
        }
        self.cached += t.len();
        let entry = (t.len(), node);
        let at = self.by_size.partition_point(|e| *e < entry);
        self.by_size.insert(at, entry);
        self.tables.insert(node, t);
    }

    /// Makes sure the node's table exists.
    fn build(&mut self, node: usize) {
        if self.tables.contains_key(&node) || self.spare.as_ref().is_some_and(|(n, _)| *n == node) {
            return;
        }
        let source = self
            .by_size
            .iter()
            .find(|(_, s)| self.lat.le(*s, node))
            .map_or(0, |(_, s)| *s);
        let t = rollup(
            self.enc,
            &self.tables[&source],
            self.lat.levels(source),
            self.lat.levels(node),
            &mut self.grouper,
        );
        self.built += 1;
        self.keep(node, t);
    }

    /// Builds and checks a node.
    fn evaluate(&mut self, node: usize) -> Eval {
        self.build(node);
        let table = match &self.spare {
            Some((n, t)) if *n == node => t,
            _ => &self.tables[&node],
        };
        self.checker
            .evaluate(self.enc, &self.models, table, self.with_sensitive)
    }

    /// Scores the node of the last evaluation.
    fn score_last(&mut self, node: usize, e: &Eval) -> f64 {
        let levels = self.lat.levels(node);
        if e.suppressed > 0 {
            self.checker.suppressed_codes(self.enc, levels, &mut self.codes);
        }
        self.scorer.score(
            self.enc,
            levels,
            &Suppression {
                rows: e.suppressed,
                kept_square_sum: e.kept_square_sum,
                codes: &self.codes,
            },
        )
    }

    fn mark(&mut self, node: usize, status: u8) {
        let mut stack = vec![node];
        while let Some(x) = stack.pop() {
            if self.status[x] == status {
                continue;
            }
            debug_assert_eq!(self.status[x], UNKNOWN, "monotone statuses never flip");
            self.status[x] = status;
            if status == FAIL {
                stack.extend(self.lat.predecessors(x));
            } else {
                stack.extend(self.lat.successors(x));
            }
        }
    }

    /// Settles the status of `node` (and of whatever the checks on the way imply).
    fn resolve(&mut self, node: usize, bound: &[f64], floor: &mut [f64]) {
        let mut chain = vec![node];
        let mut cur = node;
        while let Some(next) = self
            .lat
            .successors(cur)
            .min_by(|a, b| bound[*a].total_cmp(&bound[*b]).then(a.cmp(b)))
        {
            chain.push(next);
            cur = next;
        }
        // Along a chain the failing nodes are a prefix and the passing ones a suffix.
        let mut lo: isize = -1;
        let mut hi = chain.len() as isize;
        for (i, c) in chain.iter().enumerate() {
            match self.status[*c] {
                FAIL => lo = lo.max(i as isize),
                PASS => hi = hi.min(i as isize),
                _ => {}
            }
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let c = chain[mid as usize];
            let e = self.evaluate(c);
            if let Some(f) = floor.get_mut(c) {
                *f = f.max(e.square_sum as f64);
            }
            if e.mono_suppressed <= self.limit {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if lo >= 0 {
            self.mark(chain[lo as usize], FAIL);
        }
        if (hi as usize) < chain.len() {
            self.mark(chain[hi as usize], PASS);
        }
    }

    /// The optimum, or None when no node is anonymous.
    pub fn run(mut self) -> Option<Found> {
        let size = self.lat.size();
        let metric = self.scorer.metric();
        let bound: Vec<f64> = (0..size)
            .map(|n| {
                self.scorer
                    .level_bound(self.enc, self.lat.levels(n), self.models.min_size)
            })
            .collect();
        let mut order: Vec<usize> = (0..size).collect();
        order.sort_by(|a, b| {
            bound[*a]
                .total_cmp(&bound[*b])
                .then(self.lat.tie_key(*a).cmp(&self.lat.tie_key(*b)))
        });
        // Discernibility: the largest DM* of a computed table at or below each node.
        let mut floor = vec![0.0f64; if metric == Metric::Discernibility { size } else { 0 }];
        let zero_fast = self.limit == 0 && !self.models.has_non_monotone() && metric != Metric::Discernibility;
        let mut best: Option<(f64, usize)> = None;
        for &n in &order {
            let mut b = bound[n];
            if metric == Metric::Discernibility {
                let inherited = self.lat.predecessors(n).map(|p| floor[p]).fold(floor[n], f64::max);
                floor[n] = inherited;
                b = b.max(inherited);
            }
            if let Some((bs, _)) = best {
                let slack = bs + TIE * bs.abs();
                if bound[n] > slack {
                    break;
                }
                if b > slack {
                    continue;
                }
            }
            if self.status[n] == UNKNOWN {
                self.resolve(n, &bound, &mut floor);
            }
            if self.status[n] == FAIL {
                continue;
            }
            let score = if zero_fast {
                bound[n]
            } else {
                let e = self.evaluate(n);
                if metric == Metric::Discernibility {
                    floor[n] = floor[n].max(e.square_sum as f64);
                }
                if e.suppressed > self.limit {
                    continue;
                }
                self.score_last(n, &e)
            };
            if better(&self.lat, score, n, best) {
                best = Some((score, n));
            }
        }
        let (_, node) = best?;
        let e = self.evaluate(node);
        let score = self.score_last(node, &e);
        Some(Found {
            node,
            score,
            suppressed: e.suppressed,
            classes: e.kept_classes,
            tables: self.built,
        })
    }
}

/// Whether `(score, node)` beats the best so far.
fn better(lat: &Lattice, score: f64, node: usize, best: Option<(f64, usize)>) -> bool {
    match best {
        None => true,
        Some((bs, bn)) if ties(score, bs) => lat.tie_key(node) < lat.tie_key(bn),
        Some((bs, _)) => score < bs,
    }
}

/// Every node evaluated, no pruning (each rolled up from its smallest immediate predecessor):
/// the baseline the benchmark measures the search against, and a cross-check in tests.
pub(crate) fn exhaustive(enc: &Encoded, lat: &Lattice, models: &Models, metric: Metric, limit: u64) -> Option<Found> {
    let with_sensitive = models.needs_sensitive();
    let scorer = Scorer::new(metric, enc);
    let size = lat.size();
    let widest = lat.heights().iter().skip(1).product::<usize>();
    let mut tables: Vec<Option<Table>> = vec![None; size];
    let mut grouper = Grouper::default();
    let mut checker = Checker::default();
    let mut codes = vec![Vec::new(); enc.qis.len()];
    let mut best: Option<(f64, usize)> = None;
    for n in 0..size {
        let source = lat
            .predecessors(n)
            .filter(|p| tables[*p].is_some())
            .min_by_key(|p| (tables[*p].as_ref().map_or(usize::MAX, Table::len), *p));
        let t = match source.and_then(|p| tables[p].as_ref().map(|t| (p, t))) {
            Some((p, src)) => rollup(enc, src, lat.levels(p), lat.levels(n), &mut grouper),
            None => {
                let b = bottom(enc, with_sensitive, &mut grouper);
                if n == 0 {
                    b
                } else {
                    rollup(enc, &b, lat.levels(0), lat.levels(n), &mut grouper)
                }
            }
        };
        let e = checker.evaluate(enc, models, &t, with_sensitive);
        if e.suppressed <= limit {
            let levels = lat.levels(n);
            if e.suppressed > 0 {
                checker.suppressed_codes(enc, levels, &mut codes);
            }
            let score = scorer.score(
                enc,
                levels,
                &Suppression {
                    rows: e.suppressed,
                    kept_square_sum: e.kept_square_sum,
                    codes: &codes,
                },
            );
            if better(lat, score, n, best) {
                best = Some((score, n));
            }
        }
        tables[n] = Some(t);
        // No later node has a predecessor this far back.
        if n >= widest {
            tables[n - widest] = None;
        }
    }
    let (score, node) = best?;
    let t = {
        let mut t = bottom(enc, with_sensitive, &mut grouper);
        if node != 0 {
            t = rollup(enc, &t, lat.levels(0), lat.levels(node), &mut grouper);
        }
        t
    };
    let e = checker.evaluate(enc, models, &t, with_sensitive);
    Some(Found {
        node,
        score,
        suppressed: e.suppressed,
        classes: e.kept_classes,
        tables: size,
    })
}
