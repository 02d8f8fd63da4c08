//! Rules of the notification outbox: what a notice is, when it may be sent, how
//! failed deliveries are retried, and when subscription-expiry notices fall due.
//!
//! Delivery itself (SMTP, Telegram, webhooks) lives elsewhere; this module only
//! decides, so the decisions can be tested without a clock or a network.

use crate::tenancy::InvalidValue;
use chrono::{DateTime, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// Where a notice is in the outbox.
    NoticeStatus, "notice status" {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Skipped => "skipped",
        Failed => "failed",
        Dead => "dead",
        Cancelled => "cancelled",
        // Waiting while its campaign is paused: not claimed until resumed.
        Held => "held",
    }
);

impl NoticeStatus {
    /// The worker will not touch a notice in a final status again on its own.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Skipped | Self::Failed | Self::Dead | Self::Cancelled
        )
    }

    /// Only undelivered notices may be put back in the queue by staff: requeueing a
    /// sent one would send it twice, and skipped/cancelled ones were stopped on purpose.
    pub fn can_requeue(self) -> bool {
        matches!(self, Self::Dead | Self::Failed)
    }
}

text_enum!(
    /// Why a notice may be sent, which decides the checks made before sending:
    /// `transactional` (identity codes, receipts, confirmations of rights requests)
    /// is always sent unless the address is suppressed; `service` (service messages
    /// of a contract, such as subscription expiry) needs no consent but stops once the
    /// person restricted processing or objected; `subscribed` (marketing, surveys)
    /// needs consent for the purpose and carries `List-Unsubscribe`.
    NoticeCategory, "notice category" {
        Transactional => "transactional",
        Service => "service",
        Subscribed => "subscribed",
    }
);

impl NoticeCategory {
    /// Whether sending needs the person's consent for the notice's purpose.
    pub fn requires_consent(self) -> bool {
        self == Self::Subscribed
    }

    /// Whether a restriction of processing or an objection stops the notice.
    /// Transactional notices are what the person asked for, so nothing but
    /// suppression of the address stops them.
    pub fn stopped_by_restriction(self) -> bool {
        matches!(self, Self::Service | Self::Subscribed)
    }

    /// Whether the message carries `List-Unsubscribe` (RFC 2369 / RFC 8058).
    pub fn has_list_unsubscribe(self) -> bool {
        self == Self::Subscribed
    }
}

text_enum!(
    /// How a notice is delivered.
    NoticeChannel, "notice channel" {
        Email => "email",
        Telegram => "telegram",
        Webhook => "webhook",
    }
);

/// Built-in template kind: a subscription is about to expire (or expires today).
pub const SUBSCRIPTION_EXPIRY: &str = "subscription_expiry";
/// Built-in template kind: the receipt of a consent event.
pub const CONSENT_RECEIPT: &str = "consent_receipt";
/// Built-in template kind: a generic ad-hoc message.
pub const MESSAGE: &str = "message";

/// Template kinds are open (tenants add their own), so they are strings kept to
/// `[a-z0-9_]{1,64}` starting with a letter: safe in URLs, file names and logs.
pub fn validate_kind(kind: &str) -> Result<(), InvalidValue> {
    let ok = (1..=64).contains(&kind.len())
        && kind.as_bytes()[0].is_ascii_lowercase()
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidValue(format!(
            "invalid notice kind '{kind}': use 1-64 characters of a-z, 0-9 and _, starting with a letter"
        )))
    }
}

/// Attempts before a notice is declared dead.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
/// How long a worker owns a notice it claimed; after that another worker may take it,
/// so a crashed worker does not strand notices.
pub const LEASE_SECONDS: i64 = 120;
/// Hard bounces after which an address is suppressed. One bounce can be a
/// transient fault of the receiving server misreported as permanent.
pub const HARD_BOUNCE_LIMIT: i32 = 2;

const RETRY_BASE_MS: i64 = 30_000;
const RETRY_CAP_MS: i64 = 6 * 60 * 60 * 1000;

