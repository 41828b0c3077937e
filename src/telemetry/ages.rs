//! How old the oldest pending mutation is, for the metrics, without a clock reading per
//! mutation.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Most checkpoints [`Ages`] keeps; beyond it, every other one is dropped.
const MAX_CHECKPOINTS: usize = 4096;

/// Tells how old a mutation is from its sequence number, without a clock reading per
/// mutation: the flusher notes now and then the last sequence given out, and a mutation is at
/// least as old as the first note that covers it. Precise to within the time between notes.
#[derive(Debug, Default)]
pub(crate) struct Ages {
    /// `(last sequence, when)`, both increasing.
    checkpoints: VecDeque<(u64, Instant)>,
}

impl Ages {
    /// Notes that every mutation up to `last_seq` was made by `now`.
    pub(crate) fn note(&mut self, last_seq: u64, now: Instant) {
        // An earlier note of the same sequence says more.
        if self
            .checkpoints
            .back()
            .is_some_and(|&(seq, _)| seq >= last_seq)
        {
            return;
        }
        if self.checkpoints.len() >= MAX_CHECKPOINTS {
            let mut index = 0;
            self.checkpoints.retain(|_| {
                index += 1;
                index % 2 == 0
            });
        }
        self.checkpoints.push_back((last_seq, now));
    }

    /// How long, at least, mutation `oldest` has existed at `now` (zero when it is newer than
    /// every note); forgets the notes of older mutations. `None`: nothing is pending.
    pub(crate) fn age(&mut self, oldest: Option<u64>, now: Instant) -> Duration {
        let Some(oldest) = oldest else {
            return Duration::ZERO;
        };
        while self
            .checkpoints
            .front()
            .is_some_and(|&(seq, _)| seq < oldest)
        {
            self.checkpoints.pop_front();
        }
        self.checkpoints
            .front()
            .map_or(Duration::ZERO, |&(_, when)| {
                now.saturating_duration_since(when)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_come_from_the_first_note_covering_a_mutation() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut ages = Ages::default();
        assert_eq!(ages.age(None, at(0)), Duration::ZERO);
        ages.note(0, at(0));
        ages.note(10, at(1));
        ages.note(10, at(2)); // nothing new: the note at 1 s stands
        ages.note(25, at(3));
        // Mutation 5 was made between 0 s and 1 s: at least 9 s old at 10 s.
        assert_eq!(ages.age(Some(5), at(10)), Duration::from_secs(9));
        // Mutation 11 was made after 1 s, by 3 s.
        assert_eq!(ages.age(Some(11), at(10)), Duration::from_secs(7));
        // Older notes are gone: mutation 5 is not pending any more.
        assert_eq!(ages.checkpoints.len(), 1);
        // Newer than every note.
        assert_eq!(ages.age(Some(26), at(10)), Duration::ZERO);
    }

    #[test]
    fn ages_keep_a_bounded_number_of_notes() {
        let start = Instant::now();
        let mut ages = Ages::default();
        for seq in 1..=(3 * MAX_CHECKPOINTS as u64) {
            ages.note(seq, start + Duration::from_millis(seq));
        }
        assert!(ages.checkpoints.len() <= MAX_CHECKPOINTS);
        // Still a lower bound: mutation 1 is at least as old as its covering note says.
        let now = start + Duration::from_secs(100);
        let age = ages.age(Some(1), now);
        assert!(age <= Duration::from_secs(100) - Duration::from_millis(1));
        assert!(age > Duration::ZERO);
    }
}
