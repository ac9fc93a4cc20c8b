//! The Lua scripts that make each step atomic in Redis.

use std::sync::LazyLock;

use redis::Script;

/// Gives a message its room's next id, keeps it in the room's capped stream,
/// marks the room for the sweeper and publishes it, in one step: no node can
/// see an id that is not in the stream, and ids never go to two messages.
/// A message with a nonce is numbered once: sent again with the same nonce
/// by the same author (a client whose connection or node died before its
/// copy came back), on any node, it gets the id it got the first time.
///
/// An end-to-end encrypted room (its `encryption` key) takes envelopes
/// only: whatever a node believes of the room, Redis has the last word.
///
/// KEYS: seq, epoch, log, dirty, encryption, and the nonce's key when it has
/// one. ARGV: the message's JSON without id and epoch, the stream's length,
/// the channel, the room's name, how long a nonce is remembered (s), `1`
/// when the text is an envelope. Returns `{id, epoch, resent}`; 0 when
/// Redis does not know the room (new, or Redis lost its data): the node
/// initialises it and sends again; -1 when the room is encrypted and the
/// text is not an envelope.
pub const SEND_LUA: &str = r#"
local epoch = redis.call('GET', KEYS[2])
if not epoch then return 0 end
local e2e = redis.call('GET', KEYS[5])
if e2e and e2e ~= 'plain' and ARGV[6] ~= '1' then return -1 end
if KEYS[6] then
  local seen = redis.call('GET', KEYS[6])
  if seen then
    local id, was = string.match(seen, '^(%d+) (.*)$')
    if was == epoch then return {tonumber(id), epoch, 1} end
  end
end
local id = redis.call('INCR', KEYS[1])
local m = '{"id":' .. id .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], id .. '-0', 'm', m)
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[3], m)
if KEYS[6] then
  redis.call('SET', KEYS[6], id .. ' ' .. epoch, 'EX', ARGV[5])
end
return {id, epoch, 0}
"#;

pub static SEND: LazyLock<Script> = LazyLock::new(|| Script::new(SEND_LUA));

/// Decides whether a room is encrypted, once: the first node to propose
/// wins, and every node adopts the answer.
///
/// KEYS: the room's encryption key. ARGV: the proposal
/// (`wire::encryption_tag`). Returns what Redis holds now.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local decided = redis.call('GET', KEYS[1])
if decided then return decided end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"#,
    )
});

/// Starts a room's run in Redis unless another node just did: its epoch,
/// and the last id of the run so far.
///
/// KEYS: seq, epoch. ARGV: the new epoch, the id to continue after.
/// Returns `{epoch, seq}` as Redis now has them.
pub static INIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then
  redis.call('SET', KEYS[1], ARGV[2])
end
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[1])}
"#,
    )
});

/// Notes which Redis process (its run id) keeps the cluster's rooms. When
/// another one did before, Redis restarted, and what it loaded from disk
/// may be older than what nodes saw: every room's epoch is dropped, so each
/// starts a new run (`INIT`), far above any id given out before.
///
/// KEYS: the run key. ARGV: this Redis's run id, the pattern of the rooms'
/// epoch keys. Returns how many rooms start anew (-1: nothing changed).
pub static RESTARTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local before = redis.call('GET', KEYS[1])
if before == ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
if not before then return 0 end
local epochs = redis.call('KEYS', ARGV[2])
for i = 1, #epochs, 1000 do
  redis.call('DEL', unpack(epochs, i, math.min(i + 999, #epochs)))
end
return #epochs
"#,
    )
});

/// Records that the database holds every message of a room up to an id;
/// the room stays marked while newer ids exist.
///
/// KEYS: swept, dirty, seq. ARGV: room, id.
pub static SWEPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if tonumber(redis.call('GET', KEYS[3]) or '0') <= tonumber(ARGV[2]) then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return 1
"#,
    )
});

/// Takes or keeps a lock for `ARGV[2]` ms: free, or already ours.
///
/// KEYS: lock. ARGV: this node, milliseconds.
pub static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#,
    )
});

/// Takes a token from a bucket shared by every node: `ARGV[2]` at once, then
/// `ARGV[1]` a second. Redis's own clock, so nodes' clocks do not matter.
///
/// KEYS: bucket. ARGV: rate per second, burst. Returns 1 (taken) or 0.
pub static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]) / 1000, tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate))
return taken
"#,
    )
});
