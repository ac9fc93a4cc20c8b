//! Cookies: the signed, HttpOnly session cookie that remembers a person's
//! display name between visits and for the WebSocket handshake, and the
//! CSRF token that HTML forms must echo.

use actix_web::cookie::{time::Duration, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;

use crate::accounts::{self, User};
use crate::domain::DisplayName;
use crate::startup::AppState;

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
    let value = to_hex(name.as_str().as_bytes());
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

pub const AUTH_COOKIE: &str = "parlor_auth";

/// The login token from a validly signed auth cookie.
pub fn auth_token(req: &HttpRequest, key: &Key) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(req.cookie(AUTH_COOKIE)?);
    Some(jar.signed(key).get(AUTH_COOKIE)?.value().to_string())
}

/// The cookie that carries a login: signed, HttpOnly, gone when the login expires.
pub fn auth_cookie(token: &str, key: &Key, secure: bool, ttl: std::time::Duration) -> Cookie<'static> {
    let cookie = Cookie::build(AUTH_COOKIE, token.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)))
        .finish();
    let mut jar = CookieJar::new();
    jar.signed_mut(key).add(cookie);
    jar.delta().next().expect("the cookie just added").clone()
}

/// Who is logged in on this request, if anyone: a live, unrevoked session
/// of a user who is not banned. One database query, off the worker thread.
pub async fn current_user(req: &HttpRequest, state: &AppState) -> Option<User> {
    let token = auth_token(req, &state.key)?;
    let pool = state.pool.clone();
    match actix_web::web::block(move || accounts::user_of(&pool, &token)).await {
        Ok(Ok(user)) => user,
        Ok(Err(e)) => {
            log::warn!("checking a login: {e}");
            None
        }
        Err(_) => None,
    }
}

pub const CSRF_COOKIE: &str = "parlor_csrf";
pub const CSRF_FIELD: &str = "csrf";

/// The visitor's CSRF token, and the cookie to set when it is new. Forms carry
/// it in a hidden field; a POST from another site cannot read the cookie, so
/// it cannot put the matching value in its form (double-submit).
pub fn csrf_token(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(cookie) = req.cookie(CSRF_COOKIE).filter(|c| c.value().len() == 64) {
        return (cookie.value().to_string(), None);
    }
    let token = random_hex(32);
    let cookie =
        Cookie::build(CSRF_COOKIE, token.clone()).path("/").http_only(true).same_site(SameSite::Strict).finish();
    (token, Some(cookie))
}

/// Whether a form's `csrf` field matches the visitor's CSRF cookie.
pub fn csrf_valid(req: &HttpRequest, submitted: Option<&str>) -> bool {
    match (req.cookie(CSRF_COOKIE), submitted) {
        (Some(cookie), Some(given)) if cookie.value().len() == 64 => {
            constant_time_eq(cookie.value().as_bytes(), given.as_bytes())
        }
        _ => false,
    }
}

/// Compares without stopping at the first difference, so response timing does
/// not reveal how much of a guessed secret was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes from the thread's CSPRNG, as hex: tokens and ids.
pub fn random_hex(bytes: usize) -> String {
    to_hex(&(0..bytes).map(|_| rand::random::<u8>()).collect::<Vec<_>>())
}

/// The token of an `Authorization: Bearer ...` header (scheme in any case).
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
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
    use super::{constant_time_eq, from_hex};

    #[test]
    fn compares_secrets() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn hex_round_trip() {
        let hex: String = "Zoë 🚀".bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(from_hex(&hex).as_deref(), Some("Zoë 🚀"));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("c3"), None, "not UTF-8");
    }
}
