//! Cron schedules for jobs, evaluated in UTC.
//!
//! Accepted forms:
//! - five fields, `minute hour day-of-month month day-of-week` (`*/5 * * * *`);
//! - six fields with seconds first (`*/10 * * * * *`), for jobs that run often;
//! - `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`);
//! - `@every DURATION` (`@every 30s`), counted from the Unix epoch, not
//!   from the deploy: `@every 1h` runs at :00 of every hour (UTC)
//!   ([`Schedule::describe`] says so where a schedule is shown).
//!
//! Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists
//! `a,b`, month names `JAN`..`DEC` and weekday names `SUN`..`SAT` (0 and 7
//! are Sunday). As in Vixie cron, when both day fields are restricted a day
//! matches if either matches.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::time::{UnixMillis, parse_duration};

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron schedule {text:?}: {reason}")]
pub struct CronError {
    pub text: String,
    pub reason: String,
}

/// A parsed schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Fields {
        seconds: u64, // bit per second 0..59
        minutes: u64,
        hours: u32,
        days: u32,    // bit per day 1..31
        months: u16,  // bit per month 1..12
        weekdays: u8, // bit per weekday 0..6, Sunday = 0
        days_restricted: bool,
        weekdays_restricted: bool,
    },
    Every(u64), // milliseconds
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The longest `@every`: a year and a day.
pub const MAX_EVERY_MS: u64 = 366 * 86_400_000;
/// 2024-01-01T00:00:00Z.
const NEVER_CHECK_FROM: UnixMillis = 1_704_067_200_000;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// When it runs, in words: `every 1h (aligned to :00 UTC)` (an `@every`
    /// counts from the Unix epoch, not from the deploy), `0 3 * * * (UTC)`.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Every(ms) => {
                let d = self.text.trim().trim_start_matches("@every").trim();
                let aligned = if 60_000 % ms == 0 {
                    "aligned to the minute, UTC"
                } else if 3_600_000 % ms == 0 {
                    "aligned to :00 UTC"
                } else if 86_400_000 % ms == 0 {
                    "aligned to 00:00 UTC"
                } else {
                    "counted from 1970-01-01 00:00 UTC, not from the deploy"
                };
                format!("every {d} ({aligned})")
            }
            Kind::Fields { .. } => format!("{} (UTC)", self.text),
        }
    }

    pub fn parse(text: &str) -> Result<Schedule, CronError> {
        let err = |reason: String| CronError {
            text: text.to_string(),
            reason,
        };
        let t = text.trim();
        let expanded = match t {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => t,
        };
        if let Some(d) = expanded.strip_prefix("@every") {
            let d = parse_duration(d.trim()).map_err(|e| err(e.to_string()))?;
            let ms = d.as_millis() as u64;
            if ms < 1000 {
                return Err(err("@every needs at least 1s".into()));
            }
            if ms > MAX_EVERY_MS {
                return Err(err(format!(
                    "@every is at most {} days; for rarer runs use a cron schedule (@yearly)",
                    MAX_EVERY_MS / 86_400_000
                )));
            }
            return Ok(Schedule {
                text: t.to_string(),
                kind: Kind::Every(ms),
            });
        }
        if expanded.starts_with('@') {
            return Err(err(format!(
                "unknown shorthand {expanded:?}; use @hourly, @daily, @weekly, @monthly, @yearly or @every 30s"
            )));
        }
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(err(format!(
                    "expected 5 fields (minute hour day month weekday) or 6 with seconds first, found {n}"
                )));
            }
        };
        let seconds = parse_field(sec, 0, 59, &[], "second").map_err(err)?;
        let minutes = parse_field(rest[0], 0, 59, &[], "minute").map_err(err)?;
        let hours = parse_field(rest[1], 0, 23, &[], "hour").map_err(err)?;
        let days = parse_field(rest[2], 1, 31, &[], "day of month").map_err(err)?;
        let months = parse_field(rest[3], 1, 12, &MONTHS, "month").map_err(err)?;
        let mut weekdays = parse_field(rest[4], 0, 7, &WEEKDAYS, "day of week").map_err(err)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        let schedule = Schedule {
            text: t.to_string(),
            kind: Kind::Fields {
                seconds,
                minutes,
                hours: hours as u32,
                days: days as u32,
                months: months as u16,
                weekdays: weekdays as u8,
                days_restricted: !rest[2].starts_with('*'),
                weekdays_restricted: !rest[4].starts_with('*'),
            },
        };
        // From a leap year's first second: 8 years hold every date there is.
        if schedule.next_after(NEVER_CHECK_FROM).is_none() {
            return Err(err(
                "it never fires: no date matches its day, month and weekday (e.g. 31 February)"
                    .into(),
            ));
        }
        Ok(schedule)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `after` at which the schedule fires,
    /// or `None` if it never does within the next eight years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: UnixMillis) -> Option<UnixMillis> {
        match &self.kind {
            Kind::Every(ms) => {
                let ms = *ms as i64;
                Some((after.div_euclid(ms) + 1) * ms)
            }
            Kind::Fields {
                seconds,
                minutes,
                hours,
                days,
                months,
                weekdays,
                days_restricted,
                weekdays_restricted,
            } => {
                let start = OffsetDateTime::from_unix_timestamp(after.div_euclid(1000) + 1).ok()?;
                let limit = start.year() + 8;
                let mut t = PrimitiveDateTime::new(start.date(), start.time());
                let day_ok = |d: Date| {
                    let dom = days & (1 << d.day()) != 0;
                    let dow = weekdays & (1 << d.weekday().number_days_from_sunday()) != 0;
                    match (days_restricted, weekdays_restricted) {
                        (true, true) => dom || dow,
                        (true, false) => dom,
                        (false, true) => dow,
                        (false, false) => true,
                    }
                };
                loop {
                    if t.year() > limit {
                        return None;
                    }
                    let d = t.date();
                    if months & (1 << u8::from(d.month())) == 0 {
                        // First day of the next month, midnight.
                        let (y, m) = match d.month() {
                            Month::December => (d.year() + 1, Month::January),
                            m => (d.year(), m.next()),
                        };
                        t = PrimitiveDateTime::new(
                            Date::from_calendar_date(y, m, 1).ok()?,
                            Time::MIDNIGHT,
                        );
                        continue;
                    }
                    if !day_ok(d) {
                        t = PrimitiveDateTime::new(d.next_day()?, Time::MIDNIGHT);
                        continue;
                    }
                    if hours & (1 << t.hour()) == 0 {
                        t = PrimitiveDateTime::new(d, Time::from_hms(t.hour(), 0, 0).ok()?)
                            + time::Duration::hours(1);
                        continue;
                    }
                    if minutes & (1 << t.minute()) == 0 {
                        t = PrimitiveDateTime::new(
                            d,
                            Time::from_hms(t.hour(), t.minute(), 0).ok()?,
                        ) + time::Duration::minutes(1);
                        continue;
                    }
                    if seconds & (1 << t.second()) == 0 {
                        t += time::Duration::seconds(1);
                        continue;
                    }
                    return Some(t.assume_utc().unix_timestamp() * 1000);
                }
            }
        }
    }
}

