//! New raw copies of a partition's events against what its table already holds: which lines
//! the next version takes. A line that may be taken is parsed whole once: its members give
//! its rank and, when it is taken, whatever the caller makes of them (the table row), so a
//! new row is not read twice. A copy of an id the table holds is dropped unless it beats the
//! kept row; a partition changes only when it gains an id or a better row.
//!
//! Dropping a copy costs as little of it as can decide: an exact copy of a line once taken (a
//! Firehose retry's) is known by its hash alone: it ranks as that line did, so it cannot beat
//! the row kept now, which is that line or beat it. A copy that differs (the pull's re-reads,
//! received later) is ranked from its first members when the rank columns lead it, as the
//! row writer puts them (`leading_rank`); one that loses is dropped unread past them.

use std::collections::{HashMap, HashSet};

use compact_str::CompactString;

use super::leading_rank::LeadingRank;
use super::winner::{CopyRank, RuleKey, UnrankableLine, line_hash};
use crate::raw_object::RawObject;

/// The longest line made a row: a row keeps its texts' places as 32-bit offsets
/// (`columns::TableRow`), and its texts are at most about twice the line (a value kept in
/// `_cast_errors` or `_extra` with its name). Far above any line that lands (a Firehose
/// record is at most 1,000 KiB, a Lambda request 6 MB): this only makes a wrong offset
/// impossible.
pub const MAX_LINE_BYTES: usize = 1 << 30;

/// What became of one offered line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// An id the partition did not have.
    NewId,
    /// A copy that beats the one kept so far.
    Better,
    /// A copy that loses to the one kept: dropped.
    Duplicate,
}

/// The merge of one partition: the ranks kept so far, and what the caller made of the lines
/// that will replace them (`T`, by id).
#[derive(Debug)]
pub struct PartitionMerge<T> {
    ranks: HashMap<CompactString, KeptRank>,
    taken: HashMap<String, T>,
    /// The hashes of every line taken so far, committed or offered (0, an older index's
    /// "no hash", left out): a line whose hash is here ranks no better than a kept row.
    seen: HashSet<u128>,
    offered: u64,
}

impl<T> Default for PartitionMerge<T> {
    fn default() -> Self {
        Self {
            ranks: HashMap::new(),
            taken: HashMap::new(),
            seen: HashSet::new(),
            offered: 0,
        }
    }
}

impl<T> PartitionMerge<T> {
    /// A merge over a committed version whose rows rank as `committed`.
    pub fn over(committed: impl IntoIterator<Item = CopyRank>) -> Self {
        let ranks: HashMap<CompactString, KeptRank> = committed
            .into_iter()
            .map(|rank| (CompactString::from(&rank.id), KeptRank::of(&rank)))
            .collect();
        let seen = ranks
            .values()
            .map(|rank| rank.hash)
            .filter(|hash| *hash != 0)
            .collect();
        Self {
            ranks,
            seen,
            ..Self::default()
        }
    }

