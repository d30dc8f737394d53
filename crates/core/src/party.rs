//! The parties of the source rules (R-03…R-10) and the validated values that
//! describe them. Every constructor checks its rule; holding a value means it is valid.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::error::FieldError;
use crate::secret::Secret;

/// The kind of an organisation — which party of the rules it is (GLOSSARY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgKind {
    /// 数据主管部门 — the data authority.
    Authority,
    /// 数据提供单位 — a data provider.
    Provider,
    /// 运营主体 — the operator.
    Operator,
    /// 开发主体 — a developer.
    Developer,
    /// 专家组 — an expert panel member's organisation.
    Expert,
    /// 监管部门 — a supervisor.
    Supervisor,
    /// 数据使用方 — a consumer.
    Consumer,
}

impl OrgKind {
    /// Every kind, in the order of the rules.
    pub const ALL: [OrgKind; 7] = [
        OrgKind::Authority,
        OrgKind::Provider,
        OrgKind::Operator,
        OrgKind::Developer,
        OrgKind::Expert,
        OrgKind::Supervisor,
        OrgKind::Consumer,
    ];

    /// The stable code used in the store, the API and the policies.
    pub fn code(self) -> &'static str {
        self.party_role().code()
    }

    /// The role every member of such an organisation acts in.
    pub fn party_role(self) -> Role {
        match self {
            OrgKind::Authority => Role::Authority,
            OrgKind::Provider => Role::Provider,
            OrgKind::Operator => Role::Operator,
            OrgKind::Developer => Role::Developer,
            OrgKind::Expert => Role::Expert,
            OrgKind::Supervisor => Role::Supervisor,
            OrgKind::Consumer => Role::Consumer,
        }
    }

    /// Roles a member of such an organisation may hold. An operator may also
    /// develop (the one-level model of Binzhou, R-06); every kind may have administrators.
    pub fn permitted_roles(self) -> &'static [Role] {
        match self {
            OrgKind::Authority => &[Role::Authority, Role::Admin],
            OrgKind::Provider => &[Role::Provider, Role::Admin],
            OrgKind::Operator => &[Role::Operator, Role::Developer, Role::Admin],
            OrgKind::Developer => &[Role::Developer, Role::Admin],
            OrgKind::Expert => &[Role::Expert, Role::Admin],
            OrgKind::Supervisor => &[Role::Supervisor, Role::Admin],
            OrgKind::Consumer => &[Role::Consumer, Role::Admin],
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for OrgKind {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgKind::ALL.into_iter().find(|k| k.code() == s).ok_or_else(|| {
            FieldError::new("kind", "unknown_value").arg("value", s.chars().take(40).collect::<String>())
        })
    }
}

/// A role a user or API key acts in. Party roles mirror [`OrgKind`]; `Admin`
/// administers the organisation's own accounts (and, in an authority, the platform's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Acts for the data authority.
    Authority,
    /// Acts for a data provider.
    Provider,
    /// Acts for the operator.
    Operator,
    /// Develops products in the domain.
    Developer,
    /// Scores applications.
    Expert,
    /// Oversees, read-only.
    Supervisor,
    /// Uses published products.
    Consumer,
    /// Administers accounts of the organisation.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Authority,
        Role::Provider,
        Role::Operator,
        Role::Developer,
        Role::Expert,
        Role::Supervisor,
        Role::Consumer,
        Role::Admin,
    ];

    /// The stable code used in the store, the API and the policies.
    pub fn code(self) -> &'static str {
        match self {
            Role::Authority => "authority",
            Role::Provider => "provider",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Expert => "expert",
            Role::Supervisor => "supervisor",
            Role::Consumer => "consumer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.code() == s).ok_or_else(|| {
            FieldError::new("roles", "unknown_value").arg("value", s.chars().take(40).collect::<String>())
        })
    }
}

