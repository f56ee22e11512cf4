//! End-to-end: the real handler tree against the fake Telegram Bot API and the sandbox
//! providers, on loopback. One binary; `helpers` spawns the whole shop.

mod admin;
mod buyer;
mod cards;
mod helpers;
mod purchase;
mod run_binary;
