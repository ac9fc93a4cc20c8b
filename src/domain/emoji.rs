use crate::error::ChatError;

/// A reaction: one emoji (a short run of non-ASCII symbols, so that skin
/// tones, flags and joined sequences pass), never words or markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    /// Unicode scalars in one emoji at most: the longest family and flag
    /// sequences in use are about ten.
    pub const MAX_CHARS: usize = 12;

    pub fn parse(raw: String) -> Result<Self, ChatError> {
        let count = raw.chars().count();
        let symbol = |c: char| !c.is_ascii() && !c.is_control() && !c.is_whitespace() && !c.is_alphanumeric();
        // Keycaps (1️⃣, #️⃣) are the one emoji that starts with ASCII.
        let keycap = |c: char| c.is_ascii_digit() || c == '#' || c == '*';
        let ok = (1..=Self::MAX_CHARS).contains(&count)
            && raw.chars().enumerate().all(|(i, c)| symbol(c) || (i == 0 && count > 1 && keycap(c)));
        if !ok {
            return Err(ChatError::BadRequest(format!(
                "`emoji` must be one emoji (at most {} code points, no letters or spaces)",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_emoji_and_refuses_words() {
        for ok in ["👍", "🎉", "👍🏽", "🇫🇷", "👩‍👩‍👧", "❤️", "1️⃣"] {
            assert!(Emoji::parse(ok.into()).is_ok(), "{ok}");
        }
        for bad in ["", "a", "lol", "<b>", "👍 ", "é", "1", "日本", "\u{0}"] {
            assert!(Emoji::parse(bad.into()).is_err(), "{bad:?}");
        }
        assert!(Emoji::parse("👍".repeat(13)).is_err());
    }
}
