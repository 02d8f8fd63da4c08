//! Campaigns (policy 2.1, 7): one message to everyone an audience names, through the
//! consent gate, at a capped rate, once per person. The rules here are pure: what a
//! campaign may be, which step its state allows, when each message is due and how
//! the outbox's outcomes read as a campaign's results.

use crate::notice::NoticeChannel;
use crate::tenancy::InvalidValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// What a campaign is for, which decides its audience and its gate.
    CampaignKind, "campaign kind" {
        // Messages serving a purpose, to the people whose consent (or, on another
        // basis, lack of objection) allows it: subscribed, with an unsubscribe link.
        Marketing => "marketing",
        // A material change of the privacy policy (policy 7), to everyone the
        // company holds data about: a service message, not stopped by a marketing
        // withdrawal, stopped by restriction and erasure.
        PolicyNotice => "policy_notice",
        // A consent purpose widened: to the people whose consent predates the
        // widening, asking them to confirm. Under the purpose's own consent, on
        // what it allowed before.
        Reconsent => "reconsent",
        // A breach of the people's data (GDPR art. 34; 152-FZ art. 21 part 3.1):
        // to the people an incident affected, a transactional message the law
        // requires, stopped only by erasure.
        IncidentNotice => "incident_notice",
    }
);

text_enum!(
    /// Where a campaign is.
    CampaignStatus, "campaign status" {
        Draft => "draft",
        // The audience is being queued (a start interrupted by a crash resumes).
        Starting => "starting",
        Scheduled => "scheduled",
        Sending => "sending",
        Paused => "paused",
        Sent => "sent",
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// Which channel each person gets the message on.
    ChannelRule, "channel rule" {
        Email => "email",
        Telegram => "telegram",
        // Telegram where the person has a chat, email otherwise.
        PreferTelegram => "prefer_telegram",
    }
);

impl CampaignKind {
    /// A notice the law or the policy requires: only staff who handle people's
    /// rights may pause or cancel it.
    pub fn required_notice(self) -> bool {
        matches!(
            self,
            CampaignKind::PolicyNotice | CampaignKind::IncidentNotice
        )
    }
}

impl ChannelRule {
    /// The notice's channel and whether it may fall back to email.
    pub fn notice_channel(self) -> (NoticeChannel, bool) {
        match self {
            Self::Email => (NoticeChannel::Email, false),
            Self::Telegram => (NoticeChannel::Telegram, false),
            Self::PreferTelegram => (NoticeChannel::Telegram, true),
        }
    }

    /// The consent channels the rule may use, each of which the purpose must allow.
    pub fn channels(self) -> &'static [crate::consent::Channel] {
        use crate::consent::Channel;
        match self {
            Self::Email => &[Channel::Email],
            Self::Telegram => &[Channel::Telegram],
            Self::PreferTelegram => &[Channel::Telegram, Channel::Email],
        }
    }
}

/// What a staff member asks of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Start,
    Pause,
    Resume,
    Cancel,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }
}

/// The status `step` leads to from `from`, or why it cannot be taken. A start goes
/// through `starting`; the flow then settles on scheduled or sending.
pub fn step(from: CampaignStatus, step: Step) -> Result<CampaignStatus, String> {
    use CampaignStatus as S;
    let to = match (step, from) {
        (Step::Start, S::Draft | S::Starting) => S::Starting,
        (Step::Pause, S::Scheduled | S::Sending) => S::Paused,
        (Step::Resume, S::Paused) => S::Sending,
        (Step::Cancel, S::Draft | S::Starting | S::Scheduled | S::Sending | S::Paused) => {
            S::Cancelled
        }
        _ => {
            return Err(format!(
                "a {from} campaign cannot be asked to {}",
                step.as_str()
            ));
        }
    };
    Ok(to)
}

