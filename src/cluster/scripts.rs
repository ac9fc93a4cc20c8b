//! The Lua scripts that make each step atomic in Redis.

use std::sync::LazyLock;

use redis::Script;

/// Gives a message its room's next id, keeps it in the room's capped stream,
/// marks the room for the sweeper and publishes it, in one step: no node can
/// see an id that is not in the stream, and ids never go to two messages.
///
/// KEYS: seq, epoch, log, dirty. ARGV: the message's JSON without id and
/// epoch, the stream's length, the channel, the room's name.
/// Returns `{id, epoch}`, or 0 when Redis does not know the room (new, or
/// Redis lost its data): the node initialises it and sends again.
pub const SEND_LUA: &str = r#"
local epoch = redis.call('GET', KEYS[2])
if not epoch then return 0 end
local id = redis.call('INCR', KEYS[1])
local m = '{"id":' .. id .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], id .. '-0', 'm', m)
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[3], m)
return {id, epoch}
"#;

pub static SEND: LazyLock<Script> = LazyLock::new(|| Script::new(SEND_LUA));

/// Starts a room's run in Redis unless another node just did: a new epoch,
/// and the id to continue after. Redis remembers when it began keeping this
/// cluster's rooms (`born`). A room the database created before then, yet
/// missing from Redis, means Redis lost its data: ids it gave out may still
/// be on their way to the database (in some node's write queue), so the new
/// run starts 2^32 beyond the database's last id and none is given out
/// twice. 2^32 leaves room for two million such losses below JavaScript's
/// largest exact integer.
///
/// KEYS: seq, epoch, born. ARGV: the new epoch, the database's last id, the
/// room's creation time in the database (-1: not there), now (Unix ms).
/// Returns `{epoch, seq}` as Redis now has them.
pub static INIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('SET', KEYS[3], ARGV[4], 'NX')
local born = tonumber(redis.call('GET', KEYS[3]))
if redis.call('EXISTS', KEYS[2]) == 0 then
  local start = tonumber(ARGV[2])
  local created = tonumber(ARGV[3])
  if created >= 0 and created < born then
    start = start + 4294967296
  end
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('SET', KEYS[1], string.format('%d', start))
end
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[1])}
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
