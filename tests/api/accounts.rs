//! Accounts and logins, on every backend: each rule has a test that fails
//! without it.

use std::time::Duration;

use parlor::db::Backend;
use serde_json::json;

use crate::databases::on_every_backend;
use crate::helpers::{account_form, form_token, logged_in_as, set_cookie, sign_up, spawn_app_on, WsClient};

on_every_backend!(
    a_logged_in_socket_speaks_only_for_its_account,
    a_wrong_password_and_an_unknown_name_get_the_same_answer,
    logging_out_revokes_the_login_on_the_server,
    guests_cannot_take_a_registered_name,
    no_one_can_pose_as_a_registered_user_or_a_member,
    names_are_unique_in_a_room_but_one_account_may_have_several_tabs,
    guest_access_can_be_turned_off,
    login_attempts_are_rate_limited,
    login_limits_count_a_name_however_it_is_spelled,
    guessing_does_not_lock_the_owner_out,
    account_forms_need_the_pages_csrf_token,
    a_name_can_be_registered_once,
);

async fn a_logged_in_socket_speaks_only_for_its_account(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let cookie = sign_up(&app, "Alice", "correct horse battery").await;
    assert_eq!(logged_in_as(&app, &cookie).await.as_deref(), Some("Alice"));

    let mut alice = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    // The frame claims another name; the server knows better.
    alice.send(json!({"type": "join_room", "room": "lobby", "name": "mallory"})).await;
    assert_eq!(alice.recv_type("joined").await["members"], json!(["Alice"]));
    assert_eq!(alice.say("lobby", "it's me").await["user"], "Alice");
}

async fn a_wrong_password_and_an_unknown_name_get_the_same_answer(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "bob", "correct horse battery").await;
    let (wrong_status, wrong_cookie, wrong_page) = account_form(&app, "/login", "bob", "wrong password!").await;
    let (unknown_status, unknown_cookie, unknown_page) =
        account_form(&app, "/login", "nobody", "wrong password!").await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert!(wrong_cookie.is_none() && unknown_cookie.is_none());
    let error = |page: &str| {
        page.split(r#"id="account-error" role="alert">"#).nth(1).unwrap().split('<').next().unwrap().to_string()
    };
    assert_eq!(error(&wrong_page), "wrong name or password");
    assert_eq!(error(&wrong_page), error(&unknown_page));

    let (status, cookie, _) = account_form(&app, "/login", "BOB", "correct horse battery").await;
    assert_eq!(status, 303, "names are matched regardless of case");
    assert_eq!(logged_in_as(&app, &cookie.unwrap()).await.as_deref(), Some("bob"));
}

async fn logging_out_revokes_the_login_on_the_server(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let cookie = sign_up(&app, "carol", "correct horse battery").await;
    let mut open_socket = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    open_socket.send(json!({"type": "join_room", "room": "lobby"})).await;
    open_socket.recv_type("joined").await;
    let (csrf_cookie, token) = form_token(&app, "/").await;
    let resp = app
        .http()
        .post(app.url("/logout"))
        .insert_header(("Cookie", format!("{cookie}; {csrf_cookie}")))
        .send_form(&[("csrf", token.as_str())])
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    // The browser's guest id goes with the login: the next guest on this
    // browser is someone new.
    let removed = resp.headers().get_all("set-cookie").map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    assert!(removed.iter().any(|c| c.starts_with("parlor_guest=;") && c.contains("Max-Age=0")), "{removed:?}");
    // A socket opened with that login ends with it.
    let (close, _) = open_socket.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").reason, "logged out");
    // Someone who kept a copy of the cookie gets nothing from it.
    assert_eq!(logged_in_as(&app, &cookie).await, None);
    let mut ws = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    ws.send(json!({"type": "join_room", "room": "lobby"})).await;
    assert_eq!(ws.recv_type("error").await["code"], "invalid_name", "a guest without a name, not carol");
}

