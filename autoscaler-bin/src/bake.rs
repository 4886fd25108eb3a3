//! `image bake`: a pool's baked image, made with the daemon's configuration.
//!
//! The recipe comes from the pool (its base image, first server type and location), the cluster
//! (its K3s version, unless given) and the runner workload (its images); the bake itself is
//! `autoscaler_hetzner::bake`, which resumes whatever an earlier run left.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use autoscaler_core::SignedDuration;
use autoscaler_hetzner::K3sJoin;
use autoscaler_hetzner::bake::{BakeOptions, Baked, K3S_RELEASES, Recipe, bake};
use autoscaler_k3s::{ClusterConfig, K3sCluster};

use crate::failure::Failure;
use crate::settings::{self, ProcessEnv, Settings};
use crate::wiring;

/// The images of the runner workload the project ships (`deploy/runners/daemonset.yaml`): what
/// a bake preloads unless told otherwise. A test keeps the two in step.
pub(crate) const RUNNER_IMAGES: [&str; 2] = [
    "docker.io/gitea/act_runner:0.2.12",
    "docker.io/library/docker:28-dind",
];

/// `image bake`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct BakeArgs {
    /// A TOML configuration file (instead of CONFIG_FILE).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// The pool to bake for; without it, the only pool (several pools need it).
    #[arg(long)]
    pool: Option<String>,
    /// The K3s release to install; without it, K3S_VERSION, else the cluster's.
    #[arg(long, value_name = "VERSION")]
    k3s_version: Option<String>,
    /// A container image to preload (repeat it); without any, the shipped runner workload's.
    #[arg(long = "runner-image", value_name = "REF")]
    runner_images: Vec<String>,
    /// The server type of the temporary server; without it, the pool's first. A snapshot boots
    /// only on types of the same architecture with at least its disk: take the pool's smallest.
    #[arg(long)]
    server_type: Option<String>,
    /// Where the temporary server runs; without it, the pool's first location.
    #[arg(long)]
    location: Option<String>,
    /// How many of the pool's baked images to keep, the new one among them.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    keep: u16,
    /// Minutes the temporary server may take to install and power off before it is deleted.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(5..=360))]
    timeout_mins: u16,
    /// Milliseconds between two looks while waiting (tests speed it up).
    #[arg(long, default_value_t = 10_000, hide = true)]
    poll_ms: u64,
}

