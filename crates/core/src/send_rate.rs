//! Telegram's sending limits as a schedule of send slots (pure).
//!
//! Each limit is a bucket holding the earliest time its next message may go: one for
//! the bot overall, one per chat. A send reserves the first time every bucket it uses
//! allows, and moves each of them one gap past that time. A reservation further ahead
//! than `max_wait` is not taken: the message waits in the outbox instead of holding a
//! sending slot (and a withdrawal waiting for sends in flight) that long.
//!
//! The same rule runs in memory for one process and as the PostgreSQL function
//! `assent_take_telegram_slot` for many (see that migration).

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
            // Rounded up from 1/30 s, so 30 slots never fit in one second.
            overall_gap: Duration::from_micros(33_400),
            private_chat_gap: Duration::from_secs(1),
            group_chat_gap: Duration::from_secs(3),
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
    /// The first free slot is this far ahead, beyond `max_wait`; nothing was moved.
    Later(Duration),
}

/// The buckets a send uses, as the earliest next-send times (microseconds on any one
/// clock; `i64::MIN` for a bucket never used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub overall: i64,
    pub chat: i64,
}

/// Reserves a slot at `now` for a message to `chat_id`: the slot and the buckets
/// after it (unchanged when the slot is [`Slot::Later`]).
pub fn reserve(limits: &SendLimits, now: i64, chat_id: i64, buckets: Buckets) -> (Slot, Buckets) {
    let at = now.max(buckets.overall).max(buckets.chat);
    let wait = Duration::from_micros((at - now) as u64);
    if wait > limits.max_wait {
        return (Slot::Later(wait), buckets);
    }
    let after = Buckets {
        overall: at + micros(limits.overall_gap),
        chat: at + micros(limits.chat_gap(chat_id)),
    };
    (Slot::Taken(wait), after)
}

/// The overall bucket after Telegram answered `429 retry_after` at `now`: nothing goes
/// before `now + retry_after`.
pub fn hold_off(now: i64, overall: i64, retry_after: Duration) -> i64 {
    overall.max(now + micros(retry_after))
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
        assert_eq!(after.overall, 1_000 + 33_400);
        assert_eq!(after.chat, 1_000 + 1_000_000);
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
        // And the rate is not wasted: the 31st message goes within 1.01 s.
        assert!(slots[30] <= 1_010_000, "{}", slots[30]);
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
        assert_eq!(waits[1], Duration::from_secs(1));
        assert_eq!(waits[2], Duration::from_secs(2));
        assert_eq!(waits[4] - waits[3], Duration::from_secs(3));
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
        // A hold-off never brings the bucket forward.
        assert_eq!(hold_off(0, 9_000_000, Duration::from_secs(1)), 9_000_000);
    }
}