    /// Offers the raw row `line`; when the next version takes it, `take` makes what it
    /// keeps of the line from its members (replacing what an earlier copy's made).
    pub fn offer(
        &mut self,
        line: &[u8],
        take: impl FnOnce(RawObject<'_>) -> T,
    ) -> Result<Offer, UnrankableLine> {
        if line.len() > MAX_LINE_BYTES {
            return Err(UnrankableLine(format!(
                "a line of {} bytes, over the {MAX_LINE_BYTES} a table row holds",
                line.len()
            )));
        }
        let hash = line_hash(line);
        if self.seen.contains(&hash) {
            self.offered += 1;
            return Ok(Offer::Duplicate);
        }
        // A copy whose first members rank it and which loses to the kept row is dropped
        // without reading the rest of it (the pull's re-read copies, received later).
        if let Some(leading) = LeadingRank::of_leading_members(line, hash)
            && self
                .ranks
                .get(leading.id.as_ref())
                .is_some_and(|kept| !leading.rule_key().beats(&kept.rule_key()))
        {
            self.offered += 1;
            return Ok(Offer::Duplicate);
        }
        let members =
            RawObject::parse(line).ok_or_else(|| UnrankableLine("not a JSON object".to_owned()))?;
        let rank = CopyRank::of_members(&members, hash)?;
        self.offered += 1;
        let offer = match self.ranks.get(rank.id.as_str()) {
            None => Offer::NewId,
            Some(kept) if rank.rule_key().beats(&kept.rule_key()) => Offer::Better,
            // Not remembered: the set then holds at most the lines ever taken, so it grows
            // with the ids, not with the copies a run reads. An exact copy of this line is
            // parsed again and loses again.
            Some(_) => return Ok(Offer::Duplicate),
        };
        self.seen.insert(hash);
        self.taken.insert(rank.id.clone(), take(members));
        self.ranks
            .insert(CompactString::from(&rank.id), KeptRank::of(&rank));
        Ok(offer)
    }

    /// Whether the partition needs a new version.
    pub fn changed(&self) -> bool {
        !self.taken.is_empty()
    }

    /// Raw copies offered that the next version does not take: each lost to a kept row or
    /// to a better copy offered in the same run.
    pub fn duplicates(&self) -> u64 {
        self.offered - self.taken.len() as u64
    }

    /// The ranks of the new version (every id), by id, and what it takes (id, what `take`
    /// made), in no order: the caller places the rows among the version's by id anyway.
    pub fn finish(self) -> (Vec<CopyRank>, Vec<(String, T)>) {
        let mut ranks: Vec<CopyRank> = self
            .ranks
            .into_iter()
            .map(|(id, kept)| CopyRank {
                id: id.into_string(),
                resolved: kept.resolved,
                received_at: kept.received_at.into_string(),
                hash: kept.hash,
            })
            .collect();
        ranks.sort_by(|a, b| a.id.cmp(&b.id));
        (ranks, self.taken.into_iter().collect())
    }
}

/// A kept copy's rank as the merge holds it, its id being the key: an id of up to 24 bytes
/// and a `received_at` (24 bytes as rows write it) are held inline, so ranking a copy against
/// it reads the map's bucket and no other memory. With `String`s, the look-up of a million-id
/// day missed the cache three times (bucket, id, `received_at`): `perf` put about 28 % of
/// dropping copies received later there.
#[derive(Debug)]
struct KeptRank {
    resolved: bool,
    received_at: CompactString,
    hash: u128,
}

impl KeptRank {
    fn of(rank: &CopyRank) -> Self {
        Self {
            resolved: rank.resolved,
            received_at: CompactString::from(&rank.received_at),
            hash: rank.hash,
        }
    }

