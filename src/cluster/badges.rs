//! Badge values in cluster mode: one value per badge for every instance.
//! Redis holds each badge's state (`fc:badge:{name}`: `state` as JSON,
//! `version`) and the set of names (`fc:badges`). Each instance's badge
//! writer merges writes in memory as usual, then stores the batch with one
//! Lua call that first checks every badge is still at the version the merge
//! started from: if another instance wrote in between, nothing is stored,
//! the current states come back, and the writer merges again on top of
//! them. So every write lands in one order, and none overwrites another.
//! Each stored change is published as `"name version"` on
//! `fc:badge-changes`; the other instances fetch and show it.
//!
//! A write is acknowledged after Redis answered; run the Redis that holds
//! badge values with `appendonly yes` and `appendfsync always` to make that
//! answer durable. While Redis cannot be reached, writes answer 503.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::{Client, Connection, Script};

use crate::store::{BadgeState, Change, Store, StoreError};

/// Checks every badge's version, then applies every change, or nothing.
/// ARGV: n, then per change: name, expected version, `put`|`del`, state JSON.
/// Returns the new versions, or `{"conflict", names…}`.
const APPLY: &str = r"
local n = tonumber(ARGV[1])
local conflicts = {}
for i = 0, n - 1 do
  local name = ARGV[2 + i * 4]
  local current = tonumber(redis.call('HGET', 'fc:badge:' .. name, 'version') or '0')
  if current ~= tonumber(ARGV[3 + i * 4]) then
    table.insert(conflicts, name)
  end
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end
local versions = {}
for i = 0, n - 1 do
  local name = ARGV[2 + i * 4]
  local key = 'fc:badge:' .. name
  local version = 0
  if ARGV[4 + i * 4] == 'put' then
    version = redis.call('HINCRBY', key, 'version', 1)
    redis.call('HSET', key, 'state', ARGV[5 + i * 4])
    redis.call('SADD', 'fc:badges', name)
  else
    -- Gone with its version: a writer still holding the old state
    -- (version > 0) conflicts, a new badge (version 0) does not.
    redis.call('DEL', key)
    redis.call('SREM', 'fc:badges', name)
  end
  redis.call('PUBLISH', 'fc:badge-changes', name .. ' ' .. version)
  table.insert(versions, version)
end
return versions
";

/// Redis as the badge store (`store::Store`), over a plain blocking
/// connection: the badge writer calls it off the async threads.
pub struct RedisBadges {
    client: Client,
    conn: Option<Connection>,
    apply: Script,
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl RedisBadges {
    pub fn new(client: Client) -> RedisBadges {
        RedisBadges { client, conn: None, apply: Script::new(APPLY) }
    }

    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        if self.conn.is_none() {
            let conn = self.client.get_connection_with_timeout(TIMEOUT).map_err(|_| StoreError::Unavailable)?;
            conn.set_read_timeout(Some(TIMEOUT)).map_err(|_| StoreError::Unavailable)?;
            conn.set_write_timeout(Some(TIMEOUT)).map_err(|_| StoreError::Unavailable)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just made"))
    }

    /// A Redis error: the connection is made anew next time.
    fn failed(&mut self, e: redis::RedisError) -> StoreError {
        self.conn = None;
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
            StoreError::Unavailable
        } else {
            StoreError::Failed(e.to_string())
        }
    }
}

/// The state of `name` now, with its version.
pub fn fetch(conn: &mut Connection, name: &str) -> redis::RedisResult<Option<BadgeState>> {
    let (json, version): (Option<String>, Option<u64>) =
        redis::cmd("HMGET").arg(format!("fc:badge:{name}")).arg("state").arg("version").query(conn)?;
    Ok(parse(json, version))
}

/// A stored state and its version (`None`: the badge has no value).
pub fn parse(json: Option<String>, version: Option<u64>) -> Option<BadgeState> {
    let state: BadgeState = serde_json::from_str(&json?).ok()?;
    Some(BadgeState { version: version.unwrap_or(0), ..state })
}

impl Store for RedisBadges {
    fn load(&mut self) -> Result<BTreeMap<String, BadgeState>, StoreError> {
        // Starting while Redis is away: start empty; the listener takes
        // every value once Redis answers, and writes get 503 until then.
        let conn = match self.conn() {
            Ok(conn) => conn,
            Err(_) => {
                tracing::warn!("cluster: Redis cannot be reached at startup; badge values follow once it can");
                return Ok(BTreeMap::new());
            }
        };
        let names: Vec<String> = match redis::cmd("SMEMBERS").arg("fc:badges").query(conn) {
            Ok(names) => names,
            Err(e) => return Err(self.failed(e)),
        };
        let mut badges = BTreeMap::new();
        for name in names {
            let conn = self.conn()?;
            match fetch(conn, &name) {
                Ok(Some(state)) => {
                    badges.insert(name, state);
                }
                Ok(None) => {}
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(badges)
    }

    fn apply(&mut self, batch: &[Change]) -> Result<Vec<u64>, StoreError> {
        let script = self.apply.clone();
        let mut call = script.prepare_invoke();
        call.arg(batch.len());
        for change in batch {
            let (name, version, op, json) = match change {
                Change::Put { name, state, .. } => {
                    let json = serde_json::to_string(state).map_err(|e| StoreError::Failed(e.to_string()))?;
                    (name, state.version, "put", json)
                }
                Change::Delete { name, version } => (name, *version, "del", String::new()),
            };
            call.arg(name).arg(version).arg(op).arg(json);
        }
        let conn = self.conn()?;
        let answer: redis::Value = match call.invoke(conn) {
            Ok(answer) => answer,
            Err(e) => return Err(self.failed(e)),
        };
        let items = match answer {
            redis::Value::Array(items) => items,
            other => return Err(StoreError::Failed(format!("unexpected answer {other:?}"))),
        };
        let is_conflict = matches!(items.first(), Some(redis::Value::BulkString(b)) if b == b"conflict");
        if is_conflict {
            let names: Vec<String> =
                items[1..].iter().filter_map(|v| redis::from_redis_value(v.clone()).ok()).collect();
            let mut current = Vec::new();
            for name in names {
                let conn = self.conn()?;
                match fetch(conn, &name) {
                    Ok(state) => current.push((name, state)),
                    Err(e) => return Err(self.failed(e)),
                }
            }
            return Err(StoreError::Conflict(current));
        }
        Ok(items.into_iter().map(|v| redis::from_redis_value::<u64>(v).unwrap_or(0)).collect())
    }
}
