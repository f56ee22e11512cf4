//! The buyer-paid crypto checkout in the dialogue (Cryptorefills): the buyer pays the
//! provider from their own wallet, so there is no Telegram invoice and no Stars
//! payment, and nothing can be charged twice.
//!
//! Menu entries for the families Cryptorefills sells (mobile top-ups, eSIMs, gift
//! cards; a family a shop-paid provider sells too gets its own entry naming the
//! provider) → the buyer's country, chosen once and remembered (`users.country`),
//! changeable from the brand list → brands of that country, in pages, with typed
//! search → the brand's products (fixed denominations, or an amount in a range) →
//! the recipient (an E.164 phone for top-ups, an e-mail for gift cards and eSIMs),
//! checked by the provider's order validation; every refusal says what to send instead
//! → coin and network from the payment vias → the quote (face value, coin amount) →
//! Confirm: the order row first (`awaiting_payment`, idempotency key, 30-minute
//! deadline), then the provider order ([`Engine::open_checkout`]), then the checkout:
//! a QR photo whose caption holds the amount, network, address and deadline. The
//! engine follows the order from there (`engine::buyer_paid`).
//!
//! Buttons carry `c:`-prefixed payloads ([`CryptoCallback`]) that index lists kept in
//! the buyer's own [`CryptoState`], like the rest of the dialogue.

use std::str::FromStr;
use std::sync::Arc;

use chrono::Utc;
use rust_decimal::Decimal;
use rust_i18n::t;
use serde::{Deserialize, Serialize};
use teloxide::dispatching::UpdateHandler;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ParseMode,
};
use teloxide::utils::html;

use super::buyer::{Target, say, show, show_menu, stale};
use super::callbacks::MAX_CALLBACK_BYTES;
use super::screens::{self, Screen};
use super::{HandlerError, HandlerResult, KioskBot, KioskDialogue, Listed, Shop, State};
use crate::checkout::{checkout_message, qr_payload, qr_png};
use crate::config::Language;
use crate::domain::{Actor, Email, Money, OrderStatus, PhoneE164, ProductFamily};
use crate::engine::Engine;
use crate::engine::buyer_paid::{CheckoutOutcome, is_buyer_paid, state_sentence};
use crate::providers::cryptorefills::client::ProblemCode;
use crate::providers::cryptorefills::{CryptorefillsProvider, PAYMENT_WINDOW, RANGE};
use crate::providers::{
    BuyerReason, Offer, OrderRequest, Provider, ProviderError, ProviderId, Recipient,
    RecipientCheck, RecipientKind,
};
use crate::store::{NewOrder, Order, StoreError};

/// Entries per page of a list.
const PAGE_SIZE: usize = 8;
/// Entries kept in the dialogue state.
const MAX_LISTED: usize = 200;
/// The longest search text used.
const MAX_QUERY_CHARS: usize = 64;
/// Telegram's limit on a photo caption.
const MAX_CAPTION_CHARS: usize = 1024;
/// Countries offered as buttons; any other is typed as its two-letter code.
const COUNTRIES: [&str; 20] = [
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "CA", "AU", "BR", "MX", "TR", "AE", "IN", "PH",
    "NG", "ZA", "JP", "SG",
];

/// A coin on a network the buyer pays with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Via {
    pub coin: String,
    pub network: String,
}

/// A crypto purchase being put together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptoDraft {
    pub family: ProductFamily,
    pub country: String,
    pub brand: Listed,
    pub offer: Offer,
    pub recipient: Option<Recipient>,
    /// The face value chosen for an open-value product.
    pub amount: Option<Money>,
}

impl CryptoDraft {
    fn request(&self, via: Option<&Via>) -> OrderRequest {
        let product = match via {
            Some(via) => {
                CryptorefillsProvider::pay_with(&self.offer.product, &via.coin, &via.network)
            }
            None => self.offer.product.clone(),
        };
        OrderRequest {
            product,
            recipient: self.recipient.clone().unwrap_or(Recipient::Nobody),
            quantity: 1,
            amount: self.amount.clone(),
        }
    }

    /// The face value as the buyer reads it: the chosen amount, or the denomination.
    fn face(&self) -> String {
        match &self.amount {
            Some(amount) => amount.to_string(),
            None if self.offer.product.item != RANGE => self.offer.product.item.clone(),
            None => self.offer.title.clone(),
        }
    }
}

/// Where a buyer is in the crypto checkout (one variant of [`State`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CryptoState {
    /// Choosing the country (buttons, or a typed two-letter code).
    Country {
        family: ProductFamily,
    },
    Brands {
        family: ProductFamily,
        country: String,
        items: Vec<Listed>,
        page: u16,
        query: Option<String>,
    },
    Products {
        family: ProductFamily,
        country: String,
        brand: Listed,
        items: Vec<Offer>,
        page: u16,
        /// The brand's logo (the CDN's 500×318 variant), shown above the list.
        #[serde(default)]
        logo: Option<String>,
    },
    /// Waiting for the phone number or e-mail as text.
    Recipient {
        draft: CryptoDraft,
    },
    Amount {
        draft: CryptoDraft,
    },
    Coin {
        draft: CryptoDraft,
        vias: Vec<Via>,
    },
    Quote {
        draft: CryptoDraft,
        vias: Vec<Via>,
        via: Via,
        cost: Money,
    },
}

