//! Card seeds at rest: XChaCha20-Poly1305 under a key derived from KIOSK_SECRET_KEY.
//!
//! - The AEAD key is `HMAC-SHA256(KIOSK_SECRET_KEY, "kiosk/cryptocardy-seed/v1")`, so the
//!   same secret key can protect other stored secrets without sharing a cipher key.
//! - Each seal takes a fresh random 24-byte nonce (XChaCha's nonce is long enough for
//!   random nonces to be safe).
//! - The associated data binds the ciphertext to its row and owner: a ciphertext copied
//!   onto another card, or another buyer's card, does not open.
//!
//! A seed is decrypted only in memory, for the call that needs it.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::SecretKey;
use crate::providers::cryptocardy::client::CardSeed;
use crate::secret::Secret;
use crate::store::cards::EncryptedSeed;

const KEY_CONTEXT: &[u8] = b"kiosk/cryptocardy-seed/v1";
const WEBHOOK_CONTEXT: &[u8] = b"kiosk/cryptocardy-webhook/v1";
const NONCE_LEN: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the seed could not be encrypted")]
    Encrypt,
    /// Wrong key, another row's ciphertext, or tampering.
    #[error("the seed could not be decrypted")]
    Decrypt,
}

/// Encrypts and decrypts card seeds. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct SeedVault {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SeedVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeedVault(***)")
    }
}

/// `HMAC-SHA256(KIOSK_SECRET_KEY, context)`: a key of its own for each use.
fn derive(key: &SecretKey, context: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(context);
    mac.finalize().into_bytes().into()
}

/// The secret CryptoCardy signs card webhooks with: derived from KIOSK_SECRET_KEY, so it
/// survives restarts without being stored, and is not the seed-sealing key.
pub fn webhook_secret(key: &SecretKey) -> Secret {
    Secret::new(hex::encode(derive(key, WEBHOOK_CONTEXT)))
}

impl SeedVault {
    pub fn new(key: &SecretKey) -> Self {
        let derived = derive(key, KEY_CONTEXT);
        Self {
            cipher: XChaCha20Poly1305::new(&derived.into()),
        }
    }

    pub fn seal(&self, card: i64, owner: i64, seed: &CardSeed) -> Result<EncryptedSeed, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(card, owner);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        Ok(EncryptedSeed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    pub fn open(
        &self,
        card: i64,
        owner: i64,
        sealed: &EncryptedSeed,
    ) -> Result<CardSeed, SealError> {
        if sealed.nonce.len() != NONCE_LEN {
            return Err(SealError::Decrypt);
        }
        let aad = associated_data(card, owner);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Decrypt)?;
        let text = String::from_utf8(plain).map_err(|_| SealError::Decrypt)?;
        CardSeed::new(text).map_err(|_| SealError::Decrypt)
    }
}

fn associated_data(card: i64, owner: i64) -> Vec<u8> {
    let mut aad = KEY_CONTEXT.to_vec();
    aad.extend_from_slice(&card.to_be_bytes());
    aad.extend_from_slice(&owner.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(byte: u8) -> SeedVault {
        SeedVault::new(&SecretKey([byte; 32]))
    }

    #[test]
    fn seals_and_opens_only_with_the_same_key_row_and_owner() {
        let seed = CardSeed::new("a1b2-c3d4-e5f6-7890").unwrap();
        let sealed = vault(7).seal(1, 42, &seed).unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(
            !sealed
                .ciphertext
                .windows(seed.expose().len())
                .any(|w| w == seed.expose().as_bytes())
        );
        assert_eq!(vault(7).open(1, 42, &sealed).unwrap(), seed);
        assert_eq!(vault(8).open(1, 42, &sealed), Err(SealError::Decrypt));
        assert_eq!(vault(7).open(2, 42, &sealed), Err(SealError::Decrypt));
        assert_eq!(vault(7).open(1, 43, &sealed), Err(SealError::Decrypt));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(vault(7).open(1, 42, &tampered), Err(SealError::Decrypt));
        // Two seals of one seed differ (fresh nonce each time).
        assert_ne!(vault(7).seal(1, 42, &seed).unwrap(), sealed);
    }

    #[test]
    fn the_webhook_secret_is_stable_per_key_and_not_the_sealing_key() {
        let key = SecretKey([7; 32]);
        let secret = webhook_secret(&key);
        assert_eq!(secret.expose(), webhook_secret(&key).expose());
        assert_eq!(secret.expose().len(), 64);
        assert_ne!(
            secret.expose(),
            webhook_secret(&SecretKey([8; 32])).expose()
        );
        assert_ne!(secret.expose(), hex::encode(derive(&key, KEY_CONTEXT)));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }
}
