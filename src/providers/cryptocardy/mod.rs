//! CryptoCardy: virtual Visa / Mastercard cards the buyer funds on-chain.
//!
//! Not a [`crate::providers::Provider`]: a card is not an order that ends with goods in
//! the chat but an asset its owner manages afterwards (DESIGN.md). `client.rs` is the
//! wire (one method per endpoint a card owner needs, the seed's rate limits, webhook
//! signatures); [`crate::cards`] is the owner-facing service over it and the encrypted
//! store of card seeds.

pub mod client;

pub use client::{
    CardDetails, CardNetwork, CardSeed, CardSummary, CardyError, ClientOptions, CryptoCardyClient,
    Cvv, FundingWallet, IssueRequest, IssuedCard, Otp, Pan, RateLimits, RemoteCardState,
    RetryPolicy, ThreeDsChallenge, Transaction, TransactionKind, WebhookEvent, parse_webhook,
    sign_webhook, verify_webhook,
};
