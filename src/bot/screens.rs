//! What the buyer sees: message text and inline keyboards for each screen, built from
//! `locales/` only. No I/O here.

use rust_i18n::t;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::utils::html;

use super::callbacks::Callback;
use super::{Draft, Listed, PricedQuote};
use crate::config::Language;
use crate::domain::{FieldKind, FieldSpec, ProductFamily};
use crate::i18n;
use crate::providers::{Offer, Recipient};
use crate::store::Order;

/// Entries per page of a list.
pub const PAGE_SIZE: usize = 8;

/// A message to show: text (HTML when `html`), and its buttons.
#[derive(Debug, Clone)]
pub struct Screen {
    pub text: String,
    pub keyboard: InlineKeyboardMarkup,
    pub html: bool,
    /// An image URL Telegram shows as the link preview above the text (a brand's logo);
    /// a text message can carry it and still be edited in place, unlike a photo.
    pub preview: Option<String>,
}

impl Screen {
    fn plain(text: impl Into<String>, rows: Vec<Vec<InlineKeyboardButton>>) -> Self {
        Self {
            text: text.into(),
            keyboard: InlineKeyboardMarkup::new(rows),
            html: false,
            preview: None,
        }
    }
}

fn button(text: impl Into<String>, callback: Callback) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text.into(), callback.encode())
}

fn home_row(lang: Language) -> Vec<InlineKeyboardButton> {
    vec![button(
        t!("buyer.home", locale = lang.code()),
        Callback::Menu,
    )]
}

pub fn family_name(lang: Language, family: ProductFamily) -> String {
    let key = format!("family.{}", family.as_str());
    t!(&key, locale = lang.code()).into_owned()
}

pub fn menu(lang: Language, shop_name: &str, families: &[ProductFamily]) -> Screen {
    let l = lang.code();
    let mut rows: Vec<Vec<InlineKeyboardButton>> = families
        .chunks(2)
        .map(|pair| {
            pair.iter()
                .map(|f| button(family_name(lang, *f), Callback::Family(*f)))
                .collect()
        })
        .collect();
    rows.push(vec![
        button(t!("buyer.my_orders", locale = l), Callback::Orders(0)),
        button(t!("buyer.language", locale = l), Callback::Language),
    ]);
    rows.push(vec![button(t!("buyer.help", locale = l), Callback::Help)]);
    let text = if families.is_empty() {
        t!("buyer.menu_empty", locale = l, shop = shop_name)
    } else {
        t!("buyer.menu", locale = l, shop = shop_name)
    };
    Screen::plain(text, rows)
}

/// Page `page` of `labels`, with Previous/Next and the closing row.
fn paged(
    lang: Language,
    labels: &[String],
    page: u16,
    last_row: Vec<InlineKeyboardButton>,
) -> Vec<Vec<InlineKeyboardButton>> {
    let l = lang.code();
    let pages = labels.len().div_ceil(PAGE_SIZE).max(1);
    let page = usize::from(page).min(pages - 1);
    let start = page * PAGE_SIZE;
    let mut rows: Vec<Vec<InlineKeyboardButton>> = labels
        .iter()
        .enumerate()
        .skip(start)
        .take(PAGE_SIZE)
        .map(|(i, label)| vec![button(label.clone(), Callback::Pick(i as u16))])
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button(
            t!("buyer.previous", locale = l),
            Callback::Page(page as u16 - 1),
        ));
    }
    if page + 1 < pages {
        nav.push(button(
            t!("buyer.next", locale = l),
            Callback::Page(page as u16 + 1),
        ));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    rows.push(last_row);
    rows
}

pub fn categories(
    lang: Language,
    family: ProductFamily,
    items: &[Listed],
    page: u16,
    query: Option<&str>,
) -> Screen {
    let l = lang.code();
    let name = family_name(lang, family);
    let text = match query {
        Some(q) if items.is_empty() => t!("buyer.search_none", locale = l, query = q),
        Some(q) => t!(
            "buyer.categories_search",
            locale = l,
            family = name,
            query = q
        ),
        None if items.is_empty() => t!("buyer.empty", locale = l),
        None => t!("buyer.categories", locale = l, family = name),
    };
    let labels: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    let back = vec![button(
        t!("buyer.back", locale = l),
        if query.is_some() {
            Callback::Family(family)
        } else {
            Callback::Menu
        },
    )];
    Screen::plain(text, paged(lang, &labels, page, back))
}

pub fn offer_label(lang: Language, offer: &Offer) -> String {
    let mut label = offer.title.clone();
    if offer.stock == Some(0) {
        label.push_str(&format!(
            " · {}",
            t!("buyer.out_of_stock", locale = lang.code())
        ));
    }
    label
}

