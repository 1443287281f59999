//! Memory only (`"database": null`): nothing is kept across restarts, and
//! every batch "commits" at once.

use std::collections::BTreeMap;

use super::{BadgeState, Change, Store, StoreError};

pub struct Memory;

impl Store for Memory {
    fn load(&mut self) -> Result<BTreeMap<String, BadgeState>, StoreError> {
        Ok(BTreeMap::new())
    }

    fn apply(&mut self, batch: &[Change]) -> Result<Vec<u64>, StoreError> {
        Ok(vec![0; batch.len()])
    }
}
