//! End-to-end: the real handler tree against the fake Telegram Bot API and the sandbox
//! providers, on loopback. One binary; `helpers` spawns the whole shop; `demo` drives
//! `kiosk demo` through its HTTP API.

mod admin;
mod buyer;
mod buyer_crypto;
mod card_webhooks;
mod cards;
mod demo;
mod helpers;
mod purchase;
mod run_binary;
