//! Plural forms of words next to a number ("1 день", "2 дня", "5 дней"; "1 day",
//! "2 days"), after the CLDR plural rules for integers.
//!
//! Only integers are covered: notices count days, items and people, never fractions.

/// A CLDR plural category. English uses `One` and `Other`; Russian uses `One`, `Few`
/// and `Many` for integers (its `Other` is for fractions only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluralCategory {
    One,
    Few,
    Many,
    Other,
}

/// The Russian category of an integer; a negative number takes the category of its
/// absolute value.
///
/// one: n % 10 = 1 and n % 100 ≠ 11 (1, 21, 101); few: n % 10 in 2..=4 and n % 100 not
/// in 12..=14 (2, 3, 4, 22); many: everything else (0, 5–20, 11–14, 25, 111).
pub fn category_ru(n: i64) -> PluralCategory {
    let n = n.unsigned_abs();
    let (units, hundreds) = (n % 10, n % 100);
    if units == 1 && hundreds != 11 {
        PluralCategory::One
    } else if (2..=4).contains(&units) && !(12..=14).contains(&hundreds) {
        PluralCategory::Few
    } else {
        PluralCategory::Many
    }
}

/// The English category of an integer: `One` for 1 and -1, `Other` for the rest.
pub fn category_en(n: i64) -> PluralCategory {
    if n.unsigned_abs() == 1 {
        PluralCategory::One
    } else {
        PluralCategory::Other
    }
}

/// Picks the form of a word for `n` in `locale`.
///
/// `ru` takes forms `[one, few, many]` ("день", "дня", "дней"); any other locale uses
/// the English rule with forms `[one, other]` ("day", "days"). The locale may carry a
/// region (`ru-RU`, `en_GB`). A missing form falls back to the last one given;
/// no forms at all gives "".
pub fn plural<'a>(locale: &str, n: i64, forms: &[&'a str]) -> &'a str {
    let Some(last) = forms.last() else {
        return "";
    };
    let index = if is_russian(locale) {
        match category_ru(n) {
            PluralCategory::One => 0,
            PluralCategory::Few => 1,
            _ => 2,
        }
    } else {
        match category_en(n) {
            PluralCategory::One => 0,
            _ => 1,
        }
    };
    forms.get(index).unwrap_or(last)
}

fn is_russian(locale: &str) -> bool {
    let language = locale.split(['-', '_']).next().unwrap_or("");
    language.eq_ignore_ascii_case("ru")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAYS_RU: [&str; 3] = ["день", "дня", "дней"];

    #[test]
    fn russian_days() {
        let table = [
            (0, "0 дней"),
            (1, "1 день"),
            (2, "2 дня"),
            (4, "4 дня"),
            (5, "5 дней"),
            (11, "11 дней"),
            (12, "12 дней"),
            (14, "14 дней"),
            (21, "21 день"),
            (22, "22 дня"),
            (25, "25 дней"),
            (101, "101 день"),
            (111, "111 дней"),
            (112, "112 дней"),
        ];
        for (n, expected) in table {
            assert_eq!(
                format!("{n} {}", plural("ru", n, &DAYS_RU)),
                expected,
                "n = {n}"
            );
        }
    }

    #[test]
    fn russian_categories() {
        let table = [
            (0, PluralCategory::Many),
            (1, PluralCategory::One),
            (3, PluralCategory::Few),
            (13, PluralCategory::Many),
            (20, PluralCategory::Many),
            (31, PluralCategory::One),
            (104, PluralCategory::Few),
            (114, PluralCategory::Many),
            (1001, PluralCategory::One),
        ];
        for (n, expected) in table {
            assert_eq!(category_ru(n), expected, "n = {n}");
        }
    }

    #[test]
    fn english() {
        let table = [
            (0, "days"),
            (1, "day"),
            (2, "days"),
            (11, "days"),
            (21, "days"),
        ];
        for (n, expected) in table {
            assert_eq!(plural("en", n, &["day", "days"]), expected, "n = {n}");
        }
        assert_eq!(category_en(1), PluralCategory::One);
        assert_eq!(category_en(0), PluralCategory::Other);
    }

    #[test]
    fn negative_numbers_use_the_absolute_value() {
        assert_eq!(plural("ru", -1, &DAYS_RU), "день");
        assert_eq!(plural("ru", -3, &DAYS_RU), "дня");
        assert_eq!(plural("ru", -11, &DAYS_RU), "дней");
        assert_eq!(plural("en", -1, &["day", "days"]), "day");
        assert_eq!(category_ru(i64::MIN), PluralCategory::Many);
    }

    #[test]
    fn locale_with_region_and_unknown_locales() {
        assert_eq!(plural("ru-RU", 2, &DAYS_RU), "дня");
        assert_eq!(plural("RU_ru", 5, &DAYS_RU), "дней");
        assert_eq!(plural("en-GB", 2, &["day", "days"]), "days");
        assert_eq!(plural("de", 1, &["Tag", "Tage"]), "Tag");
    }

    #[test]
    fn missing_forms_fall_back_to_the_last() {
        assert_eq!(plural("ru", 5, &["день", "дня"]), "дня");
        assert_eq!(plural("ru", 1, &["штук"]), "штук");
        assert_eq!(plural("en", 2, &["day"]), "day");
        assert_eq!(plural("ru", 2, &[]), "");
    }
}
