//! Who is asking: the signed, HttpOnly cookie that remembers a guest's
//! display name between visits and for the WebSocket handshake, the login
//! cookie, bearer tokens, and the CSRF token that HTML forms must echo.

use actix_web::cookie::{time::Duration, Cookie, CookieJar, Key, SameSite};
use actix_web::HttpRequest;

use super::state::AppState;
use crate::accounts::{self, User};
use crate::domain::DisplayName;
use crate::tokens::{constant_time_eq, random_hex, to_hex};

pub const COOKIE_NAME: &str = "parlor_session";
pub const AUTH_COOKIE: &str = "parlor_auth";
pub const DEVICE_COOKIE: &str = "parlor_device";
pub const GUEST_COOKIE: &str = "parlor_guest";

/// The display name from a validly signed cookie, if any. A cookie that was
/// tampered with, or signed with another key, is ignored.
pub fn display_name(req: &HttpRequest, key: &Key) -> Option<DisplayName> {
    DisplayName::parse(&from_hex(&signed_value(req, key, COOKIE_NAME)?)?).ok()
}

/// A cookie holding `name`, signed with `key`. Names may hold any Unicode,
/// which cookies cannot carry as is; hex passes through every cookie parser
/// unchanged (percent-encoding would be decoded before the signature check).
pub fn name_cookie(name: &DisplayName, key: &Key, secure: bool) -> Cookie<'static> {
    signed_cookie(COOKIE_NAME, to_hex(name.as_str().as_bytes()), key, secure, Duration::days(365))
}

/// The id a guest's browser is known by, from its validly signed guest
/// cookie: the same guest in every tab and after a reload, owner of what it
/// sent, whatever name it goes by.
pub fn guest_id(req: &HttpRequest, key: &Key) -> Option<String> {
    signed_value(req, key, GUEST_COOKIE).filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new guest id's cookie, when the visitor has none yet.
pub fn new_guest_cookie(req: &HttpRequest, key: &Key, secure: bool) -> Option<Cookie<'static>> {
    guest_id(req, key).is_none().then(|| signed_cookie(GUEST_COOKIE, random_hex(16), key, secure, Duration::days(365)))
}

/// The login token from a validly signed auth cookie.
pub fn auth_token(req: &HttpRequest, key: &Key) -> Option<String> {
    signed_value(req, key, AUTH_COOKIE)
}

/// The login a request carries as sessions record it: its token's hash.
pub fn login(req: &HttpRequest, key: &Key) -> Option<String> {
    auth_token(req, key).map(|token| crate::tokens::token_hash(&token))
}

/// The cookie that carries a login: signed, HttpOnly, gone when the login expires.
pub fn auth_cookie(token: &str, key: &Key, secure: bool, ttl: std::time::Duration) -> Cookie<'static> {
    let max_age = Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    signed_cookie(AUTH_COOKIE, token.to_string(), key, secure, max_age)
}

/// The cookie of a browser that logged in to an account: this device's own
/// random id and the account's name key, signed. Login attempts from it are
/// limited apart from everyone else's attempts on that account.
pub fn device_cookie(user_key: &str, key: &Key, secure: bool) -> Cookie<'static> {
    let value = format!("{}.{}", random_hex(16), to_hex(user_key.as_bytes()));
    signed_cookie(DEVICE_COOKIE, value, key, secure, Duration::days(365))
}

/// The (device id, account name key) of a validly signed device cookie.
pub fn device(req: &HttpRequest, key: &Key) -> Option<(String, String)> {
    let value = signed_value(req, key, DEVICE_COOKIE)?;
    let (id, user) = value.split_once('.')?;
    Some((id.to_string(), from_hex(user)?))
}

fn signed_value(req: &HttpRequest, key: &Key, name: &str) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(req.cookie(name)?);
    Some(jar.signed(key).get(name)?.value().to_string())
}

/// HttpOnly, sent on top-level navigation from other sites (so links into a
/// room keep the visitor's name), signed so it cannot be forged.
fn signed_cookie(name: &'static str, value: String, key: &Key, secure: bool, max_age: Duration) -> Cookie<'static> {
    let cookie =
        Cookie::build(name, value).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).max_age(max_age);
    let mut jar = CookieJar::new();
    jar.signed_mut(key).add(cookie.finish());
    jar.delta().next().expect("the cookie just added").clone()
}

/// Who is logged in on this request, if anyone: a live, unrevoked session
/// of a user who is not banned. One database query, off the worker thread.
pub async fn current_user(req: &HttpRequest, state: &AppState) -> Option<User> {
    let token = auth_token(req, &state.key)?;
    accounts::user_of(&state.pool, &token).await.unwrap_or_else(|e| {
        log::warn!("checking a login: {e}");
        None
    })
}

pub const CSRF_COOKIE: &str = "parlor_csrf";
pub const CSRF_FIELD: &str = "csrf";

/// The visitor's CSRF token, and the cookie to set when it is new. Forms carry
/// it in a hidden field; a POST from another site cannot read the cookie, so
/// it cannot put the matching value in its form (double-submit). `secure`:
/// the page was served over HTTPS, so the cookie never travels without it.
pub fn csrf_token(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    if let Some(cookie) = req.cookie(CSRF_COOKIE).filter(|c| c.value().len() == 64) {
        return (cookie.value().to_string(), None);
    }
    let token = random_hex(32);
    let cookie =
        Cookie::build(CSRF_COOKIE, token.clone()).path("/").http_only(true).secure(secure).same_site(SameSite::Strict);
    let cookie = cookie.finish();
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
