use std::fmt;
use std::sync::Arc;

use rand::Rng;
use serde::Serialize;

use crate::error::ChatError;

/// A room's name: 1 to 64 characters of lowercase ASCII letters, digits, `-`
/// and `_`, starting with a letter or digit. Names go into URLs and file-like
/// listings, so the alphabet is kept URL-safe and case-free on purpose.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub const MAX_LEN: usize = 64;
    /// Length of a generated short code.
    const CODE_LEN: usize = 8;

    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if raw.is_empty() {
            return Err(ChatError::InvalidRoom("room name must not be empty".into()));
        }
        if raw.len() > Self::MAX_LEN {
            return Err(ChatError::InvalidRoom(format!("room name is longer than {} characters", Self::MAX_LEN)));
        }
        if !first_ok || !raw.chars().all(valid_char) {
            return Err(ChatError::InvalidRoom(
                "room names use lowercase letters, digits, '-' and '_', and start with a letter or digit".into(),
            ));
        }
        Ok(Self(raw.into()))
    }

    /// A fresh short code such as `k3x9q2mf`, for rooms created without a name.
    /// Ambiguous characters (0/o, 1/l) are left out so codes can be read aloud.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::thread_rng();
        let code: String = (0..Self::CODE_LEN).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
        Self(code.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::RoomName;

    #[test]
    fn accepts_url_safe_lowercase_names() {
        for ok in ["lobby", "team-42", "a", "0_day", &"x".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "Lobby", "-lead", "_x", "a b", "a/b", "é", "<script>", &"x".repeat(65)] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn generated_codes_are_valid_names() {
        for _ in 0..100 {
            let code = RoomName::generate();
            assert_eq!(RoomName::parse(code.as_str()).unwrap(), code);
        }
    }
}
