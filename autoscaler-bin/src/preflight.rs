//! `plan` as a preflight: what could not be read, each failure once with its root cause and
//! what to do about it, so `plan && kubectl apply …` stops on refused credentials.

use autoscaler_core::Plan;
use autoscaler_core::ports::{ErrorKind, ProviderError, Service};
use autoscaler_core::{Source, WarningKind};
use autoscaler_gitea::Scope;

use crate::daemon::TickReport;
use crate::settings::Settings;

/// The Gitea token scope a scope's calls need (listing and deleting runners writes).
fn gitea_scope_needed(scope: &Scope) -> &'static str {
    match scope {
        Scope::Admin => "write:admin (a site administrator's token)",
        Scope::Org(_) => "write:organization (a token of an owner of the organisation)",
        Scope::User => "write:user",
        Scope::Repo { .. } => "write:repository (a token of the repository's owner)",
    }
}

/// What to do about one failed read, when there is something to say.
pub(crate) fn hint(e: &ProviderError, s: &Settings) -> Option<String> {
    let status = |code: &str| e.message.contains(&format!("HTTP {code}"));
    let unreachable = matches!(e.kind, ErrorKind::Transient | ErrorKind::Timeout)
        && !e.message.contains("HTTP 5");
    Some(match (e.service, e.kind) {
        (Service::Gitea, ErrorKind::Auth) if status("403") => format!(
            "the token is valid but may not do this: GITEA_SCOPE={} needs a token with {}",
            s.gitea.scope,
            gitea_scope_needed(&s.gitea.scope)
        ),
        (Service::Gitea, ErrorKind::Auth) => format!(
            "{} refuses the token ({}): use a token of that instance that has not expired",
            s.gitea.url, s.gitea.token.from
        ),
        (Service::Gitea, ErrorKind::NotFound) => format!(
            "GITEA_SCOPE={} names no organisation, user or repository this token sees, or \
             Actions is disabled there",
            s.gitea.scope
        ),
        (Service::Gitea, ErrorKind::Unsupported) => {
            "upgrade Gitea: listing jobs needs 1.25, disabling runners 1.26".to_owned()
        }
        (Service::Hetzner, ErrorKind::Auth) if status("403") => format!(
            "the Hetzner token ({}) is read-only: create a Read & Write API token in the project \
             (Security → API tokens)",
            s.hetzner.token.from
        ),
        (Service::Hetzner, ErrorKind::Auth) => format!(
            "Hetzner refuses the token ({}): create a Read & Write API token in the project that \
             holds the servers (Security → API tokens)",
            s.hetzner.token.from
        ),
        (Service::Kubernetes, ErrorKind::Auth) => "the service account (or kubeconfig user) \
             lacks the rights: apply deploy/rbac.yaml, or the chart's RBAC"
            .to_owned(),
        (Service::Gitea, _) if unreachable => format!(
            "is GITEA_API_URL={} right, and Gitea reachable from here?",
            s.gitea.url
        ),
        (Service::Hetzner, _) if unreachable => format!(
            "is HETZNER_API_URL={} right, and Hetzner reachable from here?",
            s.hetzner.settings.url
        ),
        (Service::Kubernetes, _) if unreachable => "is the cluster reachable from here (the \
             in-cluster service account, or KUBECONFIG's current context)?"
            .to_owned(),
        _ => return None,
    })
}

/// Every problem of a `plan` tick, each once: failed reads with hints, lists that came back
/// partial, what connecting could not read. Empty when the plan can be trusted.
pub(crate) fn problems(report: &TickReport, s: &Settings, connecting: &[String]) -> Vec<String> {
    let mut out: Vec<String> = connecting.to_vec();
    // Calls of one service failing for one root cause are one problem: "Connection refused"
    // once, with the calls it stopped, not once per list.
    let mut groups: Vec<(&ProviderError, Vec<&str>, &str)> = Vec::new();
    for e in &report.read_errors {
        let (call, rest) = e.message.split_once(": ").unwrap_or(("", &e.message));
        // A failed connection's message ends in its root cause (and names the URL before it);
        // an answer's message is the same for every call it refused.
        let root = if matches!(e.kind, ErrorKind::Transient | ErrorKind::Timeout) {
            rest.rsplit(": ").next().unwrap_or(rest)
        } else {
            rest
        };
        match groups
            .iter_mut()
            .find(|(g, _, r)| g.service == e.service && g.kind == e.kind && *r == root)
        {
            Some((_, calls, _)) => {
                if !calls.contains(&call) {
                    calls.push(call);
                }
            }
            None => groups.push((e, vec![call], root)),
        }
    }
    for (e, calls, root) in groups {
        let mut line = if calls.len() > 1 {
            format!(
                "{}: {} ({}): {root}",
                e.service,
                calls.join(", "),
                e.kind.as_str()
            )
        } else {
            e.to_string()
        };
        if let Some(h) = hint(e, s) {
            line.push_str("\n      → ");
            line.push_str(&h);
        }
        out.push(line);
    }
    let failed: Vec<String> = report.read_errors.iter().map(|e| e.to_string()).collect();
    let snap = &report.snapshot;
    let lists: [(&str, Option<&str>); 5] = [
        ("jobs", partial(&snap.jobs)),
        ("runners", partial(&snap.runners)),
        ("servers", partial(&snap.servers)),
        ("nodes", partial(&snap.nodes)),
        ("runner pods", partial(&snap.pods)),
    ];
    for (name, reason) in lists {
        // A list whose read failed is said above; one that came back in part is said here.
        if let Some(r) = reason
            && !failed
                .iter()
                .any(|f| f.contains(r) || r.contains(f.as_str()))
        {
            out.push(format!("the {name} list is incomplete: {r}"));
        }
    }
    out
}

fn partial<T>(s: &Source<T>) -> Option<&str> {
    match s {
        Source::Complete { .. } => None,
        Source::Partial { reason, .. } | Source::Unavailable { reason } => Some(reason),
    }
}

/// The plan for people, without the warnings that only repeat a failed read (the preflight's
/// list says each failure once, with its cause and a hint).
pub(crate) fn without_repeats(plan: &Plan, report: &TickReport) -> Plan {
    let failed: Vec<String> = report.read_errors.iter().map(|e| e.to_string()).collect();
    let mut plan = plan.clone();
    plan.warnings.retain(|w| {
        w.kind != WarningKind::IncompleteData
            || !failed.iter().any(|f| w.message.contains(f.as_str()))
    });
    plan
}
