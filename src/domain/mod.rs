//! The shop's vocabulary, free of I/O: money, product families, orders and their
//! states, and the recipient newtypes that parse what a buyer types.

pub mod family;
pub mod money;
pub mod order;
pub mod recipient;

pub use family::ProductFamily;
pub use money::{Currency, Money, MoneyError};
pub use order::{Actor, OrderId, OrderStatus, TransitionError};
pub use recipient::{
    Email, FieldKind, FieldSpec, PhoneE164, PlayerFields, PlayerFieldsError, RecipientError,
    SteamInviteUrl, SteamLogin, TelegramUsername,
};
