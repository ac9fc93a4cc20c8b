use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::error::ChatError;

/// What a person is called in a room: 1 to 32 characters after trimming, no
/// control or invisible formatting characters. Any other Unicode is allowed;
/// pages always render it as text, never as markup.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(Arc<str>);

impl DisplayName {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        // Runs of spaces look like one on a page: "Ann  Lee" must not pose
        // as "Ann Lee".
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let name = name.as_str();
        if name.is_empty() {
            return Err(ChatError::InvalidName("display name must not be empty".into()));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ChatError::InvalidName(format!("display name is longer than {} characters", Self::MAX_CHARS)));
        }
        // Control and bidi/zero-width formatting characters let one name pose as another.
        if name.chars().any(|c| c.is_control() || is_invisible_format(c)) {
            return Err(ChatError::InvalidName("display name must not contain control or invisible characters".into()));
        }
        Ok(Self(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What makes two names the same name: names are unique regardless of
    /// case (accounts, and members of one room).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::DisplayName;

    #[test]
    fn trims_and_accepts_unicode() {
        assert_eq!(DisplayName::parse("  Zoë 🚀 ").unwrap().as_str(), "Zoë 🚀");
        assert_eq!(DisplayName::parse("Ann  \u{a0} Lee").unwrap().as_str(), "Ann Lee");
        assert!(DisplayName::parse(&"é".repeat(32)).is_ok());
        // Markup is a legal name; escaping is the renderer's job.
        assert!(DisplayName::parse("<img src=x onerror=alert(1)>").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_invisible() {
        for bad in ["", "   ", "bell\u{7}", "ev\u{202E}il", "zw\u{200B}j", "soft\u{AD}hy", "fil\u{3164}ler"] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(DisplayName::parse(&"a".repeat(33)).is_err());
    }
}