/// The wait before retry number `attempt` (1-based; 0 is treated as 1).
///
/// Exponential backoff (30 s × 2^(attempt−1), capped at 6 h) with "equal jitter":
/// `jitter` in [0, 1) picks a point between half and all of that, so retries of many
/// notices failing together spread out while each still waits at least half.
/// Jitter outside [0, 1] is clamped, NaN counts as 0.
pub fn retry_delay(attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.max(1) - 1;
    // 30 s × 2^10 already exceeds the cap; stopping the shift there avoids overflow.
    let full = if exponent >= 10 {
        RETRY_CAP_MS
    } else {
        (RETRY_BASE_MS << exponent).min(RETRY_CAP_MS)
    };
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let half = full / 2;
    let spread = ((full - half) as f64 * jitter) as i64;
    Duration::milliseconds(half + spread.min(full - half))
}

/// Whether `count` hard bounces of an address mean it must be suppressed.
pub fn suppress_after_bounces(count: i32) -> bool {
    count >= HARD_BOUNCE_LIMIT
}

/// Days before expiry on which expiry notices are sent (0 = on the day).
pub const DEFAULT_EXPIRY_OFFSETS: [u32; 4] = [30, 7, 1, 0];
const MAX_OFFSET_DAYS: i64 = 365;
const MAX_OFFSETS: usize = 10;
/// Local time of day at which expiry notices fall due: working hours, not midnight.
const NOTICE_HOUR: u32 = 10;

