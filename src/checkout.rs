//! The buyer-paid crypto checkout as the buyer sees it: the payment URI a wallet
//! understands, its QR code (PNG), and the localized checkout message. Pure functions:
//! no network, no bot; providers use [`payment_uri`] to fill
//! [`CryptoCheckout::payment_uri`], the bot sends [`checkout_message`] with
//! [`qr_png`] as a photo.
//!
//! Payment URIs, where the chain has a standard one:
//! - Solana Pay: `solana:ADDR?amount=1.5` for SOL, `&spl-token=MINT` for USDC / USDT.
//! - EIP-681 on Ethereum, Base, Arbitrum, Optimism, Polygon and BNB Chain: native coins
//!   `ethereum:ADDR@CHAIN?value=WEI`; ERC-20 (USDC, USDT with a known contract)
//!   `ethereum:TOKEN@CHAIN/transfer?address=ADDR&uint256=UNITS`.
//! - BIP-21 and its kin: `bitcoin:`, `litecoin:`, `dogecoin:` with `?amount=`.
//! - TON: `ton://transfer/ADDR?amount=NANOTON` for TON itself.
//!
//! Anything else (TRON, a token whose contract we do not know, an address with
//! characters a URI would need to escape) gets `None`: the QR code then holds the bare
//! address, and the amount is typed by the buyer from the message.

use std::io::Cursor;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_i18n::t;

use crate::config::Language;
use crate::providers::CryptoCheckout;

/// USDC / USDT contracts (mints on Solana) with their decimals, per network.
const TOKENS: &[(Chain, &str, &str, u32)] = &[
    (
        Chain::Solana,
        "USDC",
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        6,
    ),
    (
        Chain::Solana,
        "USDT",
        "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        6,
    ),
    (
        Chain::Evm(1),
        "USDC",
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
        6,
    ),
    (
        Chain::Evm(1),
        "USDT",
        "0xdAC17F958D2ee523a2206206994597C13D831ec7",
        6,
    ),
    (
        Chain::Evm(8453),
        "USDC",
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        6,
    ),
    (
        Chain::Evm(42161),
        "USDC",
        "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
        6,
    ),
    (
        Chain::Evm(42161),
        "USDT",
        "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9",
        6,
    ),
    (
        Chain::Evm(137),
        "USDC",
        "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359",
        6,
    ),
    (
        Chain::Evm(137),
        "USDT",
        "0xc2132D05D31c914a87C6611C10748AEb04B58e8F",
        6,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    Solana,
    /// An EVM chain by its chain id.
    Evm(u64),
    Bitcoin,
    Litecoin,
    Dogecoin,
    Ton,
}

impl Chain {
    /// Reads a network name as providers write it (`Solana`, `POLYGON (MATIC)`, `BASE`,
    /// `Arbitrum One`, `ERC20`, `BSC`).
    fn of(network: &str) -> Option<Self> {
        let n = network.trim().to_ascii_lowercase();
        let word = |w: &str| {
            n.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|part| part == w)
        };
        Some(if word("solana") || word("sol") || word("spl") {
            Self::Solana
        } else if word("polygon") || word("matic") || word("pol") {
            Self::Evm(137)
        } else if word("base") {
            Self::Evm(8453)
        } else if word("arbitrum") || word("arb") {
            Self::Evm(42161)
        } else if word("optimism") || word("op") {
            Self::Evm(10)
        } else if word("bsc") || word("bep20") || word("bnb") || n.contains("binance") {
            Self::Evm(56)
        } else if word("ethereum") || word("eth") || word("erc20") {
            Self::Evm(1)
        } else if word("bitcoin") || word("btc") {
            Self::Bitcoin
        } else if word("litecoin") || word("ltc") {
            Self::Litecoin
        } else if word("dogecoin") || word("doge") {
            Self::Dogecoin
        } else if word("ton") || word("toncoin") {
            Self::Ton
        } else {
            return None;
        })
    }

    /// The chain's own coin and its decimals.
    fn native(self) -> (&'static [&'static str], u32) {
        match self {
            Self::Solana => (&["SOL"], 9),
            Self::Evm(137) => (&["POL", "MATIC"], 18),
            Self::Evm(56) => (&["BNB"], 18),
            Self::Evm(_) => (&["ETH"], 18),
            Self::Bitcoin => (&["BTC"], 8),
            Self::Litecoin => (&["LTC"], 8),
            Self::Dogecoin => (&["DOGE"], 8),
            Self::Ton => (&["TON"], 9),
        }
    }
}

