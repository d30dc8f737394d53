//! Translations. The catalogs live in `locales/*.toml` (flat keys grouped in
//! tables) and are compiled in; zh-CN is the default language, en the other.
//! Both catalogs must have the same keys — a test checks it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Arg, Message};

/// A language the platform speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    ZhCn,
    /// English.
    En,
}

impl Lang {
    /// All supported languages, default first.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// The BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Parses a tag such as `zh-CN`, `zh`, `en-US`; `None` for a language we do not speak.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// Picks the best supported language from an `Accept-Language` header
    /// (RFC 9110 §12.5.4, q-values honoured); zh-CN when nothing matches.
    pub fn negotiate(accept_language: &str) -> Lang {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (pos, item) in accept_language.split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            let Some(lang) = Lang::from_tag(tag) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((bq, bpos, _)) => q > bq || (q == bq && pos < bpos),
            };
            if better {
                best = Some((q, pos, lang));
            }
        }
        best.map(|(_, _, l)| l).unwrap_or_default()
    }
}

/// The compiled-in translation catalogs.
#[derive(Debug)]
pub struct Catalog {
    zh: HashMap<String, String>,
    en: HashMap<String, String>,
}

const ZH_CN: &str = include_str!("../locales/zh-CN.toml");
const EN: &str = include_str!("../locales/en.toml");

/// The process-wide catalog, parsed once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog {
        zh: flatten_toml(ZH_CN),
        en: flatten_toml(EN),
    })
}

/// Shorthand for `catalog().text(lang, key)`.
pub fn t(lang: Lang, key: &str) -> String {
    catalog().text(lang, key).to_string()
}

/// Shorthand for `catalog().render(lang, msg)`.
pub fn render(lang: Lang, msg: &Message) -> String {
    catalog().render(lang, msg)
}

fn flatten_toml(src: &str) -> HashMap<String, String> {
    // The catalogs are compiled in and checked by tests; a parse failure is a build defect.
    let table: toml::Table = match src.parse() {
        Ok(t) => t,
        Err(_) => return HashMap::new(),
    };
    let mut out = HashMap::new();
    flatten_into("", &table, &mut out);
    out
}

fn flatten_into(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten_into(&key, t, out),
            _ => {}
        }
    }
}

impl Catalog {
    fn map(&self, lang: Lang) -> &HashMap<String, String> {
        match lang {
            Lang::ZhCn => &self.zh,
            Lang::En => &self.en,
        }
    }

    /// The translation of `key`; falls back to zh-CN, then to the key itself.
    pub fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.map(lang)
            .get(key)
            .or_else(|| self.zh.get(key))
            .map(String::as_str)
            .unwrap_or(key)
    }

    /// Whether the catalog of `lang` has `key`.
    pub fn has(&self, lang: Lang, key: &str) -> bool {
        self.map(lang).contains_key(key)
    }

    /// Renders a message, substituting `{name}` with its arguments (translated ones translated).
    pub fn render(&self, lang: Lang, msg: &Message) -> String {
        let mut out = self.text(lang, &msg.key).to_string();
        for (name, arg) in &msg.args {
            let value = match arg {
                Arg::Text(s) => s.clone(),
                Arg::Key(k) => {
                    // A field with no display name is shown by its path.
                    if self.has(lang, k) || self.zh.contains_key(k) {
                        self.text(lang, k).to_string()
                    } else {
                        k.rsplit('.').next().unwrap_or(k).to_string()
                    }
                }
            };
            out = out.replace(&format!("{{{name}}}"), &value);
        }
        out
    }

    /// Keys present in one catalog but missing from the other.
    pub fn missing_keys(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .zh
            .keys()
            .filter(|k| !self.en.contains_key(*k))
            .map(|k| format!("en: {k}"))
            .chain(
                self.en
                    .keys()
                    .filter(|k| !self.zh.contains_key(*k))
                    .map(|k| format!("zh-CN: {k}")),
            )
            .collect();
        missing.sort();
        missing
    }

    /// Number of keys in the default catalog (a parse failure shows up as zero).
    pub fn len(&self) -> usize {
        self.zh.len()
    }

    /// Whether the default catalog is empty (it never is, unless a file failed to parse).
    pub fn is_empty(&self) -> bool {
        self.zh.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_parse_and_have_the_same_keys() {
        let c = catalog();
        assert!(ZH_CN.parse::<toml::Table>().is_ok(), "zh-CN.toml parses");
        assert!(EN.parse::<toml::Table>().is_ok(), "en.toml parses");
        assert!(c.len() > 20, "catalog has {} keys", c.len());
        assert_eq!(c.missing_keys(), Vec::<String>::new());
    }

    #[test]
    fn every_error_code_has_a_title_and_every_title_a_message() {
        let c = catalog();
        let errors: Vec<&String> = c.zh.keys().filter(|k| k.starts_with("error.")).collect();
        assert!(!errors.is_empty());
        for k in errors {
            let title = k.replacen("error.", "title.", 1);
            assert!(c.zh.contains_key(&title), "{k} has no {title}");
        }
        for k in c.zh.keys().filter(|k| k.starts_with("title.")) {
            assert!(
                c.zh.contains_key(&k.replacen("title.", "error.", 1)),
                "{k} has no message"
            );
        }
    }

    #[test]
    fn negotiation_prefers_highest_q_and_defaults_to_chinese() {
        assert_eq!(Lang::negotiate(""), Lang::ZhCn);
        assert_eq!(Lang::negotiate("en"), Lang::En);
        assert_eq!(Lang::negotiate("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::negotiate("fr, en;q=0.5, zh-CN;q=0.8"), Lang::ZhCn);
        assert_eq!(Lang::negotiate("de"), Lang::ZhCn);
        assert_eq!(Lang::negotiate("en;q=0, zh"), Lang::ZhCn);
        assert_eq!(Lang::negotiate("zh-Hans-CN;q=0.2, en-GB;q=0.3"), Lang::En);
    }

    #[test]
    fn render_substitutes_and_translates_arguments() {
        let m = Message::new("rule.too_long")
            .arg_key("field", "field.username")
            .arg("max", "32");
        let zh = render(Lang::ZhCn, &m);
        let en = render(Lang::En, &m);
        assert!(zh.contains("用户名") && zh.contains("32"), "{zh}");
        assert!(en.contains("username") && en.contains("32"), "{en}");
    }
}
