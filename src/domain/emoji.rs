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
        // Keycaps (1️⃣, #️⃣) are the one emoji that starts with ASCII.
        let keycap = |c: char| c.is_ascii_digit() || c == '#' || c == '*';
        let ok = (1..=Self::MAX_CHARS).contains(&count)
            && raw
                .chars()
                .enumerate()
                .all(|(i, c)| is_pictograph(c) || (i > 0 && is_joiner(c)) || (i == 0 && count > 1 && keycap(c)))
            && raw.chars().any(|c| is_pictograph(c) || c == '\u{20E3}');
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

/// The blocks emoji come from: pictographs, symbols and dingbats, arrows,
/// regional indicators and skin tones, and the few symbols elsewhere that
/// are emoji (©, ®, ‼, ™, 〰...). Not letters, invisible or bidi controls,
/// or currency.
fn is_pictograph(c: char) -> bool {
    matches!(u32::from(c),
        0x1F000..=0x1FAFF
        | 0x2600..=0x27BF
        | 0x2B00..=0x2BFF
        | 0x2300..=0x23FF
        | 0x2190..=0x21FF
        | 0x25A0..=0x25FF
        | 0x2100..=0x214F
        | 0x2934 | 0x2935 | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0x00A9 | 0x00AE | 0x203C | 0x2049)
}

/// What joins or shapes pictographs into one emoji: the zero-width joiner,
/// variation selectors, the keycap mark, and tag characters (subdivision flags).
fn is_joiner(c: char) -> bool {
    matches!(u32::from(c), 0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_emoji_and_refuses_words() {
        for ok in ["👍", "🎉", "👍🏽", "🇫🇷", "👩‍👩‍👧", "❤️", "1️⃣"] {
            assert!(Emoji::parse(ok.into()).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "lol", "<b>", "👍 ", "é", "1", "日本", "\u{0}", "\u{202E}", "€", "\u{200B}", "\u{FE0F}", "1€",
            "\u{E000}",
        ] {
            assert!(Emoji::parse(bad.into()).is_err(), "{bad:?}");
        }
        assert!(Emoji::parse("👍".repeat(13)).is_err());
    }
}
