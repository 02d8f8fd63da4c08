//! Telegram's sending limits as a schedule of send slots (pure).
//!
//! Each limit is a bucket holding the earliest time its next message may go: one for
//! the bot overall, one per chat. A send reserves the first time every bucket it uses
//! allows, and moves each of them one gap past that time. A reservation further ahead
//! than `max_wait` is not taken: the message waits in the outbox instead of holding a
//! sending slot (and a withdrawal waiting for sends in flight) that long.
//!
//! The same rule runs on buckets kept in memory (one process) and on rows of
//! `telegram_send_slots` locked in one short transaction (every worker process).
//!
//! The gaps are a little wider than Telegram's limits: a process sends when its own
//! clock says the slot has come, a few milliseconds after reserving it, and those
//! milliseconds differ between processes.

use std::time::Duration;

/// The gaps between messages Telegram allows, and how far ahead a send may be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// Between any two messages of the bot: 30 a second.
    pub overall_gap: Duration,
    /// Between two messages to one person: 1 a second.
    pub private_chat_gap: Duration,
    /// Between two messages to one group or channel: 20 a minute.
    pub group_chat_gap: Duration,
    /// The longest wait for a slot taken; beyond it the message is put off.
    pub max_wait: Duration,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            // 29 a second: a message's worth of room for the jitter between processes.
            overall_gap: Duration::from_micros(34_500),
            private_chat_gap: Duration::from_millis(1_100),
            group_chat_gap: Duration::from_millis(3_050),
            max_wait: Duration::from_secs(2),
        }
    }
}

impl SendLimits {
    /// The gap for one chat: Telegram gives groups, supergroups and channels negative
    /// ids, people positive ones.
    pub fn chat_gap(&self, chat_id: i64) -> Duration {
        if chat_id < 0 {
            self.group_chat_gap
        } else {
            self.private_chat_gap
        }
    }
}

/// What a reservation came to, relative to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Send after waiting this long; the buckets were moved.
    Taken(Duration),
    /// The first free slot is this far ahead, beyond `max_wait`; nothing was booked.
    Later(Duration),
}

/// The buckets a send uses, as the earliest next-send times (microseconds on any one
/// clock; `i64::MIN` for a bucket never used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub overall: i64,
    pub chat: i64,
}

/// The longest Telegram's flood control holds every send off.
pub const MAX_HOLD_OFF: Duration = Duration::from_secs(3600);

/// Reserves a slot at `now` for a message to `chat_id`: the slot and the buckets
/// to store after it (when they differ from those given).
///
/// A bucket further ahead than any reservation or hold-off could have put it (a
/// database clock stepped back, a tampered row) is brought back that far, so it
/// frees up in seconds, not when the wrong time comes.
pub fn reserve(limits: &SendLimits, now: i64, chat_id: i64, buckets: Buckets) -> (Slot, Buckets) {
    let overall = buckets
        .overall
        .min(now.saturating_add(micros(MAX_HOLD_OFF + limits.max_wait + limits.overall_gap)));
    let chat = buckets
        .chat
        .min(now.saturating_add(micros(limits.max_wait + limits.chat_gap(chat_id))));
    let at = now.max(overall).max(chat);
    let wait = Duration::from_micros((at - now) as u64);
    if wait > limits.max_wait {
        return (Slot::Later(wait), Buckets { overall, chat });
    }
    let after = Buckets {
        overall: at + micros(limits.overall_gap),
        chat: at + micros(limits.chat_gap(chat_id)),
    };
    (Slot::Taken(wait), after)
}