/// Button payloads of the crypto checkout, all `c:`-prefixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoCallback {
    Family(ProductFamily),
    /// A country, as its two upper-case letters.
    Country([u8; 2]),
    ChangeCountry,
    Pick(u16),
    Page(u16),
    Via(u16),
    Confirm,
    Back,
}

impl CryptoCallback {
    pub fn encode(self) -> String {
        match self {
            Self::Family(f) => format!("c:f:{}", f.as_str()),
            Self::Country([a, b]) => format!("c:cc:{}{}", a as char, b as char),
            Self::ChangeCountry => "c:ccx".into(),
            Self::Pick(i) => format!("c:p:{i}"),
            Self::Page(i) => format!("c:pg:{i}"),
            Self::Via(i) => format!("c:v:{i}"),
            Self::Confirm => "c:ok".into(),
            Self::Back => "c:b".into(),
        }
    }

    /// `None` for anything this module did not send.
    pub fn parse(data: &str) -> Option<Self> {
        if data.len() > MAX_CALLBACK_BYTES {
            return None;
        }
        let rest = data.strip_prefix("c:")?;
        let (tag, arg) = rest.split_once(':').unwrap_or((rest, ""));
        let index = |text: &str| -> Option<u16> {
            let valid = !text.is_empty()
                && text.len() <= 5
                && text.bytes().all(|b| b.is_ascii_digit())
                && !(text.len() > 1 && text.starts_with('0'));
            valid.then(|| text.parse().ok()).flatten()
        };
        Some(match (tag, arg) {
            ("f", family) => Self::Family(ProductFamily::parse(family)?),
            ("cc", code) => Self::Country(country_code(code)?),
            ("ccx", "") => Self::ChangeCountry,
            ("p", i) => Self::Pick(index(i)?),
            ("pg", i) => Self::Page(index(i)?),
            ("v", i) => Self::Via(index(i)?),
            ("ok", "") => Self::Confirm,
            ("b", "") => Self::Back,
            _ => return None,
        })
    }
}

/// Two ASCII letters as a country code (`us` → `US`).
fn country_code(text: &str) -> Option<[u8; 2]> {
    let bytes = text.trim().as_bytes();
    match bytes {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

fn code_text(code: [u8; 2]) -> String {
    code.iter().map(|b| *b as char).collect()
}

/// `🇺🇸 US`: the flag from the regional indicator letters, then the code.
pub fn country_label(country: &str) -> String {
    let flag: String = country
        .chars()
        .filter(char::is_ascii_uppercase)
        .filter_map(|c| char::from_u32(0x1F1E6 + (c as u32 - 'A' as u32)))
        .collect();
    format!("{flag} {country}")
}

// ---------------------------------------------------------------------------------
// Handler branches

/// Taps on `c:` buttons (mounted before the dialogue's own callbacks).
pub fn callback_branch() -> UpdateHandler<HandlerError> {
    dptree::filter_map(|q: CallbackQuery| q.data.as_deref().and_then(CryptoCallback::parse))
        .endpoint(on_callback)
}

/// Text typed while in the crypto checkout (mounted after the commands).
pub fn text_branch() -> UpdateHandler<HandlerError> {
    dptree::filter(|state: State| matches!(state, State::Crypto(_))).endpoint(on_text)
}

/// The menu's crypto entries, before the My orders row.
pub fn add_menu_entries(shop: &Shop, lang: Language, screen: &mut Screen) {
    let Some(refills) = shop.providers.cryptorefills() else {
        return;
    };
    let provider = t!("crypto_checkout.provider", locale = lang.code());
    let buttons: Vec<InlineKeyboardButton> = ProductFamily::ALL
        .into_iter()
        .filter(|f| refills.families().contains(f))
        .map(|family| {
            let name = screens::family_name(lang, family);
            let label = if shop.providers.shop_paid_for_family(family).is_empty() {
                name
            } else {
                t!(
                    "crypto_checkout.menu_entry",
                    locale = lang.code(),
                    family = name,
                    provider = provider
                )
                .into_owned()
            };
            button(label, CryptoCallback::Family(family))
        })
        .collect();
    if buttons.is_empty() {
        return;
    }
    let rows = &mut screen.keyboard.inline_keyboard;
    // Before the row that opens My orders: the families come first.
    let orders = super::callbacks::Callback::Orders(0).encode();
    let at = rows
        .iter()
        .position(|row| {
            row.iter().any(|b| {
                matches!(&b.kind, teloxide::types::InlineKeyboardButtonKind::CallbackData(d) if *d == orders)
            })
        })
        .unwrap_or(rows.len());
    let had_families = at > 0;
    for (i, pair) in buttons.chunks(2).enumerate() {
        rows.insert(at + i, pair.to_vec());
    }
    if !had_families {
        screen.text = t!(
            "buyer.menu",
            locale = lang.code(),
            shop = shop.config.shop.name
        )
        .into_owned();
    }
}

fn button(text: impl Into<String>, callback: CryptoCallback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.into(), callback.encode())
}

fn cancel_row(lang: Language) -> Vec<InlineKeyboardButton> {
    vec![InlineKeyboardButton::callback(
        t!("buyer.cancel", locale = lang.code()).into_owned(),
        super::callbacks::Callback::Cancel.encode(),
    )]
}

fn back_row(lang: Language) -> Vec<InlineKeyboardButton> {
    vec![button(
        t!("buyer.back", locale = lang.code()),
        CryptoCallback::Back,
    )]
}

fn plain(text: impl Into<String>, rows: Vec<Vec<InlineKeyboardButton>>) -> Screen {
    Screen {
        text: text.into(),
        keyboard: InlineKeyboardMarkup::new(rows),
        html: false,
        preview: None,
    }
}

/// Page `page` of `labels` with Previous / Next, then `tail`.
fn paged(
    lang: Language,
    labels: &[String],
    page: u16,
    tail: Vec<Vec<InlineKeyboardButton>>,
) -> Vec<Vec<InlineKeyboardButton>> {
    let l = lang.code();
    let pages = labels.len().div_ceil(PAGE_SIZE).max(1);
    let page = usize::from(page).min(pages - 1);
    let mut rows: Vec<Vec<InlineKeyboardButton>> = labels
        .iter()
        .enumerate()
        .skip(page * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|(i, label)| vec![button(label.clone(), CryptoCallback::Pick(i as u16))])
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button(
            t!("buyer.previous", locale = l),
            CryptoCallback::Page(page as u16 - 1),
        ));
    }
    if page + 1 < pages {
        nav.push(button(
            t!("buyer.next", locale = l),
            CryptoCallback::Page(page as u16 + 1),
        ));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    rows.extend(tail);
    rows
}

