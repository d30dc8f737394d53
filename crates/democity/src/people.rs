//! The population: person `i` is a pure function of `(seed, i)`.
//!
//! Uniqueness of identity numbers comes from construction, not from a set:
//! the space of (county, birth day, sequence) is laid out as "slots", each
//! birth day getting as many sequence numbers as the age pyramid and the
//! county's share call for, and person `i` takes slot `permute(i)` of a keyed
//! permutation. Distinct `i` give distinct slots, hence distinct numbers, and
//! the birth dates follow the pyramid because the slots do.

use std::sync::OnceLock;

use shuyu_core::ident::{IdNumber, Sex};

use crate::calendar::{AS_OF, age_on, as_of_day, civil_from_days, compact_date, days_from_civil, iso_date};
use crate::error::GenError;
use crate::rng::{Draw, permute, tag};
use crate::spec::COUNTIES;

/// Oldest age generated.
const MAX_AGE: i32 = 95;
/// Relative population by 5-year age band (0–4, 5–9, …, 90–95), shaped like a
/// recent Chinese census: a bulge at 30–34 and 50–54, a thin old-age top.
const PYRAMID: [f64; 20] = [
    0.55, 0.64, 0.63, 0.55, 0.53, 0.66, 0.86, 0.70, 0.66, 0.81, 0.86, 0.72, 0.55, 0.52, 0.36, 0.23, 0.14, 0.07, 0.03,
    0.01,
];
/// Share of the population registered in each county (东区, 西区, 南县).
const COUNTY_SHARE: [f64; 3] = [0.45, 0.35, 0.20];

/// The slot layout: cumulative capacity per (county, birth day).
struct Slots {
    first_day: i64,
    days: usize,
    /// `cum[c * days + d]` = slots in all (county, day) cells up to and including this one.
    cum: Vec<u64>,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let first_day = days_from_civil(AS_OF.0 - MAX_AGE, 1, 1);
        let last_day = as_of_day();
        let days = (last_day - first_day + 1) as usize;
        let band_max = PYRAMID.iter().fold(0.0f64, |a, b| a.max(*b));
        let share_max = COUNTY_SHARE.iter().fold(0.0f64, |a, b| a.max(*b));
        let mut cum = Vec::with_capacity(days * COUNTY_SHARE.len());
        let mut total = 0u64;
        for share in COUNTY_SHARE {
            for d in 0..days {
                let (y, _, _) = civil_from_days(first_day + d as i64);
                let age = (AS_OF.0 - y).clamp(0, MAX_AGE) as usize;
                let w = PYRAMID[(age / 5).min(PYRAMID.len() - 1)] / band_max * share / share_max;
                total += ((999.0 * w).round() as u64).clamp(2, 999);
                cum.push(total);
            }
        }
        Slots { first_day, days, cum }
    })
}

/// How many distinct people (identity numbers) the demo city can hold.
pub fn capacity() -> u64 {
    slots().cum.last().copied().unwrap_or(0)
}

/// The identity-relevant core of person `i`: cheap to compute, enough to pick by age.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Core {
    pub county: usize,
    pub birth_day: i64,
    pub seq: u32,
}

impl Core {
    pub(crate) fn age(&self) -> i32 {
        age_on(self.birth_day, as_of_day())
    }

    pub(crate) fn id(&self) -> Result<IdNumber, GenError> {
        let first17 = format!(
            "{}{}{:03}",
            COUNTIES[self.county].0,
            compact_date(self.birth_day),
            self.seq
        );
        IdNumber::complete(&first17).ok_or(GenError::Internal("generated identity number is malformed"))
    }
}

/// The core of person `i` (requires `i < capacity()`).
pub(crate) fn core(seed: u64, i: u64) -> Core {
    let s = slots();
    let total = capacity();
    let slot = permute(crate::rng::hash(&[seed, tag::PERSON_SLOT]), i % total.max(1), total);
    let idx = s.cum.partition_point(|c| *c <= slot);
    let before = if idx == 0 { 0 } else { s.cum[idx - 1] };
    Core {
        county: idx / s.days,
        birth_day: s.first_day + (idx % s.days) as i64,
        seq: (slot - before + 1) as u32,
    }
}

/// One resident of the demo city, as the population register lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Index in the population (row `index + 1` of `population.csv`).
    pub index: u64,
    /// Identity number under a county code, with a valid check character.
    pub id: IdNumber,
    /// Chinese name.
    pub name: String,
    /// Sex, agreeing with the identity number.
    pub sex: Sex,
    /// `YYYY-MM-DD`, agreeing with the identity number.
    pub birth_date: String,
    /// Ethnic group (民族), e.g. `汉族`.
    pub ethnicity: &'static str,
    /// County code of residence (usually, not always, the county of the identity number).
    pub region: &'static str,
    /// Street address in the county of residence.
    pub address: String,
    /// 11-digit mobile number.
    pub phone: String,
}

