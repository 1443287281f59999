//! State shared by every connection, wired once per process: config, live
//! channels, templates, room and badge producers, cameras, the render pool
//! and the task tracker shutdown waits on.
//!
//! May import: cluster, config, metrics, push, render, sources, store.

pub mod check;
pub mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::config::rooms::{CountMode, RoomConfig};
use crate::push::registry::{Caps, Registry};
use crate::render::pool::RenderPool;
use crate::render::template::Templates;
use crate::sources::badges::{BadgeSettings, Badges, Defs};
use crate::sources::boards::Boards;
use crate::sources::camera::Cameras;
use crate::sources::online::{OnlineRooms, RoomDefs};
use crate::sources::polled::Pollers;
use crate::sources::room_stats::{RoomSlots, RoomStats};
use crate::sources::tasks::Tasks;
use crate::sources::timing::{Timing, Timings};
use crate::store;

pub struct App {
    /// The config as it is now: a reload swaps it whole (`config()`).
    config: ArcSwap<Config>,
    /// Where a reload reads the config again.
    pub source: ConfigSource,
    /// One reload at a time (SIGHUP and the admin API may race).
    reloading: tokio::sync::Mutex<()>,
    /// Moves on with every applied reload (`epoch`).
    reloads: std::sync::atomic::AtomicU64,
    /// Set when an upgrade starts a new process: values and figures are
    /// its from then on, so this process takes no more writes.
    pub handing_over: std::sync::atomic::AtomicBool,
    /// Room and badge pacing, re-read by their producers.
    timings: Timings,
    /// Cancelled on SIGTERM/SIGINT: streams end, connections close.
    pub shutdown: CancellationToken,
    pub registry: Arc<Registry>,
    pub online: OnlineRooms,
    pub badges: Arc<Badges>,
    pub cameras: Cameras,
    /// Badges whose values framecast fetches itself.
    pub pollers: Pollers,
    /// Boards: grids of tiles as one live image.
    pub boards: Arc<Boards>,
    /// One-off renders, off the async threads and bounded.
    pub renders: Arc<RenderPool>,
    /// Producers and blocking work: shutdown waits for them (bounded).
    pub tracker: TaskTracker,
    /// Where request-started producers (camera sizes) run, supervised.
    pub tasks: Tasks,
}

/// Where the running config came from: the file a reload reads again, and
/// the `--listen` that overrides it.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

/// Configured rooms keep figures always; `/metrics` names the public ones.
fn configured_rooms(config: &Config) -> std::collections::BTreeMap<String, bool> {
    let public = |room: &String| !config.requires_signature(&format!("online/{room}"));
    config.rooms.keys().map(|room| (room.clone(), public(room))).collect()
}

/// The rooms that count members and guests (`count: "people"`).
fn people_rooms(config: &Config) -> std::collections::BTreeSet<String> {
    let people = |(_, room): &(&String, &RoomConfig)| room.count == CountMode::People;
    config.rooms.iter().filter(people).map(|(name, _)| name.clone()).collect()
}

fn caps(config: &Config) -> Caps {
    Caps {
        rooms: config.max_rooms,
        badge_looks: config.max_badge_looks,
        looks_per_badge: config.max_looks_per_badge,
        boards: config.max_board_channels,
        camera_sizes: config.max_camera_size_channels,
    }
}

impl App {
    /// The config as it is now. Read it once per request: a reload may
    /// swap it between two reads.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Which config a request was checked under: a stream whose request
    /// began before a reload and joined after it asks again
    /// (`http::viewers::listed`), since the reload's sweep may have missed it.
    pub fn epoch(&self) -> u64 {
        self.reloads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `new` for a server that can reload: `source` says where from.
    pub fn serving(config: Config, source: ConfigSource) -> Result<Arc<App>, String> {
        let app = App::new(config)?;
        let mut app = Arc::into_inner(app).expect("not shared yet");
        app.source = source;
        Ok(Arc::new(app))
    }

    /// Fails with a message naming the file, field and reason when a
    /// template or the state file is bad. Needs a tokio runtime (camera
    /// producers start here).
    pub fn new(config: Config) -> Result<Arc<App>, String> {
        // Before anything is drawn: the faces are the process's.
        crate::render::fonts::install(&config.fonts, config.system_fonts)?;
        let templates = Templates::load(config.template_dir.as_deref())?;
        templates.show_nothing_private(&config)?;
        let registry = Arc::new(Registry::new(caps(&config)));
        let timings = Timings::new(Timing::from_config(&config));
        let online_template = templates.get("online").expect("the online template is built in");
        let shutdown = CancellationToken::new();
        let tasks = Tasks::new(shutdown.clone());
        // Created first: live badges draw through it too.
        let renders = Arc::new(RenderPool::new(
            config.max_concurrent_renders,
            Duration::from_millis(config.render_queue_ms),
            tasks.tracker.clone(),
        ));
        let day_start = crate::config::rooms::day_start_seconds(&config.day_starts_at)?;
        // Room figures live in the database beside the badges (after
        // `store::open` below has created and migrated it).
        let stats_db = if config.cluster.is_none() { config.database.as_deref() } else { None };
        // In a cluster the badge values live in Redis, shared by every instance.
        let store = match &config.cluster {
            Some(cluster) => crate::cluster::badge_store(cluster)?,
            None => store::open(config.database.as_deref(), config.state_file.as_deref(), config.history_len)?,
        };
        let slots =
            RoomSlots { configured: configured_rooms(&config), max_unconfigured: config.max_unconfigured_rooms };
        let stats = Arc::new(RoomStats::open(stats_db, day_start, config.max_unique_per_room, slots)?);
        stats.set_people_rooms(people_rooms(&config));
        let people_template = templates.get("people").expect("the people template is built in");
        let named = check::room_templates(&templates, &config)?;
        let rooms = RoomDefs::new(online_template, people_template, named, config.rooms.clone());
        let online = OnlineRooms::new(registry.clone(), rooms, timings.clone(), tasks.clone(), stats);
        online.start_sampler(Duration::from_millis(config.room_sample_ms));
        let settings = BadgeSettings { rooms: online.stats.clone(), timing: timings.clone(), renders: renders.clone() };
        let defs = Defs::new(templates, config.badges.clone(), config.max_badges, config.history_len)?;
        let badges = Arc::new(Badges::new(registry.clone(), defs, store, settings, tasks.clone())?);
        badges.start_writer(&tasks);
        let cameras = Cameras::start(&config, &registry, &badges, &tasks)?;
        let pollers = Pollers::start(&config, &badges, &tasks)?;
        let boards = Arc::new(Boards::new(&config, registry.clone(), badges.clone(), tasks.clone())?);
        if let Some(cluster) = &config.cluster {
            crate::cluster::start(cluster, registry.clone(), badges.clone(), online.stats.clone(), &tasks)?;
        }
        let tracker = tasks.tracker.clone();
        Ok(Arc::new(App {
            config: ArcSwap::from_pointee(config),
            source: ConfigSource::default(),
            reloading: tokio::sync::Mutex::new(()),
            reloads: std::sync::atomic::AtomicU64::new(0),
            handing_over: std::sync::atomic::AtomicBool::new(false),
            timings,
            shutdown,
            registry,
            online,
            badges,
            cameras,
            pollers,
            boards,
            renders,
            tracker,
            tasks,
        }))
    }
}
