//! The wall clock as text, for the test pattern, overlays (`{time}`) and
//! placeholders. Time of day only, in UTC: no calendar code to get wrong.

use std::time::SystemTime;

/// `HH:MM:SS` (UTC), with milliseconds if `millis`.
pub fn clock(now: SystemTime, millis: bool) -> String {
    let since = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = since.as_secs() % 86_400;
    let hms = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if millis { format!("{hms}.{:03}", since.subsec_millis()) } else { hms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_reads_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(86_400_000 * 3 + 3_723_045);
        assert_eq!(clock(t, true), "01:02:03.045");
        assert_eq!(clock(t, false), "01:02:03");
    }
}