/// The highest rate cap a campaign may set, per minute.
pub const MAX_RATE_PER_MINUTE: i32 = 600_000;
/// How far in the past `send_at` may lie (clock skew of the caller).
pub const SEND_AT_TOLERANCE_SECONDS: i64 = 60;
/// Tags one audience may name.
pub const MAX_AUDIENCE_TAGS: usize = 20;
/// Subjects an audience may list by id.
pub const MAX_AUDIENCE_SUBJECTS: usize = 10_000;
/// Tags one subject may carry.
pub const MAX_TAGS_PER_SUBJECT: usize = 50;

pub fn validate_rate(rate: i32) -> Result<(), InvalidValue> {
    if (1..=MAX_RATE_PER_MINUTE).contains(&rate) {
        Ok(())
    } else {
        Err(InvalidValue(format!(
            "rate_per_minute must be between 1 and {MAX_RATE_PER_MINUTE}, not {rate}"
        )))
    }
}

pub fn validate_send_at(send_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), InvalidValue> {
    if send_at < now - Duration::seconds(SEND_AT_TOLERANCE_SECONDS) {
        return Err(InvalidValue(format!(
            "send_at {} is in the past; leave it out to send when the campaign starts",
            send_at.to_rfc3339()
        )));
    }
    Ok(())
}

/// Digits in a row that make a tag look like a phone or document number.
const MAX_DIGIT_RUN: usize = 6;

/// A tag: a non-personal label (`vip`, `plan:pro`, `city-msk`), 1–40 of lowercase
/// letters, digits, `_`, `-`, `.`, `:`, starting with a letter or digit, with no
/// more than six digits in a row. Never an email, a name or a number that names a
/// person: the tag list is visible to every staff member of the tenant. The error
/// does not repeat the tag (it may be such data, sent by mistake).
pub fn validate_tag(tag: &str) -> Result<(), InvalidValue> {
    let longest_digits = tag
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    let ok = (1..=40).contains(&tag.len())
        && longest_digits <= MAX_DIGIT_RUN
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && tag.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':')
        });
    if ok {
        Ok(())
    } else {
        Err(InvalidValue(
            "invalid tag: use 1-40 lowercase letters, digits, '_', '-', '.', ':' (starting \
             with a letter or digit, at most 6 digits in a row); a tag is a label, never \
             personal data"
                .into(),
        ))
    }
}

/// A subject's tags, checked and in one order without repeats.
pub fn normalise_tags(tags: &[String]) -> Result<Vec<String>, InvalidValue> {
    if tags.len() > MAX_TAGS_PER_SUBJECT {
        return Err(InvalidValue(format!(
            "a subject carries at most {MAX_TAGS_PER_SUBJECT} tags"
        )));
    }
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        validate_tag(tag)?;
        out.push(tag.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// When the `index`-th message (from 0) of a campaign starting at `start` is due at
/// `rate` per minute: evenly spaced, so the cap holds over any minute.
pub fn due_at(start: DateTime<Utc>, index: u64, rate: i32) -> DateTime<Utc> {
    let rate = u64::try_from(rate.max(1)).unwrap_or(1);
    let millis = index.saturating_mul(60_000) / rate;
    start + Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX / 2))
}

text_enum!(
    /// Why a campaign message did not go out, as its results group them.
    SkipGroup, "skip reason" {
        // The consent was withdrawn (or lapsed) after the campaign started.
        Withdrawn => "withdrawn",
        Restricted => "restricted",
        Objected => "objected",
        // No address or chat on the channels the rule allows.
        Unreachable => "unreachable",
        // The address is suppressed after hard bounces or complaints.
        Suppressed => "suppressed",
        // The person was erased.
        Erased => "erased",
        // The campaign was cancelled before the message's turn.
        Cancelled => "cancelled",
        Other => "other",
    }
);

impl SkipGroup {
    /// The group of a reason the gate or the sender recorded.
    pub fn of(reason: &str) -> Self {
        match reason {
            "withdrawn" | "no_consent" | "expired" => Self::Withdrawn,
            "restricted" => Self::Restricted,
            "objected" => Self::Objected,
            "no_channel" | "unreachable" | "blocked" | "no_chat" => Self::Unreachable,
            "suppressed" => Self::Suppressed,
            "erased" | "unknown_subject" => Self::Erased,
            "campaign_cancelled" => Self::Cancelled,
            _ => Self::Other,
        }
    }
}

