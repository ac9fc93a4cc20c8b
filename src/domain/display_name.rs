use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{skeleton, GeneralSecurityProfile, MixedScript};

use crate::error::ChatError;

/// What a person is called in a room: 1 to 32 characters after NFKC
/// normalization and trimming. Any visible Unicode is allowed (pages always
/// render it as text, never as markup), but not what lets one name pose as
/// another (UTS #39): control, invisible and default-ignorable characters,
/// deprecated or unassigned ones, and letters of scripts that do not go
/// together (Latin with a Cyrillic `о`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(Arc<str>);

impl DisplayName {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ChatError> {
        // Normalization can multiply a text's length: refuse absurd input
        // before it (no name needs more than a few bytes per character).
        if raw.len() > Self::MAX_CHARS * 16 {
            return Err(ChatError::InvalidName(format!("display name is longer than {} characters", Self::MAX_CHARS)));
        }
        // NFKC first: fullwidth `ｂｏｓｓ` and mathematical `𝐛𝐨𝐬𝐬` are `boss`.
        // Then runs of spaces, which look like one on a page: "Ann  Lee"
        // must not pose as "Ann Lee".
        let normalized: String = raw.nfkc().collect();
        let name = normalized.split_whitespace().collect::<Vec<_>>().join(" ");
        let name = name.as_str();
        if name.is_empty() {
            return Err(ChatError::InvalidName("display name must not be empty".into()));
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ChatError::InvalidName(format!("display name is longer than {} characters", Self::MAX_CHARS)));
        }
        if name.chars().any(|c| c.is_control() || is_invisible(c)) {
            return Err(ChatError::InvalidName("display name must not contain control or invisible characters".into()));
        }
        if !name.is_single_script() {
            return Err(ChatError::InvalidName(
                "display name mixes letters of different scripts (say, Latin and Cyrillic)".into(),
            ));
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

    /// What a name looks like (UTS #39 confusable skeleton, regardless of
    /// case): `b0ss`, `BOSS` and `boss` look alike, and so do `rn` and `m`.
    /// No one may take a name that looks like a registered account's, or
    /// like another member's in the same room.
    pub fn skeleton(&self) -> String {
        skeleton_of(&self.0)
    }
}

/// The skeleton of any text (see `DisplayName::skeleton`); also for names
/// stored before the rules above, hence NFKC here too.
pub fn skeleton_of(name: &str) -> String {
    let normalized: String = name.nfkc().collect();
    skeleton(&normalized.to_lowercase()).collect::<String>().to_lowercase()
}

/// Characters that show nothing, or can be mistaken for nothing, or change
/// how what follows is shown.
fn is_invisible(c: char) -> bool {
    use unicode_security::general_security_profile::IdentifierType as T;
    match c.identifier_type() {
        Some(T::Default_Ignorable | T::Deprecated | T::Not_Character) => true,
        // Unassigned, private use, and blank patterns (U+2800).
        None => !c.identifier_allowed(),
        Some(_) => is_invisible_format(c),
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
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
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
    fn everyday_names_are_kept() {
        for name in [
            "Zoë 🚀",
            "Ann Lee",
            "O'Brien",
            "José (admin)",
            "naïve_user-1",
            "★ star ★",
            "山田 太郎",
            "Иван",
            "Ελένη",
            "محمد",
            "<img src=x onerror=alert(1)>",
        ] {
            assert_eq!(DisplayName::parse(name).map(|n| n.to_string()).ok().as_deref(), Some(name), "{name}");
        }
    }

    #[test]
    fn look_alikes_of_a_name_are_refused_or_look_the_same() {
        // Invisible, deprecated and unassigned characters, and blanks.
        for bad in [
            "boss\u{061C}",
            "boss\u{206A}",
            "boss\u{206F}",
            "boss\u{FFF9}",
            "boss\u{1D173}",
            "boss\u{180B}",
            "boss\u{17B4}",
            "\u{2800}\u{2800}",
            "boss\u{0378}",
            "boss\u{E000}",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        // Cyrillic `о` among Latin letters.
        assert!(DisplayName::parse("b\u{043E}ss").is_err());
        // Fullwidth and mathematical letters are the same name after NFKC.
        assert_eq!(DisplayName::parse("ｂｏｓｓ").unwrap().as_str(), "boss");
        assert_eq!(DisplayName::parse("𝐛𝐨𝐬𝐬").unwrap().as_str(), "boss");
        // Different names that look alike share a skeleton.
        let skeleton = |name: &str| DisplayName::parse(name).unwrap().skeleton();
        assert_eq!(skeleton("boss"), skeleton("B0SS"));
        assert_eq!(skeleton("modern"), skeleton("rnodern"));
        assert_ne!(skeleton("boss"), skeleton("bass"));
    }

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