// ---------------------------------------------------------------------------------
// Screens

fn country_screen(lang: Language, default: &str) -> Screen {
    let mut codes: Vec<&str> = vec![default];
    codes.extend(COUNTRIES.iter().copied().filter(|c| *c != default));
    let mut rows: Vec<Vec<InlineKeyboardButton>> = codes
        .chunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|c| {
                    country_code(c)
                        .map(|code| button(country_label(c), CryptoCallback::Country(code)))
                })
                .collect()
        })
        .collect();
    rows.push(vec![InlineKeyboardButton::callback(
        t!("buyer.home", locale = lang.code()).into_owned(),
        super::callbacks::Callback::Menu.encode(),
    )]);
    plain(
        t!("crypto_checkout.ask_country", locale = lang.code()),
        rows,
    )
}

fn brands_screen(
    lang: Language,
    family: ProductFamily,
    country: &str,
    items: &[Listed],
    page: u16,
    query: Option<&str>,
) -> Screen {
    let l = lang.code();
    let family_name = screens::family_name(lang, family);
    let place = country_label(country);
    let text = match query {
        Some(q) if items.is_empty() => t!(
            "crypto_checkout.search_none",
            locale = l,
            query = q,
            country = place
        ),
        Some(q) => t!(
            "crypto_checkout.brands_search",
            locale = l,
            family = family_name,
            country = place,
            query = q
        ),
        None if items.is_empty() => t!("crypto_checkout.brands_none", locale = l, country = place),
        None => t!(
            "crypto_checkout.brands",
            locale = l,
            family = family_name,
            country = place
        ),
    };
    let labels: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    let tail = vec![
        vec![button(
            t!(
                "crypto_checkout.change_country",
                locale = l,
                country = place
            ),
            CryptoCallback::ChangeCountry,
        )],
        back_row(lang),
    ];
    plain(text, paged(lang, &labels, page, tail))
}

fn products_screen(
    lang: Language,
    brand: &Listed,
    items: &[Offer],
    page: u16,
    logo: Option<String>,
) -> Screen {
    let l = lang.code();
    let text = if items.is_empty() {
        t!(
            "crypto_checkout.products_none",
            locale = l,
            brand = brand.name.as_str()
        )
    } else {
        t!(
            "crypto_checkout.products",
            locale = l,
            brand = brand.name.as_str()
        )
    };
    let labels: Vec<String> = items
        .iter()
        .map(|o| screens::offer_label(lang, o))
        .collect();
    Screen {
        preview: logo,
        ..plain(text, paged(lang, &labels, page, vec![back_row(lang)]))
    }
}

fn recipient_screen(lang: Language, draft: &CryptoDraft) -> Screen {
    let key = match draft.offer.recipient {
        RecipientKind::Phone => "crypto_checkout.ask_phone",
        _ => "crypto_checkout.ask_email",
    };
    plain(
        t!(
            key,
            locale = lang.code(),
            product = draft.offer.title.as_str()
        ),
        vec![back_row(lang), cancel_row(lang)],
    )
}

fn amount_text(lang: Language, key: &str, draft: &CryptoDraft) -> String {
    match &draft.offer.amount {
        Some(range) => t!(
            key,
            locale = lang.code(),
            currency = range.currency.as_str(),
            min = range.min.normalize().to_string(),
            max = range.max.normalize().to_string()
        )
        .into_owned(),
        None => String::new(),
    }
}