    fn rule_key(&self) -> RuleKey<'_> {
        RuleKey {
            resolved: self.resolved,
            received_at: &self.received_at,
            hash: self.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    impl PartitionMerge<Vec<u8>> {
        /// Offers `line`, keeping the line itself when taken.
        fn offer_line(&mut self, line: &[u8]) -> Result<Offer, UnrankableLine> {
            self.offer(line, |_| line.to_vec())
        }
    }

    /// A raw row of `id` received at second `at`, resolved or not, with a `body` member. The
    /// rank members lead the row, as the writer puts them, except when `body` is 1: then it
    /// leads, and a copy is ranked by a whole read.
    fn row(id: u32, at: u32, resolved: bool, body: u32) -> Vec<u8> {
        let rank = format!(
            r#""id":"e{id}","context_klaviyo_identity_resolved":{resolved},"received_at":"2024-01-04T18:{:02}:{:02}.000Z""#,
            at / 60 % 60,
            at % 60
        );
        if body == 1 {
            format!(r#"{{"body":{body},{rank}}}"#).into_bytes()
        } else {
            format!(r#"{{{rank},"body":{body}}}"#).into_bytes()
        }
    }

    /// The winners of `lines` taken at once: the rule applied to every copy.
    fn from_scratch(lines: &[Vec<u8>]) -> BTreeMap<String, Vec<u8>> {
        let mut best: BTreeMap<String, (CopyRank, Vec<u8>)> = BTreeMap::new();
        for line in lines {
            let rank = CopyRank::of_line(line).unwrap();
            let keep = best.get(&rank.id).is_none_or(|(kept, _)| rank.beats(kept));
            if keep {
                best.insert(rank.id.clone(), (rank, line.clone()));
            }
        }
        best.into_iter().map(|(id, (_, line))| (id, line)).collect()
    }

    /// The model test: random copies, split into runs at random, in random order; after each
    /// run the table holds each id once, every kept row is the rule's winner among the copies
    /// seen so far, and the table equals a rebuild from scratch.
    #[test]
    fn any_order_and_any_runs_keep_each_id_once_with_the_rules_winner() {
        let mut random = fastrand::Rng::with_seed(11);
        for _ in 0..200 {
            let ids = random.u32(1..30);
            let lines: Vec<Vec<u8>> = (0..random.usize(1..120))
                .map(|_| {
                    row(
                        random.u32(0..ids),
                        random.u32(0..5),
                        random.bool(),
                        random.u32(0..3),
                    )
                })
                .collect();
            let mut table: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            let mut committed: Vec<CopyRank> = Vec::new();
            let mut seen = 0;
            while seen < lines.len() {
                let run = random.usize(1..=lines.len() - seen);
                let mut merge = PartitionMerge::over(committed.clone());
                for line in &lines[seen..seen + run] {
                    merge.offer_line(line).unwrap();
                }
                seen += run;
                let changed = merge.changed();
                let (ranks, taken) = merge.finish();
                assert_eq!(changed, !taken.is_empty());
                for (id, line) in taken {
                    table.insert(id, line);
                }
                committed = ranks;
                assert_eq!(table, from_scratch(&lines[..seen]));
                assert_eq!(committed.len(), table.len());
            }
        }
    }

    #[test]
    fn twenty_eight_copies_of_a_kept_row_change_nothing() {
        let kept = row(1, 0, true, 0);
        let mut merge = PartitionMerge::over([CopyRank::of_line(&kept).unwrap()]);
        for _ in 0..28 {
            assert_eq!(merge.offer_line(&kept).unwrap(), Offer::Duplicate);
        }
        assert!(!merge.changed());
        assert_eq!(merge.duplicates(), 28);
    }

    #[test]
    fn exact_copies_of_a_losing_line_and_of_a_kept_row_from_an_older_index_stay_out() {
        let early = row(1, 10, true, 0);
        let late = row(1, 20, true, 0);
        let mut merge = PartitionMerge::default();
        assert_eq!(merge.offer_line(&late).unwrap(), Offer::NewId);
        assert_eq!(merge.offer_line(&early).unwrap(), Offer::Better);
        // The replaced line and the winner, sent again, are known by their hashes.
        assert_eq!(merge.offer_line(&late).unwrap(), Offer::Duplicate);
        assert_eq!(merge.offer_line(&early).unwrap(), Offer::Duplicate);
        assert_eq!(merge.duplicates(), 3);
        // A line that never won is not remembered: sent again, it is ranked and loses again.
        let later = row(1, 30, true, 0);
        for _ in 0..3 {
            assert_eq!(merge.offer_line(&later).unwrap(), Offer::Duplicate);
        }
        assert_eq!(merge.seen.len(), 2);
        assert_eq!(merge.duplicates(), 6);
        // An index written before XXH3 has no hashes: a copy is ranked, and loses the tie.
        let mut older = CopyRank::of_line(&early).unwrap();
        older.hash = 0;
        let mut merge = PartitionMerge::over([older]);
        assert_eq!(merge.offer_line(&early).unwrap(), Offer::Duplicate);
        assert!(!merge.changed());
    }

    #[test]
    fn a_copy_replaced_within_one_run_counts_as_a_duplicate() {
        let mut merge = PartitionMerge::default();
        assert_eq!(
            merge.offer_line(&row(1, 30, true, 0)).unwrap(),
            Offer::NewId
        );
        assert_eq!(
            merge.offer_line(&row(1, 10, true, 0)).unwrap(),
            Offer::Better
        );
        assert_eq!(
            merge.offer_line(&row(2, 10, true, 0)).unwrap(),
            Offer::NewId
        );
        assert_eq!(merge.duplicates(), 1);
    }

    #[test]
    fn a_losing_copy_is_dropped_unread_past_its_rank_but_a_winner_must_read_whole() {
        let kept = row(1, 10, true, 0);
        let mut merge = PartitionMerge::over([CopyRank::of_line(&kept).unwrap()]);
        let lead = r#"{"id":"e1","received_at":"2024-01-04T18:00:"#;
        let later_broken = format!(r#"{lead}20.000Z","context_klaviyo_identity_resolved":true,x"#);
        assert_eq!(
            merge.offer_line(later_broken.as_bytes()).unwrap(),
            Offer::Duplicate
        );
        let earlier_broken =
            format!(r#"{lead}05.000Z","context_klaviyo_identity_resolved":true,x"#);
        assert!(merge.offer_line(earlier_broken.as_bytes()).is_err());
        assert!(!merge.changed());
        assert_eq!(merge.duplicates(), 1);
    }

    #[test]
    fn a_resolved_pulled_copy_replaces_an_unresolved_webhook_row() {
        let webhook = row(1, 0, false, 0);
        let pulled = row(1, 40, true, 1);
        let mut merge = PartitionMerge::over([CopyRank::of_line(&webhook).unwrap()]);
        assert_eq!(merge.offer_line(&pulled).unwrap(), Offer::Better);
        let (ranks, taken) = merge.finish();
        assert_eq!(taken, vec![("e1".to_owned(), pulled)]);
        assert!(ranks[0].resolved);
    }
}
