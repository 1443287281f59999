//! Fetches the cluster's count of channels not live on this instance, for
//! `push::remote`: whenever a read found names missing or stale, one
//! pipelined `HMGET` per batch reads their totals. Bounded: a batch is at
//! most `remote::MAX_ENTRIES` names (the map's own bound), and fetches run
//! one at a time.

use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use redis::aio::ConnectionManager;

use super::CALL_TIMEOUT;
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
        loop {
            self.registry.remote.wanted.notified().await;
            tokio::time::sleep(COALESCE).await;
            let names = self.registry.remote.stale();
            if names.is_empty() {
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
        let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"));
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
