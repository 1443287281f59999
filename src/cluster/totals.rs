//! Fetches the cluster's count of channels not live on this instance, for
//! `push::remote`: whenever a read found names missing or stale, one
//! pipelined `HMGET` per batch reads their totals. Bounded: a batch is at
//! most `remote::MAX_ENTRIES` names (the map's own bound), and fetches run
//! one at a time.

use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use redis::aio::ConnectionManager;

use super::{CALL_TIMEOUT, timed_out};
use crate::push::registry::Registry;
use crate::push::remote::Part;

/// Reads asked for this close together are fetched together.
const COALESCE: Duration = Duration::from_millis(2);

#[derive(Clone)]
pub(super) struct Fetcher {
    pub client: Client,
    pub registry: Arc<Registry>,
}

impl Fetcher {
    pub async fn run(self) {
        let mut conn: Option<ConnectionManager> = None;
        let remote = &self.registry.remote;
        loop {
            // After a failure, look again each heartbeat even if nobody
            // asks, so the degraded mark goes when Redis is back.
            tokio::select! {
                _ = remote.wanted.notified() => tokio::time::sleep(COALESCE).await,
                _ = tokio::time::sleep(remote.heartbeat()), if remote.unreachable(Part::Totals) => {}
            }
            let names = remote.stale();
            if names.is_empty() {
                if remote.unreachable(Part::Totals) {
                    let ping = async {
                        if conn.is_none() {
                            conn = Some(super::connect(&self.client).await?);
                        }
                        let c = conn.as_mut().expect("connected above");
                        let ping = redis::cmd("PING");
                        let pong = ping.query_async::<String>(c);
                        tokio::time::timeout(super::CALL_TIMEOUT, pong).await.map_err(|_| timed_out())?
                    };
                    let answered = ping.await.is_ok();
                    if !answered {
                        conn = None;
                    }
                    remote.set_reachable(Part::Totals, answered);
                }
                continue;
            }
            match self.fetch(&mut conn, &names).await {
                Ok(answers) => {
                    self.registry.remote.fetched(answers);
                    self.registry.remote.set_reachable(Part::Totals, true);
                }
                Err(_) => {
                    conn = None;
                    self.registry.remote.failed(&names);
                    self.registry.remote.set_reachable(Part::Totals, false);
                }
            }
        }
    }

    async fn fetch(
        &self,
        conn: &mut Option<ConnectionManager>,
        names: &[String],
    ) -> redis::RedisResult<Vec<(String, u64, u64)>> {
        if conn.is_none() {
            *conn = Some(super::connect(&self.client).await?);
        }
        let c = conn.as_mut().expect("connected above");
        let mut pipe = redis::pipe();
        for name in names {
            pipe.cmd("HMGET").arg(format!("fc:room:{name}")).arg("_version").arg("_total");
        }
        let read = pipe.query_async::<Vec<(Option<u64>, Option<u64>)>>(c);
        let rows = tokio::time::timeout(CALL_TIMEOUT, read).await.map_err(|_| timed_out())??;
        Ok(names.iter().zip(rows).map(|(n, (v, t))| (n.clone(), v.unwrap_or(0), t.unwrap_or(0))).collect())
    }
}
