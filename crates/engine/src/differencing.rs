//! The disclosure ledger: what each release revealed, and how a new output compares with it.
//!
//! A release is remembered by its **definition** — its keys by lineage (the source field and the
//! transform, not the column's name), the cells it showed — and by its **members**: for each cell,
//! which entities are behind it, with how many records and a fingerprint of which rows
//! ([`crate::algebra::build`] computes them in the output's own plan). A new output is compared
//! with every release made to the same developer organisation, across all its requests and
//! recipients, and with every public release: on the keys both share, group by group, it counts
//! the entities that are in both with the same rows and those that are in one only (or with other
//! rows). A complement ("everyone but one"), a one-person difference, overlapping ranges, a
//! tracker, a difference of sums — renamed or not — all show up as a group where the two overlap
//! and differ by a few entities; the gate's differencing check flags those. A ledger entry that
//! cannot be read makes the comparison [`Comparison::Unreadable`], and the check fails.

use std::collections::{BTreeSet, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use serde::{Deserialize, Serialize};
use shuyu_gate::{Comparison, GroupDifference, Output};

use crate::algebra::{Admitted, AggKind, Body, ColumnRole};
use crate::jobs::{KeyMeta, OutputMeta, job_members_key_id};

/// What an output's values depend on: who is behind a cell, how many records each has there, or
/// which rows. Two releases are compared on the finer of their bases — a count of people cannot
/// tell two row sets of the same people apart, a sum can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Basis {
    /// Who: counts of distinct entities (or counts of records where every entity has one).
    Membership,
    /// How many records of each: counts.
    Records,
    /// Which rows: sums, means, spreads, models.
    Rows,
}

/// The basis of an admitted output, from its measures (and its members, which tell whether every
/// entity has one record in each cell).
pub(crate) fn basis_of(a: &Admitted, members: Option<&RecordBatch>) -> Basis {
    let Body::Table { aggregates, .. } = &a.body else {
        return Basis::Rows;
    };
    let shown: Vec<&AggKind> = a
        .columns
        .iter()
        .filter_map(|c| match &c.role {
            ColumnRole::Measure { aggregates: g, .. } => Some(g.iter().map(|i| &aggregates[*i].kind)),
            _ => None,
        })
        .flatten()
        .collect();
    if shown.iter().all(|k| matches!(k, AggKind::Entities(_))) {
        return Basis::Membership;
    }
    if !shown
        .iter()
        .all(|k| matches!(k, AggKind::Records | AggKind::NonNull(_) | AggKind::Entities(_)))
    {
        return Basis::Rows;
    }
    let one_each = members.is_some_and(|m| {
        m.column_by_name("records")
            .and_then(|r| r.as_primitive_opt::<Int64Type>())
            .is_some_and(|r| r.iter().all(|v| v == Some(1)))
    });
    if one_each { Basis::Membership } else { Basis::Records }
}

/// What one release revealed, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerEntry {
    /// The release.
    pub(crate) release: String,
    /// The developer organisation it was made for.
    pub(crate) org: String,
    /// Whether it went to the public.
    pub(crate) public: bool,
    /// The job and output whose members it released.
    pub(crate) job: String,
    pub(crate) output: String,
    /// Whose records its cells count (`person`, `enterprise`, `record`).
    pub(crate) entity: String,
    /// Its keys in the members' order, by lineage.
    pub(crate) keys: Vec<KeyMeta>,
    /// The cells it showed (key values in the members' order); suppressed ones are not here.
    pub(crate) shown: Vec<Vec<String>>,
    /// What its values depend on.
    pub(crate) basis: Basis,
}

impl LedgerEntry {
    /// The entry of a released output.
    pub(crate) fn of(
        release: &str,
        org: &str,
        public: bool,
        job: &str,
        meta: &OutputMeta,
        output: &Output,
    ) -> LedgerEntry {
        LedgerEntry {
            release: release.to_string(),
            org: org.to_string(),
            public,
            job: job.to_string(),
            output: output.name().to_string(),
            entity: meta.shape.entity.clone(),
            keys: meta.keys.clone(),
            shown: shown_cells(meta, output),
            basis: meta.basis,
        }
    }
}

/// The shown cells of an output, their key values in the members' (group key) order.
pub(crate) fn shown_cells(meta: &OutputMeta, output: &Output) -> Vec<Vec<String>> {
    let Some(table) = output.table() else {
        return Vec::new();
    };
    let names = output.key_names();
    let order: Vec<Option<usize>> = meta
        .keys
        .iter()
        .map(|k| names.iter().position(|n| *n == k.column))
        .collect();
    table
        .cells
        .iter()
        .filter(|c| c.row.is_some())
        .map(|c| {
            order
                .iter()
                .map(|i| i.and_then(|i| c.key.get(i).cloned()).unwrap_or_default())
                .collect()
        })
        .collect()
}