fn coin_screen(lang: Language, vias: &[Via]) -> Screen {
    let l = lang.code();
    let mut rows: Vec<Vec<InlineKeyboardButton>> = vias
        .chunks(2)
        .enumerate()
        .map(|(row, pair)| {
            pair.iter()
                .enumerate()
                .map(|(i, via)| {
                    button(
                        t!(
                            "crypto_checkout.coin_button",
                            locale = l,
                            coin = via.coin.as_str(),
                            network = via.network.as_str()
                        ),
                        CryptoCallback::Via((row * 2 + i) as u16),
                    )
                })
                .collect()
        })
        .collect();
    rows.push(back_row(lang));
    rows.push(cancel_row(lang));
    plain(t!("crypto_checkout.choose_coin", locale = l), rows)
}

fn quote_screen(lang: Language, draft: &CryptoDraft, via: &Via, cost: &Money) -> Screen {
    let l = lang.code();
    let recipient = draft
        .recipient
        .as_ref()
        .map(|r| screens::recipient_label(lang, r))
        .unwrap_or_default();
    let text = t!(
        "crypto_checkout.quote",
        locale = l,
        product = html::escape(&draft.offer.title),
        recipient = html::escape(&recipient),
        face = html::escape(&draft.face()),
        amount = html::escape(&cost.amount.normalize().to_string()),
        coin = html::escape(&via.coin),
        network = html::escape(&via.network),
        minutes = PAYMENT_WINDOW.num_minutes()
    )
    .into_owned();
    Screen {
        text,
        keyboard: InlineKeyboardMarkup::new(vec![
            vec![button(
                t!("crypto_checkout.confirm", locale = l),
                CryptoCallback::Confirm,
            )],
            vec![button(
                t!("crypto_checkout.other_coin", locale = l),
                CryptoCallback::Back,
            )],
            cancel_row(lang),
        ]),
        html: true,
        preview: None,
    }
}

/// The status of a crypto order in words, for My orders (`None`: not a crypto order).
pub fn status_words(lang: Language, order: &Order) -> Option<String> {
    is_buyer_paid(order).then(|| {
        let key = format!("crypto_checkout.status.{}", order.status.as_str());
        t!(&key, locale = lang.code()).into_owned()
    })
}

/// The detail of one order: the usual screen, and for a crypto order the provider's
/// state in words and, while it waits for the payment, the checkout again.
pub async fn order_detail(shop: &Shop, lang: Language, order: &Order) -> Screen {
    let mut screen = screens::order_detail(lang, order);
    if !is_buyer_paid(order) {
        return screen;
    }
    let state = shop
        .store
        .provider_states(&[order.id])
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "reading a provider state");
            Default::default()
        })
        .remove(&order.id);
    if let Some(sentence) = state
        .as_deref()
        .and_then(|s| state_sentence(lang, order.provider, s))
    {
        screen.text.push_str("\n\n");
        screen.text.push_str(&html::escape(&t!(
            "crypto_checkout.detail_state",
            locale = lang.code(),
            state = sentence
        )));
    }
    if order.status == OrderStatus::AwaitingPayment {
        match shop.store.crypto_checkout(order.id).await {
            Ok(Some(checkout)) => {
                screen.text.push_str("\n\n");
                screen.text.push_str(&checkout_message(
                    lang,
                    &order.product_title,
                    &checkout,
                    Utc::now(),
                ));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "reading a stored checkout"),
        }
    }
    screen
}

// ---------------------------------------------------------------------------------
// Taps

fn chat_of(target: Target) -> ChatId {
    match target {
        Target::Edit(chat, _) | Target::Send(chat) => chat,
    }
}

fn user_id(user: &teloxide::types::User) -> i64 {
    user.id.0 as i64
}