/// Counts of a campaign's messages, read from the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// People the audience resolved to when the campaign started.
    pub audience: i64,
    /// Waiting for their turn (or held while paused).
    pub queued: i64,
    /// In flight right now.
    pub sending: i64,
    pub sent: i64,
    /// By reason: withdrawn, restricted, objected, unreachable, suppressed, erased,
    /// cancelled, other.
    pub skipped: std::collections::BTreeMap<String, i64>,
    /// Gave up on after retries or refused by the server (bounces included).
    pub failed: i64,
    /// Refused by the recipient's mail server as undeliverable.
    pub bounced: i64,
    /// People who withdrew through this campaign's own links (unsubscribe, the
    /// bot's button) after it reached them.
    pub withdrew: i64,
}

impl Progress {
    /// Adds the outbox's count of messages in `status` for `reason`.
    pub fn add(&mut self, status: &str, reason: Option<&str>, n: i64) {
        match status {
            "queued" | "held" => self.queued += n,
            "sending" => self.sending += n,
            "sent" => self.sent += n,
            "failed" | "dead" => {
                self.failed += n;
                if reason.is_some_and(|r| r.starts_with("bounce")) {
                    self.bounced += n;
                }
            }
            "skipped" | "cancelled" => {
                // A message cancelled by the campaign, or by an erasure (`erasure`).
                let group = match (status, reason) {
                    ("cancelled", Some("erasure")) => SkipGroup::Erased,
                    ("cancelled", _) => SkipGroup::Cancelled,
                    (_, reason) => SkipGroup::of(reason.unwrap_or_default()),
                };
                *self.skipped.entry(group.as_str().to_owned()).or_default() += n;
            }
            _ => {}
        }
    }

    /// Messages still to go out (or in flight).
    pub fn outstanding(&self) -> i64 {
        self.queued + self.sending
    }
}

