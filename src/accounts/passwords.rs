//! Passwords: what may be one, and argon2id hashing on a few threads of its
//! own behind a bounded queue.
//!
//! Each hash takes about 19 MiB and tens of milliseconds of a core, on
//! purpose. Unbounded, a flood of wrong logins takes the server's memory
//! (every blocking thread keeps its own allocator arena) and its cores. So
//! hashing runs on one thread per core, each reusing its memory, and when
//! the queue in front of them is full an attempt is refused at once
//! (`ChatError::Busy`, 503 with `Retry-After`) rather than waiting.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::oneshot;

use crate::error::ChatError;

/// A password as typed: 8 to 128 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, ChatError> {
        match raw.chars().count() {
            0..=7 => Err(ChatError::BadRequest("the password must have at least 8 characters".into())),
            129.. => Err(ChatError::BadRequest("the password must have at most 128 characters".into())),
            _ => Ok(Self(raw)),
        }
    }
}

/// argon2id with the crate's defaults, the parameters OWASP recommends
/// (19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &Password) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.0.as_bytes(), &salt).expect("argon2 hashes any password").to_string()
}

/// Checks a password against a stored hash. Without a user the same work is
/// done against a fixed hash, so an unknown name takes as long to refuse as a
/// wrong password (the comparison inside argon2 is constant-time).
pub fn verify_password(stored: Option<&str>, password: &Password) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password(&Password("not a real password".into())));
    let hash = PasswordHash::new(stored.unwrap_or(dummy)).expect("stored hashes are valid PHC strings");
    Argon2::default().verify_password(password.0.as_bytes(), &hash).is_ok() && stored.is_some()
}

enum Work {
    Hash(Password, oneshot::Sender<String>),
    Verify(Option<String>, Password, oneshot::Sender<bool>),
}

/// The hashing threads and the bounded queue in front of them.
#[derive(Clone)]
pub struct Hasher {
    queue: SyncSender<Work>,
}

impl Hasher {
    /// `threads` hashing threads, and room for `waiting` attempts queued
    /// behind them.
    pub fn start(threads: usize, waiting: usize) -> Self {
        let (queue, jobs) = sync_channel(waiting);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads.max(1) {
            let jobs = jobs.clone();
            thread::Builder::new()
                .name(format!("parlor-hash-{n}"))
                .spawn(move || work(&jobs))
                .expect("can spawn a password hashing thread");
        }
        Self { queue }
    }

    /// One thread per core, and twice that many attempts waiting.
    pub fn for_this_machine() -> Self {
        let cores = thread::available_parallelism().map_or(2, usize::from);
        Self::start(cores, 2 * cores)
    }

    pub async fn hash(&self, password: Password) -> Result<String, ChatError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Hash(password, reply))?;
        answer.await.map_err(|_| stopped())
    }

    /// Whether `password` matches `stored` (`None`: no such user, which
    /// takes as long and never matches).
    pub async fn verify(&self, stored: Option<String>, password: Password) -> Result<bool, ChatError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Verify(stored, password, reply))?;
        answer.await.map_err(|_| stopped())
    }

    fn submit(&self, work: Work) -> Result<(), ChatError> {
        self.queue.try_send(work).map_err(|e| match e {
            TrySendError::Full(_) => ChatError::Busy("too many logins at once; try again in a moment".into()),
            TrySendError::Disconnected(_) => stopped(),
        })
    }
}

fn work(jobs: &Mutex<Receiver<Work>>) {
    loop {
        let job = jobs.lock().expect("hashing queue lock").recv();
        match job {
            Ok(Work::Hash(password, reply)) => {
                let _ = reply.send(hash_password(&password));
            }
            Ok(Work::Verify(stored, password, reply)) => {
                let _ = reply.send(verify_password(stored.as_deref(), &password));
            }
            Err(_) => return,
        }
    }
}

fn stopped() -> ChatError {
    ChatError::Unavailable("the server is shutting down".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let right = Password::parse("correct horse".into()).unwrap();
        let wrong = Password::parse("battery staple".into()).unwrap();
        let hash = hash_password(&right);
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), &right));
        assert!(!verify_password(Some(&hash), &wrong));
        assert!(!verify_password(None, &right), "no user: never a match");
    }

    #[test]
    fn password_length() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(129)).is_err());
        assert!(Password::parse("long enough".into()).is_ok());
    }

    #[actix_web::test]
    async fn a_full_queue_refuses_at_once() {
        let hasher = Hasher::start(1, 1);
        let password = || Password::parse("correct horse".into()).unwrap();
        // One hashing, one waiting: the rest are refused without waiting.
        let attempts: Vec<_> = (0..6).map(|_| hasher.verify(None, password())).collect();
        let results = futures_util::future::join_all(attempts).await;
        let busy = results.iter().filter(|r| matches!(r, Err(ChatError::Busy(_)))).count();
        assert!(busy >= 4, "{busy} of 6 refused");
        assert!(results.iter().all(|r| matches!(r, Ok(false) | Err(ChatError::Busy(_)))));
        // Once the queue has drained, attempts go through again.
        let hash = hasher.hash(password()).await.unwrap();
        assert!(hasher.verify(Some(hash), password()).await.unwrap());
    }
}
