//! Counting, slots and forgetting, with the clock passed in.

use super::*;

fn slots(configured: &[(&str, bool)], max_unconfigured: usize) -> RoomSlots {
    RoomSlots { configured: configured.iter().map(|(n, public)| (n.to_string(), *public)).collect(), max_unconfigured }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn dates() {
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(20_000), "2024-10-04");
    assert_eq!(date(-1), "1969-12-31");
}

#[test]
fn counts_peaks_uniques_and_sessions() {
    let stats = RoomStats::open(None, 0, 2, slots(&[], 10)).unwrap();
    let a: IpAddr = "127.0.0.2".parse().unwrap();
    let b: IpAddr = "127.0.0.3".parse().unwrap();
    let c: IpAddr = "127.0.0.4".parse().unwrap();
    let s1 = stats.joined("lobby", a);
    let s2 = stats.joined("lobby", a);
    assert_eq!(stats.live_addresses("lobby"), 1);
    let s3 = stats.joined("lobby", b);
    let _s4 = stats.joined("lobby", c);
    stats.observe("lobby", 4);
    stats.observe("lobby", 3);
    let f = stats.figures("lobby");
    assert_eq!((f.peak_today, f.unique_today, f.unique_today_capped, f.sessions_today), (4, 2, true, 4));
    stats.left(&s1);
    assert_eq!(stats.live_addresses("lobby"), 3);
    stats.left(&s2);
    stats.left(&s3);
    assert_eq!(stats.live_addresses("lobby"), 1);
    assert_eq!(stats.figures("other").sessions_today, 0);
    let key = stats.state().key.clone();
    assert_ne!(
        RoomStats::keyed_hash(&key, "lobby", a),
        RoomStats::keyed_hash(&key, "other", a),
        "rooms do not share hashes"
    );
}

#[test]
fn addresses_in_one_ipv6_64_count_once() {
    let stats = RoomStats::open(None, 0, 100, slots(&[], 10)).unwrap();
    let _a = stats.joined("v6", ip("2001:db8:1:2::1"));
    let _b = stats.joined("v6", ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    assert_eq!((stats.figures("v6").unique_today, stats.live_addresses("v6")), (1, 1), "one /64 is one viewer");
    let _c = stats.joined("v6", ip("2001:db8:1:3::1"));
    assert_eq!((stats.figures("v6").unique_today, stats.live_addresses("v6")), (2, 2), "another /64 is another");
}

#[test]
fn configured_rooms_have_figures_whatever_junk_came_first() {
    let stats = RoomStats::open(None, 0, 100, slots(&[("desk", true), ("vault", false)], 2)).unwrap();
    let a = ip("127.0.0.2");
    for junk in ["junk1", "junk2", "junk3"] {
        stats.left(&stats.joined(junk, a));
    }
    assert_eq!(stats.figures("junk2").sessions_today, 1);
    assert_eq!(stats.figures("junk3").sessions_today, 0, "no free slot: streams, without figures");
    let _d = stats.joined("desk", a);
    let _v = stats.joined("vault", a);
    assert_eq!((stats.figures("desk").sessions_today, stats.live_addresses("desk")), (1, 1));
    let (listed, rest) = stats.listed_figures();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["desk"], "only public configured rooms are named");
    // The private room is in neither: summed alone it would be its own figures.
    assert_eq!(rest, UnlistedTotals { unconfigured_rooms: 2, unique_today: 2, sessions_today: 2 });
}

#[test]
fn an_unconfigured_room_idle_for_a_day_is_forgotten_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.db");
    crate::store::sqlite::Sqlite::open(&path, 3).unwrap(); // the schema
    let open = || RoomStats::open(Some(&path), 0, 100, slots(&[("desk", true)], 2)).unwrap();
    let stats = open();
    let a = ip("127.0.0.2");
    for room in ["old", "desk"] {
        stats.observe(room, 1);
        stats.left(&stats.joined(room, a));
    }
    let _watching = stats.joined("live", a);
    stats.flush().unwrap();
    assert_eq!(stats.rooms(), ["desk", "live", "old"]);
    assert_eq!(stats.figures("full").sessions_today, 0);

    // Not yet a day: kept.
    stats.forget_idle(unix_now() + FORGET_IDLE_S - 60);
    assert_eq!(stats.rooms(), ["desk", "live", "old"]);
    // A day idle: the unconfigured room goes; one with a viewer and a
    // configured one stay; its slot is free again.
    stats.forget_idle(unix_now() + FORGET_IDLE_S);
    assert_eq!(stats.rooms(), ["desk", "live"]);
    stats.left(&stats.joined("new", a));
    assert_eq!(stats.figures("new").sessions_today, 1);
    stats.flush().unwrap();

    // Its rows are gone: a restart does not bring it back.
    drop(stats);
    let again = open();
    assert_eq!(again.rooms(), ["desk", "live", "new"]);
    assert_eq!(again.figures("desk").peak_all_time, 1);
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM room_days WHERE room = 'old') + (SELECT COUNT(*) FROM room_peaks WHERE room = 'old')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn unconfigured_rooms_share_one_budget_of_visitor_hashes() {
    let stats = RoomStats::open(None, 0, 2, slots(&[("desk", true)], 10)).unwrap();
    let _a = stats.joined("junk1", ip("127.0.0.2"));
    let _b = stats.joined("junk2", ip("127.0.0.3"));
    let _c = stats.joined("junk3", ip("127.0.0.4"));
    let f = stats.figures("junk3");
    assert_eq!((f.unique_today, f.unique_today_capped), (0, true), "the shared budget is spent");
    let _d = stats.joined("desk", ip("127.0.0.2"));
    let _e = stats.joined("desk", ip("127.0.0.3"));
    assert_eq!(stats.figures("desk").unique_today, 2, "a configured room has its own");
}

