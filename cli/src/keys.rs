//! Which keys a workload touches: a distribution over the indices of the loaded items.

use clap::ValueEnum;
use rand::Rng;

/// How the run phase picks the key of each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyDistribution {
    /// Every loaded key is equally likely.
    Uniform,
}

impl std::fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// Picks item indices in `0..items` according to a [`KeyDistribution`].
#[derive(Debug, Clone)]
pub struct KeyChooser {
    /// The number of items to choose among; at least 1.
    items: u64,
    /// The distribution.
    distribution: KeyDistribution,
}

impl KeyChooser {
    /// A chooser over `0..items`; `None` when there are no items to choose from.
    pub fn new(distribution: KeyDistribution, items: u64) -> Option<Self> {
        (items > 0).then_some(Self {
            items,
            distribution,
        })
    }

    /// The index of the next item to touch.
    pub fn choose<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self.distribution {
            KeyDistribution::Uniform => rng.random_range(0..self.items),
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
}
