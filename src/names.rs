//! Names users choose (rooms, badges, templates): 1 to 64 of
//! `A-Z a-z 0-9 _ -`, so they are safe in paths, JSON and logs.
//!
//! May import: nothing.

pub const MAX_NAME_LEN: usize = 64;

pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The message for a name that is not valid.
pub fn invalid_name(what: &str) -> String {
    format!("invalid {what} name: use 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ -")
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("default"));
        assert!(valid_name("thread-42_b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(".."));
        assert!(!valid_name("ümlaut"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
