//! The enterprise register: enterprise `j` is a pure function of `(seed, j)`.
//! Codes are unique by construction (a keyed permutation of `j` fills seven
//! characters of the organisation part), capital is heavy-tailed with a few
//! giants, and 南县 holds only about 3 % of enterprises.

use shuyu_core::party::Uscc;

use crate::calendar::{as_of_day, civil_from_days, days_from_civil, iso_date};
use crate::error::GenError;
use crate::rng::{Draw, hash, permute, tag};
use crate::spec::COUNTIES;

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// 31^7: the distinct serials that seven code characters hold.
const SERIAL_SPACE: u64 = 27_512_614_111;
/// Share of enterprises registered in each county (东区, 西区, 南县).
pub(crate) const COUNTY_SHARE: [(usize, f64); 3] = [(0, 0.62), (1, 0.35), (2, 0.03)];

/// Registration status: 存续 (active), 注销 (deregistered), 吊销 (licence revoked).
pub const STATUSES: [&str; 3] = ["存续", "注销", "吊销"];

/// One registered enterprise.
#[derive(Debug, Clone, PartialEq)]
pub struct Enterprise {
    /// Index in the register (row `index + 1` of `enterprise.csv`).
    pub index: u64,
    /// Unified social credit code `91` + county code + 9 characters + check.
    pub uscc: Uscc,
    /// Registered name, always ending in `有限公司`.
    pub name: String,
    /// GB/T 4754 section letter + 2-digit division, e.g. `C13`.
    pub industry: String,
    /// Registered capital in yuan.
    pub registered_capital: u64,
    /// Day of establishment, days since 1970-01-01.
    pub established_day: i64,
    /// County code of registration.
    pub region: &'static str,
    /// One of [`STATUSES`].
    pub status: &'static str,
}

impl Enterprise {
    /// `YYYY-MM-DD` of establishment.
    pub fn established(&self) -> String {
        iso_date(self.established_day)
    }

    /// Whether it still trades (may employ, pay tax).
    pub fn is_active(&self) -> bool {
        self.status == STATUSES[0]
    }
}

/// Enterprise `index` of the register generated with `seed`.
pub fn enterprise(seed: u64, index: u64) -> Result<Enterprise, GenError> {
    let mut r = Draw::new(seed, tag::ENTERPRISE, index);
    let county = r.weighted(&COUNTY_SHARE);
    let (section, divisions, words) = r.weighted(INDUSTRIES);
    let division = r.between(i64::from(divisions.0), i64::from(divisions.1));
    let earliest = days_from_civil(1984, 1, 1);
    let back = r.exponential(9.0 * 365.25).min((as_of_day() - earliest) as f64) as i64;
    let established_day = as_of_day() - back;
    let capital = if r.chance(0.005) {
        // A handful of giants: state-owned groups, listed companies.
        r.pareto(5.0e8, 0.9).min(8.0e10)
    } else {
        r.lognormal(1.0e6, 2.0).clamp(1.0e4, 5.0e9)
    };
    let registered_capital = round_capital(capital);
    let status = r.weighted(&[(STATUSES[0], 0.86), (STATUSES[1], 0.10), (STATUSES[2], 0.04)]);
    let prefix = if r.chance(0.5) { "示范市" } else { COUNTIES[county].1 };
    let kind = if registered_capital >= 1_000_000_000 && r.chance(0.7) {
        "股份有限公司"
    } else {
        "有限公司"
    };
    let name = format!(
        "{prefix}{}{}{}{kind}",
        r.pick(TRADE_CHARS),
        r.pick(TRADE_CHARS),
        r.pick(words)
    );
    // Organisation part: "MA" for codes issued since the 2015 reform, two digits before it,
    // then seven characters of a unique serial.
    let (year, _, _) = civil_from_days(established_day);
    let mut body = format!("91{}", COUNTIES[county].0);
    if year >= 2015 {
        body.push_str("MA");
    } else {
        body.push(USCC_ALPHABET[r.below(10) as usize] as char);
        body.push(USCC_ALPHABET[r.below(10) as usize] as char);
    }
    let mut serial = permute(hash(&[seed, tag::ENTERPRISE_CODE]), index % SERIAL_SPACE, SERIAL_SPACE);
    let mut tail = [b'0'; 7];
    for c in tail.iter_mut().rev() {
        *c = USCC_ALPHABET[(serial % 31) as usize];
        serial /= 31;
    }
    body.extend(tail.iter().map(|b| *b as char));
    let uscc = Uscc::complete(&body).ok_or(GenError::Internal("generated uscc is malformed"))?;
    Ok(Enterprise {
        index,
        uscc,
        name,
        industry: format!("{section}{division:02}"),
        registered_capital,
        established_day,
        region: COUNTIES[county].0,
        status,
    })
}

