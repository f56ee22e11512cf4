//! Configuration: the environment plus an optional `kiosk.toml`, the environment
//! winning. Every value is checked once, here; a bad one stops the start with a
//! message that names the variable (or the file key) and the fix, and exit code 2.
//! `Debug` never shows a secret.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use url::Url;

use crate::domain::{Currency, ProductFamily};
use crate::providers::ProviderId;
use crate::secret::Secret;

/// The process exit code for a configuration error.
pub const EXIT_CONFIG: i32 = 2;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://kiosk.db";
pub const DEFAULT_FAZERCARDS_URL: &str = "https://api.fzr.cards/api/v2";
pub const DEFAULT_FRAGMENT_URL: &str = "https://fragment-api.ydns.eu:8443";
pub const DEFAULT_CRYPTOREFILLS_URL: &str = "https://api.cryptorefills.com";
pub const DEFAULT_CRYPTOCARDY_URL: &str = "https://cryptocardy.com/v1/api";

/// A configuration problem: `key` is the environment variable or `file: key` that
/// holds the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    En,
    Ru,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Ru];

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ru => "ru",
        }
    }

    /// Exact codes only (`en`, `ru`), as written in configuration or stored for a user.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.code() == code.trim().to_ascii_lowercase())
    }

    /// From Telegram's IETF tag (`ru`, `ru-RU`, `en-GB`); unknown tags give `None`.
    pub fn from_telegram(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next().unwrap_or(tag);
        Self::parse(primary)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub shop: ShopConfig,
    pub telegram: TelegramConfig,
    pub database_url: String,
    pub admins: Vec<i64>,
    pub secret_key: Option<SecretKey>,
    pub pricing: PricingConfig,
    pub fiat: Option<FiatConfig>,
    pub limits: LimitsConfig,
    pub providers: ProvidersConfig,
}

