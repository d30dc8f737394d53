//! The demo city (DEMO_CITY.md): its regions and its parties. Every
//! organisation code is fictional and under the non-existent prefecture
//! `3799`, so nothing generated here can be a real party's.

use shuyu_core::party::{OrgKind, Region, RegionCode, Role, Uscc};

/// The city and its three counties.
pub fn regions() -> Vec<Region> {
    let code = |c: &str| RegionCode::parse(c).expect("six-digit literal");
    let city = code("379900");
    vec![
        Region {
            code: city.clone(),
            name_zh: "示范市".into(),
            name_en: "Demo City".into(),
            parent: None,
        },
        Region {
            code: code("379901"),
            name_zh: "东区".into(),
            name_en: "East District".into(),
            parent: Some(city.clone()),
        },
        Region {
            code: code("379902"),
            name_zh: "西区".into(),
            name_en: "West District".into(),
            parent: Some(city.clone()),
        },
        Region {
            code: code("379903"),
            name_zh: "南县".into(),
            name_en: "South County".into(),
            parent: Some(city),
        },
    ]
}

/// The data authority's name (created by `init`).
pub const AUTHORITY: &str = "示范市大数据局";

/// One demo party: an organisation and its named users.
#[derive(Debug, Clone)]
pub struct Party {
    pub org: &'static str,
    pub kind: OrgKind,
    pub region: &'static str,
    /// Registration authority + category codes of its credit code (`11` government body, `91` enterprise, `12` public institution).
    pub uscc_head: &'static str,
    pub users: &'static [(&'static str, &'static str, &'static [Role])],
}

impl Party {
    /// A deterministic, valid credit code under the fictional prefecture, unique per party index.
    pub fn uscc(&self, index: usize) -> Option<String> {
        let body = format!("{}379900MA{:07}", self.uscc_head, 1_000 + index);
        Uscc::complete(&body).map(|u| u.as_str().to_string())
    }
}

const A: Role = Role::Admin;

/// Which demo user provides which demo dataset, and its title (DEMO_CITY.md).
pub const DATASET_PROVIDERS: &[(&str, &str, &str)] = &[
    ("population", "gongan.wang", "人口基础信息"),
    ("enterprise", "scjg.zhao", "企业登记"),
    ("social_insurance", "renshe.sun", "社保缴纳"),
    ("medical_visit", "yibao.zhou", "就诊记录"),
    ("tax_payment", "shuiwu.wu", "纳税信息"),
    ("electricity", "gongdian.zheng", "用电信息"),
    ("property", "budongchan.feng", "不动产登记"),
    ("bus_ridership", "jiaotong.chen", "公交客流"),
];

/// The parties of DEMO_CITY.md besides the authority's administrator.
pub const PARTIES: &[Party] = &[
    Party {
        org: AUTHORITY,
        kind: OrgKind::Authority,
        region: "379900",
        uscc_head: "11",
        users: &[("dsj.li", "李建国", &[])],
    },
    Party {
        org: "示范市公安局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("gongan.wang", "王磊", &[A])],
    },
    Party {
        org: "示范市市场监督管理局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("scjg.zhao", "赵敏", &[A])],
    },
    Party {
        org: "示范市人力资源和社会保障局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("renshe.sun", "孙丽", &[A])],
    },
    Party {
        org: "示范市医疗保障局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("yibao.zhou", "周洋", &[A])],
    },
    Party {
        org: "国家税务总局示范市税务局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("shuiwu.wu", "吴刚", &[A])],
    },
    Party {
        org: "示范市供电公司",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "91",
        users: &[("gongdian.zheng", "郑涛", &[A])],
    },
    Party {
        org: "示范市不动产登记中心",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "12",
        users: &[("budongchan.feng", "冯静", &[A])],
    },
    Party {
        org: "示范市交通运输局",
        kind: OrgKind::Provider,
        region: "379900",
        uscc_head: "11",
        users: &[("jiaotong.chen", "陈晨", &[A])],
    },
    Party {
        org: "示范数据集团有限公司",
        kind: OrgKind::Operator,
        region: "379900",
        uscc_head: "91",
        // Two reviewers: releases of L3+ data need two (R-38, two-person review).
        users: &[
            ("yunying.liu", "刘洋", &[A, Role::Developer]),
            ("yunying.zhou", "周敏", &[A]),
        ],
    },
    Party {
        org: "智信金融科技有限公司",
        kind: OrgKind::Developer,
        region: "379901",
        uscc_head: "91",
        users: &[("fintech.huang", "黄海", &[A])],
    },
    Party {
        org: "康数健康科技有限公司",
        kind: OrgKind::Developer,
        region: "379902",
        uscc_head: "91",
        users: &[("health.lin", "林芳", &[A])],
    },
    Party {
        org: "示范市公共数据授权运营专家组",
        kind: OrgKind::Expert,
        region: "379900",
        uscc_head: "12",
        users: &[
            ("expert.he", "何教授", &[]),
            ("expert.lu", "卢研究员", &[]),
            ("expert.shi", "石律师", &[]),
        ],
    },
    Party {
        org: "中共示范市委网络安全和信息化委员会办公室",
        kind: OrgKind::Supervisor,
        region: "379900",
        uscc_head: "11",
        users: &[("wangxin.jiang", "蒋文", &[])],
    },
    Party {
        org: "示范银行股份有限公司",
        kind: OrgKind::Consumer,
        region: "379900",
        uscc_head: "91",
        users: &[("bank.han", "韩雪", &[A])],
    },
    // A recipient of health statistics with no account of its own: releases name it from
    // the directory.
    Party {
        org: "示范市卫生健康委员会",
        kind: OrgKind::Consumer,
        region: "379900",
        uscc_head: "11",
        users: &[],
    },
    Party {
        org: "示范市医学研究院",
        kind: OrgKind::Consumer,
        region: "379903",
        uscc_head: "12",
        users: &[("research.yang", "杨帆", &[A])],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_party_has_a_valid_unique_credit_code_and_known_region() {
        let regions = regions();
        let mut seen = std::collections::HashSet::new();
        for (i, p) in PARTIES.iter().enumerate() {
            let code = p.uscc(i).expect("valid alphabet");
            assert!(Uscc::parse(&code).is_ok(), "{code}");
            assert!(code[2..8] == *"379900", "fictional prefecture: {code}");
            assert!(seen.insert(code));
            assert!(regions.iter().any(|r| r.code.as_str() == p.region));
            for (_, _, roles) in p.users {
                assert!(roles.iter().all(|r| p.kind.permitted_roles().contains(r)), "{}", p.org);
            }
        }
    }
}
