//! Kiosk: a Telegram bot storefront for digital goods, fulfilled through reseller APIs.
//!
//! Module map (one concern each):
//!
//! - [`config`]    environment + `kiosk.toml` → [`config::Config`]; secrets redacted in `Debug`
//! - [`secret`]    the [`secret::Secret`] wrapper that never prints its value
//! - [`domain`]    money, product families, orders and their states, recipient newtypes
//! - [`pricing`]   provider cost → buyer price in Stars or fiat, rounded up
//! - [`checkout`]  buyer-paid crypto checkout: payment URI, QR PNG, checkout message
//! - [`store`]     SQLite: orders, order events, payments, users, dialogue state
//! - [`providers`] the `Provider` trait and one adapter folder per reseller API
//! - [`cards`]     CryptoCardy cards their owner manages: issue, follow, details, freeze, fund…
//! - [`demo`]      `kiosk demo`: the shop on the fakes, a Telegram-like chat in a browser
//! - [`sandbox`]   loopback fakes of the provider APIs (tests, `kiosk sandbox`, demo)
//! - [`i18n`]      locale choice and plural forms over `locales/*.yml`
//! - [`bot`]       teloxide: the handler tree, dialogue states and commands
//! - [`engine`]    payment → provider → goods or refund: pre-checkout, submission, poller
//! - [`telemetry`] tracing subscriber that also carries teloxide's `log` records
//! - [`cli`]       the `kiosk` command line: run, migrate, check, sandbox, demo
//!
//! The purchase spine (DESIGN.md): dialogue → quote → order row → invoice →
//! pre-checkout → successful payment (once) → provider order with the stored
//! idempotency key → poller/webhook → goods or refund. Every arrow is a row written
//! before the next step starts.

rust_i18n::i18n!("locales", fallback = "en");

pub mod bot;
pub mod cards;
pub mod checkout;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod i18n;
pub mod pricing;
pub mod providers;
pub mod sandbox;
pub mod secret;
pub mod store;
pub mod telemetry;
