//! Gitea's runner-label matching rule.
//!
//! A runner declares labels such as `ubuntu-latest:docker://node:20`; only the part before the
//! first `:` reaches Gitea. A job is served by a runner when every one of the job's `runs-on`
//! labels is among the runner's names, compared exactly (case-sensitive); extra runner labels do
//! not matter and an empty `runs-on` is served by any runner (Gitea 1.26 `CanMatchLabels`).

/// The name Gitea sees for a runner label: the part before the first `:`.
///
/// ```
/// use autoscaler_core::labels::label_name;
/// assert_eq!(label_name("ubuntu-latest:docker://node:20-bookworm"), "ubuntu-latest");
/// assert_eq!(label_name("self-hosted"), "self-hosted");
/// ```
pub fn label_name(raw: &str) -> &str {
    raw.split_once(':').map_or(raw, |(name, _)| name)
}

/// Whether a runner with `runner_labels` (raw or bare names) can take a job asking for `runs_on`.
///
/// ```
/// use autoscaler_core::labels::satisfies;
/// let runner = ["ubuntu-latest:docker://node:20", "linux"];
/// assert!(satisfies(&runner, &["ubuntu-latest"]));
/// assert!(satisfies(&runner, &[] as &[&str]));
/// assert!(!satisfies(&runner, &["ubuntu-latest", "gpu"]));
/// assert!(!satisfies(&runner, &["Linux"]));
/// ```
pub fn satisfies<R: AsRef<str>, J: AsRef<str>>(runner_labels: &[R], runs_on: &[J]) -> bool {
    runs_on.iter().all(|wanted| {
        runner_labels
            .iter()
            .any(|have| label_name(have.as_ref()) == wanted.as_ref())
    })
}

/// The sorted, de-duplicated label names of a runner's label list: one key per runner shape.
pub(crate) fn names_of<S: AsRef<str>>(labels: &[S]) -> Vec<String> {
    let mut names: Vec<String> = labels
        .iter()
        .map(|l| label_name(l.as_ref()).to_owned())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Like [`names_of`], borrowed: for the many runner shapes of one decision.
pub(crate) fn name_set<S: AsRef<str>>(labels: &[S]) -> Vec<&str> {
    let mut names: Vec<&str> = labels.iter().map(|l| label_name(l.as_ref())).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The sorted, de-duplicated labels of a job's `runs-on`: one key per job shape. Job labels are
/// compared whole, so unlike runner labels they are never cut at `:`.
pub(crate) fn job_key<S: AsRef<str>>(runs_on: &[S]) -> Vec<&str> {
    let mut labels: Vec<&str> = runs_on.iter().map(AsRef::as_ref).collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_part_is_not_part_of_the_name() {
        assert_eq!(label_name("macos-arm64:host"), "macos-arm64");
        assert_eq!(label_name("a:docker://b:c"), "a");
    }

    #[test]
    fn every_job_label_must_be_present() {
        assert!(satisfies(&["a", "b", "c"], &["a", "c"]));
        assert!(!satisfies(&["a"], &["a", "b"]));
    }

    #[test]
    fn a_job_label_with_schema_does_not_match_by_prefix() {
        assert!(!satisfies(&["ubuntu"], &["ubuntu-latest"]));
    }

    #[test]
    fn names_are_sorted_and_unique() {
        assert_eq!(names_of(&["b:host", "a", "b"]), vec!["a", "b"]);
    }

    #[test]
    fn a_job_label_with_a_colon_is_kept_whole() {
        assert_eq!(
            job_key(&["ubuntu-latest:docker://node:20", "a", "a"]),
            vec!["a", "ubuntu-latest:docker://node:20"]
        );
        assert!(!satisfies(
            &["ubuntu-latest:docker://node:20"],
            &["ubuntu-latest:docker://node:20"]
        ));
    }
}
