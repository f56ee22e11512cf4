//! Which language to answer in, and plural forms. rust-i18n's global locale is
//! process-wide, so every `t!` in the bot passes `locale = lang.code()` explicitly.

use crate::config::Language;

/// The buyer's chosen language, else Telegram's language tag, else the shop's default.
pub fn resolve(
    chosen: Option<Language>,
    telegram_tag: Option<&str>,
    default: Language,
) -> Language {
    chosen
        .or_else(|| telegram_tag.and_then(Language::from_telegram))
        .unwrap_or(default)
}

/// The plural category of `n` in `lang`: the suffix of a pluralised key
/// (`stars.one`, `stars.few`, `stars.many`). Russian: 1 звезда, 2 звезды, 5 звёзд,
/// 21 звезда, 11 звёзд.
pub fn plural_category(lang: Language, n: u64) -> &'static str {
    match lang {
        Language::En => {
            if n == 1 {
                "one"
            } else {
                "many"
            }
        }
        Language::Ru => {
            let (last, last_two) = (n % 10, n % 100);
            if last == 1 && last_two != 11 {
                "one"
            } else if (2..=4).contains(&last) && !(12..=14).contains(&last_two) {
                "few"
            } else {
                "many"
            }
        }
    }
}

/// `t!` of `<key>.<category>` with `count` filled in.
pub fn plural(lang: Language, key: &str, n: u64) -> String {
    let full = format!("{key}.{}", plural_category(lang, n));
    rust_i18n::t!(&full, locale = lang.code(), count = n).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_plurals() {
        let cases = [
            (1, "one"),
            (2, "few"),
            (4, "few"),
            (5, "many"),
            (11, "many"),
            (12, "many"),
            (14, "many"),
            (21, "one"),
            (22, "few"),
            (25, "many"),
            (101, "one"),
            (111, "many"),
            (0, "many"),
        ];
        for (n, expected) in cases {
            assert_eq!(plural_category(Language::Ru, n), expected, "{n}");
        }
        assert_eq!(plural(Language::Ru, "units.stars", 1), "1 звезда");
        assert_eq!(plural(Language::Ru, "units.stars", 2), "2 звезды");
        assert_eq!(plural(Language::Ru, "units.stars", 5), "5 звёзд");
        assert_eq!(plural(Language::En, "units.stars", 1), "1 Star");
        assert_eq!(plural(Language::En, "units.stars", 50), "50 Stars");
    }

    #[test]
    fn language_resolution_order() {
        assert_eq!(
            resolve(Some(Language::En), Some("ru"), Language::Ru),
            Language::En
        );
        assert_eq!(resolve(None, Some("ru-RU"), Language::En), Language::Ru);
        assert_eq!(resolve(None, Some("de"), Language::Ru), Language::Ru);
        assert_eq!(resolve(None, None, Language::En), Language::En);
    }
}
