//! State shared by every connection: config, live channels, room producers.

use std::sync::Arc;

use crate::config::Config;
use crate::push::registry::Registry;
use crate::render::badge::BadgeLayout;
use crate::sources::online::{OnlineRooms, Timing};

pub struct App {
    pub config: Config,
    pub registry: Arc<Registry>,
    pub online: OnlineRooms,
}

impl App {
    pub fn new(config: Config) -> Arc<App> {
        let registry = Arc::new(Registry::new(config.max_rooms));
        let timing = Timing {
            min_frame_interval: config.min_frame_interval(),
            resend_interval: config.resend_interval(),
        };
        let online = OnlineRooms::new(registry.clone(), BadgeLayout::online(), timing);
        Arc::new(App {
            config,
            registry,
            online,
        })
    }
}
