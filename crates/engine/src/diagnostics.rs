//! A failed job's diagnostics: the engine's own error text, which may quote full data (a cast
//! of a `string_agg` of records fails with the records in its message). The full text is kept
//! wrapped under the master key, inside the domain. What the operator's security staff read
//! through the API is that text with every value-like run taken out — the words of the
//! engine (operator, type names, the shape of the failure) stay, quoted strings, numbers and
//! non-ASCII runs (names, addresses) do not.

use serde::Serialize;
use utoipa::ToSchema;

/// What stands where a value was.
pub const REDACTED: &str = "‹…›";

/// A failed job's diagnostics as the operator's security staff read them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobDiagnostics {
    /// The job.
    pub job_id: String,
    /// The fixed code the job view shows (`job_failed:cast`).
    pub reason: Option<String>,
    /// The engine's text with every value-like run replaced by `‹…›`.
    pub text: String,
    /// How many runs were replaced.
    pub redacted: usize,
}

/// Takes every value-like run out of an engine message: anything between quotes (`'…'`,
/// `"…"`, `` `…` ``), every run of two or more digits (but the width 16, 32 or 64 ending a type
/// name, `Int64`), and every run of non-ASCII characters. Single digits stay (`Utf8View` and
/// arity words need them); a value cannot be
/// spelled in single digits separated by ASCII words without a quote, a longer digit run or
/// a non-ASCII character, except as a string of letters — and letters alone are taken out
/// when they stand in quotes, which is how every DataFusion and Arrow message quotes a value.
pub fn scrub(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // Up to the matching quote, or the end of the text (an unclosed quote hides
                // everything after it: fail closed).
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                out.push(c);
                out.push_str(REDACTED);
                out.push(c);
                n += 1;
            }
            d if d.is_ascii_digit() && chars.peek().is_some_and(|e| e.is_ascii_digit()) => {
                let after_letter = out.chars().last().is_some_and(|p| p.is_ascii_alphabetic());
                let mut run = String::from(d);
                while chars
                    .peek()
                    .is_some_and(|e| e.is_ascii_digit() || *e == '.' || *e == '-')
                {
                    run.extend(chars.next());
                }
                // The width of a type name (`Int64`, `Float32`) is a word of the engine, not a
                // value: 16, 32 or 64 right after letters, ending the word — nothing else that follows
                // letters is kept, so an unquoted code like `A12` is still taken out.
                let type_width = after_letter
                    && matches!(run.as_str(), "16" | "32" | "64")
                    && !chars.peek().is_some_and(|e| e.is_ascii_alphanumeric());
                if type_width {
                    out.push_str(&run);
                } else {
                    out.push_str(REDACTED);
                    n += 1;
                }
            }
            d if !d.is_ascii() => {
                while chars.peek().is_some_and(|e| !e.is_ascii()) {
                    chars.next();
                }
                out.push_str(REDACTED);
                n += 1;
            }
            d => out.push(d),
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_numbers_and_names_are_taken_out_and_the_words_stay() {
        let msg =
            "Arrow error: Cast error: Cannot cast string '110101199001011234,张三,1990-01-01' to value of Int64 type";
        let (s, n) = scrub(msg);
        assert_eq!(
            s,
            "Arrow error: Cast error: Cannot cast string '‹…›' to value of Int64 type"
        );
        assert_eq!(n, 1);
        let (s, n) = scrub("value 13800138000 of 王 five at 2024-05-06");
        assert!(
            !s.contains("13800138000") && !s.contains('王') && !s.contains("2024"),
            "{s}"
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn an_unclosed_quote_hides_the_rest() {
        let (s, _) = scrub("bad input 'abc, def and more");
        assert_eq!(s, "bad input '‹…›'");
    }
}