/// Bakes the pool's image and prints its id; progress goes to standard error.
pub(crate) fn run(args: &BakeArgs) -> Result<(), Failure> {
    let path = args.config.as_ref().map(|p| p.display().to_string());
    let s =
        settings::load(&ProcessEnv, path.as_deref()).map_err(|p| Failure::Input(p.to_string()))?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Service(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(bake_with(&s, args))
}

async fn bake_with(s: &Settings, args: &BakeArgs) -> Result<(), Failure> {
    let pool = pool_of(s, args.pool.as_deref())?;
    wiring::install_crypto();
    let http = reqwest::Client::builder()
        .user_agent(concat!("gitea-ci-autoscaler/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Service(format!("cannot build the HTTP client: {e}")))?;
    let version = match args.k3s_version.clone().or_else(|| s.k3s.version.clone()) {
        Some(v) => v,
        None => cluster_version(s).await?,
    };
    // The client needs join data to be built; a bake creates no node, so none is real.
    let join = K3sJoin::new("https://unused.invalid:6443", None, version.clone());
    let install_script_url = join.install_script_url.clone();
    let client = wiring::hetzner_client(s, &http, join)?;
    let server_type = args
        .server_type
        .clone()
        .or_else(|| pool.server_types.first().cloned())
        .ok_or_else(|| Failure::Input(format!("pool {} has no server type", pool.name)))?;
    let types = client
        .server_types()
        .await
        .map_err(|e| Failure::Service(format!("cannot list the server types: {e}")))?;
    let architecture = types
        .iter()
        .find(|t| t.name == server_type)
        .map(|t| t.architecture.clone())
        .ok_or_else(|| Failure::Input(format!("Hetzner sells no server type {server_type}")))?;
    let mismatched: Vec<&str> = types
        .iter()
        .filter(|t| pool.server_types.contains(&t.name) && t.architecture != architecture)
        .map(|t| t.name.as_str())
        .collect();
    if !mismatched.is_empty() {
        return Err(Failure::Input(format!(
            "pool {}'s server types {} are not {architecture} like {server_type}: an image boots \
             on one architecture; make a pool per architecture",
            pool.name,
            mismatched.join(", ")
        )));
    }
    let recipe = Recipe {
        installation: s.core.installation.clone(),
        pool: pool.name.clone(),
        server_type,
        architecture,
        location: args
            .location
            .clone()
            .or_else(|| pool.locations.first().cloned())
            .ok_or_else(|| Failure::Input(format!("pool {} has no location", pool.name)))?,
        base_image: pool.image.clone(),
        k3s_version: version,
        install_script_url,
        releases_url: K3S_RELEASES.to_owned(),
        runner_images: if args.runner_images.is_empty() {
            RUNNER_IMAGES.map(str::to_owned).to_vec()
        } else {
            args.runner_images.clone()
        },
    };
    recipe
        .validate()
        .map_err(|e| Failure::Input(e.to_string()))?;
    let options = BakeOptions {
        keep: usize::from(args.keep),
        timeout: SignedDuration::from_mins(i64::from(args.timeout_mins)),
        poll: Duration::from_millis(args.poll_ms.clamp(1, 60_000)),
    };
    eprintln!(
        "baking pool {}'s image {} ({} from {} on {} in {}, K3s {}, {} image(s))",
        recipe.pool,
        recipe.hash(),
        recipe.server_name(),
        recipe.base_image,
        recipe.server_type,
        recipe.location,
        recipe.k3s_version,
        recipe.runner_images.len()
    );
    let started = Instant::now();
    let mut progress = |step: &autoscaler_hetzner::bake::Step| {
        let t = started.elapsed().as_secs();
        eprintln!("[{:02}:{:02}] {step}", t / 60, t % 60);
        true
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = tokio::select! {
        r = bake(&client, &recipe, &options, &mut progress) => r,
        () = interrupted => {
            return Err(Failure::Service(format!(
                "interrupted: run `gitea-ci-autoscaler image bake` again to resume; a temporary \
                 server {} left alone is deleted by the daemon after {:#}",
                recipe.server_name(),
                autoscaler_core::BAKE_SERVER_LIMIT
            )));
        }
    };
    match result {
        Ok(Baked::Image(id)) => {
            eprintln!(
                "image {id} is ready: servers of pool {} boot it with `baked_image = \"auto\"` in \
                 the pool (or HETZNER_BAKED_IMAGE=auto) once the daemon sees it",
                recipe.pool
            );
            println!("{id}");
            Ok(())
        }
        Ok(Baked::Stopped) => Err(Failure::Service("stopped before the image was made".into())),
        Err(e) => Err(Failure::Service(e.to_string())),
    }
}

/// The pool named, or the only one.
fn pool_of<'s>(
    s: &'s Settings,
    name: Option<&str>,
) -> Result<&'s autoscaler_core::PoolConfig, Failure> {
    let pools = &s.core.pools;
    let names = || {
        pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => pools
            .iter()
            .find(|p| p.name == n)
            .ok_or_else(|| Failure::Input(format!("no pool {n}; the pools are {}", names()))),
        None if pools.len() == 1 => Ok(&pools[0]),
        None => Err(Failure::Input(format!(
            "there are several pools ({}): say which with --pool",
            names()
        ))),
    }
}

/// The cluster's K3s version, for a bake without `--k3s-version` or `K3S_VERSION`.
async fn cluster_version(s: &Settings) -> Result<String, Failure> {
    let mut config = ClusterConfig::new(s.core.installation.clone());
    config.timeout = s.daemon.call_timeout;
    let hint = "pass --k3s-version (the cluster's, e.g. v1.33.4+k3s1) or set K3S_VERSION";
    let cluster = K3sCluster::connect(config).await.map_err(|e| {
        Failure::Service(format!(
            "cannot reach Kubernetes for its version ({hint}): {e}"
        ))
    })?;
    cluster
        .version()
        .await
        .map_err(|e| Failure::Service(format!("cannot read the K3s version ({hint}): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The images a workload file names (for the test below).
    fn workload_images(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image:"))
            .map(|i| i.trim().to_owned())
            .collect()
    }

    #[test]
    fn a_bake_preloads_the_images_of_the_shipped_runner_workload() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let shipped = workload_images(&root.join("deploy/runners/daemonset.yaml"));
        assert_eq!(shipped, RUNNER_IMAGES);
        let chart =
            std::fs::read_to_string(root.join("charts/gitea-ci-autoscaler/values.yaml")).unwrap();
        assert!(chart.contains(&format!("image: {}", RUNNER_IMAGES[0])));
        assert!(chart.contains(&format!("dockerImage: {}", RUNNER_IMAGES[1])));
    }
}