async fn update(dialogue: &KioskDialogue, state: CryptoState) -> HandlerResult {
    dialogue.update(State::Crypto(state)).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn on_callback(
    bot: KioskBot,
    shop: Arc<Shop>,
    engine: Engine,
    dialogue: KioskDialogue,
    state: State,
    q: CallbackQuery,
    callback: CryptoCallback,
) -> HandlerResult {
    let user = q.from.clone();
    let lang = shop.language_of(Some(&user)).await;
    bot.answer_callback_query(q.id.clone()).await?;
    let Some(message) = q.message.as_ref() else {
        return Ok(());
    };
    let chat = message.chat().id;
    let target = Target::Edit(chat, message.id());
    let Some(refills) = shop.providers.cryptorefills() else {
        return stale(&bot, &shop, &dialogue, lang, chat).await;
    };
    let crypto = match state {
        State::Crypto(crypto) => Some(crypto),
        _ => None,
    };
    match (callback, crypto) {
        (CryptoCallback::Family(family), _) => {
            if !refills.families().contains(&family) {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            }
            match shop.store.user_country(user_id(&user)).await? {
                Some(country) => {
                    open_brands(&bot, &refills, &dialogue, lang, family, &country, target).await
                }
                None => {
                    update(&dialogue, CryptoState::Country { family }).await?;
                    show(
                        &bot,
                        target,
                        country_screen(lang, refills.default_country()),
                    )
                    .await
                }
            }
        }
        (
            CryptoCallback::ChangeCountry,
            Some(CryptoState::Brands { family, .. } | CryptoState::Country { family }),
        ) => {
            update(&dialogue, CryptoState::Country { family }).await?;
            show(
                &bot,
                target,
                country_screen(lang, refills.default_country()),
            )
            .await
        }
        (CryptoCallback::Country(code), Some(CryptoState::Country { family })) => {
            let country = code_text(code);
            shop.store
                .set_user_country(user_id(&user), &country)
                .await?;
            open_brands(&bot, &refills, &dialogue, lang, family, &country, target).await
        }
        (
            CryptoCallback::Page(page),
            Some(CryptoState::Brands {
                family,
                country,
                items,
                query,
                ..
            }),
        ) => {
            let screen = brands_screen(lang, family, &country, &items, page, query.as_deref());
            update(
                &dialogue,
                CryptoState::Brands {
                    family,
                    country,
                    items,
                    page,
                    query,
                },
            )
            .await?;
            show(&bot, target, screen).await
        }
        (
            CryptoCallback::Page(page),
            Some(CryptoState::Products {
                family,
                country,
                brand,
                items,
                logo,
                ..
            }),
        ) => {
            let screen = products_screen(lang, &brand, &items, page, logo.clone());
            update(
                &dialogue,
                CryptoState::Products {
                    family,
                    country,
                    brand,
                    items,
                    page,
                    logo,
                },
            )
            .await?;
            show(&bot, target, screen).await
        }
        (
            CryptoCallback::Pick(index),
            Some(CryptoState::Brands {
                family,
                country,
                items,
                ..
            }),
        ) => match items.get(usize::from(index)) {
            Some(brand) => {
                let brand = brand.clone();
                open_products(
                    &bot, &refills, &dialogue, lang, family, country, brand, target,
                )
                .await
            }
            None => stale(&bot, &shop, &dialogue, lang, chat).await,
        },
        (
            CryptoCallback::Pick(index),
            Some(CryptoState::Products {
                family,
                country,
                brand,
                items,
                ..
            }),
        ) => match items.get(usize::from(index)) {
            Some(offer) if offer.stock == Some(0) => {
                say(&bot, chat, t!("reason.out_of_stock", locale = lang.code())).await
            }
            Some(offer) => {
                let draft = CryptoDraft {
                    family,
                    country,
                    brand,
                    offer: offer.clone(),
                    recipient: None,
                    amount: None,
                };
                let screen = recipient_screen(lang, &draft);
                update(&dialogue, CryptoState::Recipient { draft }).await?;
                show(&bot, target, screen).await
            }
            None => stale(&bot, &shop, &dialogue, lang, chat).await,
        },
        (CryptoCallback::Via(index), Some(CryptoState::Coin { draft, vias })) => {
            match vias.get(usize::from(index)).cloned() {
                Some(via) => quote(&bot, &refills, &dialogue, lang, draft, vias, via, target).await,
                None => stale(&bot, &shop, &dialogue, lang, chat).await,
            }
        }
        (
            CryptoCallback::Confirm,
            Some(CryptoState::Quote {
                draft, via, cost, ..
            }),
        ) => {
            remove_buttons(&bot, message).await;
            confirm(
                &bot, &shop, &engine, &dialogue, lang, &user, chat, draft, via, cost,
            )
            .await
        }
        (CryptoCallback::Back, Some(state)) => {
            back(&bot, &shop, &refills, &dialogue, lang, state, target).await
        }
        _ => stale(&bot, &shop, &dialogue, lang, chat).await,
    }
}

/// One step back from `state`.
async fn back(
    bot: &KioskBot,
    shop: &Shop,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    state: CryptoState,
    target: Target,
) -> HandlerResult {
    match state {
        CryptoState::Country { .. } => {
            dialogue.update(State::Start).await?;
            show_menu(bot, shop, lang, target).await
        }
        CryptoState::Brands {
            family,
            country,
            query: Some(_),
            ..
        } => open_brands(bot, refills, dialogue, lang, family, &country, target).await,
        CryptoState::Brands { .. } => {
            dialogue.update(State::Start).await?;
            show_menu(bot, shop, lang, target).await
        }
        CryptoState::Products {
            family, country, ..
        } => open_brands(bot, refills, dialogue, lang, family, &country, target).await,
        CryptoState::Recipient { draft }
        | CryptoState::Amount { draft }
        | CryptoState::Coin { draft, .. } => {
            open_products(
                bot,
                refills,
                dialogue,
                lang,
                draft.family,
                draft.country,
                draft.brand,
                target,
            )
            .await
        }
        CryptoState::Quote { draft, vias, .. } => {
            let screen = coin_screen(lang, &vias);
            update(dialogue, CryptoState::Coin { draft, vias }).await?;
            show(bot, target, screen).await
        }
    }
}

/// The buyer's sentence for a provider error: the problem code's own sentence when the
/// provider named one, else the reason's. `true` when the recipient is the problem.
fn refusal(lang: Language, error: &ProviderError) -> (String, bool) {
    let l = lang.code();
    match error {
        ProviderError::Rejected { code, reason, .. } => {
            let problem = ProblemCode::parse(code);
            let about_recipient = problem == ProblemCode::InvalidBeneficiaryAccount
                || *reason == BuyerReason::InvalidRecipient;
            let text = match problem {
                ProblemCode::Unknown(_) => t!(reason.message_key(), locale = l).into_owned(),
                known => {
                    let key = known.message_key();
                    t!(&key, locale = l).into_owned()
                }
            };
            (text, about_recipient)
        }
        other => (
            t!(other.buyer_reason().message_key(), locale = l).into_owned(),
            false,
        ),
    }
}

async fn open_brands(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    family: ProductFamily,
    country: &str,
    target: Target,
) -> HandlerResult {
    let chat = chat_of(target);
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    let mut items: Vec<Listed> = match refills.categories_in(family, country).await {
        Ok(categories) => categories
            .into_iter()
            .map(|c| Listed {
                provider: ProviderId::Cryptorefills,
                id: c.id,
                name: c.name,
            })
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "listing Cryptorefills brands");
            let (text, _) = refusal(lang, &error);
            return say(bot, chat, text).await;
        }
    };
    items.truncate(MAX_LISTED);
    let screen = brands_screen(lang, family, country, &items, 0, None);
    update(
        dialogue,
        CryptoState::Brands {
            family,
            country: country.to_owned(),
            items,
            page: 0,
            query: None,
        },
    )
    .await?;
    show(bot, target, screen).await
}

