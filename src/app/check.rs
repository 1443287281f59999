//! Everything `serve` would refuse, checked without serving: the config
//! file, the templates and files it names, overlays, polled sources and
//! boards. `framecast check-config` prints its summary; a reload runs the
//! same checks before it changes anything, so a file either applies whole
//! or not at all, with the same message.

use std::path::Path;

use crate::config::Config;
use crate::render::template::Templates;
use crate::sources::badges::Defs;

/// A config that passed every check, with what was built to check it.
pub struct Checked {
    pub config: Config,
    pub badges: Defs,
    /// One line: listeners, templates, storage, cameras.
    pub summary: String,
}

/// Loads and checks `file`; errors name the file, the key and the reason.
pub fn check_file(file: &Path) -> Result<Checked, String> {
    let config = Config::load(file)?;
    check(config).map_err(|e| format!("{}: {e}", file.display()))
}

/// The template each room with `rooms.NAME.template` names; an unknown
/// name is an error that lists the templates there are.
pub fn room_templates(
    templates: &Templates,
    config: &Config,
) -> Result<std::collections::BTreeMap<String, std::sync::Arc<crate::render::template::Template>>, String> {
    let named = config.rooms.iter().filter_map(|(room, c)| Some((room, c.template.as_deref()?)));
    named
        .map(|(room, name)| match templates.get(name) {
            Some(template) => Ok((room.clone(), template)),
            None => {
                let known: Vec<&str> = templates.names().collect();
                Err(format!("rooms.{room}.template: no template {name:?}; there are: {}", known.join(", ")))
            }
        })
        .collect()
}

/// Checks `config` as `serve` would at startup (the database and state
/// file are read, not written).
pub fn check(config: Config) -> Result<Checked, String> {
    let templates = Templates::load(config.template_dir.as_deref())?;
    templates.show_nothing_private(&config)?;
    let system_faces = crate::render::fonts::check(&config.fonts, config.system_fonts)?;
    crate::sources::camera::check(&config)?;
    crate::sources::polled::poller::check(&config)?;
    crate::config::rooms::day_start_seconds(&config.day_starts_at)?;
    room_templates(&templates, &config)?;
    let badges = Defs::new(templates, config.badges.clone(), config.max_badges, config.history_len)?;
    crate::sources::boards::check(&config, &badges)?;
    // In a cluster badge values and room figures live in Redis.
    // (The URL is not printed: it may hold a password.)
    let stored = match &config.cluster {
        Some(_) => {
            "cluster mode: badge values and room figures in Redis (cluster.redis_url); database and state_file are not used"
                .to_string()
        }
        None => crate::store::inspect(config.database.as_deref(), config.state_file.as_deref())?,
    };
    let cameras: Vec<String> = config.cameras.iter().map(|(name, c)| format!("{name} ({})", c.source.kind())).collect();
    let mut summary = format!(
        "listen {}, {} templates, {stored}, cameras: {}",
        config.listen,
        badges.templates.names().count(),
        if cameras.is_empty() { "none".to_string() } else { cameras.join(", ") }
    );
    if !config.fonts.is_empty() || config.system_fonts {
        summary += &format!(", fallback fonts: {} files", config.fonts.len());
        if config.system_fonts {
            summary += &format!(" and {system_faces} system faces");
        }
    }
    Ok(Checked { config, badges, summary })
}
