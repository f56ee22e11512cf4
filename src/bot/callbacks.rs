//! Inline-button payloads. Telegram lets a client send any string back, so every
//! payload is parsed into [`Callback`] and anything else (garbage, oversize, a list
//! index the dialogue no longer has, another buyer's order) is refused politely by the
//! caller. Indices point into lists kept in the buyer's own dialogue state, so a
//! payload never names another buyer's data.

use crate::config::Language;
use crate::domain::ProductFamily;

/// Telegram's limit on `callback_data`.
pub const MAX_CALLBACK_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    Menu,
    Family(ProductFamily),
    /// An entry of the list on screen (category or offer), by index.
    Pick(u16),
    /// Another page of the list on screen.
    Page(u16),
    /// A preset quantity.
    Quantity(u32),
    /// An option of a select field, by index.
    Select(u16),
    /// "For me": the buyer's own @username.
    ForMe,
    /// The recipient the provider found is the right one.
    RecipientOk,
    Confirm,
    /// Pay in the configured fiat currency instead of Stars.
    ConfirmFiat,
    Cancel,
    Orders(u16),
    Order(i64),
    Language,
    SetLanguage(Language),
    Help,
    /// A virtual-card button (`vc:…`, grammar in [`super::cards::CardCallback`]).
    Card(super::cards::CardCallback),
}

impl Callback {
    pub fn encode(self) -> String {
        match self {
            Self::Menu => "menu".into(),
            Self::Family(f) => format!("f:{}", f.as_str()),
            Self::Pick(i) => format!("p:{i}"),
            Self::Page(i) => format!("pg:{i}"),
            Self::Quantity(n) => format!("q:{n}"),
            Self::Select(i) => format!("s:{i}"),
            Self::ForMe => "me".into(),
            Self::RecipientOk => "rok".into(),
            Self::Confirm => "ok".into(),
            Self::ConfirmFiat => "okf".into(),
            Self::Cancel => "no".into(),
            Self::Orders(page) => format!("os:{page}"),
            Self::Order(id) => format!("o:{id}"),
            Self::Language => "lang".into(),
            Self::SetLanguage(l) => format!("l:{}", l.code()),
            Self::Help => "help".into(),
            Self::Card(card) => card.encode(),
        }
    }

    /// `None` for anything this bot did not send.
    pub fn parse(data: &str) -> Option<Self> {
        if data.is_empty() || data.len() > MAX_CALLBACK_BYTES {
            return None;
        }
        if let Some(body) = data.strip_prefix(super::cards::CardCallback::PREFIX) {
            return super::cards::CardCallback::parse(body).map(Self::Card);
        }
        let (tag, arg) = data.split_once(':').unwrap_or((data, ""));
        let number = |text: &str| -> Option<u64> {
            // Digits only: no signs, no spaces, no leading zeros beyond "0".
            let valid = !text.is_empty()
                && text.len() <= 12
                && text.bytes().all(|b| b.is_ascii_digit())
                && !(text.len() > 1 && text.starts_with('0'));
            valid.then(|| text.parse().ok()).flatten()
        };
        let parsed = match (tag, arg) {
            ("menu", "") => Self::Menu,
            ("f", family) => Self::Family(ProductFamily::parse(family)?),
            ("p", i) => Self::Pick(u16::try_from(number(i)?).ok()?),
            ("pg", i) => Self::Page(u16::try_from(number(i)?).ok()?),
            ("q", n) => Self::Quantity(u32::try_from(number(n)?).ok()?),
            ("s", i) => Self::Select(u16::try_from(number(i)?).ok()?),
            ("me", "") => Self::ForMe,
            ("rok", "") => Self::RecipientOk,
            ("ok", "") => Self::Confirm,
            ("okf", "") => Self::ConfirmFiat,
            ("no", "") => Self::Cancel,
            ("os", page) => Self::Orders(u16::try_from(number(page)?).ok()?),
            ("o", id) => Self::Order(i64::try_from(number(id)?).ok()?),
            ("lang", "") => Self::Language,
            ("l", code) => Self::SetLanguage(Language::parse(code)?),
            ("help", "") => Self::Help,
            _ => return None,
        };
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callback_round_trips_within_telegram_limits() {
        let all = [
            Callback::Menu,
            Callback::Family(ProductFamily::GiftCard),
            Callback::Pick(12),
            Callback::Page(3),
            Callback::Quantity(10_000),
            Callback::Select(0),
            Callback::ForMe,
            Callback::RecipientOk,
            Callback::Confirm,
            Callback::ConfirmFiat,
            Callback::Cancel,
            Callback::Orders(2),
            Callback::Order(987_654_321),
            Callback::Language,
            Callback::SetLanguage(Language::Ru),
            Callback::Help,
        ];
        for callback in all {
            let data = callback.encode();
            assert!(data.len() <= MAX_CALLBACK_BYTES, "{data}");
            assert_eq!(Callback::parse(&data), Some(callback), "{data}");
        }
        for family in ProductFamily::ALL {
            assert_eq!(
                Callback::parse(&Callback::Family(family).encode()),
                Some(Callback::Family(family))
            );
        }
    }

    #[test]
    fn forged_payloads_are_refused() {
        let forged = [
            "",
            "menu:x",
            "f:groceries",
            "p:-1",
            "p:99999999",
            "p:01",
            "p: 1",
            "q:1e3",
            "o:",
            "o:-5",
            "o:18446744073709551616",
            "l:fr",
            "drop table",
            "ok:1",
            &"p:1".repeat(30),
        ];
        for data in forged {
            assert_eq!(Callback::parse(data), None, "{data:?}");
        }
    }
}