/// Person `index` of the population generated with `seed`: a pure function,
/// so other datasets (and tests) can refer to person k without the file.
pub fn person(seed: u64, index: u64) -> Result<Person, GenError> {
    let c = core(seed, index);
    let id = c.id()?;
    let sex = id.sex();
    let mut r = Draw::new(seed, tag::PERSON, index);
    let surname = r.weighted(SURNAMES);
    let given_pool = if sex == Sex::Male { GIVEN_MALE } else { GIVEN_FEMALE };
    let mut name = String::from(surname);
    name.push_str(r.pick(given_pool));
    if r.chance(0.7) {
        let pool = if r.chance(0.7) { given_pool } else { GIVEN_ANY };
        name.push_str(r.pick(pool));
    }
    let ethnicity = r.weighted(ETHNICITIES);
    let county = if r.chance(0.85) {
        c.county
    } else {
        r.below(COUNTIES.len() as u64) as usize
    };
    let address = address(&mut r, county);
    let phone = format!("{}{:08}", r.pick(MOBILE_PREFIXES), r.below(100_000_000));
    Ok(Person {
        index,
        sex,
        birth_date: iso_date(c.birth_day),
        id,
        name,
        ethnicity,
        region: COUNTIES[county].0,
        address,
        phone,
    })
}

/// A plausible address in `county`: flats in the two districts, villages in most of 南县.
pub(crate) fn address(r: &mut Draw, county: usize) -> String {
    let county_name = COUNTIES[county].1;
    let streets = match county {
        0 => STREETS_EAST,
        1 => STREETS_WEST,
        _ => STREETS_SOUTH,
    };
    if county == 2 && r.chance(0.6) {
        return format!(
            "示范市{county_name}{}{}{}号",
            r.pick(TOWNS_SOUTH),
            r.pick(VILLAGES_SOUTH),
            r.between(1, 180)
        );
    }
    let floor = r.between(1, 33);
    format!(
        "示范市{county_name}{}{}号{}栋{}单元{}{:02}室",
        r.pick(streets),
        r.between(1, 999),
        r.between(1, 40),
        r.between(1, 6),
        floor,
        r.between(1, 4)
    )
}

/// Surnames with rough national frequencies (percent); compound surnames in the tail.
const SURNAMES: &[(&str, f64)] = &[
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.4),
    ("刘", 5.4),
    ("陈", 4.6),
    ("杨", 3.1),
    ("黄", 2.5),
    ("赵", 2.3),
    ("吴", 2.0),
    ("周", 1.9),
    ("徐", 1.4),
    ("孙", 1.3),
    ("马", 1.2),
    ("朱", 1.1),
    ("胡", 1.1),
    ("郭", 1.0),
    ("何", 0.9),
    ("林", 0.9),
    ("高", 0.9),
    ("罗", 0.9),
    ("郑", 0.8),
    ("梁", 0.7),
    ("谢", 0.6),
    ("宋", 0.6),
    ("唐", 0.6),
    ("许", 0.5),
    ("韩", 0.5),
    ("冯", 0.5),
    ("邓", 0.5),
    ("曹", 0.5),
    ("彭", 0.5),
    ("曾", 0.5),
    ("肖", 0.4),
    ("田", 0.4),
    ("董", 0.4),
    ("袁", 0.4),
    ("潘", 0.4),
    ("于", 0.4),
    ("蒋", 0.4),
    ("蔡", 0.4),
    ("余", 0.3),
    ("杜", 0.3),
    ("叶", 0.3),
    ("程", 0.3),
    ("苏", 0.3),
    ("魏", 0.3),
    ("吕", 0.3),
    ("丁", 0.3),
    ("任", 0.3),
    ("孔", 0.2),
    ("颜", 0.1),
    ("欧阳", 0.03),
    ("上官", 0.004),
    ("司马", 0.005),
    ("诸葛", 0.003),
];

const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "斌", "宇",
    "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "阳", "建", "国", "峰", "亮", "成", "志", "文", "东", "海",
    "毅", "博",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "桂", "英", "红", "燕", "萍", "婷", "雪", "琳", "颖",
    "慧", "倩", "晶", "丹", "佳", "欣", "怡", "悦", "梅", "莉", "兰", "洁", "琴", "云", "璐", "思", "雨", "晓", "嘉",
    "美", "蕾",
];
const GIVEN_ANY: &[&str] = &[
    "子", "一", "文", "心", "晨", "安", "诗", "梓", "然", "轩", "涵", "泽", "睿", "宸", "沐",
];