#[test]
fn in_a_cluster_hashes_wait_for_the_days_key_and_go_a_part_at_a_time() {
    let stats = RoomStats::open(None, 0, 10_000, slots(&[("lobby", true)], 10)).unwrap();
    stats.enable_cluster(std::time::Duration::from_secs(1));
    let addr = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
    for i in 0..3 {
        stats.joined("lobby", addr(i));
    }
    assert_eq!(stats.figures("lobby").unique_today, 0, "no key yet: the addresses wait");
    let (today, _) = stats.today_and_end();
    stats.set_day_key(today, [7; 32]);
    assert_eq!(stats.figures("lobby").unique_today, 3, "hashed once the key arrived");
    for i in 3..2_500 {
        stats.joined("lobby", addr(i));
    }
    let sent = stats.take_sync();
    assert_eq!(sent[0].hashes.len(), 2_000, "one call carries at most 2,000 hashes");
    let rest = stats.take_sync();
    assert_eq!(rest[0].hashes.len(), 500, "the rest goes in the next pass");
    // A new key (Redis lost its data): old hashes go, the 2,500 streams
    // still open (none left) count again under it.
    stats.set_day_key(today, [8; 32]);
    assert_eq!(stats.figures("lobby").unique_today, 2_500, "every address still watching, once");
}

#[test]
fn people_stay_counted_across_midnight_and_hidden_follows_the_streams() {
    let stats = RoomStats::open(None, 0, 100, slots(&[], 10)).unwrap();
    let alice = Member { id: "alice".into(), name: Some("Alice".into()), hidden: true };
    let hidden_tab = stats.joined_as("forum", ip("127.0.0.2"), None, Some(alice.clone()));
    let guest = stats.joined("forum", ip("127.0.0.3"));
    // Midnight: who is watching does not change.
    stats.state().day -= 1;
    let visible_tab = stats.joined_as("forum", ip("127.0.0.2"), None, Some(Member { hidden: false, ..alice }));
    let now = stats.people("forum", true);
    assert_eq!((now.members, now.guests, now.hidden), (1, 1, 1));
    assert!(now.names.is_empty(), "hidden while any of its streams asks");
    stats.left(&hidden_tab);
    let now = stats.people("forum", true);
    assert_eq!((now.members, now.hidden, now.names.len()), (1, 0, 1));
    stats.left(&visible_tab);
    stats.left(&guest);
    assert_eq!(stats.people("forum", true), PeopleNow::default());
}

#[test]
fn a_shared_people_room_sends_changes_then_everything_past_the_bound() {
    let stats = RoomStats::open(None, 0, 100, slots(&[("forum", true)], 10)).unwrap();
    stats.set_people_rooms(["forum".to_string()].into());
    assert!(stats.take_people_reports().is_empty(), "not shared outside a cluster");
    stats.enable_cluster(std::time::Duration::from_secs(1));
    stats.people_send_all_again();
    let alice = Member { id: "alice".into(), name: Some("Alice".into()), hidden: false };
    let tab = stats.joined_as("forum", ip("127.0.0.2"), None, Some(alice));
    let reports = stats.take_people_reports();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].full, "the first report after registering is everything");
    assert_eq!(reports[0].members.len(), 1);
    // Then only what changed: alice left.
    stats.left(&tab);
    let reports = stats.take_people_reports();
    assert!(!reports[0].full);
    assert_eq!(reports[0].members, vec![("alice".into(), None)]);
    // Past MAX_CHANGED changed entries, the room sends all it has instead.
    let guests: Vec<Session> =
        (0..5000u32).map(|i| stats.joined("forum", IpAddr::V4((0x0a00_0000 + i).into()))).collect();
    let reports = stats.take_people_reports();
    assert!(reports[0].full);
    assert_eq!(reports[0].guests.len(), 5000);
    // A room no longer counting people drops its part in the cluster.
    stats.set_people_rooms(Default::default());
    let reports = stats.take_people_reports();
    assert!(reports[0].full && reports[0].guests.is_empty() && reports[0].members.is_empty());
    drop(guests);
    assert!(stats.take_people_reports().is_empty());
}
