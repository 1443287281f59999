//! The users-online badge: the `online` template showing a room's count.
//! `framecast render online` and the server call the same function, so
//! offline output equals what is pushed.

use std::sync::Arc;

use super::format::Values;
use super::template::{Template, Templates};

/// What the `online` template reads: `{viewers}`.
pub struct OnlineCount(pub u64);

impl Values for OnlineCount {
    fn number(&self, key: &str) -> Option<f64> {
        (key == "viewers" || key == "value").then_some(self.0 as f64)
    }
    fn text(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A room's count and its figures (`{peak_today}`, ...), by figure name,
/// and its members and guests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomValues {
    pub count: u64,
    pub figures: Vec<(&'static str, f64)>,
    pub people: RoomPeople,
}

/// `{members}`, `{guests}`, `{hidden}`, `{online}` and `{member_names}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomPeople {
    pub members: u64,
    pub guests: u64,
    pub hidden: u64,
    /// The visible members' names, in the order they came.
    pub names: Vec<Arc<str>>,
}

/// `{member_names}` is cut to this many characters ("… and 3 more" after).
pub const NAMES_SHOWN_CHARS: usize = 60;

impl RoomPeople {
    /// "alice", "alice and bob", "alice, bob and carol", or as many as fit
    /// in `NAMES_SHOWN_CHARS` then "and 3 more".
    pub fn names_text(&self) -> String {
        let mut shown: Vec<&str> = Vec::new();
        let mut used = 0;
        for name in &self.names {
            let len = name.chars().count() + 2;
            if !shown.is_empty() && used + len > NAMES_SHOWN_CHARS {
                break;
            }
            shown.push(name);
            used += len;
        }
        let more = self.names.len() - shown.len();
        match (shown.as_slice(), more) {
            ([], _) => String::new(),
            // One name longer than the budget: cut, so the picture stays bounded.
            ([one], _) if one.chars().count() > NAMES_SHOWN_CHARS => {
                let cut: String = one.chars().take(NAMES_SHOWN_CHARS - 1).collect();
                if more == 0 { format!("{cut}…") } else { format!("{cut}… and {more} more") }
            }
            ([one], 0) => one.to_string(),
            ([init @ .., last], 0) => format!("{} and {last}", init.join(", ")),
            (all, more) => format!("{} and {more} more", all.join(", ")),
        }
    }
}

impl Values for RoomValues {
    fn number(&self, key: &str) -> Option<f64> {
        let p = &self.people;
        match key {
            "viewers" | "value" => Some(self.count as f64),
            "members" => Some(p.members as f64),
            "guests" => Some(p.guests as f64),
            "hidden" => Some(p.hidden as f64),
            "online" => Some((p.members + p.guests) as f64),
            _ => self.figures.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
        }
    }
    fn text(&self, key: &str) -> Option<String> {
        (key == "member_names").then(|| self.people.names_text())
    }
}

/// PNG bytes of the users-online badge showing `count`.
pub fn render_online_png(template: &Template, count: u64) -> Vec<u8> {
    render_room_png(template, &RoomValues { count, ..RoomValues::default() })
}

/// PNG bytes of a room's badge.
pub fn render_room_png(template: &Template, values: &RoomValues) -> Vec<u8> {
    // A count is at most 20 digits: any valid template draws it well
    // inside the size limits, so this cannot fail for the built-in one; a
    // custom template that still does shows an empty 1x1 picture.
    template.render_png(values, 1.0).unwrap_or_else(|_| crate::render::png::encode_png(&empty()))
}

fn empty() -> tiny_skia::Pixmap {
    tiny_skia::Pixmap::new(1, 1).expect("1x1 is a valid size")
}

/// The built-in `online` template (a `template_dir` may replace it).
pub fn builtin_online() -> Arc<Template> {
    Templates::builtin().get("online").expect("the online template is built in")
}

#[cfg(test)]
mod people_tests {
    use super::*;

    fn names(list: &[&str]) -> String {
        RoomPeople { names: list.iter().map(|n| Arc::from(*n)).collect(), ..RoomPeople::default() }.names_text()
    }

    #[test]
    fn member_names_read_like_a_forum_footer() {
        assert_eq!(names(&[]), "");
        assert_eq!(names(&["alice"]), "alice");
        assert_eq!(names(&["alice", "bob"]), "alice and bob");
        assert_eq!(names(&["alice", "bob", "carol"]), "alice, bob and carol");
        let many: Vec<String> = (0..30).map(|i| format!("member{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let text = names(&many);
        assert!(text.ends_with("more") && text.chars().count() <= NAMES_SHOWN_CHARS + 20, "{text}");
        // One name longer than the budget is cut.
        assert_eq!(names(&[&"x".repeat(100)]), format!("{}…", "x".repeat(NAMES_SHOWN_CHARS - 1)));
    }
}