/// Ethnic groups with approximate national shares (per 10 000): 汉族 ≈ 91 %,
/// a few groups of about 1 %, and a long tail down to groups of a few people per
/// million (赫哲族, 塔塔尔族, 珞巴族) — the small cells disclosure control must catch.
const ETHNICITIES: &[(&str, f64)] = &[
    ("汉族", 9110.0),
    ("壮族", 138.0),
    ("维吾尔族", 84.0),
    ("回族", 81.0),
    ("苗族", 78.0),
    ("满族", 74.0),
    ("彝族", 70.0),
    ("土家族", 68.0),
    ("藏族", 50.0),
    ("蒙古族", 45.0),
    ("侗族", 25.0),
    ("布依族", 25.0),
    ("瑶族", 23.0),
    ("白族", 15.0),
    ("朝鲜族", 12.0),
    ("哈尼族", 12.0),
    ("黎族", 11.0),
    ("哈萨克族", 11.0),
    ("傣族", 9.0),
    ("畲族", 5.3),
    ("傈僳族", 5.4),
    ("东乡族", 5.5),
    ("仡佬族", 4.0),
    ("拉祜族", 3.4),
    ("水族", 3.5),
    ("佤族", 3.1),
    ("纳西族", 2.3),
    ("羌族", 2.2),
    ("土族", 2.0),
    ("仫佬族", 1.9),
    ("锡伯族", 1.4),
    ("柯尔克孜族", 1.4),
    ("撒拉族", 1.2),
    ("景颇族", 1.1),
    ("达斡尔族", 0.94),
    ("布朗族", 0.9),
    ("毛南族", 0.88),
    ("塔吉克族", 0.36),
    ("普米族", 0.32),
    ("阿昌族", 0.31),
    ("怒族", 0.27),
    ("京族", 0.24),
    ("鄂温克族", 0.22),
    ("基诺族", 0.17),
    ("保安族", 0.17),
    ("德昂族", 0.16),
    ("俄罗斯族", 0.11),
    ("裕固族", 0.11),
    ("乌孜别克族", 0.09),
    ("门巴族", 0.08),
    ("鄂伦春族", 0.06),
    ("独龙族", 0.05),
    ("赫哲族", 0.04),
    ("高山族", 0.03),
    ("珞巴族", 0.03),
    ("塔塔尔族", 0.03),
];

const STREETS_EAST: &[&str] = &[
    "人民路",
    "解放路",
    "建设路",
    "和平街",
    "文化路",
    "胜利大街",
    "光明路",
    "东风路",
    "新华街",
    "中山路",
    "朝阳路",
    "青年路",
];
const STREETS_WEST: &[&str] = &[
    "西环路",
    "长江路",
    "黄河路",
    "泰山路",
    "经十路",
    "工业北路",
    "科技大道",
    "学府路",
    "花园路",
    "滨河路",
];
const STREETS_SOUTH: &[&str] = &["府前街", "南湖路", "育才路", "商业街", "县前街"];
const TOWNS_SOUTH: &[&str] = &["城关镇", "南湖镇", "石桥镇", "柳林乡", "王庄镇", "白沙乡"];
const VILLAGES_SOUTH: &[&str] = &[
    "李家村",
    "后屯村",
    "河口村",
    "东营村",
    "新庄村",
    "杨树湾村",
    "前进村",
    "马店村",
];

const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184", "185",
    "186", "187", "188", "189", "191", "193", "195", "198", "199",
];

#[cfg(test)]
mod tests {
    use super::*;
    use shuyu_core::ident::Mobile;

    #[test]
    fn people_are_valid_and_distinct() {
        assert!(capacity() > 30_000_000, "capacity {}", capacity());
        let mut ids = std::collections::HashSet::new();
        for i in 0..2000 {
            let p = person(9, i).expect("person");
            assert!(IdNumber::parse(p.id.as_str()).is_ok());
            assert!(COUNTIES.iter().any(|(c, _)| *c == p.id.region()));
            assert_eq!(p.id.birth_date().to_string(), p.birth_date);
            assert!(Mobile::parse(&p.phone).is_ok());
            let age = core(9, i).age();
            assert!((0..=MAX_AGE).contains(&age));
            assert!(ids.insert(p.id.to_string()));
        }
        assert_eq!(person(9, 5).expect("p"), person(9, 5).expect("p"));
    }
}