/// The overall bucket after Telegram answered `429 retry_after` at `now`: nothing goes
/// before `now + retry_after` (at most [`MAX_HOLD_OFF`]).
pub fn hold_off(now: i64, overall: i64, retry_after: Duration) -> i64 {
    overall.max(now.saturating_add(micros(retry_after.min(MAX_HOLD_OFF))))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Buckets = Buckets {
        overall: i64::MIN,
        chat: i64::MIN,
    };

    fn run(limits: &SendLimits, chats: &[i64]) -> Vec<(i64, Slot)> {
        let mut overall = i64::MIN;
        let mut per_chat = std::collections::HashMap::new();
        chats
            .iter()
            .map(|&chat| {
                let buckets = Buckets {
                    overall,
                    chat: *per_chat.get(&chat).unwrap_or(&i64::MIN),
                };
                let (slot, after) = reserve(limits, 0, chat, buckets);
                overall = after.overall;
                per_chat.insert(chat, after.chat);
                (chat, slot)
            })
            .collect()
    }

    #[test]
    fn a_first_message_goes_at_once() {
        let (slot, after) = reserve(&SendLimits::default(), 1_000, 7, FRESH);
        assert_eq!(slot, Slot::Taken(Duration::ZERO));
        assert_eq!(after.overall, 1_000 + 34_500);
        assert_eq!(after.chat, 1_000 + 1_100_000);
    }

    #[test]
    fn no_second_holds_thirty_messages_to_different_people() {
        let limits = SendLimits {
            max_wait: Duration::from_secs(60),
            ..SendLimits::default()
        };
        let chats: Vec<i64> = (1..=100).collect();
        let slots: Vec<i64> = run(&limits, &chats)
            .into_iter()
            .map(|(_, s)| match s {
                Slot::Taken(w) => w.as_micros() as i64,
                Slot::Later(_) => panic!("within max_wait"),
            })
            .collect();
        for (i, start) in slots.iter().enumerate() {
            let in_second = slots[i..]
                .iter()
                .filter(|&&t| t < start + 1_000_000)
                .count();
            assert!(
                in_second <= 30,
                "{in_second} slots in the second from {start}"
            );
        }
        // Nor is the rate wasted: the 30th message goes within 1.05 s of the first.
        assert!(slots[29] <= 1_050_000, "{}", slots[29]);
    }

    #[test]
    fn one_person_gets_one_message_a_second_and_a_group_one_every_three() {
        let limits = SendLimits {
            max_wait: Duration::from_secs(60),
            ..SendLimits::default()
        };
        let slots = run(&limits, &[5, 5, 5, -9, -9]);
        let waits: Vec<_> = slots
            .iter()
            .map(|(_, s)| match s {
                Slot::Taken(w) => *w,
                Slot::Later(_) => unreachable!(),
            })
            .collect();
        assert_eq!(waits[1], Duration::from_millis(1_100));
        assert_eq!(waits[2], Duration::from_millis(2_200));
        assert_eq!(waits[4] - waits[3], Duration::from_millis(3_050));
    }

    #[test]
    fn a_slot_beyond_the_longest_wait_is_not_taken_and_moves_nothing() {
        let limits = SendLimits::default();
        let busy = Buckets {
            overall: 0,
            chat: 2_500_000,
        };
        let (slot, after) = reserve(&limits, 0, 5, busy);
        assert_eq!(slot, Slot::Later(Duration::from_micros(2_500_000)));
        assert_eq!(after, busy);
    }

    #[test]
    fn flood_control_holds_every_send_off() {
        let overall = hold_off(10, 20, Duration::from_secs(3));
        assert_eq!(overall, 3_000_010);
        let (slot, _) = reserve(
            &SendLimits::default(),
            10,
            1,
            Buckets {
                overall,
                chat: i64::MIN,
            },
        );
        assert_eq!(slot, Slot::Later(Duration::from_secs(3)));
        // A hold-off never brings the bucket forward, and is bounded.
        assert_eq!(hold_off(0, 9_000_000, Duration::from_secs(1)), 9_000_000);
        assert_eq!(
            hold_off(0, 0, Duration::from_secs(86_400)),
            MAX_HOLD_OFF.as_micros() as i64
        );
    }

    #[test]
    fn a_bucket_from_a_clock_that_stepped_back_counts_only_as_far_as_it_could_be() {
        let limits = SendLimits::default();
        // The chat's row says "in a day": no reservation could have put it there.
        let (slot, _) = reserve(
            &limits,
            0,
            5,
            Buckets {
                overall: i64::MIN,
                chat: 86_400_000_000,
            },
        );
        assert_eq!(slot, Slot::Later(limits.max_wait + limits.private_chat_gap));
        let (slot, _) = reserve(
            &limits,
            0,
            5,
            Buckets {
                overall: i64::MAX,
                chat: i64::MIN,
            },
        );
        assert!(matches!(slot, Slot::Later(w) if w <= MAX_HOLD_OFF + Duration::from_secs(3)));
        // Stored as brought back, the chat frees up once that much time has passed.
        let (_, after) = reserve(
            &limits,
            0,
            5,
            Buckets {
                overall: i64::MIN,
                chat: 86_400_000_000,
            },
        );
        let later = micros(limits.max_wait + limits.private_chat_gap) + 1;
        let (slot, _) = reserve(&limits, later, 5, after);
        assert_eq!(slot, Slot::Taken(Duration::ZERO));
    }
}