/// Checks a tenant's expiry offsets: 1–10 distinct values of 0..=365 days.
/// Returns them sorted descending (earliest notice first).
pub fn validate_offsets(offsets: &[i64]) -> Result<Vec<u32>, InvalidValue> {
    if offsets.is_empty() || offsets.len() > MAX_OFFSETS {
        return Err(InvalidValue(format!(
            "expiry offsets must have 1 to {MAX_OFFSETS} entries (got {})",
            offsets.len()
        )));
    }
    let mut out = Vec::with_capacity(offsets.len());
    for &offset in offsets {
        if !(0..=MAX_OFFSET_DAYS).contains(&offset) {
            return Err(InvalidValue(format!(
                "expiry offset {offset} is out of range: use 0 to {MAX_OFFSET_DAYS} days"
            )));
        }
        let offset = offset as u32;
        if out.contains(&offset) {
            return Err(InvalidValue(format!(
                "expiry offset {offset} is given more than once"
            )));
        }
        out.push(offset);
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

/// One expiry notice to enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledNotice {
    pub offset_days: u32,
    pub due_at: DateTime<Utc>,
}

/// The expiry notices to enqueue for a subscription expiring at `expires_at`.
///
/// The notice for offset `d` falls due at 10:00 local time (`tz`) on the local date
/// of expiry minus `d` days, but never after the expiry itself. Notices whose time
/// has already come are collapsed into one, the nearest to expiry, due `now`: a
/// person told "7 days left" must not also be told "30 days left" a second later.
/// Sorted by `due_at`; duplicate offsets are scheduled once.
pub fn expiry_schedule(
    expires_at: DateTime<Utc>,
    offsets: &[u32],
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Vec<ScheduledNotice>, InvalidValue> {
    if expires_at <= now {
        return Err(InvalidValue("expires_at must be in the future".into()));
    }
    let expiry_date = expires_at.with_timezone(&tz).date_naive();
    let notice_time = NaiveTime::from_hms_opt(NOTICE_HOUR, 0, 0).expect("10:00 is a valid time");

    let mut offsets = offsets.to_vec();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();

    let mut scheduled = Vec::with_capacity(offsets.len());
    let mut opened: Option<u32> = None;
    for offset in offsets {
        let date = expiry_date
            .checked_sub_days(Days::new(u64::from(offset)))
            .ok_or_else(|| InvalidValue(format!("expiry offset {offset} is out of range")))?;
        let due_at = local_to_utc(tz, date.and_time(notice_time)).min(expires_at);
        if due_at > now {
            scheduled.push(ScheduledNotice {
                offset_days: offset,
                due_at,
            });
        } else {
            // Offsets come largest first, so the last opened one is the smallest.
            opened = Some(offset);
        }
    }
    if let Some(offset_days) = opened {
        scheduled.push(ScheduledNotice {
            offset_days,
            due_at: now,
        });
    }
    scheduled.sort_by(|a, b| {
        a.due_at
            .cmp(&b.due_at)
            .then(b.offset_days.cmp(&a.offset_days))
    });
    Ok(scheduled)
}

/// Whole calendar days from the local date of `now` to the local date of
/// `expires_at` in `tz`: what the person sees as "N days left" (0 on the day,
/// negative once past).
pub fn days_left(expires_at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> i64 {
    let expiry: NaiveDate = expires_at.with_timezone(&tz).date_naive();
    let today: NaiveDate = now.with_timezone(&tz).date_naive();
    (expiry - today).num_days()
}

/// The instant of a local wall-clock time. An ambiguous time (clocks turned back)
/// takes its first occurrence; a time that does not exist (clocks turned forward)
/// moves forward to the first hour that does, as a wall clock would show.
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    for hours in 0..=24 {
        if let Some(at) = tz
            .from_local_datetime(&(local + Duration::hours(hours)))
            .earliest()
        {
            return at.with_timezone(&Utc);
        }
    }
    // No zone has a gap of a whole day; reading the time as UTC still never panics.
    local.and_utc()
}

/// The `Message-ID` of a notice's e-mail. Stable per notice, so a retry after an
/// unclear SMTP failure is recognised by mailboxes as the same message.
pub fn message_id(notice_id: &str, domain: &str) -> String {
    format!("<{notice_id}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn statuses_parse_and_classify() {
        for &s in NoticeStatus::ALL {
            assert_eq!(s.as_str().parse::<NoticeStatus>().unwrap(), s);
            if s.can_requeue() {
                assert!(s.is_final(), "{s} can be requeued only once final");
            }
        }
        assert!(!NoticeStatus::Queued.is_final());
        assert!(!NoticeStatus::Sending.is_final());
        assert!(NoticeStatus::Sent.is_final());
        assert!(!NoticeStatus::Sent.can_requeue());
        assert!(NoticeStatus::Dead.can_requeue());
        assert!(NoticeStatus::Failed.can_requeue());
        assert!(!NoticeStatus::Cancelled.can_requeue());
        assert!("lost".parse::<NoticeStatus>().is_err());
    }

    #[test]
    fn categories_carry_their_rules() {
        use NoticeCategory::*;
        assert!(!Transactional.requires_consent() && !Transactional.stopped_by_restriction());
        assert!(!Service.requires_consent() && Service.stopped_by_restriction());
        assert!(Subscribed.requires_consent() && Subscribed.stopped_by_restriction());
        assert!(Subscribed.has_list_unsubscribe() && !Service.has_list_unsubscribe());
        assert_eq!("service".parse::<NoticeCategory>().unwrap(), Service);
        assert_eq!(
            "webhook".parse::<NoticeChannel>().unwrap(),
            NoticeChannel::Webhook
        );
    }

    #[test]
    fn kinds_are_validated() {
        for ok in [
            SUBSCRIPTION_EXPIRY,
            CONSENT_RECEIPT,
            MESSAGE,
            "a",
            "survey_2025",
        ] {
            assert!(validate_kind(ok).is_ok(), "{ok}");
        }
        assert!(validate_kind(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "2fa",
            "_x",
            "Message",
            "with-dash",
            "sp ace",
            "é",
            &"a".repeat(65),
        ] {
            assert!(validate_kind(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_bounds_grow_and_stop_at_the_cap() {
        let cap = Duration::hours(6);
        let mut last = (Duration::zero(), Duration::zero());
        for attempt in 1..=40 {
            let low = retry_delay(attempt, 0.0);
            let high = retry_delay(attempt, 0.999_999);
            assert!(low >= last.0 && high >= last.1, "attempt {attempt}");
            assert!(low <= high && high <= cap, "attempt {attempt}");
            last = (low, high);
        }
        assert_eq!(retry_delay(1, 0.0), Duration::seconds(15));
        assert_eq!(retry_delay(2, 0.0), Duration::seconds(30));
        assert_eq!(retry_delay(3, 0.0), Duration::seconds(60));
        assert_eq!(retry_delay(0, 0.5), retry_delay(1, 0.5));
        assert_eq!(retry_delay(11, 0.0), Duration::hours(3));
        assert_eq!(retry_delay(u32::MAX, 0.0), Duration::hours(3));
        assert!(retry_delay(u32::MAX, 0.999_999) > Duration::minutes(359));
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for attempt in [1, 4, 9, 30] {
            let full = retry_delay(attempt, 1.0);
            for j in [0.0, 0.1, 0.5, 0.9, 0.999] {
                let d = retry_delay(attempt, j);
                assert!(d * 2 >= full && d <= full, "attempt {attempt}, jitter {j}");
            }
            assert_eq!(retry_delay(attempt, -3.0), full / 2);
            assert_eq!(retry_delay(attempt, f64::NAN), full / 2);
            assert_eq!(retry_delay(attempt, 7.0), full);
            assert_eq!(retry_delay(attempt, f64::INFINITY), full);
        }
    }

    #[test]
    fn bounces_suppress_at_the_limit() {
        assert!(!suppress_after_bounces(0));
        assert!(!suppress_after_bounces(1));
        assert!(suppress_after_bounces(2));
        assert!(suppress_after_bounces(5));
    }

    #[test]
    fn offsets_are_validated_and_sorted() {
        assert_eq!(validate_offsets(&[0, 30, 1, 7]).unwrap(), vec![30, 7, 1, 0]);
        assert_eq!(validate_offsets(&[365]).unwrap(), vec![365]);
        for bad in [
            vec![],
            vec![1, 1],
            vec![-1],
            vec![366],
            (0..11).collect::<Vec<i64>>(),
        ] {
            assert!(validate_offsets(&bad).is_err(), "{bad:?}");
        }
        assert!(validate_offsets(&(0..10).collect::<Vec<i64>>()).is_ok());
    }

    #[test]
    fn expiry_schedules() {
        let utc_tz = chrono_tz::UTC;
        let moscow = chrono_tz::Europe::Moscow;
        let berlin = chrono_tz::Europe::Berlin;
        // (case, expires_at, tz, now, expected (offset, due_at))
        type Case = (
            &'static str,
            &'static str,
            Tz,
            &'static str,
            Vec<(u32, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "created long before: all four",
                "2025-06-30T15:00:00Z",
                utc_tz,
                "2025-01-01T00:00:00Z",
                vec![
                    (30, "2025-05-31T10:00:00Z"),
                    (7, "2025-06-23T10:00:00Z"),
                    (1, "2025-06-29T10:00:00Z"),
                    (0, "2025-06-30T10:00:00Z"),
                ],
            ),
            (
                "created 3 days before: 7-day notice now, then 1 and 0",
                "2025-06-30T15:00:00Z",
                utc_tz,
                "2025-06-27T12:00:00Z",
                vec![
                    (7, "2025-06-27T12:00:00Z"),
                    (1, "2025-06-29T10:00:00Z"),
                    (0, "2025-06-30T10:00:00Z"),
                ],
            ),
            (
                "created on the day after 10:00: only the on-the-day notice, now",
                "2025-06-30T15:00:00Z",
                utc_tz,
                "2025-06-30T11:00:00Z",
                vec![(0, "2025-06-30T11:00:00Z")],
            ),
            (
                "expiring before 10:00: the on-the-day notice comes at expiry",
                "2025-06-30T08:00:00Z",
                utc_tz,
                "2025-06-20T00:00:00Z",
                vec![
                    (30, "2025-06-20T00:00:00Z"),
                    (7, "2025-06-23T10:00:00Z"),
                    (1, "2025-06-29T10:00:00Z"),
                    (0, "2025-06-30T08:00:00Z"),
                ],
            ),
            (
                // 22:30 UTC on the 10th is 01:30 on the 11th in Moscow.
                "Moscow: the local date is a day after the UTC date",
                "2025-06-10T22:30:00Z",
                moscow,
                "2025-06-01T00:00:00Z",
                vec![
                    (30, "2025-06-01T00:00:00Z"),
                    (7, "2025-06-04T07:00:00Z"),
                    (1, "2025-06-10T07:00:00Z"),
                    (0, "2025-06-10T22:30:00Z"),
                ],
            ),
            (
                "the same instant read in UTC",
                "2025-06-10T22:30:00Z",
                utc_tz,
                "2025-06-01T00:00:00Z",
                vec![
                    (30, "2025-06-01T00:00:00Z"),
                    (7, "2025-06-03T10:00:00Z"),
                    (1, "2025-06-09T10:00:00Z"),
                    (0, "2025-06-10T10:00:00Z"),
                ],
            ),
            (
                // Clocks go forward on 30 March 2025: 10:00 is 09:00Z before, 08:00Z after.
                "Berlin across the start of summer time",
                "2025-04-05T12:00:00Z",
                berlin,
                "2025-01-01T00:00:00Z",
                vec![
                    (30, "2025-03-06T09:00:00Z"),
                    (7, "2025-03-29T09:00:00Z"),
                    (1, "2025-04-04T08:00:00Z"),
                    (0, "2025-04-05T08:00:00Z"),
                ],
            ),
        ];
        for (case, expires_at, tz, now, expected) in cases {
            let got = expiry_schedule(utc(expires_at), &DEFAULT_EXPIRY_OFFSETS, tz, utc(now))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let expected: Vec<ScheduledNotice> = expected
                .into_iter()
                .map(|(offset_days, due)| ScheduledNotice {
                    offset_days,
                    due_at: utc(due),
                })
                .collect();
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn expiry_in_the_past_is_an_error() {
        let at = utc("2025-06-30T15:00:00Z");
        for now in [at, at + Duration::seconds(1), at + Duration::days(3)] {
            let err =
                expiry_schedule(at, &DEFAULT_EXPIRY_OFFSETS, chrono_tz::UTC, now).unwrap_err();
            assert_eq!(err.0, "expires_at must be in the future");
        }
    }

    #[test]
    fn each_offset_is_scheduled_once_and_extremes_do_not_panic() {
        let at = utc("2025-06-30T15:00:00Z");
        let now = utc("2025-01-01T00:00:00Z");
        let got = expiry_schedule(at, &[7, 7, 0, 0], chrono_tz::UTC, now).unwrap();
        assert_eq!(got.len(), 2);
        assert!(
            expiry_schedule(at, &[], chrono_tz::UTC, now)
                .unwrap()
                .is_empty()
        );
        assert!(expiry_schedule(at, &[u32::MAX], chrono_tz::UTC, now).is_err());
    }

    #[test]
    fn local_times_in_dst_transitions_resolve() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // 02:30 does not exist on 30 March 2025; the clock shows 03:30 (CEST) instead.
        assert_eq!(
            local_to_utc(berlin, at("2025-03-30 02:30")),
            utc("2025-03-30T01:30:00Z")
        );
        // 02:30 happens twice on 26 October 2025; the first is still summer time.
        assert_eq!(
            local_to_utc(berlin, at("2025-10-26 02:30")),
            utc("2025-10-26T00:30:00Z")
        );
    }

    #[test]
    fn days_left_counts_local_calendar_days() {
        let expires = utc("2025-06-10T22:30:00Z");
        let now = utc("2025-06-10T20:00:00Z");
        assert_eq!(days_left(expires, now, chrono_tz::Europe::Moscow), 1);
        assert_eq!(days_left(expires, now, chrono_tz::UTC), 0);
        assert_eq!(
            days_left(expires, utc("2025-06-01T00:00:00Z"), chrono_tz::UTC),
            9
        );
        assert_eq!(
            days_left(expires, utc("2025-06-12T00:00:00Z"), chrono_tz::UTC),
            -2
        );
    }

    #[test]
    fn message_ids_are_stable() {
        assert_eq!(message_id("abc", "mail.test"), "<abc@mail.test>");
        assert_eq!(
            message_id("abc", "mail.test"),
            message_id("abc", "mail.test")
        );
    }
}
