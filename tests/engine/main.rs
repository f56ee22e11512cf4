//! The order engine end to end: the real handler tree on the fake Bot API, the
//! Fragment and Agent sandboxes, and a scriptable provider double. One binary.

mod double;
#[path = "../fixtures/orders.rs"]
mod fixtures;
mod support;

mod failures;
mod invariants;
mod kill;
mod ledger;
mod poll_list;
mod precheckout;
mod purchase;
mod race;
mod restart;
