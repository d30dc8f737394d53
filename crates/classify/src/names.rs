//! Heuristic detectors for values without check digits: Chinese personal names,
//! addresses and licence plates. They are only trusted together with a field
//! name that agrees (see `classify_field`).

/// The most common surnames (single and compound), covering the large majority of people.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";
const COMPOUND: [&str; 10] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐",
];

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// Two to four CJK characters beginning with a known surname.
pub fn is_person_name(v: &str) -> bool {
    let n = v.chars().count();
    if !(2..=4).contains(&n) || !v.chars().all(is_cjk) {
        return false;
    }
    COMPOUND.iter().any(|s| v.starts_with(s) && n >= 3) || v.chars().next().is_some_and(|c| SURNAMES.contains(c))
}

/// Contains administrative or street markers and is long enough to be an address.
pub fn is_address(v: &str) -> bool {
    let n = v.chars().count();
    let markers = [
        "省", "市", "区", "县", "镇", "乡", "路", "街", "道", "巷", "号", "栋", "单元", "室", "村",
    ];
    n >= 6 && markers.iter().filter(|m| v.contains(*m)).count() >= 2
}

/// A mainland plate: province abbreviation, a letter, then 5 (or 6, new-energy) letters or digits.
pub fn is_license_plate(v: &str) -> bool {
    const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
    let mut chars = v.chars();
    let (Some(p), Some(l)) = (chars.next(), chars.next()) else {
        return false;
    };
    let rest: Vec<char> = chars.filter(|c| *c != '·').collect();
    PROVINCES.contains(p)
        && l.is_ascii_uppercase()
        && (rest.len() == 5 || rest.len() == 6)
        && rest.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors() {
        assert!(
            is_person_name("王伟")
                && is_person_name("欧阳娜娜")
                && !is_person_name("有限公司")
                && !is_person_name("Wang")
        );
        assert!(is_address("示范市东区建设路12号") && !is_address("东区"));
        assert!(is_license_plate("鲁A12345") && is_license_plate("京AD12345") && !is_license_plate("A12345"));
    }
}