/// The wallet URI for paying `amount` of `coin` on `network` to `address`, where the
/// chain has a standard one (see the module doc); `None` otherwise.
pub fn payment_uri(address: &str, amount: Decimal, coin: &str, network: &str) -> Option<String> {
    let address = address.trim();
    let safe = !address.is_empty()
        && address.len() <= 128
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
    if !safe || amount <= Decimal::ZERO {
        return None;
    }
    let chain = Chain::of(network)?;
    let coin = coin.trim().to_ascii_uppercase();
    let (native_names, native_decimals) = chain.native();
    let native = native_names.contains(&coin.as_str());
    let token = TOKENS
        .iter()
        .find(|(c, symbol, _, _)| *c == chain && *symbol == coin);
    let plain = amount.normalize().to_string();
    match chain {
        Chain::Solana => {
            if !is_base58(address) {
                return None;
            }
            if native {
                Some(format!("solana:{address}?amount={plain}"))
            } else {
                let (_, _, mint, decimals) = token?;
                base_units(amount, *decimals)?;
                Some(format!("solana:{address}?amount={plain}&spl-token={mint}"))
            }
        }
        Chain::Evm(chain_id) => {
            if !is_evm_address(address) {
                return None;
            }
            if native {
                let wei = base_units(amount, native_decimals)?;
                Some(format!("ethereum:{address}@{chain_id}?value={wei}"))
            } else {
                let (_, _, contract, decimals) = token?;
                let units = base_units(amount, *decimals)?;
                Some(format!(
                    "ethereum:{contract}@{chain_id}/transfer?address={address}&uint256={units}"
                ))
            }
        }
        Chain::Bitcoin | Chain::Litecoin | Chain::Dogecoin => {
            if !native || !address.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            base_units(amount, native_decimals)?;
            let scheme = match chain {
                Chain::Bitcoin => "bitcoin",
                Chain::Litecoin => "litecoin",
                _ => "dogecoin",
            };
            Some(format!("{scheme}:{address}?amount={plain}"))
        }
        Chain::Ton => {
            if !native {
                return None;
            }
            let nano = base_units(amount, native_decimals)?;
            Some(format!("ton://transfer/{address}?amount={nano}"))
        }
    }
}

/// `amount` in the coin's smallest units; `None` when it has more precision than the
/// coin (a rounded amount in a QR code would underpay) or does not fit.
fn base_units(amount: Decimal, decimals: u32) -> Option<String> {
    let scale = Decimal::from_i128_with_scale(10i128.checked_pow(decimals)?, 0);
    let units = amount.checked_mul(scale)?;
    if !units.fract().is_zero() || units <= Decimal::ZERO {
        return None;
    }
    Some(units.trunc().normalize().to_string())
}

fn is_base58(s: &str) -> bool {
    (32..=44).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l'))
}

fn is_evm_address(s: &str) -> bool {
    s.len() == 42 && s.starts_with("0x") && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// What the QR code encodes: the payment URI, else the bare address.
pub fn qr_payload(checkout: &CryptoCheckout) -> &str {
    checkout
        .payment_uri
        .as_deref()
        .unwrap_or(checkout.address.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("cannot encode a QR code: {0}")]
    Encode(String),
    #[error("cannot write the PNG: {0}")]
    Png(String),
}

/// A black-on-white PNG QR code of `data`, at least 360 px wide, with a quiet zone.
pub fn qr_png(data: &str) -> Result<Vec<u8>, QrError> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))?;
    let image = code
        .render::<image::Luma<u8>>()
        .min_dimensions(360, 360)
        .quiet_zone(true)
        .build();
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(png.into_inner())
}

