//! Retention: which versions of a path stay ([`retention_drops`], [`apply_retention`]).
//!
//! Retention never charges metadata. The versions of a path form content
//! groups (a content version and the metadata-only versions on top of it); the newest `keep`
//! groups stay (the user's own setting from `KEEP_OVERRIDES`, else the configured
//! `keep_versions`), each with its head and at most `keep` newest metadata-only versions, and a
//! deletion marker older than the oldest retained head goes. Commit applies this to the paths it
//! touches, and the GC's pruning pass (`gc.rs`) applies the same function to every path (so a
//! lowered setting takes effect everywhere). A path whose newest version is a deletion marker
//! older than `deleted_keep_days` loses all its versions in the pruning pass. Either way the
//! dropped versions release their chunk references in the same transaction; the chunks themselves
//! are the GC's business.

use redb::ReadableTable;

use super::{PathRec, Result, VersionRec, adjust_refcount};

/// What retention sees of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A version with new content (or the first of a path, or of a folder).
    Content,
    /// A version that changed only metadata after the one before it.
    MetaOnly,
    /// A deletion marker.
    Marker,
}

impl Class {
    pub(crate) fn of(v: &VersionRec) -> Class {
        if v.deleted {
            Class::Marker
        } else if v.meta_only() {
            Class::MetaOnly
        } else {
            Class::Content
        }
    }
}

/// Which versions retention drops, given their classes, oldest first.
///
/// The versions form *content groups*: a content version (the head) followed by the
/// metadata-only versions made on top of it. The newest `keep` groups are kept, older groups go
/// whole; inside a kept group the head stays, with at most `keep` of its newest metadata-only
/// versions. So metadata changes never cost a content version, and a path whose metadata keeps
/// changing (a folder) still keeps at most `keep × (keep + 1)` versions plus markers. A deletion
/// marker goes when it is older than the oldest retained head. A metadata-only version with no
/// head before it (none is ever written so) starts a group of its own rather than being lost.
pub(crate) fn retention_drops(classes: &[Class], keep: u32) -> Vec<bool> {
    let keep = keep as usize;
    // Group number of each non-marker version, counted from the newest group (0 = newest).
    let mut group_of = vec![None; classes.len()];
    let mut groups = 0usize;
    let mut in_group = false;
    for (i, c) in classes.iter().enumerate() {
        match c {
            Class::Marker => in_group = false,
            Class::Content => {
                groups += 1;
                in_group = true;
                group_of[i] = Some(groups);
            }
            Class::MetaOnly => {
                if !in_group {
                    groups += 1;
                    in_group = true;
                }
                group_of[i] = Some(groups);
            }
        }
    }
    // Newest first: count metadata-only versions per kept group.
    let mut drops = vec![false; classes.len()];
    let mut meta_seen = 0usize;
    let mut current = 0usize;
    let mut oldest_kept_head = None;
    for i in (0..classes.len()).rev() {
        let Some(g) = group_of[i] else { continue };
        let from_newest = groups - g;
        if g != current {
            current = g;
            meta_seen = 0;
        }
        if from_newest >= keep {
            drops[i] = true;
            continue;
        }
        let head = classes[i] == Class::Content || i == 0 || group_of[i - 1] != Some(g);
        if head {
            oldest_kept_head = Some(i);
        } else {
            meta_seen += 1;
            drops[i] = meta_seen > keep;
        }
    }
    for (i, c) in classes.iter().enumerate() {
        if *c == Class::Marker {
            drops[i] = oldest_kept_head.is_none_or(|h| i < h);
        }
    }
    drops
}

