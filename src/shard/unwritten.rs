//! What a dirty key's next write sends: its whole state, or the deltas applied since its last
//! write, combined where they combine.
//!
//! A key changed only by deltas is written as deltas, so that other writers' deltas in between
//! are kept: a hundred increments of a counter are one `ADD` of their sum. A full mutation (an
//! upsert, a delete, ...) makes the next write the whole state, and deltas after it fold into
//! that state, since the write replaces the item anyway. While a write is in flight, what comes
//! after it is gathered here for the next one.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::delta::Delta;

/// Deltas applied one after the other, as one: the mutations `first..=seq` of the key.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub delta: Arc<Delta>,
    /// The oldest mutation the step covers.
    pub first: u64,
    /// The newest mutation the step covers.
    pub seq: u64,
    /// A delta recovered from the journal: written on its own, never combined with another,
    /// since it may have landed before the crash (its mark then says so) or, sent by the
    /// crashed process, land late.
    pub sealed: bool,
}

/// What the next write of a dirty key sends.
#[derive(Debug, Clone)]
pub(crate) enum Unwritten {
    /// The key's whole state: a put of its value, or a delete.
    Full,
    /// Deltas, to be written in order, one request each; empty when everything is written or
    /// in flight.
    Deltas(VecDeque<Step>),
}

/// What to write now, taken with [`Unwritten::take`].
#[derive(Debug, Clone)]
pub(crate) enum Taken {
    Full,
    Delta(Step),
}

impl Unwritten {
    /// Nothing unwritten beyond what is in flight.
    pub(crate) fn nothing() -> Self {
        Unwritten::Deltas(VecDeque::new())
    }

    /// A full mutation: the next write is the whole state.
    pub(crate) fn full(&mut self) {
        *self = Unwritten::Full;
    }

    /// Delta mutation `seq`: it folds into a pending full write, combines with the last
    /// pending delta where the two make one that fits in a request, or is written after it.
    pub(crate) fn delta(&mut self, delta: Arc<Delta>, seq: u64) {
        let Unwritten::Deltas(steps) = self else {
            return;
        };
        if let Some(last) = steps.back_mut().filter(|last| !last.sealed) {
            if let Some(combined) = last.delta.then(&delta).filter(Delta::fits) {
                last.delta = Arc::new(combined);
                last.seq = seq;
                return;
            }
        }
        steps.push_back(Step {
            delta,
            first: seq,
            seq,
            sealed: false,
        });
    }

    /// Recovered deltas, each `(seq, delta)` a [sealed](Step::sealed) step of its own.
    pub(crate) fn recovered(deltas: Vec<(u64, Arc<Delta>)>) -> Self {
        let steps = deltas.into_iter().map(|(seq, delta)| Step {
            delta,
            first: seq,
            seq,
            sealed: true,
        });
        Unwritten::Deltas(steps.collect())
    }

    /// What to write now, leaving what comes after it; `Full` when nothing is pending (a key
    /// made dirty again after a write was abandoned is written whole).
    pub(crate) fn take(&mut self) -> Taken {
        match self {
            Unwritten::Deltas(steps) => match steps.pop_front() {
                Some(step) => Taken::Delta(step),
                None => Taken::Full,
            },
            Unwritten::Full => {
                *self = Unwritten::nothing();
                Taken::Full
            }
        }
    }

    /// Puts back a write taken with [`take`](Self::take) whose outcome is unknown, to be sent
    /// again before what came after it.
    pub(crate) fn put_back(&mut self, taken: Taken) {
        match (taken, &mut *self) {
            (Taken::Delta(step), Unwritten::Deltas(steps)) => steps.push_front(step),
            (Taken::Full, _) => self.full(),
            // A full write pending covers the delta's effect.
            (Taken::Delta(_), Unwritten::Full) => {}
        }
    }

    /// The oldest mutation still to write, if the next write is made of deltas.
    pub(crate) fn first(&self) -> Option<u64> {
        match self {
            Unwritten::Deltas(steps) => steps.front().map(|step| step.first),
            Unwritten::Full => None,
        }
    }

    /// The pending deltas, when the next writes are made of deltas only.
    pub(crate) fn deltas(&self) -> Option<impl Iterator<Item = &Delta>> {
        match self {
            Unwritten::Deltas(steps) => Some(steps.iter().map(|step| &*step.delta)),
            Unwritten::Full => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(n: i128) -> Arc<Delta> {
        Arc::new(Delta::new().add("n", n))
    }

    fn steps(unwritten: &Unwritten) -> Vec<(u64, u64)> {
        match unwritten {
            Unwritten::Deltas(steps) => steps.iter().map(|s| (s.first, s.seq)).collect(),
            Unwritten::Full => vec![],
        }
    }

    #[test]
    fn deltas_that_combine_are_one_step() {
        let mut unwritten = Unwritten::nothing();
        for seq in 1..=100 {
            unwritten.delta(add(1), seq);
        }
        assert_eq!(steps(&unwritten), [(1, 100)]);
        let taken = unwritten.take();
        assert!(
            matches!(&taken, Taken::Delta(step) if *step.delta == Delta::new().add("n", 100)),
            "{taken:?}"
        );
    }

    #[test]
    fn deltas_that_do_not_combine_are_written_in_turn() {
        let mut unwritten = Unwritten::nothing();
        let members = |n: &str| aws_sdk_dynamodb::types::AttributeValue::Ss(vec![n.into()]);
        unwritten.delta(Arc::new(Delta::new().add_members("s", members("a"))), 1);
        unwritten.delta(Arc::new(Delta::new().remove_members("s", members("a"))), 2);
        unwritten.delta(Arc::new(Delta::new().remove_members("s", members("b"))), 3);
        assert_eq!(steps(&unwritten), [(1, 1), (2, 3)]);
        assert!(matches!(unwritten.take(), Taken::Delta(s) if s.seq == 1));
        assert_eq!(unwritten.first(), Some(2));
    }

    #[test]
    fn a_full_mutation_replaces_deltas_and_later_deltas_fold_into_it() {
        let mut unwritten = Unwritten::nothing();
        unwritten.delta(add(1), 1);
        unwritten.full();
        unwritten.delta(add(1), 3);
        assert!(matches!(unwritten, Unwritten::Full));
        assert!(matches!(unwritten.take(), Taken::Full));
        // After a full write is taken, a delta is written as one: other writers' deltas that
        // land in between are kept.
        unwritten.delta(add(1), 4);
        assert_eq!(steps(&unwritten), [(4, 4)]);
    }

    #[test]
    fn a_write_put_back_goes_first() {
        let mut unwritten = Unwritten::nothing();
        unwritten.delta(add(1), 1);
        let taken = unwritten.take();
        unwritten.delta(Arc::new(Delta::new().append("l", vec![])), 2);
        unwritten.put_back(taken);
        assert_eq!(steps(&unwritten), [(1, 1), (2, 2)]);
        unwritten.put_back(Taken::Full);
        assert!(matches!(unwritten, Unwritten::Full));
    }

    #[test]
    fn recovered_deltas_are_written_one_at_a_time() {
        let mut unwritten = Unwritten::recovered(vec![(3, add(1)), (5, add(1))]);
        unwritten.delta(add(1), 9);
        assert_eq!(steps(&unwritten), [(3, 3), (5, 5), (9, 9)]);
        unwritten.delta(add(1), 10);
        assert_eq!(steps(&unwritten), [(3, 3), (5, 5), (9, 10)]);
    }
}
