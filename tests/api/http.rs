//! The HTTP side: pages, room creation, the bot API, history, admin, health.

use serde_json::json;

use crate::helpers::{home_form_token, ids, set_cookie, spawn_app, spawn_app_with, WsClient, ADMIN_TOKEN};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// Posts the home form as a browser does (with the page's CSRF token) and
/// returns the status, the session cookie set, the redirect and the body.
async fn form_post(
    app: &crate::helpers::TestApp,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, String) {
    let (csrf_cookie, token) = home_form_token(app).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &token));
    let mut resp = app
        .http()
        .post(app.url("/create_room"))
        .insert_header(("Cookie", csrf_cookie))
        .send_form(&form)
        .await
        .expect("POST form");
    let cookie = set_cookie(&resp, "parlor_session");
    let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
    let body = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    (resp.status().as_u16(), cookie, location, body)
}

#[actix_web::test]
async fn home_and_room_pages_render() {
    let app = spawn_app().await;
    let (status, html) = app.get_html("/", None).await;
    assert_eq!(status, 200);
    for needle in [
        r#"<form id="room-form" method="post" action="/create_room""#,
        r#"id="name""#,
        r#"id="room""#,
        r#"id="active-rooms""#,
    ] {
        assert!(html.contains(needle), "home page lacks {needle}");
    }
    let (status, html) = app.get_html("/chat/lobby", None).await;
    assert_eq!(status, 200);
    assert!(html.contains("<title>#lobby · Parlor</title>"));
    for needle in
        [r#"data-room="lobby""#, r#"id="messages""#, r#"id="composer""#, r#"id="member-list""#, "/static/room.js"]
    {
        assert!(html.contains(needle), "room page lacks {needle}");
    }
    let (status, html) = app.get_html("/chat/Not%20Valid", None).await;
    assert_eq!(status, 400);
    assert!(html.contains("room names use lowercase letters"), "the error is shown next to the room field");

    let (status, _) = app.get_html("/static/room.js", None).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn create_room_by_form_sets_the_name_and_lands_in_the_room() {
    let app = spawn_app().await;
    let (status, cookie, location, _) = form_post(&app, &[("name", "Zoë"), ("room", "book-club")]).await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/chat/book-club"));
    let cookie = cookie.expect("the name is remembered in a cookie");

    // The cookie's name is used when join_room carries none.
    let mut ws = WsClient::connect(&app.ws_url, Some(&cookie)).await;
    ws.send(json!({"type": "join_room", "room": "book-club"})).await;
    assert_eq!(ws.recv_type("joined").await["members"], json!(["Zoë"]));
    assert_eq!(ws.say("book-club", "hello").await["user"], "Zoë");

    // The room page knows the name too.
    let (_, html) = app.get_html("/chat/book-club", Some(&cookie)).await;
    assert!(html.contains(r#"data-name="Zoë""#));

    // A forged cookie is ignored.
    let forged = format!("parlor_session={}", "x".repeat(44) + "mallory");
    let mut ws = WsClient::connect(&app.ws_url, Some(&forged)).await;
    ws.send(json!({"type": "join_room", "room": "book-club"})).await;
    assert_eq!(ws.recv_type("error").await["code"], "invalid_name");
}

#[actix_web::test]
async fn create_room_form_errors_show_next_to_the_field() {
    let app = spawn_app().await;
    let (status, cookie, _, html) = form_post(&app, &[("name", "ann"), ("room", "Bad Room")]).await;
    assert_eq!(status, 400);
    assert!(cookie.is_none());
    assert!(html.contains(r#"<p class="field-error" id="room-error" role="alert">room names use lowercase"#), "{html}");
    let (status, _, _, html) = form_post(&app, &[("name", "\u{7}"), ("room", "fine")]).await;
    assert_eq!(status, 400);
    assert!(html.contains(r#"id="name-error" role="alert">display name must not contain"#));
}

#[actix_web::test]
async fn create_room_by_json() {
    let app = spawn_app().await;
    let (status, body) = app.post_json("/create_room", &json!({"room": "design"})).await;
    assert_eq!(status, 201);
    assert_eq!(body, json!({"room": "design", "url": "/chat/design", "created": true}));
    let (status, body) = app.post_json("/create_room", &json!({"room": "design"})).await;
    assert_eq!((status, body["created"].clone()), (200, json!(false)), "an existing room is joined, not recreated");

    let (status, body) = app.post_json("/create_room", &json!({})).await;
    assert_eq!(status, 201);
    let code = body["room"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert_eq!(body["url"], format!("/chat/{code}"));

    let (status, body) = app.post_json("/create_room", &json!({"room": "UPPER"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_room")));
    let mut resp =
        app.http().post(app.url("/create_room")).content_type("application/json").send_body("{oops").await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"], "bad_request");
}

#[actix_web::test]
async fn store_message_reaches_live_members() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("ops", "alice").await;

    let (status, stored) = app.post_as("deploy-bot", "ops", "v2 is live").await;
    assert_eq!(status, 201);
    assert_eq!((stored["id"].as_i64(), stored["user"].as_str()), (Some(1), Some("deploy-bot")));
    let live = alice.recv_type("message").await;
    assert_eq!(live["text"], "v2 is live");
    assert_eq!(live["id"], stored["id"]);

    let (status, body) = app.post_as("bot", "nowhere", "hi").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_room")));
    let (status, body) = app.post_as("bot", "ops", &"x".repeat(5000)).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_large")));
    let (status, body) = app.post_as("bot", "ops", "  ").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}

#[actix_web::test]
async fn store_message_needs_a_bot_token_and_posts_as_the_bot() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("ops", "alice").await;
    let body = json!({"room": "ops", "user": "alice", "text": "spoofed"});
    let (status, err) = app.post_json("/store_message", &body).await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    let mut resp = app.http().post(app.url("/store_message")).bearer_auth("made-up").send_json(&body).await.unwrap();
    assert_eq!(resp.status(), 401);
    let _ = resp.body().await;

    let token = app.bot_token("ci-bot").await;
    let mut resp = app.http().post(app.url("/store_message")).bearer_auth(&token).send_json(&body).await.unwrap();
    assert_eq!(resp.status(), 201);
    let stored: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(stored["user"], "ci-bot", "the claimed user is ignored");
    assert_eq!(alice.recv_type("message").await["user"], "ci-bot");
}

#[actix_web::test]
async fn history_api_pages_newest_first() {
    let app = spawn_app().await;
    app.post_json("/create_room", &json!({"room": "log"})).await;
    for i in 1..=7 {
        app.post_as("bot", "log", &format!("m{i}")).await;
    }
    let (status, page) = app.get_json("/api/rooms/log/messages?limit=3").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page["messages"]), [7, 6, 5]);
    assert_eq!(page["next_before"], 5);
    let (_, page) = app.get_json("/api/rooms/log/messages?limit=3&before=5").await;
    assert_eq!(ids(&page["messages"]), [4, 3, 2]);
    let (_, page) = app.get_json("/api/rooms/log/messages?limit=3&before=2").await;
    assert_eq!(ids(&page["messages"]), [1]);
    assert_eq!(page["next_before"], json!(null));

    assert_eq!(app.get_json("/api/rooms/log/messages?limit=500").await.0, 400);
    assert_eq!(app.get_json("/api/rooms/log/messages?before=abc").await.1["error"], "bad_request");
    assert_eq!(app.get_json("/api/rooms/missing/messages").await.1["error"], "unknown_room");
}

#[actix_web::test]
async fn admin_rooms_needs_the_token() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut eve = app.ws().await;
    eve.join("lobby", HOSTILE).await;

    let http = app.http();
    let resp = http.get(app.url("/admin/rooms")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer realm=\"parlor\"");
    let resp = http.get(app.url("/admin/rooms")).bearer_auth("wrong-token").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let mut resp = http
        .get(app.url("/admin/rooms"))
        .bearer_auth(ADMIN_TOKEN)
        .insert_header(("Accept", "application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let rooms = body["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(
        (&rooms[0]["name"], &rooms[0]["members"], &rooms[0]["private"]),
        (&json!("lobby"), &json!([HOSTILE, "alice"]), &json!(false))
    );
    // Each connection with the time it joined, oldest first.
    let connections = rooms[0]["connections"].as_array().unwrap();
    assert_eq!(connections.iter().map(|c| c["name"].clone()).collect::<Vec<_>>(), [json!("alice"), json!(HOSTILE)]);
    assert!(connections.iter().all(|c| c["since"].as_str().unwrap().ends_with('Z')));

    let mut resp = http.get(app.url("/admin/rooms")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let html = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "names are escaped");
    assert!(!html.contains(HOSTILE));
}

#[actix_web::test]
async fn admin_routes_are_off_without_a_token() {
    let app = spawn_app_with(|s| s.admin_token = None).await;
    let resp = app.http().get(app.url("/admin/rooms")).bearer_auth("anything").send().await.unwrap();
    assert_eq!(resp.status(), 404);
}

/// Without a token the admin routes answer like a path that does not exist,
/// so a visitor cannot tell that a console is there.
#[actix_web::test]
async fn hidden_admin_routes_look_like_missing_ones() {
    let app = spawn_app_with(|s| s.admin_token = None).await;
    let (status, missing) = app.get_json("/no/such/page").await;
    assert_eq!(status, 404);
    let (status, admin) = app.get_json("/admin/rooms").await;
    assert_eq!(status, 404);
    assert_eq!(admin["error"], missing["error"]);
    assert_eq!(admin["message"], "no route for GET /admin/rooms");
}

/// Every 401 says which scheme would have worked (RFC 9110), bots included.
#[actix_web::test]
async fn unauthorized_answers_name_the_bearer_scheme() {
    let app = spawn_app().await;
    let resp =
        app.http().post(app.url("/store_message")).send_json(&json!({"room": "lobby", "text": "hi"})).await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers().get("www-authenticate").expect("a challenge").to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
}

#[actix_web::test]
async fn hostile_names_are_escaped_on_every_page() {
    let app = spawn_app().await;
    let (status, cookie, _, _) = form_post(&app, &[("name", HOSTILE), ("room", "lobby")]).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    for path in ["/", "/chat/lobby"] {
        let (_, html) = app.get_html(path, Some(&cookie)).await;
        assert!(!html.contains(HOSTILE), "{path} renders the name as markup");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{path} shows the name as text");
    }
    let (status, html) = app.get_html("/chat/%3Cscript%3E", None).await;
    assert_eq!(status, 400);
    assert!(!html.contains("<script>"));
}

#[actix_web::test]
async fn active_rooms_are_listed() {
    let app = spawn_app().await;
    let mut a = app.ws().await;
    a.join("busy", "a").await;
    let mut b = app.ws().await;
    b.join("busy", "b").await;
    let mut c = app.ws().await;
    c.join("quiet", "c").await;
    app.post_json("/create_room", &json!({"room": "empty"})).await;

    let (_, body) = app.get_json("/api/rooms").await;
    assert_eq!(
        body["rooms"],
        json!([{"name": "busy", "members": 2, "url": "/chat/busy"}, {"name": "quiet", "members": 1, "url": "/chat/quiet"}])
    );
    let (_, html) = app.get_html("/", None).await;
    assert!(html.contains(r#"<a href="/chat/busy">busy</a> <span class="count">2 online</span>"#));
}

#[actix_web::test]
async fn health_check() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["database"], "ok");
}

#[actix_web::test]
async fn create_room_edge_cases() {
    let app = spawn_app().await;
    // Media types are case-insensitive; a JSON body without one is JSON too.
    let mut resp = app
        .http()
        .post(app.url("/create_room"))
        .insert_header(("Content-Type", "Application/JSON; charset=utf-8"))
        .send_body(r#"{"room":"mixed-case"}"#)
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["room"], "mixed-case");
    // Without a content type it is a form (another site could send it), and
    // forms need the page's CSRF token.
    let mut resp = app.http().post(app.url("/create_room")).send_body(r#"{"room":"no-type"}"#).await.unwrap();
    assert_eq!(resp.status(), 403);
    let _ = resp.body().await;

    // Too large: a JSON error, not the framework's text.
    let big = json!({"room": "x".repeat(300 * 1024)});
    let (status, body) = app.post_json("/create_room", &big).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("too_large")));

    // A form with both fields wrong shows both errors.
    let (status, _, _, html) = form_post(&app, &[("name", "\u{7}bell"), ("room", "Bad Room")]).await;
    assert_eq!(status, 400);
    assert!(html.contains(r#"id="name-error" role="alert">display name must not contain"#), "{html}");
    assert!(html.contains(r#"id="room-error" role="alert">room names use lowercase"#), "{html}");
    // A malformed form is answered with the page, not JSON.
    let resp = app
        .http()
        .post(app.url("/create_room"))
        .content_type("application/x-www-form-urlencoded")
        .send_body("room=a1&room=a2")
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
}

#[actix_web::test]
async fn unknown_routes_answer_json_404() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/no/such/page").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[actix_web::test]
async fn forms_without_the_pages_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (csrf_cookie, token) = home_form_token(&app).await;
    let attempts: [(Option<&str>, Option<&str>); 3] = [
        // Another site's form: no cookie (SameSite=Strict), no token.
        (None, None),
        // A guessed token.
        (Some(&csrf_cookie), Some("forged")),
        // A token without the cookie it belongs to.
        (None, Some(token.as_str())),
    ];
    for (cookie, given) in attempts {
        let mut req = app.http().post(app.url("/create_room"));
        if let Some(cookie) = cookie {
            req = req.insert_header(("Cookie", cookie.to_string()));
        }
        let mut form = vec![("name", "mallory"), ("room", "csrf-target")];
        if let Some(given) = given {
            form.push(("csrf", given));
        }
        let mut resp = req.send_form(&form).await.unwrap();
        assert_eq!(resp.status(), 403, "{cookie:?} {given:?}");
        assert!(set_cookie(&resp, "parlor_session").is_none(), "no name was set");
        let html = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
        assert!(html.contains("the form had expired"), "the page says why");
    }
    let (_, body) = app.get_json("/api/rooms/csrf-target/messages").await;
    assert_eq!(body["error"], "unknown_room", "no room was created");
}

#[actix_web::test]
async fn websockets_from_other_sites_are_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let handshake = |origin: Option<String>| {
        let mut request = app.ws_url.as_str().into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let foreign = handshake(Some("http://evil.example".into())).await;
    match foreign {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("a foreign origin was let in: {other:?}"),
    }
    let own = app.address.clone();
    assert!(handshake(Some(own)).await.is_ok(), "our own pages may connect");
    assert!(handshake(None).await.is_ok(), "non-browser clients send no Origin");

    // A configured list adds to Parlor's own pages.
    let app = spawn_app_with(|s| s.allowed_origins = vec!["https://chat.example.com".into()]).await;
    let allowed = |origin: &str| {
        let mut request = app.ws_url.as_str().into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    assert!(allowed("https://chat.example.com").await.is_ok());
    assert!(allowed("https://chat.example.com.evil.example").await.is_err());
    assert!(allowed(&app.address).await.is_ok(), "the list adds to Parlor's own pages");
}

/// Forwarding headers count only from a trusted proxy: from anyone else
/// they cannot pass the Origin check or dodge the per-address limits.
#[actix_web::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let handshake = |url: String, header: (&'static str, &'static str)| async move {
        let mut request = url.as_str().into_client_request().unwrap();
        request.headers_mut().insert("Origin", "http://evil.example".parse().unwrap());
        request.headers_mut().insert(header.0, header.1.parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok((mut ws, resp)) => {
                let _ = ws.close(None).await;
                resp.status().as_u16()
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    let forged = [("X-Forwarded-Host", "evil.example"), ("Forwarded", "host=evil.example")];
    let app = spawn_app().await;
    for header in forged {
        assert_eq!(handshake(app.ws_url.clone(), header).await, 403, "{header:?} from a client");
    }
    // Behind a proxy on loopback, its word on the host is taken.
    let proxied = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    for header in forged {
        assert_eq!(handshake(proxied.ws_url.clone(), header).await, 101, "{header:?} from a trusted proxy");
    }

    // One address with a new X-Forwarded-For on every attempt is still one address.
    let statuses = wrong_logins(&app, |i| format!("198.51.100.{i}")).await;
    assert!(statuses.contains(&429), "{statuses:?}");

    // Behind a trusted proxy, what the client wrote into X-Forwarded-For
    // itself (left of what the proxy appended) does not make it someone else.
    let statuses = wrong_logins(&proxied, |i| format!("198.51.100.{i}, 203.0.113.9")).await;
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// 25 wrong logins, each with its own name and `X-Forwarded-For`; their statuses.
async fn wrong_logins(app: &crate::helpers::TestApp, forwarded_for: impl Fn(usize) -> String) -> Vec<u16> {
    let (csrf_cookie, token) = home_form_token(app).await;
    let mut statuses = Vec::new();
    for i in 0..25 {
        let mut resp = app
            .http()
            .post(app.url("/login"))
            .insert_header(("Cookie", csrf_cookie.clone()))
            .insert_header(("X-Forwarded-For", forwarded_for(i)))
            .send_form(&[
                ("name", format!("nobody{i}").as_str()),
                ("password", "guess guess"),
                ("csrf", token.as_str()),
            ])
            .await
            .unwrap();
        let _ = resp.body().await;
        statuses.push(resp.status().as_u16());
    }
    statuses
}

/// Every page tells the browser to run only Parlor's own scripts, never to
/// be framed, not to guess content types and not to leak its address; and
/// `HEAD` answers wherever `GET` does, without a body.
#[actix_web::test]
async fn pages_send_security_headers_and_answer_head() {
    let app = spawn_app().await;
    for path in ["/", "/chat/lobby", "/login", "/api/rooms", "/static/room.js"] {
        let mut resp = app.http().get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let csp = header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("same-origin"), "{path}");
        let full = resp.body().await.unwrap();
        assert!(!full.is_empty());

        let mut head = app.http().head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert!(head.body().await.unwrap().is_empty(), "HEAD {path} has no body");
    }
}
