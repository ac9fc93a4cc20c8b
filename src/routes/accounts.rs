//! Sign up, log in, log out: HTML forms, each carrying the CSRF token.

use std::time::Instant;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;

use super::pages::render_form;
use super::{identity, AppState};
use crate::accounts::{self, Password};
use crate::chat::server::EndLogin;
use crate::domain::DisplayName;
use crate::error::ChatError;
use crate::metrics::Reason;
use crate::tokens::token_hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SignUp,
    LogIn,
}

impl Mode {
    fn path(self) -> &'static str {
        match self {
            Self::SignUp => "/signup",
            Self::LogIn => "/login",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AccountForm {
    name: String,
    password: String,
    csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

/// The sign-up or log-in page, with `error` when the last attempt failed.
fn page(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    status: StatusCode,
    name: &str,
    error: Option<&str>,
) -> HttpResponse {
    let mut context = Context::new();
    context.insert("signup", &(mode == Mode::SignUp));
    context.insert("action", mode.path());
    context.insert("name", name);
    context.insert("error", &error);
    render_form(req, state, status, "account.html", context)
}

pub async fn signup_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    page(&req, &state, Mode::SignUp, StatusCode::OK, "", None)
}

pub async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    page(&req, &state, Mode::LogIn, StatusCode::OK, "", None)
}

pub async fn sign_up(req: HttpRequest, form: web::Form<AccountForm>, state: web::Data<AppState>) -> HttpResponse {
    submit(req, form.into_inner(), state, Mode::SignUp).await
}

pub async fn log_in(req: HttpRequest, form: web::Form<AccountForm>, state: web::Data<AppState>) -> HttpResponse {
    submit(req, form.into_inner(), state, Mode::LogIn).await
}

async fn submit(req: HttpRequest, form: AccountForm, state: web::Data<AppState>, mode: Mode) -> HttpResponse {
    let AccountForm { name, password, csrf } = form;
    let again = |status, error: &str| page(&req, &state, mode, status, &name, Some(error));
    if !identity::csrf_valid(&req, csrf.as_deref()) {
        return again(StatusCode::FORBIDDEN, "the form had expired; please send it again");
    }
    // Guessing passwords is slowed per address and, for logins, per account,
    // keyed on the account's own canonical name. A browser that logged in to
    // the account before has an allowance of its own, so guessing from
    // elsewhere cannot lock the owner out.
    let now = Instant::now();
    let refused = |reason| {
        if mode == Mode::LogIn {
            state.metrics.login_refusals.get_or_create(&Reason { reason }).inc();
        }
    };
    if mode == Mode::LogIn {
        state.metrics.login_attempts.inc();
    }
    let too_many = || {
        refused("rate_limited");
        again(StatusCode::TOO_MANY_REQUESTS, "too many attempts; wait a minute and try again")
    };
    let ip = state.proxies.client_ip(&req);
    let accounts = &state.accounts;
    if let Some(ip) = ip {
        if !accounts.attempt(&accounts.attempts_per_ip, "ip", &ip, now).await {
            return too_many();
        }
    }
    // Only a valid name can be an account: other names get the same answer
    // as a wrong password and never grow the per-account limiter.
    let parsed_name = DisplayName::parse(&name);
    let account = parsed_name.as_ref().ok().map(DisplayName::key);
    let device = identity::device(&req, &state.key).filter(|(_, user)| Some(user) == account.as_ref());
    let name_ok = match (mode, &device, &account) {
        (Mode::SignUp, _, _) | (Mode::LogIn, None, None) => true,
        (Mode::LogIn, Some((id, _)), _) => accounts.attempt(&accounts.attempts_per_device, "device", id, now).await,
        (Mode::LogIn, None, Some(account)) => accounts.attempt(&accounts.attempts_per_name, "name", account, now).await,
    };
    if !name_ok {
        return too_many();
    }
    let parsed = parsed_name.and_then(|n| Ok((n, Password::parse(password)?)));
    let (name_value, password) = match parsed {
        Ok(ok) => ok,
        // Say no more about a login than "wrong": an invalid name is no user.
        Err(_) if mode == Mode::LogIn => {
            refused("wrong_name_or_password");
            return again(StatusCode::UNAUTHORIZED, "wrong name or password");
        }
        Err(e) => return again(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let ttl = state.accounts.session_ttl;
    let result = match mode {
        Mode::SignUp => {
            let registry = &state.accounts.registry;
            accounts::sign_up(&state.pool, &state.accounts.hasher, registry, &name_value, password, ttl).await
        }
        Mode::LogIn => accounts::log_in(&state.pool, &state.accounts.hasher, &name_value, password, ttl).await,
    };
    match result {
        Ok(token) => {
            let secure = state.proxies.https(&req);
            let mut response = HttpResponse::SeeOther().insert_header((header::LOCATION, "/")).finish();
            let _ = response.add_cookie(&identity::auth_cookie(&token, &state.key, secure, ttl));
            if device.is_none() {
                let _ = response.add_cookie(&identity::device_cookie(&name_value.key(), &state.key, secure));
            }
            response
        }
        Err(e @ ChatError::Busy(_)) => {
            refused("busy");
            let mut page = again(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
            let wait = header::HeaderValue::from(crate::error::RETRY_BUSY_AFTER_SECS);
            page.headers_mut().insert(header::RETRY_AFTER, wait);
            page
        }
        Err(e @ ChatError::Unauthorized(_)) => {
            refused("wrong_name_or_password");
            again(StatusCode::UNAUTHORIZED, &e.to_string())
        }
        Err(e @ ChatError::InvalidName(_)) => again(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => again(actix_web::ResponseError::status_code(&e), &e.client_message()),
    }
}

/// `POST /logout`: revokes the login on the server, then drops the cookie.
pub async fn log_out(req: HttpRequest, form: web::Form<CsrfOnly>, state: web::Data<AppState>) -> HttpResponse {
    if !identity::csrf_valid(&req, form.csrf.as_deref()) {
        return HttpResponse::Forbidden().body("the form had expired; please go back and log out again");
    }
    if let Some(token) = identity::auth_token(&req, &state.key) {
        if let Err(e) = accounts::log_out(&state.pool, &token).await {
            log::error!("logging out: {e}");
            return HttpResponse::ServiceUnavailable().body("could not log out; try again");
        }
        // Sockets opened with this login end with it.
        state.chat.do_send(EndLogin { login: token_hash(&token) });
    }
    let mut response = HttpResponse::SeeOther().insert_header((header::LOCATION, "/")).finish();
    let secure = state.proxies.https(&req);
    // The browser's guest id goes too: whoever uses it next as a guest is
    // someone else, who must not own what was sent before.
    for name in [identity::AUTH_COOKIE, identity::GUEST_COOKIE] {
        let mut gone = actix_web::cookie::Cookie::build(name, "").path("/").secure(secure).finish();
        gone.make_removal();
        let _ = response.add_cookie(&gone);
    }
    response
}
