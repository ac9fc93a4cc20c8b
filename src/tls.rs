//! HTTPS and WSS on Parlor's own port, with rustls.
//!
//! The certificate sits behind a resolver that new handshakes ask, so a
//! renewed certificate (certbot rewrites the files every couple of months)
//! is taken by swapping it there: connections already open keep the session
//! they negotiated, and nothing restarts. The files are looked at every
//! second, and at once on SIGHUP; a pair that does not load (a key written
//! a moment after its certificate, say) leaves the old one serving.
//!
//! A client that speaks plain HTTP to the TLS port gets a plain-HTTP 400
//! saying so, rather than a handshake failure it cannot explain.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How often the files are looked at for a renewal.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A client that has not finished its handshake by then is dropped, so a
/// connection that never says anything holds nothing for long.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// What marks a PEM key as under a password: PKCS#8's label, and the
/// header of OpenSSL's older PKCS#1 and SEC1 forms.
const ENCRYPTED_KEY_MARKS: [&[u8]; 2] = [b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED"];
/// Every TLS connection begins with a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} holds no PEM certificate chain (or a broken one)", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", .0.display())]
    NoKey(PathBuf),
    #[error(
        "{} holds a password-protected key, which a server cannot unlock by itself: \
         write it out without one (`openssl pkey -in <file> -out <new file>`)",
        .0.display()
    )]
    EncryptedKey(PathBuf),
    #[error("{} is not a private key rustls can use: {source}", path.display())]
    BadKey { path: PathBuf, source: rustls::Error },
    #[error("the key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Where the certificate chain and its key are, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The serving certificate, swapped in place on renewal.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

/// TLS for the listening port: what handshakes use, and the files it came
/// from.
pub struct Tls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
    /// The files as last looked at, to notice a change.
    seen: std::sync::Mutex<Stamp>,
}

/// When each file was last modified, and its size.
type Stamp = [Option<(SystemTime, u64)>; 2];

impl Tls {
    /// Loads and checks the pair: a missing file, one without PEM in it, or
    /// a key of another certificate is an error here, at start-up.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        // ring rather than rustls's default aws-lc-rs: a much lighter build,
        // at the price of the post-quantum hybrid key exchange, which
        // rustls offers only with aws-lc-rs (hence the deprecation).
        #[allow(deprecated)]
        let provider = Arc::new(ring::default_provider());
        let seen = stamp(&files);
        let current = Arc::new(Current(RwLock::new(Arc::new(certified_key(&files, &provider)?))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 only: WebSockets upgrade from it, and Parlor serves no
        // HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files,
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            seen: std::sync::Mutex::new(seen),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Loads the files again and serves the new pair from the next
    /// handshake on; on failure the old pair keeps serving.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(certified_key(&self.files, &self.provider)?);
        *self.current.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// Reloads whenever the files change, or on SIGHUP, until dropped. The
    /// files are read on a blocking thread: a slow disk (or a hung network
    /// mount) must not hold up the chat, which runs on this thread. SIGHUP
    /// is listened for from this call on, not from the first poll: one sent
    /// as soon as the server says it listens must not end the process.
    pub fn watch(self: Arc<Self>) -> impl std::future::Future<Output = ()> {
        #[cfg(unix)]
        let hangup = match actix_web::rt::signal::unix::signal(actix_web::rt::signal::unix::SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(e) => {
                log::warn!("TLS: cannot listen for SIGHUP ({e}): a SIGHUP would end the process; renewals are still seen within a second");
                None
            }
        };
        async move {
            #[cfg(unix)]
            let mut hangup = hangup;
            loop {
                #[cfg(unix)]
                let asked = match hangup.as_mut() {
                    Some(hangup) => {
                        let (signal, tick) =
                            (Box::pin(hangup.recv()), Box::pin(actix_web::rt::time::sleep(WATCH_EVERY)));
                        matches!(
                            futures_util::future::select(signal, tick).await,
                            futures_util::future::Either::Left(_)
                        )
                    }
                    None => {
                        actix_web::rt::time::sleep(WATCH_EVERY).await;
                        false
                    }
                };
                #[cfg(not(unix))]
                let asked = {
                    actix_web::rt::time::sleep(WATCH_EVERY).await;
                    false
                };
                let this = self.clone();
                let _ = actix_web::web::block(move || this.reload_if(asked)).await;
            }
        }
    }

    /// Reloads when `asked`, or when the files changed since last looked at.
    fn reload_if(&self, asked: bool) {
        let now = stamp(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !asked && *seen == now {
                return;
            }
            *seen = now;
        }
        match self.reload() {
            Ok(()) => log::info!("TLS: loaded the certificate in {} again", self.files.cert.display()),
            // Looked at again on the next change (or SIGHUP): a renewal
            // that writes the key after the certificate loads then.
            Err(e) => log::warn!("TLS: keeping the current certificate: {e}"),
        }
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    let of = |path: &Path| std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    [of(&files.cert), of(&files.key)]
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source });
    // A block that does not parse (a file caught half-written) refuses the
    // whole pair: a chain missing its intermediate would fail for clients.
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(files.cert.clone()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        let encrypted = ENCRYPTED_KEY_MARKS.iter().any(|mark| key_pem.windows(mark.len()).any(|w| w == *mark));
        if encrypted {
            TlsError::EncryptedKey(files.key.clone())
        } else {
            TlsError::NoKey(files.key.clone())
        }
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey { path: files.key.clone(), source })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone() })
        }
        Err(e) => Err(TlsError::Config(e)),
    }
}

/// A connection, over TLS or not. Boxed when encrypted: a TLS session
/// carries its own buffers, which plain connections should not pay for.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Chat frames are small and latency-bound: never hold them back
    /// waiting for an ACK (Nagle).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.set_nodelay(on),
            Self::Tls(tls) => tls.get_ref().0.set_nodelay(on),
        }
    }
}

/// A new connection to the TLS port, after its handshake. A plain-HTTP
/// request is answered with a 400 and the connection ends (an error here:
/// there is nothing to serve).
pub async fn handshake(tcp: TcpStream, acceptor: TlsAcceptor) -> io::Result<Stream> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_WITHIN;
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
        Ok(Ok(1)) => {
            refuse_plain_http(tcp).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP on the TLS port"));
        }
        Ok(Ok(_)) => return Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
    }
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(Stream::Tls(Box::new(stream))),
        Ok(Err(e)) => {
            log::debug!("TLS handshake failed: {e}");
            Err(e)
        }
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// What a browser pointed at `http://` on the TLS port shows.
async fn refuse_plain_http(mut tcp: TcpStream) {
    const BODY: &str = "This port speaks HTTPS only: use an https:// address (wss:// for WebSockets).\n";
    // Read the request first: closing with it unread would reset the
    // connection and the client might never see the answer.
    let mut request = vec![0u8; 4096];
    let _ = actix_web::rt::time::timeout(Duration::from_millis(200), tcp.read(&mut request)).await;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = actix_web::rt::time::timeout(HANDSHAKE_WITHIN, async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, data),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
