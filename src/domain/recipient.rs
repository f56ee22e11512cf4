//! Who a purchase is for. Each newtype parses and normalises what a buyer types
//! ("parse, don't validate"): holding one means the value is well-formed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a typed recipient was refused. [`RecipientError::message_key`] names the
/// localized sentence that tells the buyer what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("not a Telegram username")]
    Username,
    #[error("not a phone number in international format")]
    Phone,
    #[error("not an e-mail address")]
    Email,
    #[error("not a Steam login")]
    SteamLogin,
    #[error("not a Steam friend invite link")]
    SteamInvite,
}

impl RecipientError {
    pub fn message_key(&self) -> &'static str {
        match self {
            Self::Username => "recipient.bad_username",
            Self::Phone => "recipient.bad_phone",
            Self::Email => "recipient.bad_email",
            Self::SteamLogin => "recipient.bad_steam_login",
            Self::SteamInvite => "recipient.bad_steam_invite",
        }
    }
}

/// Strips an `http(s)://` scheme and a `www.` prefix, so links compare by host and path.
fn strip_scheme(text: &str) -> &str {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    rest.strip_prefix("www.").unwrap_or(rest)
}

/// A Telegram @username, stored without the `@`. Accepts `@name`, `name`, `t.me/name`,
/// `https://t.me/name` and `telegram.me/name`; 4–32 of `[A-Za-z0-9_]`, starting with
/// a letter and not ending with `_`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TelegramUsername(String);

impl TelegramUsername {
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let text = text.trim();
        let rest = strip_scheme(text);
        let name = if let Some(path) = rest
            .strip_prefix("t.me/")
            .or_else(|| rest.strip_prefix("telegram.me/"))
        {
            path.trim_end_matches('/')
        } else if rest.len() != text.len() {
            return Err(RecipientError::Username); // a link, but not to Telegram
        } else {
            text.strip_prefix('@').unwrap_or(text)
        };
        let valid = (4..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && !name.ends_with('_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(RecipientError::Username)
        }
    }

    /// Without the `@`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// With the `@`, as the Fragment API and buyers expect to see it.
    pub fn with_at(&self) -> String {
        format!("@{}", self.0)
    }

