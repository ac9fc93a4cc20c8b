//! Accounts: registered names with argon2id-hashed passwords
//! (`passwords`), logins (sessions) kept server-side so that logging out
//! really ends them, and bot tokens.
//!
//! Password hashing is deliberately slow, so it runs on threads of its own
//! and never while holding a database connection.

mod passwords;

pub use passwords::{Hasher, Password};

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::Duration;

use diesel::Connection;

use passwords::hash_password;

use crate::clock::now_ms;
use crate::db::accounts::{self as queries, NewSession, NewUser, UserRow};
use crate::db::moderation::{self, NewBotToken};
use crate::db::writer::Audit;
use crate::db::{self, DbConnection, DbPool};
use crate::domain::{skeleton_of, DisplayName};
use crate::error::ChatError;
use crate::tokens::{random_hex, token_hash};

/// Someone logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: DisplayName,
    pub is_admin: bool,
}

/// What the registered names look like (their skeletons), so that a
/// guest's name can be checked without a database query on the hot path,
/// and no one can take a name that looks like an account's.
#[derive(Debug, Default)]
pub struct NameRegistry(RwLock<HashSet<String>>);

impl NameRegistry {
    /// From the names as stored.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self(RwLock::new(names.into_iter().map(|name| skeleton_of(&name)).collect()))
    }

    /// Whether `name` is, or looks like, a registered account's name.
    pub fn looks_registered(&self, name: &DisplayName) -> bool {
        self.0.read().expect("registry lock").contains(&name.skeleton())
    }

    /// Takes `name`'s look for a new account; false when it is taken. Two
    /// look-alike sign-ups at once cannot both get it.
    fn claim(&self, name: &DisplayName) -> bool {
        self.0.write().expect("registry lock").insert(name.skeleton())
    }

    /// Gives back a claim whose sign-up failed.
    fn release(&self, name: &DisplayName) {
        self.0.write().expect("registry lock").remove(&name.skeleton());
    }
}

fn wrong_credentials() -> ChatError {
    ChatError::Unauthorized("wrong name or password".into())
}

/// Starts a login for the account: returns the token for the cookie.
async fn open_session(pool: &DbPool, user_key: String, ttl: Duration) -> Result<String, ChatError> {
    let token = random_hex(32);
    let id_hash = token_hash(&token);
    let created_at = now_ms();
    let expires_at = created_at + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
    db::run(pool, move |conn| {
        queries::insert_session(conn, &NewSession { id_hash: &id_hash, user_key: &user_key, created_at, expires_at })
    })
    .await?;
    Ok(token)
}

fn to_user(row: UserRow) -> Option<User> {
    Some(User { name: DisplayName::parse(&row.name).ok()?, is_admin: row.is_admin != 0 })
}

/// Registers `name` and logs it in.
pub async fn sign_up(
    pool: &DbPool,
    hasher: &Hasher,
    registry: &NameRegistry,
    name: &DisplayName,
    password: Password,
    ttl: Duration,
) -> Result<String, ChatError> {
    let taken = || ChatError::InvalidName(format!("the name '{name}' is taken, or too like one that is"));
    if !registry.claim(name) {
        return Err(taken());
    }
    let created = register(pool, hasher, name, password).await;
    if !matches!(created, Ok(true)) {
        registry.release(name);
    }
    if !created? {
        return Err(taken());
    }
    open_session(pool, name.key(), ttl).await
}

/// Stores a new account; false when its key is taken.
async fn register(pool: &DbPool, hasher: &Hasher, name: &DisplayName, password: Password) -> Result<bool, ChatError> {
    let hash = hasher.hash(hasher.turn()?, password).await?;
    let (key, shown) = (name.key(), name.to_string());
    db::run(pool, move |conn| {
        let user = NewUser { name_key: &key, name: &shown, password_hash: &hash, is_admin: 0, created_at: now_ms() };
        queries::insert_user(conn, &user)
    })
    .await
}

/// Logs `name` in and returns the token for the cookie; the same error for
/// an unknown name and a wrong password.
pub async fn log_in(
    pool: &DbPool,
    hasher: &Hasher,
    name: &DisplayName,
    password: Password,
    ttl: Duration,
) -> Result<String, ChatError> {
    // The turn first: a refused attempt costs not even a database lookup.
    let turn = hasher.turn()?;
    let key = name.key();
    let row = db::run(pool, move |conn| queries::find_user(conn, &key)).await?;
    let stored = row.as_ref().map(|r| r.password_hash.clone());
    if !hasher.verify(turn, stored, password).await? {
        return Err(wrong_credentials());
    }
    let row = row.expect("verified against a stored hash");
    if row.banned_at.is_some() {
        return Err(ChatError::Unauthorized("this account is banned".into()));
    }
    open_session(pool, row.name_key, ttl).await
}

/// Ends the login for good: the token no longer works, whoever holds it.
pub async fn log_out(pool: &DbPool, token: &str) -> Result<(), ChatError> {
    let hash = token_hash(token);
    db::run(pool, move |conn| queries::revoke_session(conn, &hash, now_ms())).await?;
    Ok(())
}

/// Who holds `token`, if its session is live and the user not banned.
pub async fn user_of(pool: &DbPool, token: &str) -> Result<Option<User>, ChatError> {
    let hash = token_hash(token);
    let row = db::run(pool, move |conn| queries::live_session_user(conn, &hash, now_ms())).await?;
    Ok(row.filter(|r| r.banned_at.is_none()).and_then(to_user))
}

/// A new token for a bot; only its hash is stored.
pub async fn create_bot_token(pool: &DbPool, bot: &DisplayName, audit: Audit) -> Result<String, ChatError> {
    let token = random_hex(32);
    let hash = token_hash(&token);
    let bot = bot.to_string();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let row = NewBotToken { token_hash: &hash, bot_name: &bot, created_by: &audit.actor, created_at: now_ms() };
            moderation::insert_bot_token(conn, &row)?;
            audit.write(conn)
        })
    })
    .await?;
    Ok(token)
}

/// The bot a token belongs to, if it is live.
pub async fn bot_of(pool: &DbPool, token: &str) -> Result<Option<String>, ChatError> {
    let hash = token_hash(token);
    db::run(pool, move |conn| moderation::bot_of(conn, &hash)).await
}

/// Creates an admin account, or makes an existing account an admin with this
/// password (`parlor admin create NAME`).
pub fn create_admin(conn: &mut DbConnection, name: &DisplayName, password: &Password) -> Result<bool, ChatError> {
    let key = name.key();
    let hash = hash_password(password);
    let user = NewUser { name_key: &key, name: name.as_str(), password_hash: &hash, is_admin: 1, created_at: now_ms() };
    conn.transaction(|conn| {
        if queries::insert_user(conn, &user)? {
            return Ok(true);
        }
        // Taking over an existing account (say, to recover it): its old
        // logins end, it is no longer banned, and it is an admin.
        queries::set_password(conn, &key, &hash)?;
        queries::revoke_all_sessions(conn, &key, now_ms())?;
        queries::unban(conn, &key)?;
        moderation::set_admin(conn, &key, true)?;
        Ok(false)
    })
}
