//! What a new version changes against the dataset's current one (its schema, its
//! classification, its size). A base dataset replaced by a wrong file — another table's
//! header, five rows instead of a city, L4 read as L1 — must not pass in one click: every
//! breaking change is named, and accepting needs each one confirmed by name.

use serde::{Deserialize, Serialize};
use shuyu_import::Column;
use utoipa::ToSchema;

/// Below this share of the current version's rows, or above its inverse, the size jumped.
const ROWS_JUMP: f64 = 0.5;

/// One difference between the current version and a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// `column_removed`, `column_added`, `type_changed`, `grade_changed` or `rows_jump`.
    pub kind: String,
    /// The column concerned (none for `rows_jump`).
    pub column: Option<String>,
    /// Before (a type code, a grade code, a row count).
    pub from: Option<String>,
    /// After.
    pub to: Option<String>,
    /// Whether accepting needs it confirmed: what uses the dataset can break or lose
    /// protection (a column gone, a type or grade changed, the size jumped).
    pub breaking: bool,
}

impl Change {
    /// The name a confirmation gives it: `kind` or `kind:column`.
    pub fn key(&self) -> String {
        match &self.column {
            Some(c) => format!("{}:{c}", self.kind),
            None => self.kind.clone(),
        }
    }
}

fn change(kind: &str, column: Option<&str>, from: Option<String>, to: Option<String>, breaking: bool) -> Change {
    Change {
        kind: kind.into(),
        column: column.map(str::to_string),
        from,
        to,
        breaking,
    }
}

/// The changes from `current` (with `current_rows` rows kept) to `new` (`new_rows`), in
/// column order: removed, then per new column added / type / grade, then the size.
pub fn compare(current: &[Column], current_rows: i64, new: &[Column], new_rows: i64) -> Vec<Change> {
    let mut out = Vec::new();
    for c in current {
        if !new.iter().any(|n| n.name == c.name) {
            out.push(change("column_removed", Some(&c.name), None, None, true));
        }
    }
    for n in new {
        let Some(c) = current.iter().find(|c| c.name == n.name) else {
            out.push(change(
                "column_added",
                Some(&n.name),
                None,
                Some(n.class.grade.code()),
                false,
            ));
            continue;
        };
        if c.class.field_type != n.class.field_type {
            out.push(change(
                "type_changed",
                Some(&n.name),
                Some(c.class.field_type.code().into()),
                Some(n.class.field_type.code().into()),
                true,
            ));
        }
        if c.class.grade != n.class.grade {
            out.push(change(
                "grade_changed",
                Some(&n.name),
                Some(c.class.grade.code()),
                Some(n.class.grade.code()),
                true,
            ));
        }
    }
    if current_rows > 0 {
        let ratio = new_rows as f64 / current_rows as f64;
        if !(ROWS_JUMP..=1.0 / ROWS_JUMP).contains(&ratio) {
            out.push(change(
                "rows_jump",
                None,
                Some(current_rows.to_string()),
                Some(new_rows.to_string()),
                true,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shuyu_classify::{FieldClass, FieldType, Grade, Level, Sensitivity};

    fn col(name: &str, t: FieldType, level: Level) -> Column {
        Column {
            name: name.into(),
            class: FieldClass {
                field: name.into(),
                field_type: t,
                sensitivity: Sensitivity::None,
                grade: Grade::general(level),
                confidence: 1.0,
                evidence: String::new(),
                sampled: 0,
            },
            required: false,
            examples: Vec::new(),
            overridden: false,
        }
    }

    #[test]
    fn a_wrong_file_for_a_base_dataset_is_named_change_by_change() {
        let v1 = [
            col("person_id", FieldType::IdNumber, Level::L4),
            col("region", FieldType::Category, Level::L1),
        ];
        let wrong = [
            col("person_id", FieldType::Text, Level::L1),
            col("county", FieldType::Category, Level::L1),
        ];
        let keys: Vec<(String, bool)> = compare(&v1, 10_000, &wrong, 5)
            .iter()
            .map(|c| (c.key(), c.breaking))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("column_removed:region".into(), true),
                ("type_changed:person_id".into(), true),
                ("grade_changed:person_id".into(), true),
                ("column_added:county".into(), false),
                ("rows_jump".into(), true),
            ]
        );
    }

    #[test]
    fn the_same_schema_a_little_larger_is_no_change() {
        let v1 = [col("person_id", FieldType::IdNumber, Level::L4)];
        assert!(compare(&v1, 10_000, &v1, 10_400).is_empty());
        assert!(compare(&v1, 10_000, &v1, 5_000).is_empty(), "half is the edge");
        assert_eq!(compare(&v1, 10_000, &v1, 4_999).len(), 1);
        assert_eq!(compare(&v1, 10_000, &v1, 20_001).len(), 1);
    }
}
