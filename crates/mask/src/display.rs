//! Partial display masks (部分屏蔽): keep a head and a tail, mask the middle, keep the length
//! — the common Chinese convention by default. A value too short to keep both ends is masked
//! whole but for its first character, so a mask never shows a short value entire.

use arrow::array::ArrayRef;

use crate::{MaskError, Technique, map_strings, map_strings_into};

/// Keeps `head` and `tail` characters, replaces the others with `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayMask {
    /// Characters kept at the start.
    pub head: usize,
    /// Characters kept at the end.
    pub tail: usize,
    /// The masking character.
    pub mask: char,
}

/// Two-character surnames (复姓) the name mask keeps whole.
const COMPOUND_SURNAMES: [&str; 12] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
];

impl DisplayMask {
    /// ID numbers: first 1 + last 2 (`3***************12`).
    pub const ID_NUMBER: DisplayMask = DisplayMask {
        head: 1,
        tail: 2,
        mask: '*',
    };
    /// Mobiles: first 3 + last 4 (`138****5678`).
    pub const MOBILE: DisplayMask = DisplayMask {
        head: 3,
        tail: 4,
        mask: '*',
    };
    /// Bank cards: first 6 + last 4.
    pub const BANK_CARD: DisplayMask = DisplayMask {
        head: 6,
        tail: 4,
        mask: '*',
    };

    /// Masks one value.
    pub fn mask_value(&self, v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        self.mask_into(v, &mut out);
        out
    }

    /// Masks one value into `out` (ASCII values — IDs, mobiles, cards — byte by byte).
    pub fn mask_into(&self, v: &str, out: &mut String) {
        let n = if v.is_ascii() { v.len() } else { v.chars().count() };
        let (head, tail) = if self.head + self.tail < n {
            (self.head, self.tail)
        } else {
            (n.min(1), 0)
        };
        if v.is_ascii() {
            out.push_str(&v[..head]);
            out.extend(std::iter::repeat_n(self.mask, n - head - tail));
            out.push_str(&v[n - tail..]);
            return;
        }
        for (i, c) in v.chars().enumerate() {
            out.push(if i < head || i >= n - tail { c } else { self.mask });
        }
    }
}

impl Technique for DisplayMask {
    fn id(&self) -> &'static str {
        "display_mask"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings_into(self.id(), column, |v, out| {
            self.mask_into(v, out);
            true
        })
    }
}

/// Names keep the surname (a known two-character surname whole): `张**`, `欧阳*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NameMask;

impl NameMask {
    /// Masks one name.
    pub fn mask_value(v: &str) -> String {
        Self::mask_of(v).mask_value(v)
    }
}

impl NameMask {
    fn mask_of(v: &str) -> DisplayMask {
        let head = if COMPOUND_SURNAMES.iter().any(|s| v.starts_with(s)) && v.chars().count() > 2 {
            2
        } else {
            1
        };
        DisplayMask {
            head,
            tail: 0,
            mask: '*',
        }
    }
}

impl Technique for NameMask {
    fn id(&self) -> &'static str {
        "display_mask"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings_into(self.id(), column, |v, out| {
            Self::mask_of(v).mask_into(v, out);
            true
        })
    }
}

/// Addresses down to their district (区/县, or the city for a city-level address), the rest
/// replaced by a fixed `****` so the length says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressMask;

impl AddressMask {
    /// Masks one address.
    pub fn mask_value(v: &str) -> String {
        let cut = ["区", "县", "旗"]
            .iter()
            .filter_map(|m| v.find(m).map(|i| i + m.len()))
            .min()
            .or_else(|| v.find('市').map(|i| i + '市'.len_utf8()));
        match cut {
            Some(i) => format!("{}****", &v[..i]),
            None => "****".into(),
        }
    }
}

impl Technique for AddressMask {
    fn id(&self) -> &'static str {
        "display_mask"
    }
    fn apply(&self, column: &ArrayRef) -> Result<ArrayRef, MaskError> {
        map_strings(self.id(), column, |v| Some(Self::mask_value(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_common_convention() {
        assert_eq!(
            DisplayMask::ID_NUMBER.mask_value("379901198503011234"),
            "3***************34"
        );
        assert_eq!(DisplayMask::MOBILE.mask_value("13812345678"), "138****5678");
        assert_eq!(
            DisplayMask::BANK_CARD.mask_value("6222021234567890123"),
            "622202*********0123"
        );
        assert_eq!(NameMask::mask_value("张三丰"), "张**");
        assert_eq!(NameMask::mask_value("欧阳娜娜"), "欧阳**");
        assert_eq!(NameMask::mask_value("李"), "李");
        assert_eq!(AddressMask::mask_value("示范市东区幸福路12号3单元"), "示范市东区****");
        assert_eq!(AddressMask::mask_value("示范市南县城关镇"), "示范市南县****");
        assert_eq!(AddressMask::mask_value("幸福路12号"), "****");
    }

    proptest! {
        /// A mask keeps the length and both ends, masks everything between, and never shows
        /// a value too short for both ends whole.
        #[test]
        fn masks_keep_the_format(v in "\\PC{0,30}", head in 0usize..8, tail in 0usize..8) {
            let m = DisplayMask { head, tail, mask: '*' };
            let out = m.mask_value(&v);
            let (a, b): (Vec<char>, Vec<char>) = (v.chars().collect(), out.chars().collect());
            prop_assert_eq!(a.len(), b.len());
            if head + tail < a.len() {
                prop_assert_eq!(&a[..head], &b[..head]);
                prop_assert_eq!(&a[a.len() - tail..], &b[b.len() - tail..]);
                prop_assert!(b[head..b.len() - tail].iter().all(|c| *c == '*'));
            } else if a.len() > 1 {
                prop_assert!(b[1..].iter().all(|c| *c == '*'));
            }
        }
    }
}
