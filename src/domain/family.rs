//! Product families: the main menu's entries, each sold by one or more providers.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductFamily {
    TelegramStars,
    TelegramPremium,
    GameTopup,
    GiftCard,
    GameKey,
    SteamWallet,
    SteamGift,
    MobileTopup,
    Esim,
    VirtualCard,
    Service,
}

impl ProductFamily {
    /// Menu order.
    pub const ALL: [ProductFamily; 11] = [
        Self::TelegramStars,
        Self::TelegramPremium,
        Self::GameTopup,
        Self::GiftCard,
        Self::GameKey,
        Self::SteamWallet,
        Self::SteamGift,
        Self::MobileTopup,
        Self::Esim,
        Self::VirtualCard,
        Self::Service,
    ];

    /// Stable name used in the database, callback data and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TelegramStars => "telegram_stars",
            Self::TelegramPremium => "telegram_premium",
            Self::GameTopup => "game_topup",
            Self::GiftCard => "gift_card",
            Self::GameKey => "game_key",
            Self::SteamWallet => "steam_wallet",
            Self::SteamGift => "steam_gift",
            Self::MobileTopup => "mobile_topup",
            Self::Esim => "esim",
            Self::VirtualCard => "virtual_card",
            Self::Service => "service",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for ProductFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for family in ProductFamily::ALL {
            assert_eq!(ProductFamily::parse(family.as_str()), Some(family));
            assert!(seen.insert(family.as_str()));
        }
        assert_eq!(ProductFamily::parse("groceries"), None);
    }
}