/// Registered capital is declared in round amounts: whole ten-thousands (万元) above 100 000.
fn round_capital(yuan: f64) -> u64 {
    let y = yuan.max(10_000.0) as u64;
    if y >= 100_000 {
        (y + 5_000) / 10_000 * 10_000
    } else {
        (y + 500) / 1_000 * 1_000
    }
}

/// GB/T 4754-2017 sections with their division ranges and name words,
/// weighted like a city register (trade and services dominate, mining is rare).
type Industry = (char, (u8, u8), &'static [&'static str]);
const INDUSTRIES: &[(Industry, f64)] = &[
    (('A', (1, 5), &["农业", "种植", "养殖"]), 3.0),
    (('B', (6, 12), &["矿业", "石材"]), 0.3),
    (
        ('C', (13, 43), &["机械制造", "食品", "纺织", "化工", "电子", "新材料"]),
        12.0,
    ),
    (('D', (44, 46), &["能源", "热力", "燃气"]), 0.5),
    (('E', (47, 50), &["建筑工程", "建设", "装饰工程"]), 7.0),
    (('F', (51, 52), &["商贸", "贸易", "百货", "供应链"]), 30.0),
    (('G', (53, 60), &["物流", "运输", "快递"]), 5.0),
    (('H', (61, 62), &["酒店管理", "餐饮管理"]), 4.0),
    (('I', (63, 65), &["科技", "软件", "信息技术", "网络科技"]), 8.0),
    (('J', (66, 69), &["投资", "融资担保", "小额贷款"]), 1.5),
    (('K', (70, 70), &["房地产开发", "置业"]), 3.0),
    (('L', (71, 72), &["商务咨询", "人力资源", "租赁"]), 10.0),
    (('M', (73, 75), &["技术服务", "工程设计", "检测"]), 8.0),
    (('N', (76, 79), &["环境工程", "物业管理"]), 3.0),
    (('O', (80, 82), &["家政服务", "维修"]), 2.0),
    (('P', (83, 83), &["教育咨询", "培训"]), 0.8),
    (('Q', (84, 85), &["医疗管理", "健康管理"]), 0.6),
    (('R', (86, 90), &["文化传媒", "体育"]), 2.0),
];

const TRADE_CHARS: &[&str] = &[
    "鑫", "源", "恒", "通", "华", "泰", "瑞", "丰", "宏", "达", "盛", "兴", "隆", "昌", "德", "信", "和", "安", "永",
    "嘉", "宇", "晟", "博", "远", "天", "正", "金", "诚", "汇", "创", "新", "辰", "锦", "耀", "润", "联",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprises_are_valid_and_distinct() {
        let mut codes = std::collections::HashSet::new();
        for j in 0..2000 {
            let e = enterprise(3, j).expect("enterprise");
            assert!(Uscc::parse(e.uscc.as_str()).is_ok());
            assert!(e.uscc.as_str().starts_with("91379"));
            assert!(e.name.ends_with("有限公司"));
            assert!(e.registered_capital >= 10_000);
            assert!(codes.insert(e.uscc.to_string()));
        }
    }
}
