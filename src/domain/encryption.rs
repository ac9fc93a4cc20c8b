//! End-to-end encrypted rooms, as far as the server takes part in them: it
//! never holds a key. It remembers that a room is encrypted and how its
//! members get the key (an invite link or a passphrase), hands out the
//! room's salt for passphrase keys, and refuses any message that is not
//! ciphertext, so plaintext can never be stored in such a room by mistake.
//!
//! Browsers encrypt with AES-256-GCM (WebCrypto); a message's text is an
//! envelope `v1.<iv>.<ciphertext>`, both parts unpadded base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::error::ChatError;

/// The cipher every encrypted room uses; named in the protocol so that a
/// later scheme can sit beside it.
pub const SCHEME: &str = "aes-256-gcm";
/// PBKDF2-SHA256 rounds for passphrase keys: OWASP's figure for
/// PBKDF2-HMAC-SHA256 (2023). Part of the protocol: changing it makes
/// every existing passphrase room unreadable.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Salt bytes for passphrase keys.
const SALT_BYTES: usize = 16;
/// AES-GCM nonce bytes, 16 base64url characters.
const IV_CHARS: usize = 16;
/// The authentication tag alone, 16 bytes, is 22 base64url characters.
const MIN_CIPHERTEXT_CHARS: usize = 22;

/// How members of an encrypted room get its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Random, made by the creator's browser, carried in the invite link's
    /// fragment (which browsers never send to a server).
    Link,
    /// Derived from a passphrase with PBKDF2 and the room's salt.
    Passphrase,
}

impl KeySource {
    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        match raw {
            "link" => Ok(Self::Link),
            "passphrase" => Ok(Self::Passphrase),
            other => {
                Err(ChatError::BadRequest(format!("encryption must be \"link\" or \"passphrase\", not {other:?}")))
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Passphrase => "passphrase",
        }
    }
}

/// What clients need to know about an encrypted room's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encryption {
    pub key: KeySource,
    /// Unpadded base64url; public (a salt only has to be unique).
    pub salt: String,
}

impl Encryption {
    /// A new room's: a fresh random salt.
    pub fn new(key: KeySource) -> Self {
        let salt: [u8; SALT_BYTES] = rand::random();
        Self { key, salt: URL_SAFE_NO_PAD.encode(salt) }
    }

    /// As the database keeps it; `None` for a plain room. A key source
    /// this version does not know still makes the room encrypted: what
    /// matters most is that no plaintext gets in.
    pub fn from_columns(key: Option<&str>, salt: Option<String>) -> Option<Self> {
        let key = KeySource::parse(key?).unwrap_or(KeySource::Link);
        Some(Self { key, salt: salt.unwrap_or_default() })
    }

    /// Refuses a message that is not ciphertext in this room's form.
    pub fn check(&self, room: &str, text: &str) -> Result<(), ChatError> {
        if is_envelope(text) {
            Ok(())
        } else {
            Err(ChatError::EncryptionRequired(room.to_string()))
        }
    }
}

impl Serialize for Encryption {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Encryption", 4)?;
        s.serialize_field("scheme", SCHEME)?;
        s.serialize_field("key", self.key.as_str())?;
        s.serialize_field("salt", &self.salt)?;
        s.serialize_field("iterations", &PBKDF2_ITERATIONS)?;
        s.end()
    }
}

/// Whether `text` has the form of an encrypted message: `v1.`, a 12-byte
/// IV and at least a tag's worth of ciphertext, in unpadded base64url. The
/// server cannot tell good ciphertext from bad (only key holders can); it
/// only makes sure no readable text slips in.
pub fn is_envelope(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("v1.") else { return false };
    let Some((iv, ciphertext)) = rest.split_once('.') else { return false };
    let base64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    iv.len() == IV_CHARS
        && base64url(iv)
        && ciphertext.len() >= MIN_CIPHERTEXT_CHARS
        // No unpadded base64 ends with a single leftover character.
        && ciphertext.len() % 4 != 1
        && base64url(ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let iv = "AAECAwQFBgcICQoL";
        let tag = "q83vEjRWeJq83vEjRWeJqw";
        assert!(is_envelope(&format!("v1.{iv}.{tag}")));
        assert!(is_envelope(&format!("v1.{iv}.{tag}Zm9v-_")));
        assert!(!is_envelope("hello there"));
        assert!(!is_envelope(&format!("v2.{iv}.{tag}")));
        assert!(!is_envelope(&format!("v1.{iv}.{tag}.more")));
        assert!(!is_envelope(&format!("v1.{iv}x.{tag}")));
        assert!(!is_envelope(&format!("v1.{iv}.short")));
        assert!(!is_envelope(&format!("v1.{iv}.{tag}AAA")), "no base64 is 4n+1 characters long");
        assert!(!is_envelope(&format!("v1.{iv}.{tag} plain words")));
        assert!(!is_envelope(&format!("v1.{iv}.{tag}==")));
    }

    #[test]
    fn refuses_plaintext() {
        let room = Encryption::new(KeySource::Link);
        assert_eq!(room.salt.len(), 22);
        assert!(matches!(room.check("r", "secret plans"), Err(ChatError::EncryptionRequired(_))));
    }

    #[test]
    fn stored_form() {
        let room = Encryption::from_columns(Some("passphrase"), Some("c2FsdA".into())).unwrap();
        assert_eq!(room.key, KeySource::Passphrase);
        assert!(Encryption::from_columns(None, None).is_none());
        let json = serde_json::to_value(&room).unwrap();
        assert_eq!(json["scheme"], "aes-256-gcm");
        assert_eq!(json["iterations"], 600_000);
    }
}
