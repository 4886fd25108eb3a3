//! The commands that talk to the real services: `plan` (read-only) and `run`.

use std::path::Path;
use std::sync::Arc;

use autoscaler_core::Timestamp;
use autoscaler_core::ports::Leadership;
use autoscaler_core::shell::Shell;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::daemon::{Loop, Pusher, tick};
use crate::failure::Failure;
use crate::health::Health;
use crate::http::{AppState, Hook, router, webhook_router};
use crate::metrics::Metrics;
use crate::settings::{self, ProcessEnv, Settings};
use crate::{logging, preflight, wiring};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Service(format!("cannot start the runtime: {e}")))
}

fn settings(config: Option<&Path>) -> Result<Settings, Failure> {
    let path = config.map(|p| p.display().to_string());
    settings::load(&ProcessEnv, path.as_deref()).map_err(|p| Failure::Input(p.to_string()))
}

/// One read-only tick against the real services: prints the plan with its reasons and every
/// node's state, and changes nothing. A preflight too: when any source could not be read or
/// refused the credentials, every problem is listed once with what to do, and the exit code is 1
/// (bad configuration stays 2), so `plan && …` stops.
pub(crate) fn plan(config: Option<&Path>, json: bool) -> Result<(), Failure> {
    let s = settings(config)?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    let policy = s
        .core
        .validate()
        .map_err(|e| Failure::Input(e.to_string()))?;
    runtime()?.block_on(async {
        let wired = wiring::connect(&s, wiring::Purpose::Plan).await?;
        let mut shell = Shell::new(policy);
        let report = tick(
            &wired.providers,
            &mut shell,
            Timestamp::now(),
            false,
            s.daemon.call_timeout,
        )
        .await;
        let problems = preflight::problems(&report, &s, &wired.problems);
        if json {
            let text = serde_json::to_string_pretty(&report.plan)
                .map_err(|e| Failure::Output(e.to_string()))?;
            println!("{text}");
        } else {
            print!("{}", preflight::without_repeats(&report.plan, &report));
            println!("(read-only: nothing was changed)");
        }
        if problems.is_empty() {
            return Ok(());
        }
        let mut text = format!(
            "preflight failed: {} problem(s), so this plan is not what the daemon would do:",
            problems.len()
        );
        for p in &problems {
            text.push_str("\n  - ");
            text.push_str(p);
        }
        Err(Failure::Service(text))
    })
}

/// Connects for the daemon: what cannot be read at start (a service down, a 503 on the K3s
/// version or the project's SSH keys) is retried with backoff, 1 s doubling to 60 s, each
/// failure logged with its cause, so a blip at pod start is not a crash loop. Bad settings end
/// it at once; so does a signal (then `None`).
async fn connect_patiently(
    s: &Settings,
    health: &Health,
) -> Result<Option<wiring::Wired>, Failure> {
    let stop = CancellationToken::new();
    let signals = tokio::spawn(on_signal(stop.clone()));
    let mut wait = std::time::Duration::from_secs(1);
    let result = loop {
        match wiring::connect(s, wiring::Purpose::Run).await {
            Ok(w) => break Ok(Some(w)),
            Err(Failure::Service(why)) => {
                health.connecting(&why);
                tracing::warn!(
                    error = %why,
                    retry_in_secs = wait.as_secs(),
                    "cannot start yet; retrying"
                );
                tokio::select! {
                    () = stop.cancelled() => break Ok(None),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(std::time::Duration::from_secs(60));
            }
            Err(e) => break Err(e),
        }
    };
    signals.abort();
    result
}

/// Cancels `token` on SIGINT or SIGTERM.
async fn on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down: finishing the tick under way");
    token.cancel();
}

