//! One item per id or name, whatever the order of the list.
//!
//! A list that names the same id twice was read while it changed (a page shifted), so it is
//! incomplete: the caller notes it and holds what needs a complete list. The copies may still
//! differ (a job queued on page 1 and running on page 2), and whichever copy was kept would
//! change the plan if "first seen" decided; the greatest copy under the items' total order is
//! kept instead, so the same items in any order give the same plan.

use std::hash::Hash;

use rustc_hash::{FxBuildHasher, FxHashMap};

/// One list with one entry per key.
pub(crate) struct Unique<'a, T, K> {
    /// The kept items, in the order their keys first appear.
    pub(crate) items: Vec<&'a T>,
    /// Where each key's item is in `items`.
    pub(crate) index: FxHashMap<K, usize>,
    /// A key appeared more than once.
    pub(crate) repeats: bool,
}

/// `items` with one entry per key, and the index by key.
///
/// Repeats are rare, so the common case is one hash insertion per item and no comparison.
pub(crate) fn by_key<'a, T, K>(items: &'a [T], key: impl Fn(&'a T) -> K) -> Unique<'a, T, K>
where
    T: Ord,
    K: Hash + Eq,
{
    let mut at: FxHashMap<K, usize> =
        FxHashMap::with_capacity_and_hasher(items.len(), FxBuildHasher);
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    let mut repeats = false;
    for item in items {
        match at.entry(key(item)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                repeats = true;
                let kept = &mut out[*e.get()];
                if item > *kept {
                    *kept = item;
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(out.len());
                out.push(item);
            }
        }
    }
    Unique {
        items: out,
        index: at,
        repeats,
    }
}

/// Like [`by_key`] for numeric ids, without hashing when nothing repeats: ids come sorted from
/// the services, so sorting a copy of them is near linear.
pub(crate) fn by_id<T: Ord>(items: &[T], id: impl Fn(&T) -> u64) -> (Vec<&T>, bool) {
    let mut ids: Vec<u64> = items.iter().map(&id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        (by_key(items, id).items, true)
    } else {
        (items.iter().collect(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_copy_does_not_depend_on_order() {
        let a = [(1, "queued"), (2, "x"), (1, "running")];
        let b = [(1, "running"), (2, "x"), (1, "queued")];
        let ka = by_key(&a, |t| t.0);
        let kb = by_key(&b, |t| t.0);
        assert!(ka.repeats && kb.repeats);
        assert_eq!(ka.items, vec![&(1, "running"), &(2, "x")]);
        assert_eq!(kb.items, vec![&(1, "running"), &(2, "x")]);
    }

    #[test]
    fn without_repeats_everything_is_kept() {
        let a = [(3, "c"), (1, "a")];
        let (kept, repeats) = by_id(&a, |t| t.0);
        assert!(!repeats);
        assert_eq!(kept.len(), 2);
    }
}