#[allow(clippy::too_many_arguments)]
async fn open_products(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    family: ProductFamily,
    country: String,
    brand: Listed,
    target: Target,
) -> HandlerResult {
    let chat = chat_of(target);
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    let mut items = match refills.offers(family, &brand.id).await {
        Ok(items) => items,
        Err(error) => {
            tracing::warn!(%error, "listing Cryptorefills products");
            let (text, _) = refusal(lang, &error);
            return say(bot, chat, text).await;
        }
    };
    items.truncate(MAX_LISTED);
    let logo = refills.brand_logo(&brand.id).await;
    let screen = products_screen(lang, &brand, &items, 0, logo.clone());
    update(
        dialogue,
        CryptoState::Products {
            family,
            country,
            brand,
            items,
            page: 0,
            logo,
        },
    )
    .await?;
    show(bot, target, screen).await
}

/// After the recipient: the amount of an open-value product, else the coin.
async fn after_recipient(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: CryptoDraft,
    target: Target,
) -> HandlerResult {
    if draft.offer.amount.is_some() && draft.amount.is_none() {
        let screen = plain(
            amount_text(lang, "crypto_checkout.ask_amount", &draft),
            vec![back_row(lang), cancel_row(lang)],
        );
        update(dialogue, CryptoState::Amount { draft }).await?;
        return show(bot, target, screen).await;
    }
    choose_coin(bot, refills, dialogue, lang, draft, target).await
}

async fn choose_coin(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: CryptoDraft,
    target: Target,
) -> HandlerResult {
    let chat = chat_of(target);
    let vias: Vec<Via> = match refills.payment_options().await {
        Ok(vias) => vias
            .into_iter()
            .map(|v| Via {
                coin: v.coin,
                network: v.network,
            })
            .take(MAX_LISTED)
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "listing Cryptorefills payment vias");
            let (text, _) = refusal(lang, &error);
            return say(bot, chat, text).await;
        }
    };
    if vias.is_empty() {
        return say(
            bot,
            chat,
            t!("crypto_checkout.no_coins", locale = lang.code()),
        )
        .await;
    }
    let screen = coin_screen(lang, &vias);
    update(dialogue, CryptoState::Coin { draft, vias }).await?;
    show(bot, target, screen).await
}

#[allow(clippy::too_many_arguments)]
async fn quote(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    draft: CryptoDraft,
    vias: Vec<Via>,
    via: Via,
    target: Target,
) -> HandlerResult {
    let chat = chat_of(target);
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    match refills.quote(&draft.request(Some(&via))).await {
        Ok(quote) => {
            let screen = quote_screen(lang, &draft, &via, &quote.cost);
            update(
                dialogue,
                CryptoState::Quote {
                    draft,
                    vias,
                    via,
                    cost: quote.cost,
                },
            )
            .await?;
            show(bot, target, screen).await
        }
        Err(error) => {
            tracing::info!(%error, "no Cryptorefills quote");
            let (text, about_recipient) = refusal(lang, &error);
            say(bot, chat, text).await?;
            if about_recipient {
                // Ask for the recipient again; the rest of the draft stays.
                let mut draft = draft;
                draft.recipient = None;
                let screen = recipient_screen(lang, &draft);
                update(dialogue, CryptoState::Recipient { draft }).await?;
                return show(bot, Target::Send(chat), screen).await;
            }
            Ok(())
        }
    }
}

/// Takes the buttons off the quote once confirmed, so it cannot be confirmed twice.
async fn remove_buttons(bot: &KioskBot, message: &teloxide::types::MaybeInaccessibleMessage) {
    let removed = bot
        .edit_message_reply_markup(message.chat().id, message.id())
        .reply_markup(InlineKeyboardMarkup::new(Vec::<Vec<_>>::new()))
        .await;
    if let Err(error) = removed {
        tracing::debug!(%error, "quote buttons not removed");
    }
}

