//! Shards: the I-th of N disjoint, deterministic parts of a sweep's runs, balanced by the
//! runs' expected cost, so that N processes (the tasks of a Slurm job array, on as many
//! nodes) can share one sweep directory without sharing a run.
//!
//! Balancing is the longest-processing-time rule: units in decreasing cost (ties in grid
//! order) each go to the part with the least cost so far (ties to the lowest part). The
//! most loaded part then costs at most 4/3 of the best possible split, and equal costs
//! are dealt out round-robin. A unit is anything with a cost: a run today; a population of
//! runs trained together can be one unit later (its cost the sum of its members').

use std::fmt;
use std::str::FromStr;

/// Part `index` (1-based) of `count`: written `I/N` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// What is wrong with a `--shard` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("`{0}` is not a shard: write I/N, the I-th of N parts, e.g. 2/8")]
    Syntax(String),
    #[error("a sweep cannot be cut into 0 parts: N in I/N must be at least 1")]
    NoParts,
    #[error("there is no part {index} of {count}: I in I/N counts from 1 to N")]
    OutOfRange { index: usize, count: usize },
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoParts);
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The whole sweep as one part.
    pub fn whole() -> Shard {
        Shard { index: 1, count: 1 }
    }

    pub fn index(self) -> usize {
        self.index
    }

    pub fn count(self) -> usize {
        self.count
    }

    /// The positions (ascending) of this part's units among `costs`.
    pub fn select(self, costs: &[u64]) -> Vec<usize> {
        let mut part: Vec<usize> = assign(costs, self.count)
            .into_iter()
            .enumerate()
            .filter(|&(_, p)| p == self.index - 1)
            .map(|(i, _)| i)
            .collect();
        part.sort_unstable();
        part
    }
}

/// The part (0-based) of every unit, by the longest-processing-time rule.
fn assign(costs: &[u64], parts: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(costs[i]), i));
    let mut loads = vec![0u128; parts];
    let mut owner = vec![0; costs.len()];
    for i in order {
        let lightest = (0..parts).min_by_key(|&p| (loads[p], p)).unwrap_or(0);
        loads[lightest] += u128::from(costs[i]);
        owner[i] = lightest;
    }
    owner
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(syntax)?;
        let number = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            s.parse::<usize>().map_err(|_| syntax())
        };
        Shard::new(number(i)?, number(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_say_why() {
        assert_eq!("2/8".parse(), Shard::new(2, 8));
        assert_eq!("1/1".parse::<Shard>().unwrap(), Shard::whole());
        assert_eq!(
            "3/2".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 3, count: 2 })
        );
        assert_eq!(
            "0/2".parse::<Shard>(),
            Err(ShardError::OutOfRange { index: 0, count: 2 })
        );
        assert_eq!("1/0".parse::<Shard>(), Err(ShardError::NoParts));
        for bad in [
            "",
            "2",
            "a/3",
            "1/b",
            "-1/3",
            "+1/3",
            "1/3/4",
            " 1/3",
            "1.0/3",
            "99999999999999999999999/3",
        ] {
            assert_eq!(
                bad.parse::<Shard>(),
                Err(ShardError::Syntax(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(Shard::new(2, 8).unwrap().to_string(), "2/8");
    }

    /// Every unit is in exactly one part, in ascending order, the same every time.
    fn check_partition(costs: &[u64], parts: usize) -> Vec<Vec<usize>> {
        let split: Vec<Vec<usize>> = (1..=parts)
            .map(|i| Shard::new(i, parts).unwrap().select(costs))
            .collect();
        let mut all: Vec<usize> = split.concat();
        all.sort_unstable();
        assert_eq!(all, (0..costs.len()).collect::<Vec<_>>(), "{split:?}");
        for part in &split {
            assert!(part.windows(2).all(|w| w[0] < w[1]), "{part:?}");
        }
        let again: Vec<Vec<usize>> = (1..=parts)
            .map(|i| Shard::new(i, parts).unwrap().select(costs))
            .collect();
        assert_eq!(split, again);
        split
    }

    #[test]
    fn equal_costs_are_dealt_round_robin() {
        let split = check_partition(&[5; 10], 3);
        assert_eq!(split, vec![vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]]);
    }

    #[test]
    fn parts_are_balanced_by_cost_not_by_count() {
        // One long run and six short ones: the long one is a part of its own.
        let costs = [600, 100, 100, 100, 100, 100, 100];
        let split = check_partition(&costs, 2);
        assert_eq!(split, vec![vec![0], vec![1, 2, 3, 4, 5, 6]]);
        // Within the longest-processing-time bound: max load ≤ 4/3 · optimum, and no part
        // exceeds the lightest by more than the largest cost.
        let costs: Vec<u64> = (0..97u64).map(|i| 1000 + (i * 7919) % 5000).collect();
        for parts in [1, 2, 3, 7, 16, 97, 120] {
            let split = check_partition(&costs, parts);
            let loads: Vec<u64> = split
                .iter()
                .map(|p| p.iter().map(|&i| costs[i]).sum())
                .collect();
            let (max, min) = (*loads.iter().max().unwrap(), *loads.iter().min().unwrap());
            let largest = *costs.iter().max().unwrap();
            if parts <= costs.len() {
                assert!(max - min <= largest, "{parts}: {loads:?}");
                let lower_bound = (costs.iter().sum::<u64>())
                    .div_ceil(parts as u64)
                    .max(largest);
                assert!(
                    3 * max <= 4 * lower_bound,
                    "{parts}: {max} vs {lower_bound}"
                );
            } else {
                assert_eq!(
                    loads.iter().filter(|&&l| l == 0).count(),
                    parts - costs.len()
                );
            }
        }
    }
}
