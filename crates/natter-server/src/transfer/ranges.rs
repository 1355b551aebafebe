//! The byte ranges of a transfer the server holds (seed 003's chunk map, generalised to ranges):
//! pure logic, so the merging rules are tested without a disk or a database.

use natter_proto::ByteRange;

/// Half-open ranges `[start, end)`, kept ascending, disjoint and merged (touching ranges join),
/// so the wire's `have` is exactly this list and "everything stored" is one range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

/// The stored form of a range set could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable stored byte ranges: {0}")]
pub struct BadRanges(#[from] serde_json::Error);

impl RangeSet {
    /// No bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `[start, end)`, merging it with every range it overlaps or touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut lo_start, mut hi_end) = (start, end);
        // The first range that ends at or after `start` is the first one that can merge.
        let first = self.0.partition_point(|&(_, e)| e < start);
        let mut last = first;
        while last < self.0.len() && self.0[last].0 <= end {
            lo_start = lo_start.min(self.0[last].0);
            hi_end = hi_end.max(self.0[last].1);
            last += 1;
        }
        self.0.splice(first..last, [(lo_start, hi_end)]);
    }

    /// Whether every byte of `[start, end)` is held; an empty range always is.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let after = self.0.partition_point(|&(s, _)| s <= start);
        after > 0 && self.0[after - 1].1 >= end
    }

    /// Whether the whole of a file of `size` bytes is held.
    pub fn covers(&self, size: u64) -> bool {
        self.contains(0, size)
    }

    /// Bytes held in all.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The ranges as the protocol sends them.
    pub fn to_wire(&self) -> Vec<ByteRange> {
        self.0
            .iter()
            .map(|&(start, end)| ByteRange { start, end })
            .collect()
    }

    /// The stored form: JSON `[[start, end], ...]`.
    pub fn to_storage(&self) -> String {
        serde_json::to_string(&self.0).expect("pairs of integers serialise to JSON")
    }

    /// Reads the stored form, normalising it (a hand-edited row cannot break the invariants).
    pub fn from_storage(text: &str) -> Result<Self, BadRanges> {
        let pairs: Vec<(u64, u64)> = serde_json::from_str(text)?;
        let mut set = Self::new();
        for (start, end) in pairs {
            set.insert(start, end);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(u64, u64)]) -> RangeSet {
        let mut s = RangeSet::new();
        for &(a, b) in pairs {
            s.insert(a, b);
        }
        s
    }

    #[test]
    fn overlapping_and_touching_ranges_merge() {
        assert_eq!(set(&[(10, 20), (30, 40)]).0, vec![(10, 20), (30, 40)]);
        assert_eq!(set(&[(10, 20), (20, 30)]).0, vec![(10, 30)]);
        assert_eq!(set(&[(30, 40), (10, 20), (15, 35)]).0, vec![(10, 40)]);
        assert_eq!(set(&[(0, 5), (10, 15), (20, 25), (4, 21)]).0, vec![(0, 25)]);
        assert_eq!(set(&[(10, 20), (12, 18)]).0, vec![(10, 20)], "a resend");
        assert_eq!(
            set(&[(10, 20), (5, 5)]).0,
            vec![(10, 20)],
            "empty adds nothing"
        );
    }

    #[test]
    fn containment_and_coverage() {
        let s = set(&[(0, 10), (20, 30)]);
        assert!(s.contains(0, 10));
        assert!(s.contains(22, 25));
        assert!(!s.contains(5, 21));
        assert!(!s.contains(10, 11));
        assert!(s.contains(15, 15), "an empty range is always held");
        assert!(!s.covers(30));
        assert!(set(&[(0, 10), (10, 30)]).covers(30));
        assert!(RangeSet::new().covers(0));
        assert_eq!(s.total(), 20);
    }

    #[test]
    fn storage_round_trips_and_normalises() {
        let s = set(&[(0, 10), (20, 30)]);
        assert_eq!(RangeSet::from_storage(&s.to_storage()).expect("valid"), s);
        let messy = RangeSet::from_storage("[[20,30],[0,10],[5,20],[40,40]]").expect("valid");
        assert_eq!(messy.0, vec![(0, 30)]);
        assert!(RangeSet::from_storage("not json").is_err());
    }

    /// Against a bitmap, for many pseudo-random insert sequences.
    #[test]
    fn agrees_with_a_bitmap() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        for _ in 0..500 {
            let mut bits = [false; 64];
            let mut s = RangeSet::new();
            for _ in 0..next(12) {
                let a = next(64);
                let b = (a + next(16)).min(64);
                s.insert(a, b);
                bits[a as usize..b as usize]
                    .iter_mut()
                    .for_each(|x| *x = true);
            }
            for w in s.0.windows(2) {
                assert!(w[0].1 < w[1].0, "disjoint and merged: {:?}", s.0);
            }
            for a in 0..64u64 {
                for b in a..=64u64 {
                    let expected = bits[a as usize..b as usize].iter().all(|x| *x);
                    assert_eq!(s.contains(a, b), expected, "[{a}, {b}) in {:?}", s.0);
                }
            }
        }
    }
}