#[derive(Debug, Clone)]
pub struct ShopConfig {
    pub name: String,
    pub default_language: Language,
    /// Who buyers contact about a payment (`/paysupport`): a @username or URL.
    pub support_contact: String,
    /// Where the terms of sale live (`/terms`), if not the built-in text.
    pub terms_url: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub token: Option<Secret>,
    pub api_url: Option<Url>,
    pub webhook_url: Option<Url>,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricingConfig {
    pub markup_percent: Decimal,
    pub fixed_fee_usd: Decimal,
    pub min_margin_usd: Decimal,
    /// What the shop receives for one Star, in USD.
    pub usd_per_star: Decimal,
    /// USD value of one unit of every non-USD cost currency (TON, EUR…).
    pub usd_value: BTreeMap<Currency, Decimal>,
}

/// Fiat payments through a Telegram Payments provider: a second pay button.
#[derive(Debug, Clone)]
pub struct FiatConfig {
    pub provider_token: Secret,
    pub currency: Currency,
    /// Units of `currency` per 1 USD.
    pub per_usd: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub max_unpaid_orders: u32,
    pub invoice_ttl: Duration,
    pub poll_interval: Duration,
    /// Messages and taps per buyer per minute before the bot asks them to slow down.
    pub flood_per_minute: u32,
    /// How long an order may stay with a provider before the admins are alerted.
    pub fulfilment_alert_after: Duration,
    /// How often Telegram's Star ledger is read for payments whose update was lost.
    pub star_reconcile_interval: Duration,
}

/// A 32-byte key (hex in the environment) that encrypts stored secrets.
#[derive(Clone)]
pub struct SecretKey(pub [u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProvidersConfig {
    pub fazercards: Option<FazerCardsConfig>,
    pub fragment: Option<FragmentConfig>,
    pub agent: Option<AgentConfig>,
    pub cryptorefills: Option<CryptorefillsConfig>,
    pub cryptocardy: Option<CryptoCardyConfig>,
    /// Which provider to ask first, per family sold by more than one.
    pub preferences: HashMap<ProductFamily, Vec<ProviderId>>,
    /// Alert the admins when a provider balance falls below this (provider currency).
    pub balance_alerts: HashMap<ProviderId, Decimal>,
}

impl ProvidersConfig {
    pub fn enabled(&self) -> Vec<ProviderId> {
        let mut enabled = Vec::new();
        if self.fazercards.is_some() {
            enabled.push(ProviderId::FazerCards);
        }
        if self.fragment.is_some() {
            enabled.push(ProviderId::Fragment);
        }
        if self.agent.is_some() {
            enabled.push(ProviderId::Agent);
        }
        if self.cryptorefills.is_some() {
            enabled.push(ProviderId::Cryptorefills);
        }
        if self.cryptocardy.is_some() {
            enabled.push(ProviderId::CryptoCardy);
        }
        enabled
    }
}

#[derive(Debug, Clone)]
pub struct FazerCardsConfig {
    pub url: Url,
    pub api_key: Secret,
    pub webhook_secret: Option<Secret>,
    pub catalog_ttl: Duration,
    /// Purchasable top-up category → validation namespace (`pubg_mobile_auto` →
    /// `pubg_mobile`), where matching by name is not enough.
    pub validate_id_overrides: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct FragmentConfig {
    pub url: Url,
    pub seed: Secret,
    /// KYC mode (no commission) when set.
    pub cookies: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub url: Url,
    pub api_key: Secret,
    pub agent_id: String,
    /// Send `test: true` with every order (the provider's sandbox mode).
    pub test_orders: bool,
}

#[derive(Debug, Clone)]
pub struct CryptorefillsConfig {
    pub url: Url,
    pub partner_id: Secret,
    pub app_version: String,
    /// The bot never sees a buyer's IP; Cryptorefills requires X-Forwarded-For, so
    /// the operator's public server address goes here.
    pub forwarded_for: String,
    pub default_country: String,
    /// Follow open orders on their event stream too (a faster path beside polling).
    pub stream: bool,
}

#[derive(Debug, Clone)]
pub struct CryptoCardyConfig {
    pub url: Url,
    /// The public URL of `KIOSK_LISTEN`'s `/webhooks/cryptocardy`: every new card's
    /// events are posted there (a faster path than the 10 s polling, which goes on).
    pub webhook_url: Option<Url>,
}

// ---------------------------------------------------------------------------------
// kiosk.toml: every key optional; unknown keys refused so a typo never passes silently.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    admins: Option<Vec<i64>>,
    secret_key: Option<String>,
    #[serde(default)]
    shop: FileShop,
    #[serde(default)]
    telegram: FileTelegram,
    #[serde(default)]
    pricing: FilePricing,
    #[serde(default)]
    payments: FilePayments,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    providers: FileProviders,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShop {
    name: Option<String>,
    default_language: Option<String>,
    support_contact: Option<String>,
    terms_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTelegram {
    token: Option<String>,
    api_url: Option<String>,
    webhook_url: Option<String>,
    listen: Option<String>,
}

/// A decimal written as a TOML string (`"0.013"`) or integer. Floats are refused:
/// they cannot carry money exactly.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FileDecimal {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl FileDecimal {
    fn parse(&self, key: &str) -> Result<Decimal, ConfigError> {
        match self {
            Self::Text(text) => parse_decimal(key, text),
            Self::Integer(n) => Ok(Decimal::from(*n)),
            Self::Float(f) => Err(ConfigError::new(
                key,
                format!("write the amount as a string, e.g. \"{f}\", so it stays exact"),
            )),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePricing {
    markup_percent: Option<FileDecimal>,
    fixed_fee_usd: Option<FileDecimal>,
    min_margin_usd: Option<FileDecimal>,
    usd_per_star: Option<FileDecimal>,
    #[serde(default)]
    usd_value: BTreeMap<String, FileDecimal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePayments {
    fiat: Option<FileFiat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFiat {
    provider_token: Option<String>,
    currency: Option<String>,
    per_usd: Option<FileDecimal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_unpaid_orders: Option<u32>,
    invoice_ttl: Option<String>,
    poll_interval: Option<String>,
    flood_per_minute: Option<u32>,
    fulfilment_alert_after: Option<String>,
    star_reconcile_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProviders {
    #[serde(default)]
    preferences: BTreeMap<String, Vec<String>>,
    fazercards: Option<FileFazerCards>,
    fragment: Option<FileFragment>,
    agent: Option<FileAgent>,
    cryptorefills: Option<FileCryptorefills>,
    cryptocardy: Option<FileCryptoCardy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFazerCards {
    url: Option<String>,
    api_key: Option<String>,
    webhook_secret: Option<String>,
    catalog_ttl: Option<String>,
    balance_alert_below: Option<FileDecimal>,
    #[serde(default)]
    validate_id_overrides: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFragment {
    url: Option<String>,
    seed: Option<String>,
    cookies: Option<String>,
    balance_alert_below: Option<FileDecimal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgent {
    url: Option<String>,
    api_key: Option<String>,
    agent_id: Option<String>,
    test_orders: Option<bool>,
    balance_alert_below: Option<FileDecimal>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCryptorefills {
    url: Option<String>,
    partner_id: Option<String>,
    app_version: Option<String>,
    forwarded_for: Option<String>,
    default_country: Option<String>,
    stream: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCryptoCardy {
    enabled: Option<bool>,
    url: Option<String>,
    webhook_url: Option<String>,
}

// ---------------------------------------------------------------------------------
// Value parsers shared by the environment and the file.

/// `true` / `false` (also `1` / `0`, `on` / `off`, `yes` / `no`).
fn parse_switch(key: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        other => Err(ConfigError::new(
            key,
            format!("{other:?} is neither true nor false"),
        )),
    }
}

fn parse_decimal(key: &str, text: &str) -> Result<Decimal, ConfigError> {
    Decimal::from_str(text.trim())
        .map_err(|_| ConfigError::new(key, format!("{text:?} is not a decimal number")))
}

fn parse_url(key: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim()).map_err(|_| {
        ConfigError::new(
            key,
            format!("{text:?} is not a URL (expected http(s)://host/…)"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            key,
            format!("{text:?} is not an http(s) URL"),
        ));
    }
    Ok(url)
}

/// `200ms`, `5s`, `10m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let millis = match unit.trim() {
        "ms" => number,
        "" | "s" => number.checked_mul(1_000)?,
        "m" | "min" => number.checked_mul(60_000)?,
        "h" => number.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

fn parse_duration_for(key: &str, text: &str) -> Result<Duration, ConfigError> {
    match parse_duration(text) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConfigError::new(
            key,
            format!("{text:?} is not a duration (write e.g. 200ms, 5s, 10m, 1h)"),
        )),
    }
}

fn parse_admins(key: &str, text: &str) -> Result<Vec<i64>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|id| match id.parse::<i64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(
                key,
                format!("{id:?} is not a Telegram user id (a positive number; separate several with commas)"),
            )),
        })
        .collect()
}

fn parse_secret_key(key: &str, text: &str) -> Result<SecretKey, ConfigError> {
    let bad = || {
        ConfigError::new(
            key,
            "must be 32 bytes written as 64 hex digits (generate one with `openssl rand -hex 32`)",
        )
    };
    let bytes = hex::decode(text.trim()).map_err(|_| bad())?;
    let array: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    Ok(SecretKey(array))
}

fn non_empty(key: &str, text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        Err(ConfigError::new(key, "is empty: set a value or remove it"))
    } else {
        Ok(text.to_owned())
    }
}

/// The environment as a map, so tests never mutate the process environment.
pub type Env = HashMap<String, String>;

/// Looks a value up in the environment first, then the file; returns it with the key
/// to blame in errors.
struct Lookup<'a> {
    env: &'a Env,
    file_name: String,
}

impl Lookup<'_> {
    fn get(
        &self,
        env_key: &str,
        file_key: &str,
        file_value: Option<&str>,
    ) -> Option<(String, String)> {
        if let Some(value) = self.env.get(env_key).filter(|v| !v.trim().is_empty()) {
            return Some((env_key.to_owned(), value.clone()));
        }
        file_value.map(|v| (format!("{}: {file_key}", self.file_name), v.to_owned()))
    }

    fn file_key(&self, key: &str) -> String {
        format!("{}: {key}", self.file_name)
    }
}

impl Config {
    /// Reads the process environment and the configuration file it points at.
    pub fn load() -> Result<Config, ConfigError> {
        let env: Env = std::env::vars().collect();
        Self::from_env(&env)
    }

    /// Reads `KIOSK_CONFIG` (or `./kiosk.toml` when present) and overlays `env`.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let (path, text) = match env.get("KIOSK_CONFIG").filter(|p| !p.trim().is_empty()) {
            Some(path) => {
                let path = PathBuf::from(path.trim());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(
                        "KIOSK_CONFIG",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                (path, Some(text))
            }
            None => {
                let path = PathBuf::from("kiosk.toml");
                let text = std::fs::read_to_string(&path).ok();
                (path, text)
            }
        };
        Self::from_parts(env, &path, text.as_deref())
    }

    /// Builds the configuration from an environment map and the file's text.
    pub fn from_parts(
        env: &Env,
        file_path: &Path,
        file_text: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let file_name = file_path.display().to_string();
        let file: FileConfig = match file_text {
            Some(text) => toml::from_str(text)
                .map_err(|e| ConfigError::new(file_name.clone(), e.message().to_string()))?,
            None => FileConfig::default(),
        };
        let look = Lookup { env, file_name };

        let shop = ShopConfig {
            name: file.shop.name.clone().unwrap_or_else(|| "Kiosk".to_owned()),
            default_language: match look.get(
                "KIOSK_DEFAULT_LANGUAGE",
                "shop.default_language",
                file.shop.default_language.as_deref(),
            ) {
                Some((key, value)) => Language::parse(&value).ok_or_else(|| {
                    ConfigError::new(
                        key,
                        format!("{value:?} is not a supported language (en or ru)"),
                    )
                })?,
                None => Language::En,
            },
            support_contact: file
                .shop
                .support_contact
                .clone()
                .unwrap_or_else(|| "the shop's support chat".to_owned()),
            terms_url: file
                .shop
                .terms_url
                .as_deref()
                .map(|u| parse_url(&look.file_key("shop.terms_url"), u))
                .transpose()?,
        };

        let telegram = TelegramConfig {
            token: look
                .get(
                    "TELOXIDE_TOKEN",
                    "telegram.token",
                    file.telegram.token.as_deref(),
                )
                .map(|(key, value)| {
                    let token = non_empty(&key, &value)?;
                    // `<bot id>:<secret>`: catching a pasted username or URL early.
                    match token.split_once(':') {
                        Some((id, rest)) if id.parse::<u64>().is_ok() && !rest.is_empty() => {
                            Ok(Secret::new(token))
                        }
                        _ => Err(ConfigError::new(
                            key,
                            "is not a bot token (expected <bot id>:<secret> from @BotFather)",
                        )),
                    }
                })
                .transpose()?,
            api_url: look
                .get(
                    "TELOXIDE_API_URL",
                    "telegram.api_url",
                    file.telegram.api_url.as_deref(),
                )
                .map(|(k, v)| parse_url(&k, &v))
                .transpose()?,
            webhook_url: look
                .get(
                    "KIOSK_WEBHOOK_URL",
                    "telegram.webhook_url",
                    file.telegram.webhook_url.as_deref(),
                )
                .map(|(k, v)| parse_url(&k, &v))
                .transpose()?,
            listen: match look.get(
                "KIOSK_LISTEN",
                "telegram.listen",
                file.telegram.listen.as_deref(),
            ) {
                Some((key, value)) => value.trim().parse().map_err(|_| {
                    ConfigError::new(
                        key,
                        format!("{value:?} is not an address (write host:port, e.g. 0.0.0.0:8443)"),
                    )
                })?,
                None => SocketAddr::from(([0, 0, 0, 0], 8443)),
            },
        };

        let database_url = match look.get(
            "KIOSK_DATABASE_URL",
            "database_url",
            file.database_url.as_deref(),
        ) {
            Some((key, value)) => {
                let value = non_empty(&key, &value)?;
                if !value.starts_with("sqlite:") {
                    return Err(ConfigError::new(
                        key,
                        format!("{value:?} is not a SQLite URL (write e.g. sqlite://kiosk.db)"),
                    ));
                }
                value
            }
            None => DEFAULT_DATABASE_URL.to_owned(),
        };

        let admins = match env.get("KIOSK_ADMINS") {
            Some(value) => parse_admins("KIOSK_ADMINS", value)?,
            None => {
                let admins = file.admins.clone().unwrap_or_default();
                if let Some(bad) = admins.iter().find(|id| **id <= 0) {
                    return Err(ConfigError::new(
                        look.file_key("admins"),
                        format!("{bad} is not a Telegram user id"),
                    ));
                }
                admins
            }
        };

        let secret_key = look
            .get("KIOSK_SECRET_KEY", "secret_key", file.secret_key.as_deref())
            .map(|(k, v)| parse_secret_key(&k, &v))
            .transpose()?;

        let pricing = Self::pricing(&look, &file.pricing)?;
        let fiat = Self::fiat(&look, env, &file.payments)?;
        let limits = Self::limits(&look, &file.limits)?;
        let providers = Self::providers(&look, &file.providers)?;

        Ok(Config {
            shop,
            telegram,
            database_url,
            admins,
            secret_key,
            pricing,
            fiat,
            limits,
            providers,
        })
    }

    fn pricing(look: &Lookup<'_>, file: &FilePricing) -> Result<PricingConfig, ConfigError> {
        let field = |value: &Option<FileDecimal>,
                     key: &str,
                     default: &str|
         -> Result<Decimal, ConfigError> {
            let key = look.file_key(&format!("pricing.{key}"));
            let value = match value {
                Some(v) => v.parse(&key)?,
                None => {
                    Decimal::from_str(default).map_err(|_| ConfigError::new(&key, "bad default"))?
                }
            };
            if value.is_sign_negative() {
                return Err(ConfigError::new(key, "must not be negative"));
            }
            Ok(value)
        };
        let usd_per_star = field(&file.usd_per_star, "usd_per_star", "0.013")?;
        if usd_per_star.is_zero() {
            return Err(ConfigError::new(
                look.file_key("pricing.usd_per_star"),
                "must be above zero (what one Star brings the shop, in USD)",
            ));
        }
        let mut usd_value = BTreeMap::new();
        for (code, value) in &file.usd_value {
            let key = look.file_key(&format!("pricing.usd_value.{code}"));
            let currency =
                Currency::parse(code).map_err(|e| ConfigError::new(&key, e.to_string()))?;
            let value = value.parse(&key)?;
            if value <= Decimal::ZERO {
                return Err(ConfigError::new(key, "must be above zero"));
            }
            usd_value.insert(currency, value);
        }
        Ok(PricingConfig {
            markup_percent: field(&file.markup_percent, "markup_percent", "15")?,
            fixed_fee_usd: field(&file.fixed_fee_usd, "fixed_fee_usd", "0")?,
            min_margin_usd: field(&file.min_margin_usd, "min_margin_usd", "0.05")?,
            usd_per_star,
            usd_value,
        })
    }

    fn fiat(
        look: &Lookup<'_>,
        env: &Env,
        file: &FilePayments,
    ) -> Result<Option<FiatConfig>, ConfigError> {
        let fiat = file.fiat.as_ref();
        let token = look.get(
            "KIOSK_PAYMENT_PROVIDER_TOKEN",
            "payments.fiat.provider_token",
            fiat.and_then(|f| f.provider_token.as_deref()),
        );
        let Some((token_key, token)) = token else {
            return Ok(None);
        };
        let token = Secret::new(non_empty(&token_key, &token)?);
        let (currency_key, currency) = look
            .get("KIOSK_PAYMENT_CURRENCY", "payments.fiat.currency", fiat.and_then(|f| f.currency.as_deref()))
            .ok_or_else(|| {
                ConfigError::new(
                    look.file_key("payments.fiat.currency"),
                    "a fiat provider token is set but no currency: set currency = \"RUB\" (or KIOSK_PAYMENT_CURRENCY)",
                )
            })?;
        let currency = Currency::parse(&currency)
            .map_err(|e| ConfigError::new(&currency_key, e.to_string()))?;
        if currency.is_stars() {
            return Err(ConfigError::new(
                currency_key,
                "XTR is Stars, not a fiat currency",
            ));
        }
        let per_usd_key = look.file_key("payments.fiat.per_usd");
        let per_usd = match (
            env.get("KIOSK_PAYMENT_PER_USD"),
            fiat.and_then(|f| f.per_usd.as_ref()),
        ) {
            (Some(text), _) => parse_decimal("KIOSK_PAYMENT_PER_USD", text)?,
            (None, Some(value)) => value.parse(&per_usd_key)?,
            (None, None) => {
                return Err(ConfigError::new(
                    per_usd_key,
                    "a fiat provider token is set but no rate: set per_usd = \"95.0\" (units per 1 USD)",
                ));
            }
        };
        if per_usd <= Decimal::ZERO {
            return Err(ConfigError::new(per_usd_key, "must be above zero"));
        }
        Ok(Some(FiatConfig {
            provider_token: token,
            currency,
            per_usd,
        }))
    }

    fn limits(look: &Lookup<'_>, file: &FileLimits) -> Result<LimitsConfig, ConfigError> {
        let duration =
            |env_key: &str, file_key: &str, value: Option<&str>, default: Duration| match look.get(
                env_key,
                &format!("limits.{file_key}"),
                value,
            ) {
                Some((key, text)) => parse_duration_for(&key, &text),
                None => Ok(default),
            };
        let max_unpaid_orders = file.max_unpaid_orders.unwrap_or(3);
        if max_unpaid_orders == 0 {
            return Err(ConfigError::new(
                look.file_key("limits.max_unpaid_orders"),
                "must be at least 1",
            ));
        }
        let flood_per_minute = file.flood_per_minute.unwrap_or(40);
        if flood_per_minute == 0 {
            return Err(ConfigError::new(
                look.file_key("limits.flood_per_minute"),
                "must be at least 1",
            ));
        }
        Ok(LimitsConfig {
            max_unpaid_orders,
            invoice_ttl: duration(
                "KIOSK_INVOICE_TTL",
                "invoice_ttl",
                file.invoice_ttl.as_deref(),
                Duration::from_secs(15 * 60),
            )?,
            poll_interval: duration(
                "KIOSK_POLL_INTERVAL",
                "poll_interval",
                file.poll_interval.as_deref(),
                Duration::from_secs(5),
            )?,
            flood_per_minute,
            fulfilment_alert_after: duration(
                "KIOSK_FULFILMENT_ALERT_AFTER",
                "fulfilment_alert_after",
                file.fulfilment_alert_after.as_deref(),
                Duration::from_secs(30 * 60),
            )?,
            star_reconcile_interval: duration(
                "KIOSK_STAR_RECONCILE_INTERVAL",
                "star_reconcile_interval",
                file.star_reconcile_interval.as_deref(),
                Duration::from_secs(5 * 60),
            )?,
        })
    }

    fn providers(look: &Lookup<'_>, file: &FileProviders) -> Result<ProvidersConfig, ConfigError> {
        let url = |env_key: &str,
                   file_key: &str,
                   value: Option<&str>,
                   default: Option<&str>|
         -> Result<Option<Url>, ConfigError> {
            match look.get(env_key, file_key, value) {
                Some((key, text)) => parse_url(&key, &text).map(Some),
                None => default.map(|d| parse_url(env_key, d)).transpose(),
            }
        };
        let secret = |env_key: &str,
                      file_key: &str,
                      value: Option<&str>|
         -> Result<Option<Secret>, ConfigError> {
            look.get(env_key, file_key, value)
                .map(|(key, text)| non_empty(&key, &text).map(Secret::new))
                .transpose()
        };
        let mut config = ProvidersConfig::default();
        let mut alerts = HashMap::new();
        let mut alert = |provider: ProviderId,
                         value: Option<&FileDecimal>,
                         key: &str|
         -> Result<(), ConfigError> {
            if let Some(value) = value {
                alerts.insert(provider, value.parse(&look.file_key(key))?);
            }
            Ok(())
        };

        let fazer = file.fazercards.as_ref();
        if let Some(api_key) = secret(
            "KIOSK_FAZERCARDS_API_KEY",
            "providers.fazercards.api_key",
            fazer.and_then(|f| f.api_key.as_deref()),
        )? {
            let catalog_ttl = match fazer.and_then(|f| f.catalog_ttl.as_deref()) {
                Some(text) => {
                    parse_duration_for(&look.file_key("providers.fazercards.catalog_ttl"), text)?
                }
                None => Duration::from_secs(600),
            };
            config.fazercards = Some(FazerCardsConfig {
                url: url(
                    "KIOSK_FAZERCARDS_URL",
                    "providers.fazercards.url",
                    fazer.and_then(|f| f.url.as_deref()),
                    Some(DEFAULT_FAZERCARDS_URL),
                )?
                .ok_or_else(|| ConfigError::new("KIOSK_FAZERCARDS_URL", "missing"))?,
                api_key,
                webhook_secret: secret(
                    "KIOSK_FAZERCARDS_WEBHOOK_SECRET",
                    "providers.fazercards.webhook_secret",
                    fazer.and_then(|f| f.webhook_secret.as_deref()),
                )?,
                catalog_ttl,
                validate_id_overrides: fazer
                    .map(|f| f.validate_id_overrides.clone())
                    .unwrap_or_default(),
            });
            alert(
                ProviderId::FazerCards,
                fazer.and_then(|f| f.balance_alert_below.as_ref()),
                "providers.fazercards.balance_alert_below",
            )?;
        }

        let fragment = file.fragment.as_ref();
        if let Some(seed) = secret(
            "KIOSK_FRAGMENT_SEED",
            "providers.fragment.seed",
            fragment.and_then(|f| f.seed.as_deref()),
        )? {
            config.fragment = Some(FragmentConfig {
                url: url(
                    "KIOSK_FRAGMENT_URL",
                    "providers.fragment.url",
                    fragment.and_then(|f| f.url.as_deref()),
                    Some(DEFAULT_FRAGMENT_URL),
                )?
                .ok_or_else(|| ConfigError::new("KIOSK_FRAGMENT_URL", "missing"))?,
                seed,
                cookies: secret(
                    "KIOSK_FRAGMENT_COOKIES",
                    "providers.fragment.cookies",
                    fragment.and_then(|f| f.cookies.as_deref()),
                )?,
            });
            alert(
                ProviderId::Fragment,
                fragment.and_then(|f| f.balance_alert_below.as_ref()),
                "providers.fragment.balance_alert_below",
            )?;
        }

        let agent = file.agent.as_ref();
        if let Some(api_key) = secret(
            "KIOSK_AGENT_API_KEY",
            "providers.agent.api_key",
            agent.and_then(|f| f.api_key.as_deref()),
        )? {
            // The Agent API document names no public host: the operator must give one.
            let agent_url = url("KIOSK_AGENT_URL", "providers.agent.url", agent.and_then(|f| f.url.as_deref()), None)?
                .ok_or_else(|| ConfigError::new("KIOSK_AGENT_URL", "is required when KIOSK_AGENT_API_KEY is set (the API's base URL from your account manager)"))?;
            let (id_key, agent_id) = look
                .get(
                    "KIOSK_AGENT_ID",
                    "providers.agent.agent_id",
                    agent.and_then(|f| f.agent_id.as_deref()),
                )
                .ok_or_else(|| {
                    ConfigError::new(
                        "KIOSK_AGENT_ID",
                        "is required when KIOSK_AGENT_API_KEY is set",
                    )
                })?;
            let agent_id = non_empty(&id_key, &agent_id)?;
            if !agent_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                return Err(ConfigError::new(
                    id_key,
                    format!("{agent_id:?} is not an agent id (letters, digits, - and _)"),
                ));
            }
            config.agent = Some(AgentConfig {
                url: agent_url,
                api_key,
                agent_id,
                test_orders: agent.and_then(|f| f.test_orders).unwrap_or(false),
            });
            alert(
                ProviderId::Agent,
                agent.and_then(|f| f.balance_alert_below.as_ref()),
                "providers.agent.balance_alert_below",
            )?;
        }

        let refills = file.cryptorefills.as_ref();
        if let Some(partner_id) = secret(
            "KIOSK_CRYPTOREFILLS_PARTNER_ID",
            "providers.cryptorefills.partner_id",
            refills.and_then(|f| f.partner_id.as_deref()),
        )? {
            let (ff_key, forwarded_for) = look
                .get(
                    "KIOSK_CRYPTOREFILLS_FORWARDED_FOR",
                    "providers.cryptorefills.forwarded_for",
                    refills.and_then(|f| f.forwarded_for.as_deref()),
                )
                .unwrap_or_else(|| {
                    (
                        "KIOSK_CRYPTOREFILLS_FORWARDED_FOR".to_owned(),
                        "127.0.0.1".to_owned(),
                    )
                });
            let forwarded_for = forwarded_for.trim().to_owned();
            if forwarded_for.parse::<std::net::IpAddr>().is_err() {
                return Err(ConfigError::new(
                    ff_key,
                    format!("{forwarded_for:?} is not an IP address"),
                ));
            }
            let country = refills
                .and_then(|f| f.default_country.clone())
                .unwrap_or_else(|| "US".to_owned());
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(ConfigError::new(
                    look.file_key("providers.cryptorefills.default_country"),
                    format!("{country:?} is not a two-letter country code"),
                ));
            }
            config.cryptorefills = Some(CryptorefillsConfig {
                url: url(
                    "KIOSK_CRYPTOREFILLS_URL",
                    "providers.cryptorefills.url",
                    refills.and_then(|f| f.url.as_deref()),
                    Some(DEFAULT_CRYPTOREFILLS_URL),
                )?
                .ok_or_else(|| ConfigError::new("KIOSK_CRYPTOREFILLS_URL", "missing"))?,
                partner_id,
                app_version: refills
                    .and_then(|f| f.app_version.clone())
                    .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
                forwarded_for,
                default_country: country.to_ascii_uppercase(),
                stream: match look.get(
                    "KIOSK_CRYPTOREFILLS_STREAM",
                    "providers.cryptorefills.stream",
                    refills
                        .and_then(|f| f.stream)
                        .map(|b| b.to_string())
                        .as_deref(),
                ) {
                    Some((key, value)) => parse_switch(&key, &value)?,
                    None => true,
                },
            });
        }

        let cardy = file.cryptocardy.as_ref();
        let cardy_url = url(
            "KIOSK_CRYPTOCARDY_URL",
            "providers.cryptocardy.url",
            cardy.and_then(|f| f.url.as_deref()),
            None,
        )?;
        let cardy_webhook = url(
            "KIOSK_CRYPTOCARDY_WEBHOOK_URL",
            "providers.cryptocardy.webhook_url",
            cardy.and_then(|f| f.webhook_url.as_deref()),
            None,
        )?;
        if cardy_url.is_some() || cardy.and_then(|f| f.enabled).unwrap_or(false) {
            config.cryptocardy = Some(CryptoCardyConfig {
                url: match cardy_url {
                    Some(url) => url,
                    None => parse_url("KIOSK_CRYPTOCARDY_URL", DEFAULT_CRYPTOCARDY_URL)?,
                },
                webhook_url: cardy_webhook,
            });
        }

        for (family_name, order) in &file.preferences {
            let key = look.file_key(&format!("providers.preferences.{family_name}"));
            let family = ProductFamily::parse(family_name).ok_or_else(|| {
                ConfigError::new(&key, format!("{family_name:?} is not a product family (e.g. telegram_stars, telegram_premium, gift_card)"))
            })?;
            let ids = order
                .iter()
                .map(|name| {
                    ProviderId::parse(name).ok_or_else(|| {
                        ConfigError::new(&key, format!("{name:?} is not a provider (fazercards, fragment, agent, cryptorefills, cryptocardy)"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            config.preferences.insert(family, ids);
        }
        config.balance_alerts = alerts;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(pairs: &[(&str, &str)], toml: Option<&str>) -> Result<Config, ConfigError> {
        Config::from_parts(&env(pairs), Path::new("kiosk.toml"), toml)
    }

    #[test]
    fn defaults_need_nothing() {
        let config = load(&[], None).unwrap();
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert!(config.admins.is_empty());
        assert!(config.providers.enabled().is_empty());
        assert_eq!(config.limits.max_unpaid_orders, 3);
        assert_eq!(config.limits.poll_interval, Duration::from_secs(5));
        assert_eq!(config.shop.default_language, Language::En);
    }

    #[test]
    fn bad_admins_name_the_variable() {
        let err = load(&[("KIOSK_ADMINS", "12a")], None).unwrap_err();
        assert_eq!(err.key, "KIOSK_ADMINS");
        assert!(
            err.to_string()
                .starts_with("KIOSK_ADMINS: \"12a\" is not a Telegram user id"),
            "{err}"
        );
        assert!(load(&[("KIOSK_ADMINS", "-5")], None).is_err());
        let ok = load(&[("KIOSK_ADMINS", " 1, 22 ,333 ")], None).unwrap();
        assert_eq!(ok.admins, vec![1, 22, 333]);
    }

    #[test]
    fn environment_wins_over_the_file() {
        let toml = r#"
            database_url = "sqlite://from-file.db"
            admins = [7]
            [limits]
            poll_interval = "9s"
        "#;
        let config = load(
            &[
                ("KIOSK_DATABASE_URL", "sqlite://from-env.db"),
                ("KIOSK_POLL_INTERVAL", "200ms"),
            ],
            Some(toml),
        )
        .unwrap();
        assert_eq!(config.database_url, "sqlite://from-env.db");
        assert_eq!(config.limits.poll_interval, Duration::from_millis(200));
        assert_eq!(config.admins, vec![7]);
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("KIOSK_POLL_INTERVAL", "soon")], "KIOSK_POLL_INTERVAL"),
            (&[("KIOSK_POLL_INTERVAL", "0s")], "KIOSK_POLL_INTERVAL"),
            (
                &[("KIOSK_DATABASE_URL", "postgres://x")],
                "KIOSK_DATABASE_URL",
            ),
            (&[("KIOSK_SECRET_KEY", "abcd")], "KIOSK_SECRET_KEY"),
            (&[("KIOSK_LISTEN", "everywhere")], "KIOSK_LISTEN"),
            (&[("TELOXIDE_TOKEN", "not-a-token")], "TELOXIDE_TOKEN"),
            (&[("TELOXIDE_API_URL", "ftp://x")], "TELOXIDE_API_URL"),
            (
                &[
                    ("KIOSK_FAZERCARDS_API_KEY", "k"),
                    ("KIOSK_FAZERCARDS_URL", "nope"),
                ],
                "KIOSK_FAZERCARDS_URL",
            ),
            (&[("KIOSK_AGENT_API_KEY", "k")], "KIOSK_AGENT_URL"),
            (
                &[
                    ("KIOSK_AGENT_API_KEY", "k"),
                    ("KIOSK_AGENT_URL", "http://127.0.0.1:1"),
                ],
                "KIOSK_AGENT_ID",
            ),
            (
                &[
                    ("KIOSK_CRYPTOREFILLS_PARTNER_ID", "p"),
                    ("KIOSK_CRYPTOREFILLS_FORWARDED_FOR", "me"),
                ],
                "KIOSK_CRYPTOREFILLS_FORWARDED_FOR",
            ),
            (
                &[("KIOSK_DEFAULT_LANGUAGE", "fr")],
                "KIOSK_DEFAULT_LANGUAGE",
            ),
            (
                &[("KIOSK_PAYMENT_PROVIDER_TOKEN", "t")],
                "kiosk.toml: payments.fiat.currency",
            ),
        ];
        for (pairs, key) in cases {
            let err = load(pairs, None).expect_err(key);
            assert_eq!(&err.key, key, "{err}");
        }
    }

    #[test]
    fn file_errors_name_the_key() {
        let err = load(&[], Some("[pricing]\nusd_per_star = 0.013\n")).unwrap_err();
        assert_eq!(err.key, "kiosk.toml: pricing.usd_per_star");
        assert!(err.problem.contains("\"0.013\""), "{err}");
        let err = load(&[], Some("[pricing]\nmarkp_percent = \"5\"\n")).unwrap_err();
        assert_eq!(err.key, "kiosk.toml");
        assert!(err.problem.contains("markp_percent"), "{err}");
        let err = load(
            &[],
            Some("[providers.preferences]\ntelegram_stars = [\"fragmint\"]\n"),
        )
        .unwrap_err();
        assert_eq!(err.key, "kiosk.toml: providers.preferences.telegram_stars");
        let err = load(&[], Some("admins = [0]")).unwrap_err();
        assert_eq!(err.key, "kiosk.toml: admins");
        let err = load(&[], Some("[pricing]\nmarkup_percent = \"-3\"\n")).unwrap_err();
        assert_eq!(err.key, "kiosk.toml: pricing.markup_percent");
    }

    #[test]
    fn providers_enable_on_credentials() {
        let config = load(
            &[
                ("KIOSK_FAZERCARDS_API_KEY", "fz-secret"),
                ("KIOSK_FRAGMENT_SEED", "word word word"),
                ("KIOSK_AGENT_API_KEY", "agent-secret"),
                ("KIOSK_AGENT_URL", "http://127.0.0.1:9000"),
                ("KIOSK_AGENT_ID", "a-17"),
                ("KIOSK_CRYPTOREFILLS_PARTNER_ID", "partner"),
                ("KIOSK_CRYPTOCARDY_URL", "http://127.0.0.1:9001"),
            ],
            Some("[providers.preferences]\ntelegram_stars = [\"fragment\", \"fazercards\"]\n"),
        )
        .unwrap();
        assert_eq!(config.providers.enabled(), ProviderId::ALL.to_vec());
        assert_eq!(
            config.providers.fazercards.as_ref().unwrap().url.as_str(),
            DEFAULT_FAZERCARDS_URL
        );
        assert_eq!(
            config.providers.preferences[&ProductFamily::TelegramStars],
            vec![ProviderId::Fragment, ProviderId::FazerCards]
        );
    }

    #[test]
    fn the_cryptorefills_stream_is_on_unless_switched_off() {
        let on = load(&[("KIOSK_CRYPTOREFILLS_PARTNER_ID", "p")], None).unwrap();
        assert!(on.providers.cryptorefills.unwrap().stream);
        let off = load(
            &[("KIOSK_CRYPTOREFILLS_PARTNER_ID", "p")],
            Some("[providers.cryptorefills]\nstream = false\n"),
        )
        .unwrap();
        assert!(!off.providers.cryptorefills.unwrap().stream);
        let env_wins = load(
            &[
                ("KIOSK_CRYPTOREFILLS_PARTNER_ID", "p"),
                ("KIOSK_CRYPTOREFILLS_STREAM", "on"),
            ],
            Some("[providers.cryptorefills]\nstream = false\n"),
        )
        .unwrap();
        assert!(env_wins.providers.cryptorefills.unwrap().stream);
        let err = load(
            &[
                ("KIOSK_CRYPTOREFILLS_PARTNER_ID", "p"),
                ("KIOSK_CRYPTOREFILLS_STREAM", "maybe"),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(err.key, "KIOSK_CRYPTOREFILLS_STREAM");
    }

    #[test]
    fn cryptocardy_webhook_url_from_env_or_file() {
        let config = load(
            &[
                ("KIOSK_CRYPTOCARDY_URL", "http://127.0.0.1:9001"),
                (
                    "KIOSK_CRYPTOCARDY_WEBHOOK_URL",
                    "https://shop.example/webhooks/cryptocardy",
                ),
            ],
            None,
        )
        .unwrap();
        let cardy = config.providers.cryptocardy.unwrap();
        assert_eq!(
            cardy.webhook_url.unwrap().as_str(),
            "https://shop.example/webhooks/cryptocardy"
        );

        let config = load(
            &[],
            Some(
                "[providers.cryptocardy]\nenabled = true\nwebhook_url = \"https://a.example/w\"\n",
            ),
        )
        .unwrap();
        let cardy = config.providers.cryptocardy.unwrap();
        assert_eq!(cardy.url.as_str(), DEFAULT_CRYPTOCARDY_URL);
        assert_eq!(cardy.webhook_url.unwrap().as_str(), "https://a.example/w");

        let config = load(&[("KIOSK_CRYPTOCARDY_URL", "http://127.0.0.1:9001")], None).unwrap();
        assert!(config.providers.cryptocardy.unwrap().webhook_url.is_none());

        let err = load(
            &[
                ("KIOSK_CRYPTOCARDY_URL", "http://127.0.0.1:9001"),
                ("KIOSK_CRYPTOCARDY_WEBHOOK_URL", "not a url"),
            ],
            None,
        )
        .unwrap_err();
        assert_eq!(err.key, "KIOSK_CRYPTOCARDY_WEBHOOK_URL");
    }

    #[test]
    fn debug_redacts_every_secret() {
        let config = load(
            &[
                ("TELOXIDE_TOKEN", "123456:TOKEN-SECRET"),
                ("KIOSK_SECRET_KEY", &"ab".repeat(32)),
                ("KIOSK_FAZERCARDS_API_KEY", "FZ-SECRET"),
                ("KIOSK_FAZERCARDS_WEBHOOK_SECRET", "HOOK-SECRET"),
                ("KIOSK_FRAGMENT_SEED", "SEED-SECRET"),
                ("KIOSK_FRAGMENT_COOKIES", "COOKIE-SECRET"),
                ("KIOSK_AGENT_API_KEY", "AGENT-SECRET"),
                ("KIOSK_AGENT_URL", "http://127.0.0.1:9000"),
                ("KIOSK_AGENT_ID", "a1"),
                ("KIOSK_CRYPTOREFILLS_PARTNER_ID", "PARTNER-SECRET"),
                ("KIOSK_PAYMENT_PROVIDER_TOKEN", "PAY-SECRET"),
                ("KIOSK_PAYMENT_CURRENCY", "RUB"),
                ("KIOSK_PAYMENT_PER_USD", "95"),
            ],
            None,
        )
        .unwrap();
        let shown = format!("{config:?}");
        for secret in [
            "TOKEN-SECRET",
            "abababab",
            "FZ-SECRET",
            "HOOK-SECRET",
            "SEED-SECRET",
            "COOKIE-SECRET",
            "AGENT-SECRET",
            "PARTNER-SECRET",
            "PAY-SECRET",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        assert!(shown.contains("***"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("5 days"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    #[test]
    fn languages_from_telegram_tags() {
        assert_eq!(Language::from_telegram("ru-RU"), Some(Language::Ru));
        assert_eq!(Language::from_telegram("en"), Some(Language::En));
        assert_eq!(Language::from_telegram("de"), None);
    }
}