/// The members of one output: (cell keys in group order, entity, records, fingerprint).
pub(crate) type Members = Vec<(Vec<String>, Option<i64>, i64, i64)>;

/// Reads a members batch.
pub(crate) fn members_of(batches: &[RecordBatch], n_keys: usize) -> Option<Members> {
    let mut out = Vec::new();
    for b in batches {
        if b.num_columns() != n_keys + 3 {
            return None;
        }
        let keys: Vec<_> = (0..n_keys)
            .map(|i| b.column(i).as_string_opt::<i32>())
            .collect::<Option<_>>()?;
        let entity = b.column(n_keys).as_primitive_opt::<Int64Type>()?;
        let records = b.column(n_keys + 1).as_primitive_opt::<Int64Type>()?;
        let fingerprint = b.column(n_keys + 2).as_primitive_opt::<Int64Type>()?;
        for r in 0..b.num_rows() {
            out.push((
                keys.iter()
                    .map(|k| {
                        if k.is_null(r) {
                            String::new()
                        } else {
                            k.value(r).to_string()
                        }
                    })
                    .collect(),
                (!entity.is_null(r)).then(|| entity.value(r)),
                records.value(r),
                if fingerprint.is_null(r) {
                    0
                } else {
                    fingerprint.value(r)
                },
            ));
        }
    }
    Some(out)
}

/// The vault key id of an output's members.
pub(crate) fn members_key(job: &str, output: &str) -> String {
    job_members_key_id(job, output)
}

