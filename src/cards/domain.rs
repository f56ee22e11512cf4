//! What a card's owner sees and does: card states, the views a handler renders, and the
//! errors with their locale keys (`cards.*` in `locales/`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

pub use crate::providers::cryptocardy::client::CardNetwork;
use crate::providers::cryptocardy::client::{CardyError, Cvv, Otp, Pan, TransactionKind};
use crate::store::StoreError;

/// Our id of a card (the `cards` row), used in callbacks; never the provider's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardId(pub i64);

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for CardId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse().map(CardId)
    }
}

/// A card's life as the shop records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardState {
    /// The row exists; the issuing call has not answered (yet).
    Issuing,
    /// Issued; waiting for the buyer's on-chain funding.
    PendingTopUp,
    Active,
    Frozen,
    Terminated,
    /// The provider refused to issue; nothing was created.
    IssueFailed,
}

impl CardState {
    pub const ALL: [CardState; 6] = [
        Self::Issuing,
        Self::PendingTopUp,
        Self::Active,
        Self::Frozen,
        Self::Terminated,
        Self::IssueFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issuing => "issuing",
            Self::PendingTopUp => "pending_top_up",
            Self::Active => "active",
            Self::Frozen => "frozen",
            Self::Terminated => "terminated",
            Self::IssueFailed => "issue_failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Nothing more will happen to the card.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::IssueFailed)
    }

    /// Issued and not ended: the card's seed may still produce events (waiting for
    /// funding, active or frozen).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Issuing) && !self.is_final()
    }

    /// Issued and funded at least once: details, freeze, funding and the rest apply.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Frozen)
    }

    /// The locale key of the state's name (`cards.state.active`).
    pub fn message_key(self) -> &'static str {
        match self {
            Self::Issuing => "cards.state.issuing",
            Self::PendingTopUp => "cards.state.pending_top_up",
            Self::Active => "cards.state.active",
            Self::Frozen => "cards.state.frozen",
            Self::Terminated => "cards.state.terminated",
            Self::IssueFailed => "cards.state.issue_failed",
        }
    }
}

impl fmt::Display for CardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the buyer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCard {
    /// `None`: the provider chooses.
    pub network: Option<CardNetwork>,
    /// Funding asset: `BTC`, `ETH`, `USDT-ERC20`, `USDT-SOL`, `SOL`, `XMR`…
    pub asset: String,
    /// Funding chain, where the asset alone does not say it.
    pub chain: Option<String>,
}

/// A card as the shop knows it (no secret in it): a list line or a card screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub id: CardId,
    pub network: Option<CardNetwork>,
    pub state: CardState,
    pub last4: Option<String>,
    pub asset: String,
    pub chain: Option<String>,
    /// Where the buyer sends crypto to fund the card.
    pub wallet_address: Option<String>,
    /// Last known balance in USD.
    pub balance: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `CardService::summary`: the card plus the provider's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSummaryView {
    pub card: CardView,
    pub spending_limit: Option<Decimal>,
    pub total_spent: Option<Decimal>,
    pub transaction_count: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The full card data for its owner only: sent once in a spoiler message that is
/// deleted after a short time. Never stored, never logged (`Debug` hides PAN and CVV).
#[derive(Clone)]
pub struct CardSecrets {
    pub card: CardId,
    pub pan: Pan,
    pub cvv: Cvv,
    pub exp_month: u32,
    pub exp_year: u32,
    pub holder_name: Option<String>,
}

impl CardSecrets {
    /// `MM/YY`, as printed on a card.
    pub fn expiry(&self) -> String {
        format!("{:02}/{:02}", self.exp_month, self.exp_year % 100)
    }

    /// The PAN in groups of four, for display.
    pub fn pan_grouped(&self) -> String {
        let digits: Vec<char> = self.pan.expose().chars().collect();
        digits
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Debug for CardSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardSecrets")
            .field("card", &self.card)
            .field("pan", &self.pan)
            .field("cvv", &self.cvv)
            .finish_non_exhaustive()
    }
}

/// After funding or withdrawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceChange {
    pub card: CardId,
    pub amount: Decimal,
    pub card_balance: Option<Decimal>,
    pub wallet_balance: Option<Decimal>,
}

/// One line of a card's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardTransaction {
    pub id: String,
    pub kind: TransactionKind,
    /// Signed: a spend is negative.
    pub amount: Decimal,
    pub currency: String,
    pub merchant: Option<String>,
    pub balance_after: Option<Decimal>,
    pub at: Option<DateTime<Utc>>,
}

/// A 3-D Secure code waiting to be typed into a merchant's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDsCode {
    pub id: String,
    pub merchant: Option<String>,
    pub amount: Option<Decimal>,
    /// Shown to the owner only; `Debug` prints `***`.
    pub code: Otp,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What the owner is asked to confirm before a card is terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationPrompt {
    pub card: CardId,
    pub last4: Option<String>,
    /// Goes back to the card's wallet.
    pub balance: Option<Decimal>,
}