/// A non-empty set of roles that an organisation of a given kind permits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    /// Checks `roles` against what `kind` permits; the party role is always included.
    pub fn for_org(kind: OrgKind, roles: impl IntoIterator<Item = Role>) -> Result<Self, FieldError> {
        let mut set = BTreeSet::new();
        set.insert(kind.party_role());
        for (i, r) in roles.into_iter().enumerate() {
            if !kind.permitted_roles().contains(&r) {
                return Err(FieldError::new(format!("roles[{i}]"), "role_not_permitted")
                    .arg("role", r)
                    .arg("kind", kind));
            }
            set.insert(r);
        }
        Ok(Self(set))
    }

    /// Rebuilds a set from its stored form (space-separated codes), trusting the store.
    pub fn from_stored(s: &str) -> Result<Self, FieldError> {
        s.split_whitespace()
            .map(Role::from_str)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    /// The stored form: space-separated codes in a fixed order.
    pub fn to_stored(&self) -> String {
        self.0.iter().map(|r| r.code()).collect::<Vec<_>>().join(" ")
    }

    /// Whether the set holds `role`.
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The roles, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// The roles both sets hold (an API key never holds more than its creator).
    pub fn intersection(&self, other: &RoleSet) -> RoleSet {
        RoleSet(self.0.intersection(&other.0).copied().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A 6-digit administrative region code in the shape of GB/T 2260 (city `379900`, county `379901`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// Parses a 6-digit code.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_string()))
        } else {
            Err(FieldError::new("region", "region_code_format"))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A region: the city or one of its counties. Counties are regions
/// inside the one city deployment, never platforms of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Its code.
    pub code: RegionCode,
    /// Its Chinese name.
    pub name_zh: String,
    /// Its English name.
    pub name_en: String,
    /// The enclosing region (the city, for a county); `None` for the city.
    pub parent: Option<RegionCode>,
}

fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), FieldError> {
    let n = s.chars().count();
    if n < min {
        Err(FieldError::new(field, "too_short").arg("min", min))
    } else if n > max {
        Err(FieldError::new(field, "too_long").arg("max", max))
    } else {
        Ok(())
    }
}

/// A login name: 3–32 characters, lowercase ASCII letters, digits, `.`, `_`, `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Parses and normalises (trims, lowercases) a username.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim().to_lowercase();
        check_len("username", &s, 3, 32)?;
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if first_ok && rest_ok {
            Ok(Self(s))
        } else {
            Err(FieldError::new("username", "username_chars"))
        }
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A human-readable name (organisation or person): trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a name for `field`.
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        check_len(field, s, 1, 100)?;
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "control_chars"));
        }
        Ok(Self(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the policy: 10–128 characters, at least three
/// of four classes (lower, upper, digit, other), not containing the username.
/// Follows the complexity expectation of MLPS 2.0 (等保 2.0) for identification.
#[derive(Debug, Clone)]
pub struct NewPassword(Secret<String>);

impl NewPassword {
    /// Minimum length in characters.
    pub const MIN_LEN: usize = 10;
    /// Maximum length in characters (argon2 cost is bounded anyway; this stops abuse).
    pub const MAX_LEN: usize = 128;

    /// Checks `password` for `username`.
    pub fn parse(password: &str, username: &Username) -> Result<Self, FieldError> {
        let n = password.chars().count();
        if n < Self::MIN_LEN {
            return Err(FieldError::new("password", "password_too_short").arg("min", Self::MIN_LEN));
        }
        if n > Self::MAX_LEN {
            return Err(FieldError::new("password", "too_long").arg("max", Self::MAX_LEN));
        }
        let classes = [
            password.chars().any(|c| c.is_ascii_lowercase()),
            password.chars().any(|c| c.is_ascii_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_ascii_alphanumeric()),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if classes < 3 {
            return Err(FieldError::new("password", "password_too_simple"));
        }
        if password.to_lowercase().contains(username.as_str()) {
            return Err(FieldError::new("password", "password_contains_username"));
        }
        Ok(Self(Secret::new(password.to_string())))
    }

    /// The password, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters
/// from a 31-symbol alphabet with a weighted mod-31 check character.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uscc(String);

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl Uscc {
    /// Parses a code, checking alphabet, length and the check character.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim().to_ascii_uppercase();
        if s.len() != 18 {
            return Err(FieldError::new("uscc", "uscc_format"));
        }
        let values: Option<Vec<u32>> = s
            .bytes()
            .map(|b| USCC_ALPHABET.iter().position(|a| *a == b).map(|p| p as u32))
            .collect();
        let Some(values) = values else {
            return Err(FieldError::new("uscc", "uscc_format"));
        };
        let expected = Self::check_value(&values[..17]);
        if values[17] != expected {
            return Err(FieldError::new("uscc", "uscc_check"));
        }
        Ok(Self(s))
    }

    /// The check character for the first 17 characters of a code (as alphabet values).
    pub fn check_value(first17: &[u32]) -> u32 {
        let sum: u32 = first17.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
        (31 - sum % 31) % 31
    }

    /// Completes 17 valid characters with their check character (for generators and tests).
    pub fn complete(first17: &str) -> Option<Uscc> {
        let values: Option<Vec<u32>> = first17
            .bytes()
            .map(|b| USCC_ALPHABET.iter().position(|a| *a == b).map(|p| p as u32))
            .collect();
        let values = values.filter(|v| v.len() == 17)?;
        let check = USCC_ALPHABET[Self::check_value(&values) as usize] as char;
        Some(Uscc(format!("{first17}{check}")))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an organisation is, as the data authority recorded it in the directory: what the
/// cross-border rule (R-38(5)) reads for a recipient — never a flag from whoever asks for a
/// release. Hong Kong, Macao and Taiwan are outside the mainland for data leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jurisdiction {
    /// 境内 — the mainland.
    Mainland,
    /// 香港特别行政区.
    HongKong,
    /// 澳门特别行政区.
    Macao,
    /// 台湾地区.
    Taiwan,
    /// 境外 — any other country or region.
    Abroad,
}

impl Jurisdiction {
    /// Every jurisdiction.
    pub const ALL: [Jurisdiction; 5] = [
        Jurisdiction::Mainland,
        Jurisdiction::HongKong,
        Jurisdiction::Macao,
        Jurisdiction::Taiwan,
        Jurisdiction::Abroad,
    ];

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Jurisdiction::Mainland => "mainland",
            Jurisdiction::HongKong => "hong_kong",
            Jurisdiction::Macao => "macao",
            Jurisdiction::Taiwan => "taiwan",
            Jurisdiction::Abroad => "abroad",
        }
    }

    /// Whether data sent there leaves the mainland.
    pub fn cross_border(self) -> bool {
        self != Jurisdiction::Mainland
    }
}

impl FromStr for Jurisdiction {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jurisdiction::ALL.into_iter().find(|j| j.code() == s).ok_or_else(|| {
            FieldError::new("jurisdiction", "unknown_value").arg("value", s.chars().take(40).collect::<String>())
        })
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(Username::parse("  Zhang.Wei ").map(|u| u.0), Ok("zhang.wei".into()));
        assert_eq!(Username::parse("ab").map_err(|e| e.rule), Err("too_short"));
        assert_eq!(Username::parse("1abc").map_err(|e| e.rule), Err("username_chars"));
        assert_eq!(Username::parse("张伟").map_err(|e| e.rule), Err("too_short"));
        assert_eq!(Username::parse("zhang wei").map_err(|e| e.rule), Err("username_chars"));
    }

    #[test]
    fn password_policy_names_the_rule() {
        let u = Username::parse("liming").expect("valid");
        assert_eq!(
            NewPassword::parse("Short1!", &u).map(|_| ()).map_err(|e| e.rule),
            Err("password_too_short")
        );
        assert_eq!(
            NewPassword::parse("alllowercaseletters", &u)
                .map(|_| ())
                .map_err(|e| e.rule),
            Err("password_too_simple")
        );
        assert_eq!(
            NewPassword::parse("Xx1-liming-2026", &u)
                .map(|_| ())
                .map_err(|e| e.rule),
            Err("password_contains_username")
        );
        assert!(NewPassword::parse("Correct-Horse-42", &u).is_ok());
        assert!(NewPassword::parse("数据可用不可见Abc123", &u).is_ok());
    }

    #[test]
    fn roles_must_fit_the_organisation() {
        assert!(RoleSet::for_org(OrgKind::Operator, [Role::Developer]).is_ok());
        let err = RoleSet::for_org(OrgKind::Developer, [Role::Admin, Role::Authority]).expect_err("not permitted");
        assert_eq!(err.field, "roles[1]");
        assert_eq!(err.rule, "role_not_permitted");
        let set = RoleSet::for_org(OrgKind::Consumer, []).expect("party role only");
        assert_eq!(set.to_stored(), "consumer");
        assert_eq!(RoleSet::from_stored(&set.to_stored()), Ok(set));
    }

    #[test]
    fn known_uscc_values() {
        // Check characters computed by hand from GB 32100-2015's weights.
        let good = Uscc::complete("91379900MA3C00001").expect("valid alphabet");
        assert!(Uscc::parse(good.as_str()).is_ok());
        let mut bad = good.as_str().to_string();
        let last = bad.pop().expect("non-empty");
        bad.push(if last == '0' { '1' } else { '0' });
        assert_eq!(Uscc::parse(&bad).map_err(|e| e.rule), Err("uscc_check"));
        assert_eq!(
            Uscc::parse("91379900MA3C0000I0").map_err(|e| e.rule),
            Err("uscc_format")
        );
    }

    proptest! {
        #[test]
        fn completed_uscc_always_parses_and_any_single_change_is_caught(
            body in proptest::collection::vec(0usize..31, 17),
            pos in 0usize..18,
            delta in 1usize..31,
        ) {
            let first17: String = body.iter().map(|i| USCC_ALPHABET[*i] as char).collect();
            let code = Uscc::complete(&first17).expect("valid alphabet");
            prop_assert!(Uscc::parse(code.as_str()).is_ok());
            let mut bytes = code.as_str().as_bytes().to_vec();
            let old = USCC_ALPHABET.iter().position(|a| *a == bytes[pos]).expect("in alphabet");
            bytes[pos] = USCC_ALPHABET[(old + delta) % 31];
            let changed = String::from_utf8(bytes).expect("ascii");
            prop_assert!(Uscc::parse(&changed).is_err());
        }
    }
}

/// Whether an organisation or account may act. Disabling is how the platform
/// "deletes": records stay for the audit trail, access stops at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// May log in and act.
    Active,
    /// May not log in; existing sessions and keys stop working.
    Disabled,
}

impl Status {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
        }
    }
}

impl FromStr for Status {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Status::Active),
            "disabled" => Ok(Status::Disabled),
            _ => Err(FieldError::new("status", "unknown_value").arg("value", s.chars().take(40).collect::<String>())),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
