use crate::error::ChatError;

/// The body of a chat message: not blank, at most `max_bytes` of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self, ChatError> {
        if raw.trim().is_empty() {
            return Err(ChatError::BadRequest("message text must not be empty".into()));
        }
        // Control characters other than tab and line breaks have no place in
        // chat, and NUL cannot be stored at all by PostgreSQL.
        if raw.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            return Err(ChatError::BadRequest("message text must not contain control characters".into()));
        }
        if raw.len() > max_bytes {
            return Err(ChatError::TooLarge(format!("message text is {} bytes; the limit is {max_bytes}", raw.len())));
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

/// A client-chosen tag echoed back on the sender's copy of its message, so the
/// client can match a pending message to the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: String) -> Result<Self, ChatError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN || raw.chars().any(char::is_control) {
            return Err(ChatError::BadRequest(format!("nonce must be 1 to {} printable characters", Self::MAX_LEN)));
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
    fn text_limits() {
        assert!(matches!(MessageText::parse(" \n ".into(), 10), Err(ChatError::BadRequest(_))));
        assert!(matches!(MessageText::parse("x".repeat(11), 10), Err(ChatError::TooLarge(_))));
        assert!(MessageText::parse("x".repeat(10), 10).is_ok());
        assert!(matches!(MessageText::parse("a\u{0}b".into(), 10), Err(ChatError::BadRequest(_))));
        assert!(matches!(MessageText::parse("bell\u{7}".into(), 10), Err(ChatError::BadRequest(_))));
        assert!(MessageText::parse("tab\tand\r\nlines".into(), 100).is_ok());
    }

    #[test]
    fn nonce_limits() {
        assert!(Nonce::parse("c-17".into()).is_ok());
        assert!(Nonce::parse(String::new()).is_err());
        assert!(Nonce::parse("n".repeat(65)).is_err());
    }
}
