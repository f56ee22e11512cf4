//! FazerCards adapter (wire client only, so far).

pub mod client;