async fn guests_cannot_take_a_registered_name(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "Erin", "correct horse battery").await;
    let mut guest = app.ws().await;
    for name in ["Erin", "erin", "ERIN"] {
        guest.send(json!({"type": "join_room", "room": "lobby", "name": name})).await;
        let err = guest.recv_type("error").await;
        assert_eq!(err["code"], "invalid_name", "{name}");
        assert!(err["message"].as_str().unwrap().contains("registered"));
    }
    // The registry survives a restart.
    let app = app.restart().await;
    let mut guest = app.ws().await;
    guest.send(json!({"type": "join_room", "room": "lobby", "name": "erin"})).await;
    assert_eq!(guest.recv_type("error").await["code"], "invalid_name");
}

async fn no_one_can_pose_as_a_registered_user_or_a_member(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "boss", "correct horse battery").await;
    let mut guest = app.ws().await;
    let look_alikes = [
        "b0ss",
        "BOSS",
        "\u{FF42}\u{FF4F}\u{FF53}\u{FF53}",     // fullwidth
        "\u{1D41B}\u{1D428}\u{1D42C}\u{1D42C}", // mathematical bold
        "boss\u{061C}",                         // Arabic letter mark
        "boss\u{206A}",
        "boss\u{180B}",
        "b\u{043E}ss",              // Cyrillic o
        "\u{2800}\u{2800}\u{2800}", // braille blanks
    ];
    for name in look_alikes {
        guest.send(json!({"type": "join_room", "room": "lobby", "name": name})).await;
        let err = guest.recv_type("error").await;
        assert_eq!(err["code"], "invalid_name", "{name:?}");
    }
    // Nor can anyone register a name that looks like it.
    let (status, cookie, page) = account_form(&app, "/signup", "B0SS", "another password").await;
    assert_eq!((status, cookie), (409, None), "{page}");

    // In a room, a name that looks like a member's is taken too.
    let mut modern = app.ws().await;
    modern.join("lobby", "modern").await;
    guest.send(json!({"type": "join_room", "room": "lobby", "name": "rnodern"})).await;
    let err = guest.recv_type("error").await;
    assert_eq!(err["code"], "invalid_name");
    assert!(err["message"].as_str().unwrap().contains("looks like"), "{err}");
}

async fn names_are_unique_in_a_room_but_one_account_may_have_several_tabs(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let mut zed = app.ws().await;
    zed.join("lobby", "zed").await;
    let mut other = app.ws().await;
    other.send(json!({"type": "join_room", "room": "lobby", "name": "Zed"})).await;
    let err = other.recv_type("error").await;
    assert_eq!(err["code"], "invalid_name");
    assert!(err["message"].as_str().unwrap().contains("already in this room"));
    // The same name elsewhere is fine.
    other.join("elsewhere", "zed").await;

    let cookie = sign_up(&app, "frank", "correct horse battery").await;
    let mut tab1 = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    let mut tab2 = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    tab1.send(json!({"type": "join_room", "room": "lobby"})).await;
    tab1.recv_type("joined").await;
    tab2.send(json!({"type": "join_room", "room": "lobby"})).await;
    assert_eq!(tab2.recv_type("joined").await["members"], json!(["frank", "frank", "zed"]));
}

async fn guest_access_can_be_turned_off(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |s| s.guests = false).await else { return };
    let mut guest = app.ws().await;
    guest.send(json!({"type": "join_room", "room": "lobby", "name": "gus"})).await;
    assert_eq!(guest.recv_type("error").await["code"], "unauthorized");
    let cookie = sign_up(&app, "gina", "correct horse battery").await;
    let mut gina = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    gina.send(json!({"type": "join_room", "room": "lobby"})).await;
    assert_eq!(gina.recv_type("joined").await["members"], json!(["gina"]));
}

async fn login_attempts_are_rate_limited(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "hal", "correct horse battery").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(account_form(&app, "/login", "hal", "guess guess").await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    // Even the right password waits now: guessing cannot race ahead.
    let (status, cookie, page) = account_form(&app, "/login", "hal", "correct horse battery").await;
    assert_eq!((status, cookie), (429, None));
    assert!(page.contains("too many attempts"));

    // Other accounts are not locked by hal's limit, but one address trying
    // many names is stopped too.
    let mut statuses = Vec::new();
    for i in 0..25 {
        statuses.push(account_form(&app, "/login", &format!("user{i}"), "guess guess").await.0);
    }
    assert_eq!(statuses[0], 401);
    assert!(statuses.contains(&429), "{statuses:?}");
}