/// The order row, then the provider order, then the checkout.
#[allow(clippy::too_many_arguments)]
async fn confirm(
    bot: &KioskBot,
    shop: &Shop,
    engine: &Engine,
    dialogue: &KioskDialogue,
    lang: Language,
    user: &teloxide::types::User,
    chat: ChatId,
    draft: CryptoDraft,
    via: Via,
    cost: Money,
) -> HandlerResult {
    let Some(recipient) = draft.recipient.clone() else {
        return stale(bot, shop, dialogue, lang, chat).await;
    };
    let request = draft.request(Some(&via));
    let new = NewOrder {
        chat_id: chat.0,
        buyer_id: user_id(user),
        product: request.product,
        product_title: draft.offer.title.clone(),
        recipient,
        quantity: 1,
        amount: draft.amount.clone(),
        cost: cost.clone(),
        // The buyer pays the provider's price, in the coin, to the provider.
        price: cost,
        payment_deadline: Utc::now() + PAYMENT_WINDOW,
        admin_id: None,
    };
    let order = match shop
        .store
        .create_order(
            &new,
            shop.config.limits.max_unpaid_orders,
            &Actor::Buyer(user_id(user)),
        )
        .await
    {
        Ok(order) => order,
        Err(StoreError::TooManyUnpaid { limit }) => {
            return say(
                bot,
                chat,
                t!("buyer.too_many_unpaid", locale = lang.code(), limit = limit),
            )
            .await;
        }
        Err(other) => return Err(other.into()),
    };
    dialogue.update(State::Start).await?;
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    let l = lang.code();
    match engine.open_checkout(order.id).await? {
        CheckoutOutcome::Ready(checkout) => {
            send_checkout(bot, chat, lang, &order.product_title, &checkout).await
        }
        CheckoutOutcome::Followed => {
            say(
                bot,
                chat,
                t!("crypto_checkout.followed", locale = l, id = order.id),
            )
            .await
        }
        CheckoutOutcome::Refused(error) => {
            let (reason, _) = refusal(lang, &error);
            say(
                bot,
                chat,
                t!("crypto_checkout.refused", locale = l, reason = reason),
            )
            .await?;
            show_menu(bot, shop, lang, Target::Send(chat)).await
        }
        CheckoutOutcome::Parked => {
            say(
                bot,
                chat,
                t!("crypto_checkout.parked", locale = l, id = order.id),
            )
            .await
        }
    }
}