    /// Telegram usernames are case-insensitive.
    pub fn same_account(&self, other: &TelegramUsername) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Debug for TelegramUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl fmt::Display for TelegramUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl TryFrom<String> for TelegramUsername {
    type Error = RecipientError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TelegramUsername> for String {
    fn from(value: TelegramUsername) -> Self {
        value.0
    }
}

/// A phone number in E.164 (`+14155551234`), checked against libphonenumber's
/// metadata through the `phonenumber` crate.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Parses international input (`+7 912 345-67-89`, `+1 (415) 555-1234`,
    /// `00 44 20 7946 0958`). Numbers without a country code are refused: a top-up to
    /// the wrong country cannot be undone.
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let text = text.trim();
        let international = match text.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => text.to_owned(),
        };
        if !international.starts_with('+') || international.len() > 32 {
            return Err(RecipientError::Phone);
        }
        let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
        if !international.chars().all(allowed) {
            return Err(RecipientError::Phone);
        }
        let number = phonenumber::parse(None, &international).map_err(|_| RecipientError::Phone)?;
        if !phonenumber::is_valid(&number) {
            return Err(RecipientError::Phone);
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneE164 {
    type Error = RecipientError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneE164> for String {
    fn from(value: PhoneE164) -> Self {
        value.0
    }
}

/// An e-mail address where a provider delivers a gift card or an eSIM. Deliberately
/// stricter than RFC 5322: no quoted local parts, no IP-literal domains, a dotted
/// domain with an alphabetic top-level label. The domain is lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let text = text.trim();
        let (local, domain) = text.rsplit_once('@').ok_or(RecipientError::Email)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = domain.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|label| {
                (1..=63).contains(&label.len())
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok && text.len() <= 254 {
            Ok(Self(format!("{local}@{domain}")))
        } else {
            Err(RecipientError::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = RecipientError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A Steam account name (the login, not the profile name): 3–64 of `[A-Za-z0-9_]`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SteamLogin(String);

impl SteamLogin {
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let text = text.trim();
        let valid = (3..=64).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(RecipientError::SteamLogin)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SteamLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SteamLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SteamLogin {
    type Error = RecipientError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SteamLogin> for String {
    fn from(value: SteamLogin) -> Self {
        value.0
    }
}

/// A Steam friend invite link, where a Steam gift is sent: `https://s.team/p/<code>/<token>`
/// or `https://steamcommunity.com/user/<code>/<token>`. Normalised to https without a
/// query string or trailing slash.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SteamInviteUrl(String);

impl SteamInviteUrl {
    pub fn parse(text: &str) -> Result<Self, RecipientError> {
        let text = text.trim();
        let rest = strip_scheme(text);
        let rest = rest
            .split(['?', '#'])
            .next()
            .unwrap_or(rest)
            .trim_end_matches('/');
        let (host, path) = rest.split_once('/').ok_or(RecipientError::SteamInvite)?;
        let host = host.to_ascii_lowercase();
        let code_and_token = match host.as_str() {
            "s.team" => path.strip_prefix("p/"),
            "steamcommunity.com" => path.strip_prefix("user/"),
            _ => None,
        }
        .ok_or(RecipientError::SteamInvite)?;
        let (code, token) = code_and_token
            .split_once('/')
            .ok_or(RecipientError::SteamInvite)?;
        let code_ok = (3..=16).contains(&code.len())
            && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !code.starts_with('-')
            && !code.ends_with('-');
        let token_ok =
            (4..=32).contains(&token.len()) && token.chars().all(|c| c.is_ascii_alphanumeric());
        if code_ok && token_ok {
            Ok(Self(format!(
                "https://{host}/{}/{code}/{token}",
                if host == "s.team" { "p" } else { "user" }
            )))
        } else {
            Err(RecipientError::SteamInvite)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SteamInviteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SteamInviteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SteamInviteUrl {
    type Error = RecipientError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SteamInviteUrl> for String {
    fn from(value: SteamInviteUrl) -> Self {
        value.0
    }
}

/// One buyer field a provider's offer asks for (a game's player id, a server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FieldKind {
    Text,
    /// One of the listed `(value, label)` pairs.
    Select {
        options: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayerFieldsError {
    #[error("{0} is required")]
    Missing(String),
    #[error("{0} is not a field of this product")]
    Unknown(String),
    #[error("{value:?} is not an option of {key}")]
    NotAnOption { key: String, value: String },
    #[error("{0} is too long")]
    TooLong(String),
}

/// The longest value a text field accepts: player ids and server names are short, and
/// the limit keeps a pasted essay out of a provider request.
const MAX_FIELD_LEN: usize = 64;

/// Values for a provider's buyer fields (`player_id` → `"123456789"`), checked against
/// the offer's field list: every required key present, no unknown keys, select values
/// among the options, text trimmed, non-empty and at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlayerFields(BTreeMap<String, String>);

impl PlayerFields {
    pub fn parse(
        specs: &[FieldSpec],
        values: BTreeMap<String, String>,
    ) -> Result<Self, PlayerFieldsError> {
        if let Some(unknown) = values.keys().find(|k| !specs.iter().any(|s| &s.key == *k)) {
            return Err(PlayerFieldsError::Unknown(unknown.clone()));
        }
        let mut checked = BTreeMap::new();
        for spec in specs {
            let value = values.get(&spec.key).map(|v| v.trim()).unwrap_or_default();
            if value.is_empty() {
                if spec.required {
                    return Err(PlayerFieldsError::Missing(spec.key.clone()));
                }
                continue;
            }
            if value.chars().count() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
                return Err(PlayerFieldsError::TooLong(spec.key.clone()));
            }
            if let FieldKind::Select { options } = &spec.kind
                && !options.iter().any(|(v, _)| v == value)
            {
                return Err(PlayerFieldsError::NotAnOption {
                    key: spec.key.clone(),
                    value: value.to_owned(),
                });
            }
            checked.insert(spec.key.clone(), value.to_owned());
        }
        Ok(Self(checked))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_accepted_and_normalised() {
        let cases = [
            ("@durov", "durov"),
            ("durov", "durov"),
            ("  @Kiosk_Bot  ", "Kiosk_Bot"),
            ("t.me/durov", "durov"),
            ("https://t.me/durov", "durov"),
            ("http://t.me/durov/", "durov"),
            ("https://telegram.me/some_user", "some_user"),
            ("www.t.me/abcd", "abcd"),
            ("abcd", "abcd"),
            (
                "a123456789012345678901234567890b",
                "a123456789012345678901234567890b",
            ),
            ("User_2024", "User_2024"),
            ("@a_b_c", "a_b_c"),
        ];
        for (input, expected) in cases {
            let parsed = TelegramUsername::parse(input)
                .unwrap_or_else(|e| panic!("{input:?} should be accepted: {e}"));
            assert_eq!(parsed.as_str(), expected, "{input:?}");
            assert_eq!(parsed.with_at(), format!("@{expected}"));
        }
    }

    #[test]
    fn usernames_refused() {
        let cases = [
            "",
            "@",
            "abc",
            "@abc",
            "1durov",
            "_durov",
            "durov_",
            "du rov",
            "du-rov",
            "дуров",
            "a1234567890123456789012345678901b",
            "https://example.com/durov",
            "t.me/",
            "@@durov",
            "durov😀",
            "durov@example.com",
        ];
        for input in cases {
            assert_eq!(
                TelegramUsername::parse(input),
                Err(RecipientError::Username),
                "{input:?}"
            );
        }
    }

    #[test]
    fn usernames_compare_case_insensitively() {
        let a = TelegramUsername::parse("@Durov").unwrap();
        let b = TelegramUsername::parse("durov").unwrap();
        assert!(a.same_account(&b));
    }

    #[test]
    fn phones_accepted_as_e164() {
        let cases = [
            ("+14155552671", "+14155552671"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+7 912 345-67-89", "+79123456789"),
            ("+79123456789", "+79123456789"),
            ("+44 20 7946 0958", "+442079460958"),
            ("0044 20 7946 0958", "+442079460958"),
            ("+49 30 901820", "+4930901820"),
            ("+380 50 123 4567", "+380501234567"),
            ("+33 6 12 34 56 78", "+33612345678"),
            ("+91 98765 43210", "+919876543210"),
            ("  +55 11 91234-5678 ", "+5511912345678"),
            ("+81 90-1234-5678", "+819012345678"),
        ];
        for (input, expected) in cases {
            let parsed =
                PhoneE164::parse(input).unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
            assert_eq!(parsed.as_str(), expected, "{input:?}");
        }
    }

    #[test]
    fn phones_refused() {
        let cases = [
            "",
            "+",
            "hello",
            "4155552671",
            "89123456789",
            "+1 415",
            "+999 123456789",
            "+7 912 345 67 89 00 00",
            "+1-415-555-2671 call me",
            "+٤١٥٥٥٥٢٦٧١",
            "+44 20 7946 095a",
            "+0 123 456 7890",
        ];
        for input in cases {
            assert_eq!(
                PhoneE164::parse(input),
                Err(RecipientError::Phone),
                "{input:?}"
            );
        }
    }

    #[test]
    fn emails_accepted_and_domain_lowercased() {
        let cases = [
            ("user@example.com", "user@example.com"),
            ("User.Name+tag@Example.COM", "User.Name+tag@example.com"),
            ("  a@b.co  ", "a@b.co"),
            ("first_last@sub.domain.org", "first_last@sub.domain.org"),
            ("x@mail-server.io", "x@mail-server.io"),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("1234@numbers.net", "1234@numbers.net"),
            ("a.b.c@d.e.fg", "a.b.c@d.e.fg"),
            ("name@xn--80ak6aa92e.com", "name@xn--80ak6aa92e.com"),
            ("me@example.museum", "me@example.museum"),
        ];
        for (input, expected) in cases {
            let parsed = Email::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(parsed.as_str(), expected);
        }
    }

    #[test]
    fn emails_refused() {
        let cases = [
            "",
            "plain",
            "@example.com",
            "user@",
            "user@localhost",
            "user@example",
            "user@example.c",
            "user@.example.com",
            "user@-example.com",
            ".user@example.com",
            "us..er@example.com",
            "us er@example.com",
            "user@exa mple.com",
            "user@example.123",
            "почта@пример.рф",
        ];
        for input in cases {
            assert_eq!(Email::parse(input), Err(RecipientError::Email), "{input:?}");
        }
    }

    #[test]
    fn steam_logins() {
        for ok in ["gaben", "player_123", "ABC", "a".repeat(64).as_str()] {
            assert!(SteamLogin::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "ab",
            "with space",
            "ünïcode",
            "a-b",
            "a".repeat(65).as_str(),
        ] {
            assert_eq!(
                SteamLogin::parse(bad),
                Err(RecipientError::SteamLogin),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn steam_invite_urls_accepted_and_normalised() {
        let cases = [
            (
                "https://s.team/p/abcd-efgh/XYZW1234",
                "https://s.team/p/abcd-efgh/XYZW1234",
            ),
            (
                "http://s.team/p/abcd-efgh/XYZW1234",
                "https://s.team/p/abcd-efgh/XYZW1234",
            ),
            (
                "s.team/p/abcd-efgh/XYZW1234/",
                "https://s.team/p/abcd-efgh/XYZW1234",
            ),
            ("https://s.team/p/abc/TOKEN", "https://s.team/p/abc/TOKEN"),
            (
                "https://s.team/p/abcd-efgh/XYZW1234?utm=1",
                "https://s.team/p/abcd-efgh/XYZW1234",
            ),
            (
                "https://steamcommunity.com/user/abcd-efgh/XYZW1234",
                "https://steamcommunity.com/user/abcd-efgh/XYZW1234",
            ),
            (
                "https://www.steamcommunity.com/user/qwer-tyui/ABCDEFGH/",
                "https://steamcommunity.com/user/qwer-tyui/ABCDEFGH",
            ),
            (
                "  https://S.TEAM/p/hjkl-mnbv/TOKEN123  ",
                "https://s.team/p/hjkl-mnbv/TOKEN123",
            ),
            (
                "https://s.team/p/a1b2-c3d4/Q1w2E3r4#frag",
                "https://s.team/p/a1b2-c3d4/Q1w2E3r4",
            ),
            (
                "https://s.team/p/zzzz-zzzz/abcd",
                "https://s.team/p/zzzz-zzzz/abcd",
            ),
        ];
        for (input, expected) in cases {
            let parsed = SteamInviteUrl::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(parsed.as_str(), expected);
        }
    }

    #[test]
    fn steam_invite_urls_refused() {
        let cases = [
            "",
            "https://s.team/p/",
            "https://s.team/p/abcd-efgh",
            "https://s.team/x/abcd-efgh/TOKEN123",
            "https://steamcommunity.com/id/gaben",
            "https://steamcommunity.com/profiles/76561197960287930",
            "https://steamcommunity.com.evil.io/user/abcd-efgh/TOKEN123",
            "https://example.com/p/abcd-efgh/TOKEN123",
            "https://s.team/p/abcd efgh/TOKEN123",
            "https://s.team/p/-abcd/TOKEN123",
            "https://s.team/p/abcd-efgh/TOK",
            "javascript:alert(1)",
        ];
        for input in cases {
            assert_eq!(
                SteamInviteUrl::parse(input),
                Err(RecipientError::SteamInvite),
                "{input:?}"
            );
        }
    }

    fn specs() -> Vec<FieldSpec> {
        vec![
            FieldSpec {
                key: "player_id".into(),
                label: "Player ID".into(),
                kind: FieldKind::Text,
                required: true,
            },
            FieldSpec {
                key: "server".into(),
                label: "Server".into(),
                kind: FieldKind::Select {
                    options: vec![
                        ("eu".into(), "Europe".into()),
                        ("asia".into(), "Asia".into()),
                    ],
                },
                required: true,
            },
            FieldSpec {
                key: "nickname".into(),
                label: "Nickname".into(),
                kind: FieldKind::Text,
                required: false,
            },
        ]
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn player_fields_checked_against_the_offer() {
        let ok = PlayerFields::parse(
            &specs(),
            values(&[("player_id", " 12345 "), ("server", "eu")]),
        )
        .unwrap();
        assert_eq!(ok.get("player_id"), Some("12345"));
        assert_eq!(ok.get("nickname"), None);
        assert_eq!(
            PlayerFields::parse(&specs(), values(&[("server", "eu")])),
            Err(PlayerFieldsError::Missing("player_id".into()))
        );
        assert_eq!(
            PlayerFields::parse(&specs(), values(&[("player_id", "1"), ("server", "mars")])),
            Err(PlayerFieldsError::NotAnOption {
                key: "server".into(),
                value: "mars".into()
            })
        );
        assert_eq!(
            PlayerFields::parse(
                &specs(),
                values(&[("player_id", "1"), ("server", "eu"), ("zone", "x")])
            ),
            Err(PlayerFieldsError::Unknown("zone".into()))
        );
        let long = "9".repeat(65);
        assert_eq!(
            PlayerFields::parse(&specs(), values(&[("player_id", &long), ("server", "eu")])),
            Err(PlayerFieldsError::TooLong("player_id".into()))
        );
        assert_eq!(
            PlayerFields::parse(&specs(), values(&[("player_id", "   "), ("server", "eu")])),
            Err(PlayerFieldsError::Missing("player_id".into()))
        );
    }

    #[test]
    fn newtypes_serialise_as_their_normal_form_and_refuse_bad_json() {
        let name: TelegramUsername = serde_json::from_str("\"@durov\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"durov\"");
        assert!(serde_json::from_str::<TelegramUsername>("\"1x\"").is_err());
        assert!(serde_json::from_str::<PhoneE164>("\"123\"").is_err());
    }
}
