//! Which keys a workload touches: a distribution over the indices of the loaded items.

use clap::ValueEnum;
use rand::Rng;
use rand_distr::{Distribution as _, Zipf};

/// YCSB's skew: with theta 0.99 over 10,000 keys, the hottest 1% take about half of the
/// operations.
pub const ZIPF_THETA: f64 = 0.99;

/// How the run phase picks the key of each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyDistribution {
    /// Zipfian (theta 0.99): a few keys are hot, most are cold; the hot keys are spread over
    /// the key space, as YCSB's scrambled zipfian does.
    Zipf,
    /// Every loaded key is equally likely.
    Uniform,
    /// Zipfian over recency: the most recently loaded keys are the hottest.
    Latest,
}

impl std::fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// A prime to spread zipfian ranks over the key space: `rank * SPREAD mod items` is a
/// permutation whenever `items` is not a multiple of it.
const SPREAD: u64 = 2_654_435_761;

/// Picks item indices in `0..items` according to a [`KeyDistribution`].
#[derive(Debug, Clone)]
pub struct KeyChooser {
    /// The number of items to choose among; at least 1.
    items: u64,
    /// The distribution.
    distribution: KeyDistribution,
    /// Ranks 1..=items, for the zipfian distributions.
    zipf: Option<Zipf<f64>>,
}

impl KeyChooser {
    /// A chooser over `0..items`; `None` when there are no items to choose from.
    pub fn new(distribution: KeyDistribution, items: u64) -> Option<Self> {
        if items == 0 {
            return None;
        }
        let zipf = match distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf | KeyDistribution::Latest => {
                Some(Zipf::new(items as f64, ZIPF_THETA).ok()?)
            }
        };
        Some(Self {
            items,
            distribution,
            zipf,
        })
    }

    /// The index of the next item to touch.
    pub fn choose<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let rank = |rng: &mut R| {
            let drawn = self.zipf.as_ref().map_or(1.0, |zipf| zipf.sample(rng));
            // Ranks start at 1; clamp against rounding at the top.
            (drawn as u64).clamp(1, self.items) - 1
        };
        match self.distribution {
            KeyDistribution::Uniform => rng.random_range(0..self.items),
            KeyDistribution::Zipf => {
                let spread = if self.items.is_multiple_of(SPREAD) {
                    1
                } else {
                    SPREAD
                };
                ((u128::from(rank(rng)) * u128::from(spread)) % u128::from(self.items)) as u64
            }
            KeyDistribution::Latest => self.items - 1 - rank(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng as _;

    #[test]
    fn no_items_no_chooser() {
        assert!(KeyChooser::new(KeyDistribution::Uniform, 0).is_none());
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() -> Result<(), &'static str> {
        let chooser = KeyChooser::new(KeyDistribution::Uniform, 10).ok_or("no chooser")?;
        let mut rng = StdRng::seed_from_u64(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let index = chooser.choose(&mut rng);
            let slot = seen.get_mut(index as usize).ok_or("index out of range")?;
            *slot += 1;
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        Ok(())
    }

    #[test]
    fn the_same_seed_gives_the_same_keys() -> Result<(), &'static str> {
        let chooser = KeyChooser::new(KeyDistribution::Uniform, 1000).ok_or("no chooser")?;
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100)
                .map(|_| chooser.choose(&mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        Ok(())
    }

    #[test]
    fn a_single_item_is_always_chosen() -> Result<(), &'static str> {
        let chooser = KeyChooser::new(KeyDistribution::Uniform, 1).ok_or("no chooser")?;
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..100).all(|_| chooser.choose(&mut rng) == 0));
        Ok(())
    }

    #[test]
    fn zipf_is_skewed_and_latest_favours_the_newest() -> Result<(), &'static str> {
        let items = 10_000;
        let mut rng = StdRng::seed_from_u64(7);
        for distribution in [KeyDistribution::Zipf, KeyDistribution::Latest] {
            let chooser = KeyChooser::new(distribution, items).ok_or("no chooser")?;
            let mut counts = vec![0u32; items as usize];
            for _ in 0..100_000 {
                let index = chooser.choose(&mut rng);
                *counts.get_mut(index as usize).ok_or("index out of range")? += 1;
            }
            let mut sorted = counts.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let hottest: u32 = sorted[..100].iter().sum();
            // The hottest 1% of keys take a large share (uniform would give them 1%).
            assert!(hottest > 30_000, "{distribution}: {hottest}");
            if distribution == KeyDistribution::Latest {
                assert_eq!(
                    counts.iter().rposition(|&n| n == sorted[0]),
                    Some(items as usize - 1)
                );
            } else {
                // Spread: the hot keys are not the first ones.
                let mut by_heat: Vec<usize> = (0..counts.len()).collect();
                by_heat.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
                assert!(
                    by_heat[..10].iter().any(|&i| i >= 10),
                    "{:?}",
                    &by_heat[..10]
                );
            }
        }
        Ok(())
    }
}
