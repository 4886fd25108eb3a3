//! Which runner shapes can take a job, without comparing every job with every runner.
//!
//! A shape is one distinct set of runner label names. Comparing each distinct job label set
//! with each shape costs their product: 50,000 distinct job sets against 2,000 distinct runner
//! sets took 2.5 s. Here every label name points to the shapes that carry it, and a job's
//! shapes are the intersection of its labels' lists. A list that holds most shapes is kept as a
//! bitset, a short one as sorted indices, so a job costs at most a few words per label:
//! one intersection is at most `labels × shapes / 64` word operations, and memory is about
//! eight bytes per label occurrence.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// The shapes carrying one label name.
#[derive(Debug)]
enum Posting {
    /// Sorted shape indices.
    Sparse(Vec<u32>),
    /// One bit per shape.
    Dense(Vec<u64>),
}

impl Posting {
    fn len(&self) -> usize {
        match self {
            Self::Sparse(v) => v.len(),
            Self::Dense(bits) => bits.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    fn contains(&self, shape: u32) -> bool {
        match self {
            Self::Sparse(v) => v.binary_search(&shape).is_ok(),
            Self::Dense(bits) => bits
                .get(shape as usize / 64)
                .is_some_and(|w| w & (1 << (shape % 64)) != 0),
        }
    }
}

/// The index over a fixed list of shapes.
#[derive(Debug)]
pub(crate) struct ShapeIndex<'a> {
    shapes: u32,
    /// Label name → its id, an index into `postings`.
    ids: FxHashMap<&'a str, u32>,
    postings: Vec<Posting>,
}

impl<'a> ShapeIndex<'a> {
    /// Indexes `shapes`, each the label names of one runner shape; shape `i` is the `i`th.
    pub(crate) fn new<'s>(shapes: impl Iterator<Item = &'s [&'a str]>) -> Self
    where
        'a: 's,
    {
        let mut ids: FxHashMap<&'a str, u32> = FxHashMap::default();
        let mut lists: Vec<Vec<u32>> = Vec::new();
        let mut n = 0u32;
        for names in shapes {
            for &name in names {
                let id = *ids.entry(name).or_insert_with(|| {
                    lists.push(Vec::new());
                    u32::try_from(lists.len() - 1).unwrap_or(u32::MAX)
                });
                let list = &mut lists[id as usize];
                // Names of one shape are unique, but be sure: an index appears once per list.
                if list.last() != Some(&n) {
                    list.push(n);
                }
            }
            n = n.saturating_add(1);
        }
        let words = (n as usize).div_ceil(64);
        let postings = lists
            .into_iter()
            .map(|list| {
                // A bitset costs `words` words whatever it holds; indices cost half a word each.
                if list.len() > 2 * words {
                    let mut bits = vec![0u64; words];
                    for i in list {
                        bits[i as usize / 64] |= 1 << (i % 64);
                    }
                    Posting::Dense(bits)
                } else {
                    Posting::Sparse(list)
                }
            })
            .collect();
        Self {
            shapes: n,
            ids,
            postings,
        }
    }

    /// The ids of a job's labels, or `None` when a label is on no shape (nothing fits). An
    /// empty `runs-on` fits every shape (Gitea's rule).
    pub(crate) fn resolve<S: AsRef<str>>(&self, runs_on: &[S]) -> Option<Vec<u32>> {
        runs_on
            .iter()
            .map(|l| self.ids.get(l.as_ref()).copied())
            .collect()
    }

    /// Calls `visit` with every shape carrying all the labels `ids` (from [`Self::resolve`]),
    /// in index order, until it returns `false`.
    pub(crate) fn each_fit(&self, ids: &[u32], mut visit: impl FnMut(u32) -> bool) {
        let lists: SmallVec<[&Posting; 4]> =
            ids.iter().map(|&id| &self.postings[id as usize]).collect();
        if lists.is_empty() {
            for i in 0..self.shapes {
                if !visit(i) {
                    return;
                }
            }
            return;
        }
        let sparse = lists
            .iter()
            .enumerate()
            .filter_map(|(k, p)| match p {
                Posting::Sparse(v) => Some((v.len(), k)),
                Posting::Dense(_) => None,
            })
            .min();
        match sparse {
            Some((_, k)) => {
                let Posting::Sparse(candidates) = lists[k] else {
                    return;
                };
                for &i in candidates {
                    if lists
                        .iter()
                        .enumerate()
                        .all(|(j, p)| j == k || p.contains(i))
                        && !visit(i)
                    {
                        return;
                    }
                }
            }
            None => {
                let mut bits: Vec<u64> = match lists[0] {
                    Posting::Dense(b) => b.clone(),
                    Posting::Sparse(_) => return,
                };
                for p in &lists[1..] {
                    if let Posting::Dense(b) = p {
                        for (w, x) in bits.iter_mut().zip(b) {
                            *w &= x;
                        }
                    }
                }
                for (wi, mut w) in bits.into_iter().enumerate() {
                    while w != 0 {
                        let bit = w.trailing_zeros();
                        w &= w - 1;
                        let i = u32::try_from(wi * 64)
                            .unwrap_or(u32::MAX)
                            .saturating_add(bit);
                        if !visit(i) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// How many shapes carry all the labels `ids`.
    pub(crate) fn fits(&self, ids: &[u32]) -> u32 {
        match ids {
            [] => self.shapes,
            [one] => u32::try_from(self.postings[*one as usize].len()).unwrap_or(u32::MAX),
            _ => {
                let mut n = 0u32;
                self.each_fit(ids, |_| {
                    n += 1;
                    true
                });
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::satisfies;

    fn set<'a>(labels: &[&'a str]) -> Vec<&'a str> {
        labels.to_vec()
    }

    fn fits(index: &ShapeIndex<'_>, runs_on: &[&str]) -> Vec<u32> {
        let mut out = Vec::new();
        if let Some(ids) = index.resolve(runs_on) {
            index.each_fit(&ids, |i| {
                out.push(i);
                true
            });
        }
        out
    }

    #[test]
    fn a_job_fits_the_shapes_that_carry_all_its_labels() {
        let shapes = [set(&["a", "b"]), set(&["a"]), set(&["b", "c"])];
        let index = ShapeIndex::new(shapes.iter().map(Vec::as_slice));
        assert_eq!(fits(&index, &["a"]), vec![0, 1]);
        assert_eq!(fits(&index, &["a", "b"]), vec![0]);
        assert_eq!(fits(&index, &["d"]), Vec::<u32>::new());
        assert_eq!(fits(&index, &[]), vec![0, 1, 2]);
        assert_eq!(index.fits(&index.resolve(&["b"]).expect("known")), 2);
    }

    #[test]
    fn dense_and_sparse_lists_give_what_a_plain_comparison_gives() {
        // 300 shapes: every one has `all`, every third `third`, one `one-<i>` each.
        let ones: Vec<String> = (0..300).map(|i| format!("one-{i}")).collect();
        let shapes: Vec<Vec<&str>> = (0..300)
            .map(|i| {
                let mut s = vec!["all", ones[i].as_str()];
                if i % 3 == 0 {
                    s.push("third");
                }
                s.sort_unstable();
                s
            })
            .collect();
        let index = ShapeIndex::new(shapes.iter().map(Vec::as_slice));
        for job in [
            set(&["all"]),
            set(&["all", "third"]),
            set(&["third", "one-9"]),
            set(&["one-10", "third"]),
            set(&["all", "missing"]),
        ] {
            let mut got = Vec::new();
            let ids = index.resolve(&job);
            if let Some(ids) = &ids {
                index.each_fit(ids, |i| {
                    got.push(i);
                    true
                });
            }
            let want: Vec<u32> = (0..300u32)
                .filter(|&i| satisfies(&shapes[i as usize], &job))
                .collect();
            assert_eq!(got, want, "{job:?}");
            assert_eq!(ids.map_or(0, |ids| index.fits(&ids)) as usize, want.len());
        }
    }

    #[test]
    fn visiting_stops_when_asked() {
        let shapes = [set(&["a"]), set(&["a"]), set(&["a"])];
        let index = ShapeIndex::new(shapes.iter().map(Vec::as_slice));
        let mut seen = 0;
        index.each_fit(&index.resolve(&["a"]).expect("known"), |_| {
            seen += 1;
            seen < 2
        });
        assert_eq!(seen, 2);
    }
}
