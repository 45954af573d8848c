//! Which way a runtime write goes: optimistically or under the license's row lock.
//!
//! A write first decides on a snapshot (read without a lock, batched with the read path's)
//! and writes its effect in one autocommitted statement that checks the license's revision
//! (`license.rs`). That is one round trip of its own where the locking transaction takes
//! four (`BEGIN`, lock and load, write, `COMMIT`). When the revision moved on meanwhile,
//! nothing is written and the write is decided again under the lock.
//!
//! On a license that many writes hit at once most optimistic attempts would lose, and each
//! loss costs its snapshot and its statement on top of the locking transaction. So a loss
//! sends the next writes to the same license (as this process names it) straight to the
//! lock: 2 after one loss, doubling with each further loss in a row up to
//! [`MAX_LOCKED_RUN`], and one optimistic win forgets the license again. Nothing here is
//! needed for correctness (the revision check is); it only keeps a hot license from paying
//! twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use licentia_core::store::LicenseSelector;

/// The longest run of writes sent to the lock after losses in a row.
const MAX_LOCKED_RUN: u32 = 16;

/// How many licenses the tracker remembers at most; past that it forgets them all (a
/// forgotten license only tries optimistically once more).
const MAX_TRACKED: usize = 4096;

/// A license as a write names it (the contention is tracked per name: a license named both
/// by id and by key is tracked twice, which costs at most one more lost attempt).
#[derive(PartialEq, Eq, Hash)]
enum Target {
    Id(String),
    KeyHash([u8; 32]),
}

impl Target {
    fn of(selector: &LicenseSelector) -> Self {
        match selector {
            LicenseSelector::Id(id) => Self::Id(id.as_str().to_owned()),
            LicenseSelector::KeyHash(hash) => Self::KeyHash(*hash.as_bytes()),
        }
    }
}

/// A license's recent losses.
struct Losses {
    /// Losses in a row.
    streak: u32,
    /// Writes still to be sent to the lock before the next optimistic attempt.
    locked_left: u32,
}

/// What the write path has done since its store was made: `optimistic` writes decided on a
/// snapshot and written in one statement (or answered without a write), `lost` optimistic
/// decisions taken again under the lock because the license changed first, and `locked`
/// writes decided only under the lock (after recent losses, or because their effect needs
/// the transaction, as a registration's activation does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WritePathStats {
    /// Writes that kept their optimistic decision.
    pub optimistic: u64,
    /// Optimistic decisions dropped for a decision under the lock.
    pub lost: u64,
    /// Writes decided under the lock without an optimistic attempt first.
    pub locked: u64,
}

/// The per-process contention tracker and counters.
#[derive(Default)]
pub(crate) struct WritePath {
    losses: Mutex<HashMap<Target, Losses>>,
    optimistic: AtomicU64,
    lost: AtomicU64,
    locked: AtomicU64,
}

impl WritePath {
    /// Whether a write naming `selector` should try optimistically; when not, it counts as
    /// locked and uses up one of the license's locked run.
    pub(crate) fn try_optimistic(&self, selector: &LicenseSelector) -> bool {
        let mut losses = self.lock();
        let Some(l) = losses.get_mut(&Target::of(selector)) else {
            return true;
        };
        if l.locked_left == 0 {
            return true;
        }
        l.locked_left -= 1;
        drop(losses);
        self.note_locked();
        false
    }

    /// An optimistic decision was kept.
    pub(crate) fn won(&self, selector: &LicenseSelector) {
        self.optimistic.fetch_add(1, Ordering::Relaxed);
        let mut losses = self.lock();
        if !losses.is_empty() {
            losses.remove(&Target::of(selector));
        }
    }

    /// An optimistic decision lost to a concurrent write.
    pub(crate) fn lost(&self, selector: &LicenseSelector) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        let mut losses = self.lock();
        if losses.len() >= MAX_TRACKED {
            losses.clear();
        }
        let l = losses.entry(Target::of(selector)).or_insert(Losses {
            streak: 0,
            locked_left: 0,
        });
        l.streak = (l.streak + 1).min(MAX_LOCKED_RUN.trailing_zeros());
        l.locked_left = 1 << l.streak;
    }

    /// A write was decided under the lock without an optimistic attempt.
    pub(crate) fn note_locked(&self) {
        self.locked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> WritePathStats {
        WritePathStats {
            optimistic: self.optimistic.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            locked: self.locked.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Target, Losses>> {
        // Held for a map operation only, and nothing panics under it; a poisoned map is
        // still a well-formed map.
        self.losses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licentia_core::model::LicenseId;

    fn license(n: u32) -> LicenseSelector {
        let id: LicenseId = format!("lic_{n:04}").parse().expect("a license id");
        LicenseSelector::Id(id)
    }

    /// How many of the next `n` writes to `s` go to the lock.
    fn locked_of_next(w: &WritePath, s: &LicenseSelector, n: u32) -> u32 {
        (0..n).filter(|_| !w.try_optimistic(s)).count() as u32
    }

    /// A loss sends the next 2 writes to the lock, losses in a row double that up to 16, a
    /// win forgets the license, and other licenses are not affected.
    #[test]
    fn losses_in_a_row_send_longer_runs_to_the_lock() {
        let w = WritePath::default();
        let (hot, other) = (license(1), license(2));
        assert!(w.try_optimistic(&hot), "a license without losses tries");
        w.lost(&hot);
        assert_eq!(locked_of_next(&w, &hot, 2), 2);
        assert!(w.try_optimistic(&hot), "after the run, one attempt");
        for expected in [4, 8, 16, 16] {
            w.lost(&hot);
            assert_eq!(locked_of_next(&w, &hot, expected), expected);
            assert!(w.try_optimistic(&hot));
        }
        assert!(w.try_optimistic(&other), "another license still tries");
        w.won(&hot);
        assert!(w.try_optimistic(&hot));
        w.lost(&hot);
        assert_eq!(
            locked_of_next(&w, &hot, 3),
            2,
            "a win started the doubling over"
        );
        let stats = w.stats();
        assert_eq!((stats.optimistic, stats.lost), (1, 6));
        assert_eq!(stats.locked, 2 + 4 + 8 + 16 + 16 + 2);
    }
}
