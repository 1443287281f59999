//! Who is in a room, the way a forum's footer says it: members (distinct
//! signed member ids with a stream open; five tabs are one) and guests
//! (distinct addresses with a stream open that names no member). Hidden
//! members count in every total and are never named. `count: "people"`
//! rooms show `members + guests`; every room keeps these, so a room can
//! switch to it with a reload.
//!
//! Held in memory only while the streams are open, as `Room.live` is: the
//! cost is one entry per open member (its id and name, each bounded where
//! the URL is read) and one per guest address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::people_shared::MemberHere;

/// A signed member on a viewer's URL (`?member=ID&name=NAME&hidden=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: Arc<str>,
    /// Shown in `{member_names}` unless hidden; `None`: the id is shown.
    pub name: Option<Arc<str>>,
    pub hidden: bool,
}

/// The room's people now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleNow {
    /// Members with a stream open, hidden ones included.
    pub members: u64,
    pub guests: u64,
    /// Of `members`, those hidden.
    pub hidden: u64,
    /// The visible members' names, in the order they came.
    pub names: Vec<Arc<str>>,
}

impl PeopleNow {
    /// Members and guests: everyone.
    pub fn online(&self) -> u64 {
        self.members + self.guests
    }
}

#[derive(Default)]
pub(super) struct People {
    members: HashMap<Arc<str>, Present>,
    /// Members with a hidden stream open (kept as they change: counts are
    /// read at every join and frame, names only when drawn or asked for).
    hidden: u64,
    /// Open streams without a member, per address.
    guests: HashMap<IpAddr, u32>,
    /// Join order, for the names.
    arrivals: u64,
}

struct Present {
    streams: u32,
    /// Its streams that asked to be hidden: hidden while any is open.
    hidden: u32,
    name: Arc<str>,
    arrived: u64,
}

impl People {
    pub(super) fn joined(&mut self, addr: IpAddr, member: Option<&Member>) {
        let Some(member) = member else {
            *self.guests.entry(addr).or_default() += 1;
            return;
        };
        self.arrivals += 1;
        let name = member.name.clone().unwrap_or_else(|| member.id.clone());
        let present = self.members.entry(member.id.clone()).or_insert(Present {
            streams: 0,
            hidden: 0,
            name: name.clone(),
            arrived: self.arrivals,
        });
        present.streams += 1;
        if member.hidden {
            present.hidden += 1;
            self.hidden += u64::from(present.hidden == 1);
        }
        // The newest stream's name is the member's name now.
        present.name = name;
    }

    pub(super) fn left(&mut self, addr: IpAddr, member: Option<&Member>) {
        let Some(member) = member else {
            if let Some(n) = self.guests.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    self.guests.remove(&addr);
                }
            }
            return;
        };
        if let Some(present) = self.members.get_mut(&member.id) {
            present.streams = present.streams.saturating_sub(1);
            if member.hidden && present.hidden > 0 {
                present.hidden -= 1;
                self.hidden -= u64::from(present.hidden == 0);
            }
            if present.streams == 0 {
                self.members.remove(&member.id);
            }
        }
    }

    /// How member `id` is here now (`None`: not here).
    pub(super) fn member(&self, id: &str) -> Option<MemberHere> {
        self.members.get(id).map(|p| MemberHere { hidden: p.hidden > 0, name: p.name.clone() })
    }

    /// Member `id` has a hidden stream open here.
    pub(super) fn is_hidden(&self, id: &str) -> bool {
        self.members.get(id).is_some_and(|p| p.hidden > 0)
    }

    pub(super) fn has_guest(&self, addr: IpAddr) -> bool {
        self.guests.contains_key(&addr)
    }

    /// Every member and guest address here.
    pub(super) fn everyone(&self) -> (Vec<(Arc<str>, MemberHere)>, Vec<IpAddr>) {
        let members = self.members.keys().filter_map(|id| Some((id.clone(), self.member(id)?))).collect();
        (members, self.guests.keys().copied().collect())
    }

    pub(super) fn now(&self, names: bool) -> PeopleNow {
        let names = if names {
            let mut visible: Vec<&Present> = self.members.values().filter(|p| p.hidden == 0).collect();
            visible.sort_by_key(|p| p.arrived);
            visible.into_iter().map(|p| p.name.clone()).collect()
        } else {
            Vec::new()
        };
        PeopleNow { members: self.members.len() as u64, guests: self.guests.len() as u64, hidden: self.hidden, names }
    }
}