/// The checkout as a QR photo with the message as its caption (HTML), or the photo and
/// the message apart when the message is longer than a caption may be.
pub async fn send_checkout(
    bot: &KioskBot,
    chat: ChatId,
    lang: Language,
    product: &str,
    checkout: &crate::providers::CryptoCheckout,
) -> HandlerResult {
    let text = checkout_message(lang, product, checkout, Utc::now());
    let png = match qr_png(qr_payload(checkout)) {
        Ok(png) => png,
        Err(error) => {
            tracing::warn!(%error, "no QR code for a checkout");
            bot.send_message(chat, text)
                .parse_mode(ParseMode::Html)
                .await?;
            return Ok(());
        }
    };
    let photo = bot.send_photo(chat, InputFile::memory(png).file_name("checkout.png"));
    if text.chars().count() <= MAX_CAPTION_CHARS {
        photo.caption(text).parse_mode(ParseMode::Html).await?;
    } else {
        photo.await?;
        bot.send_message(chat, text)
            .parse_mode(ParseMode::Html)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Typed text

pub async fn on_text(
    bot: KioskBot,
    shop: Arc<Shop>,
    dialogue: KioskDialogue,
    state: State,
    msg: Message,
) -> HandlerResult {
    let chat = msg.chat.id;
    let Some(user) = msg.from.clone() else {
        return Ok(());
    };
    let lang = shop.language_of(Some(&user)).await;
    let State::Crypto(state) = state else {
        return Ok(());
    };
    let Some(refills) = shop.providers.cryptorefills() else {
        return stale(&bot, &shop, &dialogue, lang, chat).await;
    };
    let Some(text) = msg.text().map(str::trim) else {
        return say(&bot, chat, t!("unknown.text", locale = lang.code())).await;
    };
    let target = Target::Send(chat);
    match state {
        CryptoState::Country { family } => match country_code(text) {
            Some(code) => {
                let country = code_text(code);
                shop.store
                    .set_user_country(user_id(&user), &country)
                    .await?;
                open_brands(&bot, &refills, &dialogue, lang, family, &country, target).await
            }
            None => {
                say(
                    &bot,
                    chat,
                    t!("crypto_checkout.bad_country", locale = lang.code()),
                )
                .await
            }
        },
        CryptoState::Brands {
            family, country, ..
        } => {
            let query: String = text.chars().take(MAX_QUERY_CHARS).collect();
            let needle = query.to_lowercase();
            let found: Vec<Listed> = match refills.categories_in(family, &country).await {
                Ok(categories) => categories
                    .into_iter()
                    .filter(|c| c.name.to_lowercase().contains(&needle))
                    .take(MAX_LISTED)
                    .map(|c| Listed {
                        provider: ProviderId::Cryptorefills,
                        id: c.id,
                        name: c.name,
                    })
                    .collect(),
                Err(error) => {
                    let (text, _) = refusal(lang, &error);
                    return say(&bot, chat, text).await;
                }
            };
            let screen = brands_screen(lang, family, &country, &found, 0, Some(&query));
            update(
                &dialogue,
                CryptoState::Brands {
                    family,
                    country,
                    items: found,
                    page: 0,
                    query: Some(query),
                },
            )
            .await?;
            show(&bot, target, screen).await
        }
        CryptoState::Recipient { draft } => {
            recipient_typed(&bot, &refills, &dialogue, lang, draft, text, target).await
        }
        CryptoState::Amount { draft } => {
            let Some(range) = draft.offer.amount.clone() else {
                return stale(&bot, &shop, &dialogue, lang, chat).await;
            };
            let parsed = Decimal::from_str(&text.replace(',', "."))
                .ok()
                .filter(|d| d.scale() <= range.currency.minor_digits())
                .map(|d| Money::new(d, range.currency.clone()))
                .filter(|m| range.contains(m));
            match parsed {
                Some(amount) => {
                    let mut draft = draft;
                    draft.amount = Some(amount);
                    choose_coin(&bot, &refills, &dialogue, lang, draft, target).await
                }
                None => {
                    say(
                        &bot,
                        chat,
                        amount_text(lang, "crypto_checkout.bad_amount", &draft),
                    )
                    .await
                }
            }
        }
        CryptoState::Products { .. } | CryptoState::Coin { .. } | CryptoState::Quote { .. } => {
            say(&bot, chat, t!("unknown.text", locale = lang.code())).await
        }
    }
}

/// A typed phone number or e-mail: the format first (a refusal says what to send),
/// then the provider's order validation; accepted once both agree.
async fn recipient_typed(
    bot: &KioskBot,
    refills: &CryptorefillsProvider,
    dialogue: &KioskDialogue,
    lang: Language,
    mut draft: CryptoDraft,
    text: &str,
    target: Target,
) -> HandlerResult {
    let chat = chat_of(target);
    let l = lang.code();
    let parsed = match draft.offer.recipient {
        RecipientKind::Phone => PhoneE164::parse(text)
            .map(Recipient::Phone)
            .map_err(|e| e.message_key()),
        _ => Email::parse(text)
            .map(Recipient::Email)
            .map_err(|e| e.message_key()),
    };
    let recipient = match parsed {
        Ok(recipient) => recipient,
        Err(key) => return say(bot, chat, t!(key, locale = l)).await,
    };
    bot.send_chat_action(chat, ChatAction::Typing).await?;
    match refills
        .check_recipient(&draft.offer.product, &recipient)
        .await
    {
        Ok(RecipientCheck::Confirmed { .. } | RecipientCheck::Unchecked) => {
            draft.recipient = Some(recipient);
            after_recipient(bot, refills, dialogue, lang, draft, target).await
        }
        Ok(RecipientCheck::Refused(reason)) => {
            // The provider's validation refused the recipient itself: its sentence says
            // what to send instead. The buyer stays here and may send another.
            let text = if reason == BuyerReason::InvalidRecipient {
                let key = ProblemCode::InvalidBeneficiaryAccount.message_key();
                t!(&key, locale = l).into_owned()
            } else {
                t!(reason.message_key(), locale = l).into_owned()
            };
            say(bot, chat, text).await
        }
        Err(error) => {
            tracing::info!(%error, "Cryptorefills refused an order validation");
            let (text, _) = refusal(lang, &error);
            say(bot, chat, text).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_round_trip_and_forgeries_are_refused() {
        let all = [
            CryptoCallback::Family(ProductFamily::MobileTopup),
            CryptoCallback::Country(*b"DE"),
            CryptoCallback::ChangeCountry,
            CryptoCallback::Pick(199),
            CryptoCallback::Page(3),
            CryptoCallback::Via(0),
            CryptoCallback::Confirm,
            CryptoCallback::Back,
        ];
        for callback in all {
            let data = callback.encode();
            assert!(data.len() <= MAX_CALLBACK_BYTES, "{data}");
            assert_eq!(CryptoCallback::parse(&data), Some(callback), "{data}");
            assert_eq!(
                super::super::callbacks::Callback::parse(&data),
                None,
                "{data} must not reach the main dialogue"
            );
        }
        for forged in [
            "c:",
            "c:f:groceries",
            "c:cc:USA",
            "c:cc:1A",
            "c:p:-1",
            "c:p:01",
            "c:p:99999",
            "c:ok:1",
            "ok",
            "c:v:",
            "x:p:1",
        ] {
            assert_eq!(CryptoCallback::parse(forged), None, "{forged:?}");
        }
        assert_eq!(
            CryptoCallback::parse("c:cc:us"),
            Some(CryptoCallback::Country(*b"US"))
        );
    }

    #[test]
    fn countries_read_as_two_letters_and_show_a_flag() {
        assert_eq!(country_code(" de "), Some(*b"DE"));
        assert_eq!(country_code("Deu"), None);
        assert_eq!(country_code("д"), None);
        assert_eq!(country_label("US"), "🇺🇸 US");
    }

    #[test]
    fn every_crypto_status_has_words_in_both_languages() {
        for status in OrderStatus::ALL {
            for lang in ["en", "ru"] {
                let key = format!("crypto_checkout.status.{}", status.as_str());
                let text = rust_i18n::t!(&key, locale = lang);
                assert!(!text.ends_with(key.as_str()), "{lang}: {key}");
            }
        }
    }
}
