//! CryptoCardy cards as an asset their owner manages (DESIGN.md: "its own module, not a
//! stretch of the `Provider` trait").
//!
//! - [`domain`]  card states, the views a handler renders, errors with locale keys
//! - [`seal`]    the AEAD that keeps card seeds encrypted at rest (KIOSK_SECRET_KEY)
//! - [`service`] [`CardService`]: issue, follow until funded, and the owner-only
//!   operations (summary, details, freeze, fund, withdraw, transactions, 3-D Secure
//!   codes, terminate), plus webhooks and resuming after a restart
//!
//! The wire is [`crate::providers::cryptocardy::client`]; the rows are
//! [`crate::store::cards`].

pub mod domain;
pub mod seal;
pub mod service;

pub use domain::{
    BalanceChange, CardError, CardId, CardNetwork, CardSecrets, CardState, CardSummaryView,
    CardTransaction, CardView, IssueCard, OwnerConfirmed, TerminationPrompt, TerminationResult,
    ThreeDsCode, WebhookOutcome,
};
pub use service::{CardService, CardServiceOptions, CardWebhook, IssuedCardView};
