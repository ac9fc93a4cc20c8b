//! One client against everyone else: caps that keep a single address from
//! taking every connection, with fast refusals and the rest still served.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::helpers::{spawn_app_with, TestApp};

/// A WebSocket handshake from `source`: the open socket, or the status of
/// the refusal.
async fn connect_from(app: &TestApp, source: &str) -> Result<impl Sized, u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0)).unwrap();
    let stream = socket.connect(app.socket_addr()).await.unwrap();
    let request = app.ws_url.as_str().into_client_request().unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[actix_web::test]
async fn one_address_cannot_take_every_connection() {
    let app = spawn_app_with(|s| {
        s.max_connections = Some(5);
        s.max_connections_per_address = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(&app, "127.0.0.1").await.expect("within the address's share"));
    }
    // The fourth from that address is refused at once, with a hint to retry.
    let asked = Instant::now();
    assert_eq!(connect_from(&app, "127.0.0.1").await.err(), Some(503));
    assert!(asked.elapsed() < Duration::from_secs(2), "refused at once, not left hanging");
    // Other addresses still get in, up to the cap in all.
    held.push(connect_from(&app, "127.0.0.2").await.expect("another address"));
    held.push(connect_from(&app, "127.0.0.3").await.expect("another address"));
    assert_eq!(connect_from(&app, "127.0.0.4").await.err(), Some(503), "the cap in all");
    // Pages and the health check are served at the cap.
    assert_eq!(app.get_json("/healthz").await.0, 200);
    assert_eq!(app.get_html("/", None).await.0, 200);
    // A closed connection gives its place back.
    drop(held.remove(0));
    let mut retries = 0;
    while connect_from(&app, "127.0.0.1").await.is_err() {
        retries += 1;
        assert!(retries < 50, "the place never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A burst of joins sends every member a burst of presence notices: no
/// member who keeps reading may be dropped for it, and every joiner gets in.
#[actix_web::test]
async fn a_join_storm_evicts_no_one_who_reads() {
    use parlor_bench::attacks::{join_storm, JoinStormConfig};
    let app = spawn_app_with(|_| {}).await;
    let config = JoinStormConfig { server: app.socket_addr(), server_pid: None, members: 20, joiners: 600, sources: 4 };
    let report = tokio::task::LocalSet::new().run_until(join_storm(config)).await.unwrap();
    assert_eq!(report.members_kept, 20, "{report:?}");
    assert_eq!(report.joined, 600, "{report:?}");
}
