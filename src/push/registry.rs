//! All live channels by name, bounded in number. Joining and forgetting a
//! channel happen under one lock, so "last viewer left, forget the channel"
//! cannot race with "a new viewer arrived".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::channel::Channel;
use super::presence::PresenceLog;
use super::viewer::ViewerGuard;

pub struct Registry {
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    /// Count changes, for cluster mode (off without one).
    pub presence: Arc<PresenceLog>,
    /// Cap on channels made on demand; permanent ones do not count.
    max_channels: usize,
    permanent: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// `max_channels` distinct channels are live already.
    #[error("too many live rooms and images; try again later")]
    TooManyChannels,
}

impl Registry {
    pub fn new(max_channels: usize) -> Registry {
        Registry {
            channels: Mutex::new(HashMap::new()),
            presence: Arc::default(),
            max_channels,
            permanent: Default::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Channel>>> {
        // A panic elsewhere cannot leave the map half-updated: every change is one insert or remove.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins `name` as a viewer. If the channel is not live, `create` makes
    /// it, outside the lock (it may render, and rendering may read other
    /// channels). Returns whether this call's channel was the one inserted:
    /// the caller then starts its producer. A channel that lost a race to
    /// another creator is dropped unstarted.
    pub fn join(&self, name: &str, create: impl FnOnce() -> Arc<Channel>) -> Result<(ViewerGuard, bool), JoinError> {
        if let Some(channel) = self.lock().get(name) {
            return Ok((ViewerGuard::join(channel.clone()), false));
        }
        let created = create();
        let mut channels = self.lock();
        if let Some(channel) = channels.get(name) {
            return Ok((ViewerGuard::join(channel.clone()), false));
        }
        if channels.len() - self.permanent.load(std::sync::atomic::Ordering::Relaxed) >= self.max_channels {
            return Err(JoinError::TooManyChannels);
        }
        created.attach(&self.presence);
        channels.insert(name.to_string(), created.clone());
        Ok((ViewerGuard::join(created), true))
    }

    /// Adds a channel that is never forgotten (a configured camera).
    pub fn insert_permanent(&self, channel: Arc<Channel>) {
        channel.attach(&self.presence);
        let mut channels = self.lock();
        if channels.insert(channel.name().to_string(), channel).is_none() {
            self.permanent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Joins a channel added with `insert_permanent`: it is never forgotten,
    /// so no lock is needed to keep the viewer from joining a dead channel.
    pub fn join_permanent(&self, channel: &Arc<Channel>) -> ViewerGuard {
        ViewerGuard::join(channel.clone())
    }

    /// Forgets `channel` if it is still the live one and nobody watches it.
    /// Returns whether it was forgotten; its producer should then stop.
    pub fn forget_if_idle(&self, channel: &Arc<Channel>) -> bool {
        let mut channels = self.lock();
        let is_live = channels.get(channel.name()).is_some_and(|c| Arc::ptr_eq(c, channel));
        if is_live && channel.viewers() == 0 {
            channels.remove(channel.name());
            true
        } else {
            false
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.lock().get(name).cloned()
    }

    /// Live channels sorted by name.
    pub fn list(&self) -> Vec<Arc<Channel>> {
        let mut all: Vec<_> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(name: &str) -> impl FnOnce() -> Arc<Channel> + '_ {
        move || Channel::new(name.to_string(), b"x", "image/png")
    }

    #[test]
    fn join_counts_and_drop_uncounts_exactly_once() {
        let r = Registry::new(10);
        let (a, created) = r.join("online/a", make("online/a")).unwrap();
        assert!(created);
        let (b, created) = r.join("online/a", make("online/a")).unwrap();
        assert!(!created);
        let ch = r.get("online/a").unwrap();
        assert_eq!(ch.viewers(), 2);
        drop(a);
        assert_eq!(ch.viewers(), 1);
        assert!(!r.forget_if_idle(&ch), "still watched");
        drop(b);
        assert_eq!(ch.viewers(), 0);
        assert!(r.forget_if_idle(&ch));
        assert!(r.get("online/a").is_none());
        assert!(!r.forget_if_idle(&ch), "already forgotten");
    }

    #[test]
    fn channel_cap_refuses_new_names_but_serves_existing() {
        let r = Registry::new(1);
        let _a = r.join("online/a", make("online/a")).unwrap();
        assert_eq!(r.join("online/b", make("online/b")).err(), Some(JoinError::TooManyChannels));
        assert!(r.join("online/a", make("online/a")).is_ok());
    }

    #[test]
    fn a_forgotten_channel_is_replaced_not_revived() {
        let r = Registry::new(10);
        let (g, _) = r.join("online/a", make("online/a")).unwrap();
        let old = g.channel().clone();
        drop(g);
        assert!(r.forget_if_idle(&old));
        let (g2, _) = r.join("online/a", make("online/a")).unwrap();
        assert!(!Arc::ptr_eq(&old, g2.channel()));
        assert_eq!(old.viewers(), 0);
        assert_eq!(g2.channel().viewers(), 1);
    }
}