/// Applies [`retention_drops`] to a path and releases the chunk references of the dropped
/// versions. Returns the number of versions dropped.
pub(crate) fn apply_retention(
    prec: &mut PathRec,
    versions: &mut redb::Table<u64, &[u8]>,
    chunks: &mut redb::Table<&[u8; 32], &[u8]>,
    keep: u32,
) -> Result<u32> {
    let mut recs = Vec::with_capacity(prec.versions.len());
    for &id in &prec.versions {
        if let Some(g) = versions.get(id)? {
            recs.push((id, VersionRec::decode(g.value())?));
        }
    }
    let classes: Vec<Class> = recs.iter().map(|(_, v)| Class::of(v)).collect();
    let drops = retention_drops(&classes, keep);
    let mut kept = Vec::with_capacity(recs.len());
    let mut pruned = 0;
    for ((id, v), drop) in recs.into_iter().zip(drops) {
        if drop {
            for (chunk, _) in &v.chunks {
                adjust_refcount(chunks, chunk, -1)?;
            }
            versions.remove(id)?;
            pruned += 1;
        } else {
            kept.push(id);
        }
    }
    prec.versions = kept;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Class::{Content as C, Marker as X, MetaOnly as M};
    use super::*;

    fn kept(classes: &[Class], keep: u32) -> Vec<Class> {
        classes
            .iter()
            .zip(retention_drops(classes, keep))
            .filter(|(_, d)| !d)
            .map(|(c, _)| *c)
            .collect()
    }

    /// The rule before metadata-only versions existed: the oldest content versions beyond
    /// `keep`, then every marker older than the oldest retained content version.
    fn old_rule(classes: &[Class], keep: u32) -> Vec<bool> {
        let content = classes.iter().filter(|c| **c == C).count();
        let mut excess = content.saturating_sub(keep as usize);
        let mut content_kept = false;
        classes
            .iter()
            .map(|c| {
                if *c == X {
                    !content_kept
                } else if excess > 0 {
                    excess -= 1;
                    true
                } else {
                    content_kept = true;
                    false
                }
            })
            .collect()
    }

    #[test]
    fn metadata_only_versions_do_not_count_against_keep() {
        // Acceptance 3 of issue 12: four content versions and a chmod keep all five.
        assert_eq!(kept(&[C, C, C, C, M], 4), [C, C, C, C, M]);
        // A fifth content version drops the oldest group, its metadata-only versions with it.
        assert_eq!(
            retention_drops(&[C, M, M, C, C, C, C], 4),
            [true, true, true, false, false, false, false]
        );
        // Inside a group, the head and the newest `keep` metadata-only versions stay.
        assert_eq!(
            retention_drops(&[C, M, M, M, M], 2),
            [false, true, true, false, false]
        );
        assert_eq!(
            retention_drops(&[C, M, M, C, M, M, M], 2),
            [false, false, false, false, true, false, false]
        );
        // Markers: dropped when older than the oldest kept head.
        assert_eq!(
            retention_drops(&[C, M, X, C, X, C], 2),
            [true, true, true, false, false, false]
        );
        assert_eq!(retention_drops(&[C, X], 1), [false, false]);
        // A metadata-only version without a head (never written so) starts a group.
        assert_eq!(retention_drops(&[M, M, C], 2), [false, false, false]);
        assert_eq!(retention_drops(&[M, M, C], 1), [true, true, false]);
        assert_eq!(retention_drops(&[X, M, C], 1), [true, true, false]);
        assert!(retention_drops(&[], 4).is_empty());
    }

    /// A history as commit writes it: a metadata-only version or a marker only follows a live
    /// version; after a marker comes content (or nothing).
    fn history() -> impl Strategy<Value = Vec<Class>> {
        prop::collection::vec(0u8..10, 0..60).prop_map(|picks| {
            let mut out: Vec<Class> = Vec::new();
            for p in picks {
                let live = out.last().is_some_and(|c| *c != X);
                out.push(match p {
                    0..=2 => C,
                    3..=7 if live => M,
                    8 | 9 if live => X,
                    _ => C,
                });
            }
            out
        })
    }

    fn any_classes() -> impl Strategy<Value = Vec<Class>> {
        prop::collection::vec(prop_oneof![Just(C), Just(M), Just(X)], 0..40)
    }

    proptest! {
        /// Without metadata-only versions the rule is the one before them.
        #[test]
        fn without_metadata_only_versions_nothing_changes(
            classes in prop::collection::vec(prop_oneof![Just(C), Just(X)], 0..40),
            keep in 1u32..6,
        ) {
            prop_assert_eq!(retention_drops(&classes, keep), old_rule(&classes, keep));
        }

        /// What stays: the newest `keep` content groups, each with its head and at most `keep`
        /// metadata-only versions; the newest version always; applying it again drops nothing.
        #[test]
        fn retention_keeps_groups_and_bounds_metadata(
            classes in history(),
            keep in 1u32..6,
        ) {
            let drops = retention_drops(&classes, keep);
            prop_assert_eq!(drops.len(), classes.len());
            if let Some(last) = drops.last() {
                prop_assert!(!last, "the newest version is kept");
            }
            let heads = classes.iter().filter(|c| **c == C).count();
            let kept_heads = classes
                .iter()
                .zip(&drops)
                .filter(|(c, d)| **c == C && !**d)
                .count();
            prop_assert_eq!(kept_heads, heads.min(keep as usize));
            // Every content version newer than a kept one is kept, and a kept metadata-only
            // version's head is kept.
            let mut head_kept = false;
            let mut meta_in_group = 0;
            for (c, d) in classes.iter().zip(&drops) {
                match c {
                    C => {
                        prop_assert!(!head_kept || !d, "a newer head was dropped");
                        head_kept |= !d;
                        meta_in_group = 0;
                    }
                    M => {
                        if !d {
                            prop_assert!(head_kept);
                            meta_in_group += 1;
                            prop_assert!(meta_in_group <= keep);
                        }
                    }
                    X => {}
                }
            }
            let once = kept(&classes, keep);
            prop_assert!(!retention_drops(&once, keep).contains(&true));
            prop_assert!(once.len() <= (keep as usize) * (keep as usize + 1) * 2 + 1);
        }

        /// Commit applies retention after every new version; the GC's pruning pass applies it
        /// once to the whole path: both leave the same versions.
        #[test]
        fn retention_at_every_commit_equals_one_pass(classes in history(), keep in 1u32..6) {
            let mut incremental: Vec<(usize, Class)> = Vec::new();
            for (i, c) in classes.iter().enumerate() {
                incremental.push((i, *c));
                if *c != X {
                    let cs: Vec<Class> = incremental.iter().map(|(_, c)| *c).collect();
                    let drops = retention_drops(&cs, keep);
                    let mut d = drops.into_iter();
                    incremental.retain(|_| !d.next().unwrap());
                }
            }
            let once: Vec<usize> = retention_drops(&classes, keep)
                .into_iter()
                .enumerate()
                .filter(|(_, d)| !d)
                .map(|(i, _)| i)
                .collect();
            // A path whose last version is a marker keeps what commit left (commit does not
            // apply retention for a marker, and neither would the first pass change it).
            let inc: Vec<usize> = incremental.iter().map(|(i, _)| *i).collect();
            prop_assert_eq!(inc, once);
        }

        /// Any sequence, even one commit never writes: no panic, right length, idempotent.
        #[test]
        fn retention_is_total(classes in any_classes(), keep in 0u32..6) {
            let drops = retention_drops(&classes, keep);
            prop_assert_eq!(drops.len(), classes.len());
            let once = kept(&classes, keep);
            prop_assert_eq!(kept(&once, keep), once);
        }
    }
}
