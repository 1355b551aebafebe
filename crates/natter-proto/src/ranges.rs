//! Byte ranges of a transfer (seed 003's chunk map, generalised to ranges): what the server
//! holds, and what a client has on disk or knows the server confirmed. Pure logic shared by both
//! ends, so the merging rules are tested without a disk or a database.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ByteRange;

/// Half-open ranges `[start, end)`, kept ascending, disjoint and merged (touching ranges join),
/// so the wire's `have` is exactly this list and "everything stored" is one range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

/// Serialised as JSON pairs `[[start, end], ...]`; reading normalises (a hand-edited row cannot
/// break the invariants).
impl Serialize for RangeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RangeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let mut set = RangeSet::new();
        for (start, end) in pairs {
            set.insert(start, end);
        }
        Ok(set)
    }
}

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

    /// From the protocol's list (any order; overlaps merge).
    pub fn from_wire(have: &[ByteRange]) -> Self {
        let mut set = Self::new();
        for r in have {
            set.insert(r.start, r.end);
        }
        set
    }

    /// The parts of `[0, size)` not held, ascending.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for &(start, end) in self.0.iter().take_while(|&&(start, _)| start < size) {
            if start > at {
                gaps.push((at, start));
            }
            at = at.max(end);
        }
        if at < size {
            gaps.push((at, size));
        }
        gaps
    }

    /// The parts of `ranges` (ascending, disjoint) that are held.
    pub fn intersect(&self, ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for &(a, b) in ranges {
            for &(s, e) in &self.0 {
                let (lo, hi) = (a.max(s), b.min(e));
                if lo < hi {
                    out.push((lo, hi));
                }
            }
        }
        out
    }

    /// The ranges, ascending.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
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
    fn json_round_trips_and_normalises() {
        let s = set(&[(0, 10), (20, 30)]);
        let json = serde_json::to_string(&s).expect("serialise");
        assert_eq!(json, "[[0,10],[20,30]]");
        assert_eq!(serde_json::from_str::<RangeSet>(&json).expect("valid"), s);
        let messy: RangeSet =
            serde_json::from_str("[[20,30],[0,10],[5,20],[40,40]]").expect("valid");
        assert_eq!(messy.0, vec![(0, 30)]);
        assert!(serde_json::from_str::<RangeSet>("not json").is_err());
    }

    #[test]
    fn gaps_and_what_is_available_of_them() {
        let s = set(&[(10, 20), (30, 40)]);
        assert_eq!(s.missing(50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(s.missing(35), vec![(0, 10), (20, 30)]);
        assert_eq!(set(&[(0, 40)]).missing(40), vec![]);
        assert_eq!(RangeSet::new().missing(7), vec![(0, 7)]);
        let server = RangeSet::from_wire(&[ByteRange { start: 0, end: 100 }]);
        assert_eq!(
            server.intersect(&s.missing(100)),
            vec![(0, 10), (20, 30), (40, 100)]
        );
        assert_eq!(s.intersect(&[(15, 35)]), vec![(15, 20), (30, 35)]);
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