/// Proof, by type, that the handler asked the owner and they said yes: build it only
/// from the confirmation button of a [`TerminationPrompt`].
#[derive(Debug, Clone, Copy)]
pub struct OwnerConfirmed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationResult {
    pub card: CardId,
    pub refunded_amount: Option<Decimal>,
}

/// What a verified webhook delivery changed, for the engine to tell the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// A replayed delivery, or an event about no card of ours.
    Ignored,
    Updated {
        /// The event's name (`card.funded`, `3ds.challenge`, …).
        event: String,
        /// What the event is about besides the card (a transaction id), as sent: to be
        /// looked up at the provider, not believed.
        object_id: Option<String>,
        owner: i64,
        card: Box<CardView>,
        /// The state before, when it changed.
        previous: Option<CardState>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// No KIOSK_SECRET_KEY: seeds could not be stored encrypted, so no card is issued
    /// (nor an existing one opened).
    #[error(
        "cards are disabled: KIOSK_SECRET_KEY is not set, so card seeds cannot be stored encrypted"
    )]
    NoSecretKey,
    /// No such card — or someone else's: the two are indistinguishable on purpose.
    #[error("no such card")]
    NotFound,
    #[error("the card is {state}, which does not allow this")]
    WrongState { state: CardState },
    #[error("the amount must be from {min} to {max} USD with at most two decimals")]
    InvalidAmount { min: Decimal, max: Decimal },
    #[error("unknown funding asset")]
    InvalidAsset,
    #[error("insufficient funds")]
    InsufficientFunds,
    /// The provider is busy or unreachable; nothing happened.
    #[error("card provider temporarily unavailable: {0}")]
    Unavailable(CardyError),
    /// The provider may have acted: check the card before repeating.
    #[error("card provider answer unclear: {0}")]
    Uncertain(CardyError),
    #[error("card provider: {0}")]
    Provider(CardyError),
    /// The stored seed does not decrypt (another KIOSK_SECRET_KEY, or tampering).
    #[error("the card's stored seed cannot be decrypted with this KIOSK_SECRET_KEY")]
    SeedUnreadable,
    #[error("webhook signature does not match")]
    BadSignature,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CardError {
    /// The locale key of the sentence to show the owner.
    pub fn message_key(&self) -> &'static str {
        match self {
            Self::NoSecretKey => "cards.error.unavailable",
            Self::NotFound => "cards.error.not_found",
            Self::WrongState {
                state: CardState::PendingTopUp | CardState::Issuing,
            } => "cards.error.not_funded_yet",
            Self::WrongState {
                state: CardState::Terminated | CardState::IssueFailed,
            } => "cards.error.terminated",
            Self::WrongState {
                state: CardState::Frozen,
            } => "cards.error.frozen",
            Self::WrongState { .. } => "cards.error.wrong_state",
            Self::InvalidAmount { .. } => "cards.error.invalid_amount",
            Self::InvalidAsset => "cards.error.invalid_asset",
            Self::InsufficientFunds => "cards.error.insufficient_funds",
            Self::Unavailable(_) => "cards.error.busy",
            Self::Uncertain(_) => "cards.error.uncertain",
            Self::Provider(_) | Self::Store(_) | Self::BadSignature => "cards.error.failed",
            Self::SeedUnreadable => "cards.error.seed_unreadable",
        }
    }

    /// Whether the admins should hear about it (configuration or data problems).
    pub fn alerts_admins(&self) -> bool {
        matches!(
            self,
            Self::NoSecretKey | Self::SeedUnreadable | Self::Store(_) | Self::Provider(_)
        )
    }

    /// Classifies a wire error: transient, ambiguous or a refusal.
    pub fn from_provider(error: CardyError) -> Self {
        match error {
            CardyError::NotFound { .. } => Self::NotFound,
            CardyError::InsufficientFunds { .. } => Self::InsufficientFunds,
            e if e.is_ambiguous() => Self::Uncertain(e),
            e if e.is_transient() => Self::Unavailable(e),
            e => Self::Provider(e),
        }
    }
}

/// Every locale key the cards module names, for the locale tests.
pub const MESSAGE_KEYS: [&str; 19] = [
    "cards.state.issuing",
    "cards.state.pending_top_up",
    "cards.state.active",
    "cards.state.frozen",
    "cards.state.terminated",
    "cards.state.issue_failed",
    "cards.error.unavailable",
    "cards.error.not_found",
    "cards.error.not_funded_yet",
    "cards.error.terminated",
    "cards.error.frozen",
    "cards.error.wrong_state",
    "cards.error.invalid_amount",
    "cards.error.invalid_asset",
    "cards.error.insufficient_funds",
    "cards.error.busy",
    "cards.error.uncertain",
    "cards.error.failed",
    "cards.error.seed_unreadable",
];