/// Refuses to start under the default name when another installation of that name shares the
/// Hetzner project: its servers carry our ownership label and another cluster's identity.
/// The core never touches them either way, but two installations of one name is a set-up
/// mistake that only gets worse (their names, alerts and dashboards mix). When either list
/// cannot be read, the loop starts anyway and stays fail-static.
async fn refuse_a_shared_name(s: &Settings, p: &crate::daemon::Providers) -> Result<(), Failure> {
    const DEFAULT: &str = "default";
    if s.core.installation != DEFAULT {
        return Ok(());
    }
    let (Ok(cluster), Ok(servers)) = tokio::join!(p.cluster.identity(), p.cloud.servers()) else {
        return Ok(());
    };
    let theirs: Vec<String> = servers
        .items()
        .iter()
        .filter(|x| {
            x.labels
                .get(autoscaler_core::keys::OWNER)
                .map(String::as_str)
                == Some(DEFAULT)
                && x.labels
                    .get(autoscaler_core::keys::CLUSTER)
                    .is_some_and(|c| *c != cluster)
        })
        .map(|x| x.name.clone())
        .collect();
    if theirs.is_empty() {
        return Ok(());
    }
    Err(Failure::Input(format!(
        "another installation called \"{DEFAULT}\" shares this Hetzner project: {} of its \
         server(s) ({}) carry {}={DEFAULT} and another cluster's identity. Give this one its own \
         name with INSTALLATION (lowercase letters, digits and '-') before starting it",
        theirs.len(),
        theirs
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        autoscaler_core::keys::OWNER
    )))
}

/// The daemon: the loop, the HTTP server, leader election and signals.
pub(crate) fn run(config: Option<&Path>) -> Result<(), Failure> {
    let s = settings(config)?;
    logging::init(s.daemon.log_format);
    let policy = s
        .core
        .validate()
        .map_err(|e| Failure::Input(e.to_string()))?;
    runtime()?.block_on(async move {
        let metrics = Arc::new(Metrics::new(&s.core));
        let health = Arc::new(Health::new(
            Timestamp::now(),
            s.daemon.poll_interval,
            s.daemon.call_timeout,
        ));
        let trigger = Arc::new(Notify::new());
        let shutdown = CancellationToken::new();
        let bind = |addr: std::net::SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Failure::Service(format!("cannot listen on {addr}: {e}")))
        };
        let listener = bind(s.daemon.listen).await?;
        let webhook_listener = bind(s.daemon.webhook_listen).await?;
        let state = Arc::new(AppState {
            metrics: metrics.clone(),
            health: health.clone(),
            trigger: trigger.clone(),
            hook: Hook::new(s.gitea.webhook_secret.as_ref().map(|w| w.value.clone())),
        });
        let server = tokio::spawn(crate::http::serve(
            listener,
            router(state.clone()),
            shutdown.clone(),
        ));
        let webhook_server = tokio::spawn(crate::http::serve(
            webhook_listener,
            webhook_router(state),
            shutdown.clone(),
        ));
        tracing::info!(
            version = crate::VERSION,
            installation = %s.core.installation,
            pools = s.core.pools.len(),
            max_nodes = s.core.max_nodes,
            listen = %s.daemon.listen,
            webhook_listen = %s.daemon.webhook_listen,
            leader_election = s.daemon.leader_election,
            webhook = s.gitea.webhook_secret.is_some(),
            "starting"
        );
        for w in &s.warnings {
            tracing::warn!("configuration: {w}");
        }
        if s.daemon.allow_insecure_http {
            tracing::warn!(
                "ALLOW_INSECURE_HTTP is set: tokens may travel in cleartext to http:// service URLs"
            );
        }
        // Serving first: while it connects, /healthz says alive and /readyz says why not ready.
        let started = async {
            let Some(wired) = connect_patiently(&s, &health).await? else {
                return Ok(None);
            };
            refuse_a_shared_name(&s, &wired.providers).await?;
            Ok(Some(wired))
        }
        .await;
        let wired = match started {
            Ok(Some(wired)) => wired,
            stopped => {
                shutdown.cancel();
                let _ = server.await;
                let _ = webhook_server.await;
                return stopped.map(drop);
            }
        };
        health.connected(Timestamp::now());
        tokio::spawn(on_signal(shutdown.clone()));
        let the_loop = Loop {
            providers: wired.providers,
            policy,
            poll: s.daemon.poll_interval,
            call_timeout: s.daemon.call_timeout,
            lease: wired.lease.map(|l| Arc::new(l) as Arc<dyn Leadership>),
            metrics,
            health,
            trigger,
            pusher: s.daemon.pushgateway_url.clone().map(|url| Pusher {
                http: wired.http.clone(),
                url,
            }),
        };
        the_loop.run(shutdown.clone()).await;
        shutdown.cancel();
        let _ = server.await;
        let _ = webhook_server.await;
        tracing::info!("stopped");
        Ok(())
    })
}