/// The status a started campaign shows at `now`: scheduled before its time,
/// sending while messages are outstanding, sent after.
pub fn settled_status(
    stored: CampaignStatus,
    send_at: DateTime<Utc>,
    progress: &Progress,
    now: DateTime<Utc>,
) -> CampaignStatus {
    match stored {
        CampaignStatus::Scheduled | CampaignStatus::Sending => {
            if progress.outstanding() == 0 {
                CampaignStatus::Sent
            } else if now < send_at {
                CampaignStatus::Scheduled
            } else {
                CampaignStatus::Sending
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn steps_follow_the_lifecycle() {
        use CampaignStatus as S;
        assert_eq!(step(S::Draft, Step::Start), Ok(S::Starting));
        assert_eq!(step(S::Starting, Step::Start), Ok(S::Starting), "resumes");
        assert!(step(S::Sending, Step::Start).is_err(), "once per campaign");
        assert_eq!(step(S::Sending, Step::Pause), Ok(S::Paused));
        assert_eq!(step(S::Scheduled, Step::Pause), Ok(S::Paused));
        assert!(step(S::Draft, Step::Pause).is_err());
        assert_eq!(step(S::Paused, Step::Resume), Ok(S::Sending));
        assert!(step(S::Sending, Step::Resume).is_err());
        for s in [S::Draft, S::Scheduled, S::Sending, S::Paused] {
            assert_eq!(step(s, Step::Cancel), Ok(S::Cancelled));
        }
        assert!(step(S::Sent, Step::Cancel).is_err());
        let err = step(S::Cancelled, Step::Resume).unwrap_err();
        assert!(err.contains("cancelled") && err.contains("resume"), "{err}");
    }

    #[test]
    fn messages_are_spaced_to_hold_the_cap() {
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        assert_eq!(due_at(start, 0, 60), start);
        assert_eq!(due_at(start, 1, 60), start + Duration::seconds(1));
        assert_eq!(due_at(start, 60, 60), start + Duration::minutes(1));
        assert_eq!(due_at(start, 3, 120_000), start + Duration::milliseconds(1));
        // Within any minute at most `rate` messages are due.
        let rate = 7;
        let in_first_minute = (0..100)
            .filter(|&i| due_at(start, i, rate) < start + Duration::minutes(1))
            .count();
        assert_eq!(in_first_minute, 7);
    }

    #[test]
    fn bad_input_is_named() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        assert!(validate_rate(0).unwrap_err().0.contains("rate_per_minute"));
        assert!(validate_rate(MAX_RATE_PER_MINUTE + 1).is_err());
        assert!(validate_rate(1).is_ok());
        assert!(validate_send_at(now - Duration::hours(1), now).is_err());
        assert!(validate_send_at(now - Duration::seconds(5), now).is_ok());
        assert!(validate_send_at(now + Duration::days(3), now).is_ok());
    }

    #[test]
    fn tags_are_labels_not_people() {
        for ok in [
            "vip",
            "plan:pro",
            "city-msk",
            "2026.q4",
            "a_b",
            "cohort-202612",
        ] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "VIP",
            "anna@example.com",
            "-x",
            "с кириллицей",
            &"x".repeat(41),
            "79161234567",
            "inn:7707083893",
        ] {
            let err = validate_tag(bad).unwrap_err();
            assert!(bad.is_empty() || !err.0.contains(bad), "{}", err.0);
        }
        let tags = normalise_tags(&["vip".into(), "a".into(), "vip".into()]).unwrap();
        assert_eq!(tags, ["a", "vip"]);
        let many: Vec<String> = (0..=MAX_TAGS_PER_SUBJECT)
            .map(|i| format!("t{i}"))
            .collect();
        assert!(normalise_tags(&many).is_err());
    }

    #[test]
    fn outcomes_read_as_results() {
        let mut p = Progress {
            audience: 10,
            ..Progress::default()
        };
        p.add("sent", None, 4);
        p.add("queued", None, 1);
        p.add("held", None, 1);
        p.add("skipped", Some("withdrawn"), 1);
        p.add("skipped", Some("no_consent"), 1);
        p.add("skipped", Some("suppressed"), 1);
        p.add("failed", Some("bounce 550: no such user"), 1);
        p.add("cancelled", Some("campaign_cancelled"), 2);
        p.add("cancelled", Some("erasure"), 1);
        assert_eq!(p.queued, 2);
        assert_eq!(p.skipped["withdrawn"], 2);
        assert_eq!(p.skipped["suppressed"], 1);
        assert_eq!(p.skipped["cancelled"], 2);
        assert_eq!(
            p.skipped["erased"], 1,
            "an erasure is not the campaign's cancel"
        );
        assert_eq!((p.failed, p.bounced), (1, 1));
        assert_eq!(p.outstanding(), 2);
    }

    #[test]
    fn a_started_campaign_settles_by_its_messages() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let waiting = Progress {
            queued: 3,
            ..Progress::default()
        };
        let done = Progress::default();
        let s = CampaignStatus::Scheduled;
        assert_eq!(
            settled_status(s, at, &waiting, at - Duration::minutes(1)),
            CampaignStatus::Scheduled
        );
        assert_eq!(settled_status(s, at, &waiting, at), CampaignStatus::Sending);
        assert_eq!(settled_status(s, at, &done, at), CampaignStatus::Sent);
        assert_eq!(
            settled_status(CampaignStatus::Paused, at, &waiting, at),
            CampaignStatus::Paused
        );
    }

    #[test]
    fn channel_rules_map_to_notices() {
        assert_eq!(
            ChannelRule::PreferTelegram.notice_channel(),
            (NoticeChannel::Telegram, true)
        );
        assert_eq!(
            ChannelRule::Email.notice_channel(),
            (NoticeChannel::Email, false)
        );
        assert_eq!("prefer_telegram".parse(), Ok(ChannelRule::PreferTelegram));
        assert!("sms".parse::<ChannelRule>().is_err());
    }
}