pub fn offers(
    lang: Language,
    family: ProductFamily,
    category: &Listed,
    items: &[Offer],
    page: u16,
) -> Screen {
    let l = lang.code();
    let text = if items.is_empty() {
        t!("buyer.empty", locale = l)
    } else {
        t!(
            "buyer.offers",
            locale = l,
            category = category.name.as_str()
        )
    };
    let labels: Vec<String> = items.iter().map(|o| offer_label(lang, o)).collect();
    let back = vec![button(
        t!("buyer.back", locale = l),
        Callback::Family(family),
    )];
    Screen::plain(text, paged(lang, &labels, page, back))
}

fn cancel_row(lang: Language) -> Vec<InlineKeyboardButton> {
    vec![button(
        t!("buyer.cancel", locale = lang.code()),
        Callback::Cancel,
    )]
}

/// Asks for a text recipient; `own_username` adds a "for me" button for usernames.
pub fn ask_recipient(lang: Language, key: &str, own_username: Option<&str>) -> Screen {
    let l = lang.code();
    let mut rows = Vec::new();
    if let Some(name) = own_username {
        rows.push(vec![button(
            t!("buyer.for_me", locale = l, username = name),
            Callback::ForMe,
        )]);
    }
    rows.push(cancel_row(lang));
    Screen::plain(t!(key, locale = l), rows)
}

pub fn ask_field(lang: Language, field: &FieldSpec) -> Screen {
    let l = lang.code();
    match &field.kind {
        FieldKind::Select { options } => {
            let mut rows: Vec<Vec<InlineKeyboardButton>> = options
                .iter()
                .enumerate()
                .map(|(i, (_, label))| vec![button(label.clone(), Callback::Select(i as u16))])
                .collect();
            rows.push(cancel_row(lang));
            Screen::plain(
                t!(
                    "buyer.choose_field",
                    locale = l,
                    label = field.label.as_str()
                ),
                rows,
            )
        }
        FieldKind::Text => Screen::plain(
            t!("buyer.ask_field", locale = l, label = field.label.as_str()),
            vec![cancel_row(lang)],
        ),
    }
}

pub fn confirm_recipient(lang: Language, name: &str, region: Option<&str>) -> Screen {
    let l = lang.code();
    let mut text = t!("buyer.recipient_found", locale = l, name = name).into_owned();
    if let Some(region) = region {
        text.push('\n');
        text.push_str(&t!("buyer.recipient_region", locale = l, region = region));
    }
    Screen::plain(
        text,
        vec![vec![
            button(t!("buyer.yes", locale = l), Callback::RecipientOk),
            button(t!("buyer.change", locale = l), Callback::Cancel),
        ]],
    )
}

/// Quantity presets within the offer's limits (and stock).
pub fn quantity_presets(family: ProductFamily, min: u32, max: u32) -> Vec<u32> {
    let candidates: &[u32] = match family {
        ProductFamily::TelegramStars => &[50, 100, 250, 500, 1000, 2500, 5000, 10_000],
        _ => &[1, 2, 3, 5, 10],
    };
    candidates
        .iter()
        .copied()
        .filter(|n| (min..=max).contains(n))
        .collect()
}

pub fn ask_quantity(lang: Language, family: ProductFamily, min: u32, max: u32) -> Screen {
    let l = lang.code();
    let mut rows: Vec<Vec<InlineKeyboardButton>> = quantity_presets(family, min, max)
        .chunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .map(|n| button(n.to_string(), Callback::Quantity(*n)))
                .collect()
        })
        .collect();
    rows.push(cancel_row(lang));
    Screen::plain(
        t!("buyer.ask_quantity", locale = l, min = min, max = max),
        rows,
    )
}

pub fn ask_amount(lang: Language, currency: &str, min: &str, max: &str) -> Screen {
    Screen::plain(
        t!(
            "buyer.ask_amount",
            locale = lang.code(),
            currency = currency,
            min = min,
            max = max
        ),
        vec![cancel_row(lang)],
    )
}

