//! An import as a provider asks for it — text from a console form, a multipart
//! field or a command-line flag — checked all at once into the importer's options,
//! so the server and the CLI share one set of rules and one set of messages.

use std::collections::BTreeMap;

use serde::Deserialize;
use shuyu_classify::FieldType;
use shuyu_core::error::{FieldError, Validation};
use shuyu_import::{Format, OnError, Options};

/// The provider's choices for one import; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// `csv`, `xlsx`, `parquet` or `jsonl`; by default from the file name.
    pub format: Option<String>,
    /// A text encoding label (`utf-8`, `gbk`, `gb18030`, …) for CSV; by default detected.
    pub encoding: Option<String>,
    /// `quarantine` (keep good rows, set bad ones aside; the default) or `reject`.
    pub on_error: Option<String>,
    /// Column → type code (`id_number`, `uscc`, `date`, `decimal`, …) replacing the inferred type.
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ImportRequest {
    /// The importer's options, or every field that breaks a rule.
    pub fn options(&self) -> Result<Options, Validation> {
        let mut errors = Vec::new();
        let mut opts = Options::default();
        if let Some(f) = blank(&self.format) {
            match serde_json::from_value::<Format>(serde_json::Value::String(f.to_ascii_lowercase())) {
                Ok(f) => opts.format = Some(f),
                Err(_) => errors.push(FieldError::new("format", "unknown_value").arg("value", f)),
            }
        }
        if let Some(e) = blank(&self.encoding) {
            match encoding_rs::Encoding::for_label(e.as_bytes()) {
                Some(enc) => opts.encoding = Some(enc),
                None => errors.push(FieldError::new("encoding", "unknown_value").arg("value", e)),
            }
        }
        match blank(&self.on_error) {
            None | Some("quarantine") => {}
            Some("reject") => opts.on_error = OnError::Reject,
            Some(other) => errors.push(FieldError::new("on_error", "unknown_value").arg("value", other)),
        }
        for (column, ty) in &self.overrides {
            match ty.trim().parse::<FieldType>() {
                Ok(t) => {
                    opts.overrides.insert(column.clone(), t);
                }
                Err(e) => errors.push(e.at(format!("overrides.{column}"))),
            }
        }
        if errors.is_empty() {
            Ok(opts)
        } else {
            Err(Validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_choice_is_named_at_once() {
        let r = ImportRequest {
            format: Some("docx".into()),
            encoding: Some("klingon".into()),
            on_error: Some("ignore".into()),
            overrides: BTreeMap::from([("phone".into(), "telephone".into())]),
        };
        let fields: Vec<String> = r.options().expect_err("bad").0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["format", "encoding", "on_error", "overrides.phone"]);
    }

    #[test]
    fn good_choices_become_options() {
        let r = ImportRequest {
            format: Some("CSV".into()),
            encoding: Some("gbk".into()),
            on_error: Some("reject".into()),
            overrides: BTreeMap::from([("owner".into(), "party_id".into())]),
        };
        let o = r.options().expect("ok");
        assert_eq!(o.format, Some(Format::Csv));
        assert_eq!(o.encoding.map(|e| e.name()), Some("GBK"));
        assert_eq!(o.on_error, OnError::Reject);
        assert_eq!(o.overrides.get("owner"), Some(&FieldType::PartyId));
        assert!(ImportRequest::default().options().is_ok());
    }
}
