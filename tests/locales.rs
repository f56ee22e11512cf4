//! Every buyer- and admin-facing string exists in every language, with the same keys
//! and the same placeholders.

use std::collections::{BTreeMap, BTreeSet};

fn flatten(prefix: &str, value: &serde_yaml_ng::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            for (k, v) in map {
                let key = k.as_str().expect("string keys");
                let full = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&full, v, out);
            }
        }
        serde_yaml_ng::Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        serde_yaml_ng::Value::Number(n) => {
            out.insert(prefix.to_owned(), n.to_string());
        }
        other => panic!("{prefix}: unexpected {other:?}"),
    }
}

fn load(lang: &str) -> BTreeMap<String, String> {
    let path = format!("{}/locales/{lang}.yml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    out.remove("_version");
    out
}

fn placeholders(text: &str) -> BTreeSet<String> {
    text.split("%{")
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn english_and_russian_have_the_same_keys_and_placeholders() {
    let en = load("en");
    let ru = load("ru");
    let en_keys: BTreeSet<_> = en.keys().collect();
    let ru_keys: BTreeSet<_> = ru.keys().collect();
    assert_eq!(en_keys, ru_keys);
    for (key, text) in &en {
        assert!(!text.trim().is_empty(), "{key} is empty");
        assert_eq!(placeholders(text), placeholders(&ru[key]), "{key}");
    }
}

#[test]
fn every_key_the_code_names_exists() {
    use kiosk::domain::RecipientError;
    use kiosk::providers::BuyerReason;
    let en = load("en");
    let reasons = [
        BuyerReason::UserNotFound,
        BuyerReason::PremiumAlreadyActive,
        BuyerReason::InvalidRecipient,
        BuyerReason::RecipientCannotReceive,
        BuyerReason::OutOfStock,
        BuyerReason::NotAvailable,
        BuyerReason::AmountOutOfRange,
        BuyerReason::LimitExceeded,
        BuyerReason::VerificationRequired,
        BuyerReason::PaymentExpired,
        BuyerReason::TemporarilyUnavailable,
        BuyerReason::Other,
    ];
    for reason in reasons {
        assert!(
            en.contains_key(reason.message_key()),
            "{}",
            reason.message_key()
        );
    }
    for error in [
        RecipientError::Username,
        RecipientError::Phone,
        RecipientError::Email,
        RecipientError::SteamLogin,
        RecipientError::SteamInvite,
    ] {
        assert!(
            en.contains_key(error.message_key()),
            "{}",
            error.message_key()
        );
    }
    for status in kiosk::domain::OrderStatus::ALL {
        assert!(
            en.contains_key(&format!("status.{}", status.as_str())),
            "{status}"
        );
    }
}
