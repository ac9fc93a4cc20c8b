//! The session cookie: a signed, HttpOnly cookie that remembers a person's
//! display name between visits and for the WebSocket handshake.

use actix_web::cookie::{time::Duration, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;

use crate::domain::DisplayName;

pub const COOKIE_NAME: &str = "parlor_session";

/// The display name from a validly signed cookie, if any. A cookie that was
/// tampered with, or signed with another key, is ignored.
pub fn display_name(req: &HttpRequest, key: &Key) -> Option<DisplayName> {
    let mut jar = CookieJar::new();
    jar.add_original(req.cookie(COOKIE_NAME)?);
    let cookie = jar.signed(key).get(COOKIE_NAME)?;
    DisplayName::parse(&from_hex(cookie.value())?).ok()
}

/// A cookie holding `name`, signed with `key`. Names may hold any Unicode,
/// which cookies cannot carry as is; hex passes through every cookie parser
/// unchanged (percent-encoding would be decoded before the signature check).
pub fn name_cookie(name: &DisplayName, key: &Key, secure: bool) -> Cookie<'static> {
    let value: String = name.as_str().bytes().map(|b| format!("{b:02x}")).collect();
    let cookie = Cookie::build(COOKIE_NAME, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::days(365))
        .finish();
    let mut jar = CookieJar::new();
    jar.signed_mut(key).add(cookie);
    jar.delta().next().expect("the cookie just added").clone()
}

fn from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::from_hex;

    #[test]
    fn hex_round_trip() {
        let hex: String = "Zoë 🚀".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(from_hex(&hex).as_deref(), Some("Zoë 🚀"));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("c3"), None, "not UTF-8");
    }
}