/// The checkout message (HTML): what to send, on which network, to which address,
/// until when. Address and amount are in `<code>` so one tap copies them.
pub fn checkout_message(
    lang: Language,
    product: &str,
    checkout: &CryptoCheckout,
    now: DateTime<Utc>,
) -> String {
    let seconds = (checkout.expires_at - now).num_seconds().max(0);
    let minutes = (seconds + 59) / 60;
    let amount = checkout.amount.normalize().to_string();
    let l = lang.code();
    let mut text = t!(
        "cryptorefills.checkout.title",
        locale = l,
        product = escape(product)
    )
    .into_owned();
    text.push_str("\n\n");
    text.push_str(&t!(
        "cryptorefills.checkout.amount",
        locale = l,
        amount = escape(&amount),
        coin = escape(&checkout.coin)
    ));
    text.push('\n');
    text.push_str(&t!(
        "cryptorefills.checkout.network",
        locale = l,
        network = escape(&checkout.network)
    ));
    text.push('\n');
    text.push_str(&t!(
        "cryptorefills.checkout.address",
        locale = l,
        address = escape(&checkout.address)
    ));
    text.push_str("\n\n");
    if minutes > 0 {
        text.push_str(&t!(
            "cryptorefills.checkout.deadline",
            locale = l,
            minutes = minutes,
            time = checkout.expires_at.format("%H:%M").to_string()
        ));
    } else {
        text.push_str(&t!("cryptorefills.checkout.deadline_passed", locale = l));
    }
    text.push('\n');
    text.push_str(&t!(
        "cryptorefills.checkout.warning",
        locale = l,
        coin = escape(&checkout.coin),
        network = escape(&checkout.network)
    ));
    text.push('\n');
    text.push_str(&t!(
        if checkout.payment_uri.is_some() {
            "cryptorefills.checkout.scan_uri"
        } else {
            "cryptorefills.checkout.scan_address"
        },
        locale = l
    ));
    text
}

/// Escapes text for Telegram's HTML parse mode.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    const SOL_ADDR: &str = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU";
    const EVM_ADDR: &str = "0x52908400098527886E0F7030069857D2E4169EE7";

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn solana_pay_uris() {
        assert_eq!(
            payment_uri(SOL_ADDR, dec("100.3500"), "USDC", "Solana").as_deref(),
            Some(
                "solana:7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU?amount=100.35&spl-token=EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
            )
        );
        assert_eq!(
            payment_uri(SOL_ADDR, dec("0.5"), "SOL", "SOLANA").as_deref(),
            Some("solana:7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU?amount=0.5")
        );
        // More precision than USDC has: no URI rather than a rounded one.
        assert_eq!(
            payment_uri(SOL_ADDR, dec("1.0000001"), "USDC", "Solana"),
            None
        );
        assert_eq!(payment_uri("not base58!", dec("1"), "USDC", "Solana"), None);
    }

    #[test]
    fn eip681_uris() {
        assert_eq!(
            payment_uri(EVM_ADDR, dec("12.5"), "USDC", "POLYGON (MATIC)").as_deref(),
            Some(
                "ethereum:0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359@137/transfer?address=0x52908400098527886E0F7030069857D2E4169EE7&uint256=12500000"
            )
        );
        assert_eq!(
            payment_uri(EVM_ADDR, dec("0.01"), "ETH", "Base").as_deref(),
            Some(
                "ethereum:0x52908400098527886E0F7030069857D2E4169EE7@8453?value=10000000000000000"
            )
        );
        // A token whose contract on that chain we do not know: bare address.
        assert_eq!(payment_uri(EVM_ADDR, dec("5"), "DAI", "Ethereum"), None);
    }

    #[test]
    fn other_chains() {
        assert_eq!(
            payment_uri(
                "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                dec("0.001"),
                "BTC",
                "Bitcoin"
            )
            .as_deref(),
            Some("bitcoin:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq?amount=0.001")
        );
        assert_eq!(
            payment_uri(
                "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf",
                dec("10"),
                "USDT",
                "Tron (TRC20)"
            ),
            None
        );
        assert_eq!(payment_uri(SOL_ADDR, dec("0"), "USDC", "Solana"), None);
    }

    #[test]
    fn message_has_copyable_code_and_deadline() {
        let now = Utc::now();
        let checkout = CryptoCheckout {
            address: SOL_ADDR.into(),
            amount: dec("100.3500"),
            coin: "USDC".into(),
            network: "Solana".into(),
            payment_uri: None,
            expires_at: now + chrono::Duration::minutes(30),
        };
        for lang in [Language::En, Language::Ru] {
            let text = checkout_message(lang, "Airbnb <100 USD>", &checkout, now);
            assert!(text.contains(&format!("<code>{SOL_ADDR}</code>")), "{text}");
            assert!(text.contains("<code>100.35</code>"), "{text}");
            assert!(text.contains("30"), "{text}");
            assert!(text.contains("&lt;100 USD&gt;"), "{text}");
            assert!(!text.contains("%{"), "{text}");
        }
    }
}