async fn login_limits_count_a_name_however_it_is_spelled(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "Ann Lee", "correct horse battery").await;
    let mut statuses = Vec::new();
    // All the same account: spaces collapse and case does not count.
    for name in ["Ann Lee", "Ann  Lee", " ann lee", "ANN LEE", "Ann \t Lee", "ann   lee"] {
        statuses.push(account_form(&app, "/login", name, "guess guess").await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

async fn guessing_does_not_lock_the_owner_out(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    // The owner signs up; their browser keeps the device cookie it gets.
    let (csrf_cookie, token) = form_token(&app, "/signup").await;
    let resp = app
        .http()
        .post(app.url("/signup"))
        .insert_header(("Cookie", csrf_cookie))
        .send_form(&[("name", "owner"), ("password", "correct horse battery"), ("csrf", &token)])
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let device = set_cookie(&resp, "parlor_device").expect("a device cookie");

    // Someone else guesses until the account is closed to them.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(account_form(&app, "/login", "owner", "guess guess").await.0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    // The owner's browser still gets in, and its own guesses are limited apart.
    let log_in = |password: &'static str| {
        let (app, device) = (&app, device.clone());
        async move {
            let (csrf_cookie, token) = form_token(app, "/login").await;
            let resp = app
                .http()
                .post(app.url("/login"))
                .insert_header(("Cookie", format!("{csrf_cookie}; {device}")))
                .send_form(&[("name", "owner"), ("password", password), ("csrf", &token)])
                .await
                .unwrap();
            (resp.status().as_u16(), set_cookie(&resp, "parlor_auth"))
        }
    };
    let (status, cookie) = log_in("correct horse battery").await;
    assert_eq!(status, 303);
    assert_eq!(logged_in_as(&app, &cookie.expect("a login cookie")).await.as_deref(), Some("owner"), "logged in");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(log_in("wrong wrong").await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429], "one attempt of the device's five was the login");
}

async fn account_forms_need_the_pages_csrf_token(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    for path in ["/signup", "/login"] {
        let mut resp = app
            .http()
            .post(app.url(path))
            .send_form(&[("name", "ivy"), ("password", "correct horse battery")])
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        assert!(set_cookie(&resp, "parlor_auth").is_none());
        let _ = resp.body().await;
    }
    let (status, _, _) = account_form(&app, "/login", "ivy", "correct horse battery").await;
    assert_eq!(status, 401, "the forged sign-up created nobody");
}

async fn a_name_can_be_registered_once(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    sign_up(&app, "Jo", "correct horse battery").await;
    let (status, cookie, page) = account_form(&app, "/signup", "jo", "another password").await;
    assert_eq!((status, cookie), (409, None));
    assert!(page.contains("is taken"));
    let (status, _, page) = account_form(&app, "/signup", "kim", "short").await;
    assert_eq!(status, 400);
    assert!(page.contains("at least 8 characters"));
}

/// Password hashing takes memory and a core: a flood of logins is refused
/// at once with 503 and `Retry-After` beyond what the hashing threads and
/// their short queue hold, and the server stays responsive.
#[actix_web::test]
async fn a_login_flood_is_refused_at_once_not_queued() {
    let app = crate::helpers::spawn_app().await;
    let (csrf_cookie, token) = form_token(&app, "/login").await;
    let attempts = (0..16).map(|i| {
        let (app, cookie, token) = (&app, csrf_cookie.clone(), token.clone());
        async move {
            let name = format!("flood{i}");
            let resp = app
                .http()
                .post(app.url("/login"))
                .insert_header(("Cookie", cookie))
                .send_form(&[("name", name.as_str()), ("password", "guess guess"), ("csrf", token.as_str())])
                .await
                .unwrap();
            let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (resp.status().as_u16(), retry)
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let busy = answers.iter().filter(|(status, retry)| *status == 503 && retry.as_deref() == Some("1")).count();
    let refused = answers.iter().filter(|(status, _)| *status == 401).count();
    assert!(busy >= 1, "{answers:?}");
    assert_eq!(busy + refused, 16, "{answers:?}");
    let started = std::time::Instant::now();
    assert_eq!(app.get_json("/healthz").await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "health answers at once");
}
