//! The grace of foreign instances: an instance the journal does not know (made by stock
//! hcsshim, say) is removed only after its container was missing from the live set in two
//! listings at least the grace apart.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

/// When each foreign instance's container was first missed, by container id.
#[derive(Debug, Default)]
pub(crate) struct Grace {
    first_missed: BTreeMap<String, Instant>,
}

/// What a listing means for the foreign instances.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Missed in this listing and in one at least the grace earlier: may be removed.
    pub due: BTreeSet<String>,
    /// Missed, but not yet for the grace: protected this round.
    pub in_grace: BTreeSet<String>,
}

impl Grace {
    /// Takes one successful listing at `now`: `foreign` are the instances HCS lists that the
    /// journal does not know, `live` the union of the sources. A foreign id seen alive again
    /// (or no longer listed by HCS) starts over.
    pub(crate) fn observe(
        &mut self,
        foreign: &BTreeSet<String>,
        live: &BTreeSet<String>,
        now: Instant,
        grace: Duration,
    ) -> Verdict {
        self.first_missed
            .retain(|id, _| foreign.contains(id) && !live.contains(id));
        let mut verdict = Verdict::default();
        for id in foreign.iter().filter(|id| !live.contains(*id)) {
            let since = *self.first_missed.entry(id.clone()).or_insert(now);
            if now.duration_since(since) >= grace {
                verdict.due.insert(id.clone());
            } else {
                verdict.in_grace.insert(id.clone());
            }
        }
        verdict
    }

    /// Forgets a removed instance.
    pub(crate) fn forget(&mut self, id: &str) {
        self.first_missed.remove(id);
    }

    /// How many foreign instances are waiting out their grace.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.first_missed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn due_only_after_two_misses_the_grace_apart() {
        let grace = Duration::from_secs(120);
        let t0 = Instant::now();
        let mut g = Grace::default();
        let foreign = set(&["f"]);
        let v = g.observe(&foreign, &set(&["x"]), t0, grace);
        assert_eq!(v.in_grace, set(&["f"]));
        let v = g.observe(&foreign, &set(&["x"]), t0 + Duration::from_secs(119), grace);
        assert!(v.due.is_empty());
        let v = g.observe(&foreign, &set(&["x"]), t0 + grace, grace);
        assert_eq!(v.due, set(&["f"]));
    }

    #[test]
    fn seen_alive_again_starts_over() {
        let grace = Duration::from_secs(120);
        let t0 = Instant::now();
        let mut g = Grace::default();
        let foreign = set(&["f"]);
        g.observe(&foreign, &set(&[]), t0, grace);
        g.observe(&foreign, &set(&["f"]), t0 + Duration::from_secs(60), grace);
        let v = g.observe(&foreign, &set(&[]), t0 + Duration::from_secs(130), grace);
        assert_eq!(
            v.in_grace,
            set(&["f"]),
            "the miss before it was seen alive counts no more"
        );
        assert_eq!(g.waiting(), 1);
        // No longer listed by HCS: forgotten.
        g.observe(&set(&[]), &set(&[]), t0 + Duration::from_secs(140), grace);
        assert_eq!(g.waiting(), 0);
    }
}