/// Compares a new output (its keys, shown cells and members) with an earlier release.
pub(crate) fn compare(
    new: &OutputMeta,
    new_shown: &[Vec<String>],
    new_members: &Members,
    prior: &LedgerEntry,
    prior_members: &Members,
) -> Comparison {
    let new_keys = &new.keys;
    let new_entity = new.shape.entity.as_str();
    let basis = new.basis.max(prior.basis);
    // The keys both share, by lineage: (position in the new, position in the prior).
    let common: Vec<(usize, usize)> = new_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| prior.keys.iter().position(|p| p.lineage == k.lineage).map(|j| (i, j)))
        .collect();
    let names: Vec<String> = common.iter().map(|(i, _)| new_keys[*i].column.clone()).collect();
    if prior.entity != new_entity {
        // Entities of different kinds cannot be told apart: nothing to compare.
        return Comparison::Compared {
            release: prior.release.clone(),
            keys: names,
            groups: Vec::new(),
        };
    }
    let project_new = |k: &[String]| -> Vec<String> {
        common
            .iter()
            .map(|(i, _)| k.get(*i).cloned().unwrap_or_default())
            .collect()
    };
    let project_prior = |k: &[String]| -> Vec<String> {
        common
            .iter()
            .map(|(_, j)| k.get(*j).cloned().unwrap_or_default())
            .collect()
    };
    let shown_new: BTreeSet<&Vec<String>> = new_shown.iter().collect();
    let shown_prior: BTreeSet<&Vec<String>> = prior.shown.iter().collect();
    // Per group: entity → (records, fingerprint), summed over the shown cells of the group.
    type Group = HashMap<Option<i64>, (i64, i64)>;
    let gather = |members: &Members, shown: &BTreeSet<&Vec<String>>, project: &dyn Fn(&[String]) -> Vec<String>| {
        let mut groups: HashMap<Vec<String>, Group> = HashMap::new();
        for (key, entity, records, fp) in members {
            if !shown.contains(key) {
                continue;
            }
            let e = groups.entry(project(key)).or_default().entry(*entity).or_insert((0, 0));
            e.0 += records;
            e.1 ^= fp;
        }
        groups
    };
    let new_groups = gather(new_members, &shown_new, &project_new);
    let prior_groups = gather(prior_members, &shown_prior, &project_prior);
    let mut groups = Vec::new();
    for (key, n) in &new_groups {
        let Some(p) = prior_groups.get(key) else { continue };
        let (mut common, mut only, mut changed) = (0u64, 0u64, 0u64);
        for (e, v) in n {
            match p.get(e) {
                Some(w) => {
                    common += 1;
                    let differs = match basis {
                        Basis::Membership => false,
                        Basis::Records => w.0 != v.0,
                        Basis::Rows => w != v,
                    };
                    changed += u64::from(differs);
                }
                None => only += 1,
            }
        }
        only += p.keys().filter(|e| !n.contains_key(*e)).count() as u64;
        groups.push(GroupDifference {
            key: key.clone(),
            common,
            only,
            changed,
        });
    }
    groups.sort_by(|a, b| a.key.cmp(&b.key));
    Comparison::Compared {
        release: prior.release.clone(),
        keys: names,
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(column: &str, lineage: &str) -> KeyMeta {
        KeyMeta {
            column: column.into(),
            lineage: lineage.into(),
        }
    }

    fn prior(keys: Vec<KeyMeta>, shown: Vec<Vec<String>>) -> LedgerEntry {
        LedgerEntry {
            release: "r1".into(),
            org: "o".into(),
            public: false,
            job: "j".into(),
            output: "o".into(),
            entity: "person".into(),
            keys,
            shown,
            basis: Basis::Rows,
        }
    }

    fn meta(keys: Vec<KeyMeta>, basis: Basis) -> OutputMeta {
        OutputMeta {
            sql: String::new(),
            shape: crate::algebra::ShapeDescription {
                shape: "table".into(),
                tables: Vec::new(),
                keys: Vec::new(),
                measures: Vec::new(),
                predicates: Vec::new(),
                entity: "person".into(),
            },
            keys,
            basis,
        }
    }

    fn people(region: &str, ids: std::ops::Range<i64>) -> Members {
        ids.map(|i| (vec![region.to_string()], Some(i), 1, i * 7)).collect()
    }

    fn flagged(c: &Comparison) -> Vec<(Vec<String>, u64, u64, u64)> {
        match c {
            Comparison::Compared { groups, .. } => groups
                .iter()
                .map(|g| (g.key.clone(), g.common, g.only, g.changed))
                .collect(),
            Comparison::Unreadable { .. } => panic!("unreadable"),
        }
    }

    #[test]
    fn a_renamed_key_with_one_person_fewer_is_a_one_entity_difference() {
        // Released: people by region. New: the same, one person excluded, the key renamed.
        let old = prior(vec![key("region", "ds.region")], vec![vec!["379901".into()]]);
        let old_members = people("379901", 0..50);
        let new = meta(vec![key("district", "ds.region")], Basis::Rows);
        let c = compare(
            &new,
            &[vec!["379901".into()]],
            &people("379901", 1..50),
            &old,
            &old_members,
        );
        assert_eq!(flagged(&c), vec![(vec!["379901".into()], 49, 1, 0)]);
        let Comparison::Compared { keys, .. } = c else {
            unreachable!()
        };
        assert_eq!(keys, vec!["district".to_string()]);
    }

    #[test]
    fn other_rows_of_the_same_people_differ_as_rows_not_as_people() {
        let old = prior(vec![key("region", "ds.region")], vec![vec!["379901".into()]]);
        let old_members = people("379901", 0..20);
        // The same people, other rows (another month): every one of them changed.
        let other: Members = (0..20)
            .map(|i| (vec!["379901".to_string()], Some(i), 1, i * 7 + 1))
            .collect();
        let region = || meta(vec![key("region", "ds.region")], Basis::Rows);
        let c = compare(&region(), &[vec!["379901".into()]], &other, &old, &old_members);
        assert_eq!(flagged(&c), vec![(vec!["379901".into()], 20, 0, 20)]);
        // Counted as people (both tables), they are the same people.
        let mut counted = old.clone();
        counted.basis = Basis::Membership;
        let people_only = meta(vec![key("region", "ds.region")], Basis::Membership);
        let c = compare(&people_only, &[vec!["379901".into()]], &other, &counted, &old_members);
        assert_eq!(flagged(&c), vec![(vec!["379901".into()], 20, 0, 0)]);
        // Counted as records, the same counts.
        counted.basis = Basis::Records;
        let records = meta(vec![key("region", "ds.region")], Basis::Records);
        let c = compare(&records, &[vec!["379901".into()]], &other, &counted, &old_members);
        assert_eq!(flagged(&c), vec![(vec!["379901".into()], 20, 0, 0)]);
        // No key in common: the totals are compared.
        let c = compare(
            &meta(vec![key("year", "ds.year")], Basis::Rows),
            &[vec!["379901".into()]],
            &people("379901", 0..20),
            &old,
            &old_members,
        );
        assert_eq!(flagged(&c), vec![(Vec::<String>::new(), 20, 0, 0)]);
    }

    #[test]
    fn suppressed_cells_of_the_earlier_release_are_not_compared() {
        let old = prior(vec![key("region", "ds.region")], vec![]);
        let c = compare(
            &meta(vec![key("region", "ds.region")], Basis::Rows),
            &[vec!["379901".into()]],
            &people("379901", 1..50),
            &old,
            &people("379901", 0..50),
        );
        assert!(flagged(&c).is_empty());
    }
}