/// How a recipient is shown: the provider's name for the account when it gave one.
pub fn recipient_label(lang: Language, recipient: &Recipient) -> String {
    match recipient {
        Recipient::TelegramUsername(name) => name.with_at(),
        Recipient::Player(fields) => fields
            .iter()
            .map(|(_, v)| v.to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        Recipient::SteamLogin(login) => login.to_string(),
        Recipient::SteamInvite(url) => url.to_string(),
        Recipient::Email(email) => email.to_string(),
        Recipient::Phone(phone) => phone.to_string(),
        Recipient::Nobody => t!("buyer.nobody", locale = lang.code()).into_owned(),
    }
}

/// The price in words: `250 Stars` / `250 звёзд`.
pub fn stars_text(lang: Language, stars: u64) -> String {
    i18n::plural(lang, "units.stars", stars)
}

pub fn quote(lang: Language, draft: &Draft, quote: &PricedQuote, stars: u64) -> Screen {
    let l = lang.code();
    let recipient = draft
        .recipient_label
        .clone()
        .or_else(|| draft.recipient.as_ref().map(|r| recipient_label(lang, r)))
        .unwrap_or_default();
    let quantity = match &draft.amount {
        Some(amount) => amount.to_string(),
        None => draft.quantity.to_string(),
    };
    let mut text = t!(
        "buyer.quote",
        locale = l,
        product = html::escape(&draft.offer.title),
        recipient = html::escape(&recipient),
        quantity = html::escape(&quantity),
        price = stars_text(lang, stars)
    )
    .into_owned();
    if let Some(fiat) = &quote.fiat {
        text.push(' ');
        text.push_str(&t!("buyer.quote_fiat", locale = l, fiat = fiat.to_string()));
    }
    Screen {
        text,
        keyboard: InlineKeyboardMarkup::new({
            let mut rows = vec![vec![button(
                t!(
                    "buyer.pay_stars",
                    locale = l,
                    price = stars_text(lang, stars)
                ),
                Callback::Confirm,
            )]];
            if let Some(fiat) = &quote.fiat {
                rows.push(vec![button(
                    t!("buyer.pay_fiat", locale = l, price = fiat.to_string()),
                    Callback::ConfirmFiat,
                )]);
            }
            rows.push(cancel_row(lang));
            rows
        }),
        html: true,
        preview: None,
    }
}

pub fn orders(lang: Language, orders: &[Order], page: u16, has_more: bool) -> Screen {
    let l = lang.code();
    if orders.is_empty() && page == 0 {
        return Screen::plain(t!("buyer.no_orders", locale = l), vec![home_row(lang)]);
    }
    let mut rows: Vec<Vec<InlineKeyboardButton>> = orders
        .iter()
        .map(|o| {
            let key = format!("status.{}", o.status.as_str());
            let status = super::crypto::status_words(lang, o)
                .unwrap_or_else(|| t!(&key, locale = l).into_owned());
            let label = format!(
                "{} · {}",
                t!("buyer.order_line", locale = l, id = o.id.0, status = status),
                o.product_title
            );
            vec![button(label, Callback::Order(o.id.0))]
        })
        .collect();
    let mut nav = Vec::new();
    if page > 0 {
        nav.push(button(
            t!("buyer.previous", locale = l),
            Callback::Orders(page - 1),
        ));
    }
    if has_more {
        nav.push(button(
            t!("buyer.next", locale = l),
            Callback::Orders(page + 1),
        ));
    }
    if !nav.is_empty() {
        rows.push(nav);
    }
    rows.push(home_row(lang));
    Screen::plain(t!("buyer.orders", locale = l), rows)
}

pub fn order_detail(lang: Language, order: &Order) -> Screen {
    let l = lang.code();
    let key = format!("status.{}", order.status.as_str());
    let status = super::crypto::status_words(lang, order)
        .unwrap_or_else(|| t!(&key, locale = l).into_owned());
    let price = if order.price.currency.is_stars() {
        let stars = order
            .price
            .to_minor_units()
            .map(u64::from)
            .unwrap_or_default();
        stars_text(lang, stars)
    } else {
        order.price.to_string()
    };
    let mut text = t!(
        "buyer.order_detail",
        locale = l,
        id = order.id.0,
        product = html::escape(&order.product_title),
        recipient = html::escape(&recipient_label(lang, &order.recipient)),
        price = price,
        status = status,
        created = order.created_at.format("%Y-%m-%d %H:%M UTC").to_string()
    )
    .into_owned();
    if let Some(delivered) = &order.delivered {
        if !delivered.codes.is_empty() {
            text.push_str("\n\n");
            text.push_str(&t!("buyer.order_codes", locale = l));
            for code in &delivered.codes {
                text.push_str(&format!("\n<code>{}</code>", html::escape(code)));
            }
        }
        if let Some(note) = &delivered.note {
            text.push_str(&format!("\n{}", html::escape(note)));
        }
    }
    Screen {
        text,
        keyboard: InlineKeyboardMarkup::new(vec![
            vec![button(t!("buyer.back", locale = l), Callback::Orders(0))],
            home_row(lang),
        ]),
        html: true,
        preview: None,
    }
}

pub fn languages(lang: Language) -> Screen {
    Screen::plain(
        t!("buyer.choose_language", locale = lang.code()),
        vec![
            vec![
                button("English", Callback::SetLanguage(Language::En)),
                button("Русский", Callback::SetLanguage(Language::Ru)),
            ],
            home_row(lang),
        ],
    )
}