/// Parses one field into a bit set over `lo..=hi`.
fn parse_field(text: &str, lo: u32, hi: u32, names: &[&str], what: &str) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            // Names count from the field's low end: JAN = 1, SUN = 0.
            return Ok(i as u32 + lo);
        }
        let v: u32 = s
            .parse()
            .map_err(|_| format!("{what} field {text:?}: {s:?} is not a number"))?;
        if v < lo || v > hi {
            return Err(format!("{what} field {text:?}: {v} is outside {lo}-{hi}"));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{what} field {text:?}: step {s:?} is not a number"))?;
                if step == 0 {
                    return Err(format!("{what} field {text:?}: a step of 0 never fires"));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(format!(
                    "{what} field {text:?}: range {a}-{b} runs backwards"
                ));
            }
            (a, b)
        } else if part.contains('/') {
            // `5/15` means from 5 to the end, every 15.
            (value(range)?, hi)
        } else {
            let v = value(range)?;
            (v, v)
        };
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> UnixMillis {
        crate::time::parse_rfc3339(s).unwrap()
    }
    fn next(sched: &str, after: &str) -> String {
        let s = Schedule::parse(sched).unwrap();
        crate::time::rfc3339(s.next_after(at(after)).unwrap())
    }

    #[test]
    fn five_field_schedules_fire_on_the_minute() {
        assert_eq!(
            next("*/5 * * * *", "2026-11-24T10:16:29Z"),
            "2026-11-24T10:20:00.000Z"
        );
        assert_eq!(
            next("0 * * * *", "2026-11-24T10:00:00Z"),
            "2026-11-24T11:00:00.000Z"
        );
        assert_eq!(
            next("30 2 * * *", "2026-11-24T10:00:00Z"),
            "2026-11-25T02:30:00.000Z"
        );
        assert_eq!(
            next("0 0 1 JAN *", "2026-11-24T10:00:00Z"),
            "2027-01-01T00:00:00.000Z"
        );
        assert_eq!(
            next("@hourly", "2026-11-24T10:59:59.500Z"),
            "2026-11-24T11:00:00.000Z"
        );
    }

    #[test]
    fn six_field_schedules_have_seconds() {
        assert_eq!(
            next("*/10 * * * * *", "2026-11-24T10:16:29Z"),
            "2026-11-24T10:16:30.000Z"
        );
        assert_eq!(
            next("*/10 * * * * *", "2026-11-24T10:16:30Z"),
            "2026-11-24T10:16:40.000Z"
        );
    }

    #[test]
    fn weekdays_and_month_days_follow_vixie_rules() {
        // 2026-11-24 is a Tuesday.
        assert_eq!(
            next("0 9 * * MON", "2026-11-24T10:00:00Z"),
            "2026-11-30T09:00:00.000Z"
        );
        assert_eq!(
            next("0 9 * * 7", "2026-11-24T10:00:00Z"),
            "2026-11-29T09:00:00.000Z"
        );
        // Either the 1st or a Friday.
        assert_eq!(
            next("0 0 1 * FRI", "2026-11-24T10:00:00Z"),
            "2026-11-27T00:00:00.000Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-11-24T10:00:00Z"),
            "2028-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn a_schedule_says_when_it_runs_and_an_every_how_it_is_aligned() {
        let d = |t: &str| Schedule::parse(t).unwrap().describe();
        assert_eq!(d("@every 1h"), "every 1h (aligned to :00 UTC)");
        assert_eq!(d("@every 15m"), "every 15m (aligned to :00 UTC)");
        assert_eq!(d("@every 30s"), "every 30s (aligned to the minute, UTC)");
        assert_eq!(d("@every 6h"), "every 6h (aligned to 00:00 UTC)");
        assert_eq!(
            d("@every 7m"),
            "every 7m (counted from 1970-01-01 00:00 UTC, not from the deploy)"
        );
        assert_eq!(d("0 3 * * *"), "0 3 * * * (UTC)");
        assert_eq!(d("@hourly"), "@hourly (UTC)");
    }

    #[test]
    fn every_counts_from_the_epoch() {
        assert_eq!(
            next("@every 2s", "2026-11-24T10:00:01Z"),
            "2026-11-24T10:00:02.000Z"
        );
        assert_eq!(
            next("@every 2s", "2026-11-24T10:00:02Z"),
            "2026-11-24T10:00:04.000Z"
        );
    }

    #[test]
    fn impossible_dates_are_refused_because_they_never_fire() {
        let e = Schedule::parse("0 0 31 2 *").unwrap_err();
        assert!(e.to_string().contains("never fires"), "{e}");
        let leap = Schedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            leap.next_after(at("2026-11-24T10:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_say_which_field() {
        let e = |s: &str| Schedule::parse(s).unwrap_err().to_string();
        assert!(e("* * *").contains("expected 5 fields"));
        assert!(e("61 * * * *").contains("minute field"));
        assert!(e("* 24 * * *").contains("hour field"));
        assert!(e("* * 0 * *").contains("day of month field"));
        assert!(e("* * * FOO *").contains("month field"));
        assert!(e("*/0 * * * *").contains("step of 0"));
        assert!(e("5-1 * * * *").contains("backwards"));
        assert!(e("@often").contains("unknown shorthand"));
        assert!(e("@every 10ms").contains("at least 1s"));
        assert!(e("@every 18446744073709551615s").contains("at most 366 days"));
        assert!(e("@every 367d").contains("at most 366 days"));
        assert!(e("0 0 31 2 *").contains("never fires"));
        assert!(e("0 0 30 2 *").contains("never fires"));
        assert!(Schedule::parse("0 0 29 2 *").is_ok(), "leap days fire");
    }
}
