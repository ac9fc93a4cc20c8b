//! Passwords: what may be one, and argon2id hashing on a few threads of its
//! own behind a bounded queue.
//!
//! Each hash takes about 19 MiB and tens of milliseconds of a core, on
//! purpose. Unbounded, a flood of wrong logins takes the server's memory
//! (every blocking thread keeps its own allocator arena) and its cores. So
//! hashing runs on one thread per core, each reusing its memory, and an
//! attempt first takes a turn: when every turn is taken (the threads are
//! busy and the short queue behind them is full) it is refused at once
//! (`ChatError::Busy`, 503 with `Retry-After`) rather than waiting, before
//! it costs even a database lookup.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

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
    // A stored hash that does not parse matches nothing (after the same
    // work, so it cannot be told apart).
    let (hash, usable) = match PasswordHash::new(stored.unwrap_or(dummy)) {
        Ok(hash) => (hash, stored.is_some()),
        Err(_) => (PasswordHash::new(dummy).expect("the fixed hash parses"), false),
    };
    Argon2::default().verify_password(password.0.as_bytes(), &hash).is_ok() && usable
}

enum Work {
    Hash(Password, oneshot::Sender<String>),
    Verify(Option<String>, Password, oneshot::Sender<bool>),
}

/// The hashing threads and the bounded queue in front of them.
#[derive(Clone)]
pub struct Hasher {
    queue: SyncSender<(Work, Turn)>,
    turns: Arc<Semaphore>,
}

/// A place at the hashing threads: one hash, given back when it is done.
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

impl Hasher {
    /// `threads` hashing threads, and room for `waiting` attempts queued
    /// behind them.
    pub fn start(threads: usize, waiting: usize) -> Self {
        let threads = threads.max(1);
        // Every turn fits in the channel, so handing work over never waits.
        let (queue, jobs) = sync_channel(threads + waiting);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let jobs = jobs.clone();
            thread::Builder::new()
                .name(format!("parlor-hash-{n}"))
                .spawn(move || work(&jobs))
                .expect("can spawn a password hashing thread");
        }
        Self { queue, turns: Arc::new(Semaphore::new(threads + waiting)) }
    }

    /// A turn at hashing, or `Busy` at once when all are taken.
    pub fn turn(&self) -> Result<Turn, ChatError> {
        let busy = || ChatError::Busy("too many logins at once; try again in a moment".into());
        self.turns.clone().try_acquire_owned().map(Turn).map_err(|_| busy())
    }

    /// One thread per core, and twice that many attempts waiting.
    pub fn for_this_machine() -> Self {
        let cores = thread::available_parallelism().map_or(2, usize::from);
        Self::start(cores, 2 * cores)
    }

    pub async fn hash(&self, turn: Turn, password: Password) -> Result<String, ChatError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Hash(password, reply), turn)?;
        answer.await.map_err(|_| stopped())
    }

    /// Whether `password` matches `stored` (`None`: no such user, which
    /// takes as long and never matches).
    pub async fn verify(&self, turn: Turn, stored: Option<String>, password: Password) -> Result<bool, ChatError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Work::Verify(stored, password, reply), turn)?;
        answer.await.map_err(|_| stopped())
    }

    fn submit(&self, work: Work, turn: Turn) -> Result<(), ChatError> {
        self.queue.try_send((work, turn)).map_err(|e| match e {
            TrySendError::Full(_) => unreachable!("the channel holds every turn"),
            TrySendError::Disconnected(_) => stopped(),
        })
    }
}

fn work(jobs: &Mutex<Receiver<(Work, Turn)>>) {
    loop {
        let job = jobs.lock().expect("hashing queue lock").recv();
        // The turn is given back when the work is done (dropped here). A
        // panic must not take a hashing thread away for good.
        let job = match job {
            Ok(job) => job,
            Err(_) => return,
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            (Work::Hash(password, reply), _turn) => {
                let _ = reply.send(hash_password(&password));
            }
            (Work::Verify(stored, password, reply), _turn) => {
                let _ = reply.send(verify_password(stored.as_deref(), &password));
            }
        }));
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
        assert!(!verify_password(Some("not a PHC string"), &right), "a damaged hash matches nothing");
    }

    #[test]
    fn password_length() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(129)).is_err());
        assert!(Password::parse("long enough".into()).is_ok());
    }

    #[actix_web::test]
    async fn turns_are_refused_at_once_when_all_are_taken_and_come_back() {
        let hasher = Hasher::start(1, 1);
        let password = || Password::parse("correct horse".into()).unwrap();
        // One hashing, one waiting: a third is refused without waiting.
        let (first, second) = (hasher.turn().unwrap(), hasher.turn().unwrap());
        assert!(matches!(hasher.turn(), Err(ChatError::Busy(_))));
        let both =
            futures_util::future::join(hasher.verify(first, None, password()), hasher.verify(second, None, password()));
        assert!(matches!(both.await, (Ok(false), Ok(false))));
        // Done: the turns are back.
        let hash = hasher.hash(hasher.turn().unwrap(), password()).await.unwrap();
        assert!(hasher.verify(hasher.turn().unwrap(), Some(hash), password()).await.unwrap());
    }
}
