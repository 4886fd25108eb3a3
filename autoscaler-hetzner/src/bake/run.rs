//! The bake's driver: observe, take [`next_step`], carry it out, until the image is available.

use std::time::Duration;

use autoscaler_core::ports::ErrorKind;
use autoscaler_core::{SignedDuration, Source, Timestamp, keys};

use super::{Recipe, Step, next_step};
use crate::{HetznerClient, HetznerError};

/// How a bake runs.
#[derive(Debug, Clone)]
pub struct BakeOptions {
    /// How many of the pool's baked images are kept, the new one among them (at least 1).
    pub keep: usize,
    /// How long the temporary server may take to install and power off, and how long one run
    /// may wait for anything, before the bake gives up and deletes the server.
    pub timeout: SignedDuration,
    /// How often Hetzner is asked while waiting.
    pub poll: Duration,
}

impl Default for BakeOptions {
    /// Three images kept, 30 minutes, a poll every 10 seconds.
    fn default() -> Self {
        Self {
            keep: 3,
            timeout: SignedDuration::from_mins(30),
            poll: Duration::from_secs(10),
        }
    }
}

/// How a bake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baked {
    /// The image is available.
    Image(u64),
    /// The progress callback asked to stop before the image was made; running the bake again
    /// resumes.
    Stopped,
}

/// Bakes `recipe`'s image, telling `progress` each new step before it is carried out (return
/// `false` to stop there). Resumes whatever an earlier run left. On a failure after the
/// temporary server exists, deletes it unless it is being snapshotted, and says so.
pub async fn bake(
    client: &HetznerClient,
    recipe: &Recipe,
    options: &BakeOptions,
    progress: &mut (dyn FnMut(&Step) -> bool + Send),
) -> Result<Baked, HetznerError> {
    recipe.validate()?;
    let servers_selector = format!("{}={},{}", keys::OWNER, recipe.installation, keys::BAKE);
    let images_selector = format!(
        "{}={},{}={}",
        keys::OWNER,
        recipe.installation,
        keys::POOL,
        recipe.pool
    );
    let started = Timestamp::now();
    let deadline = started
        .saturating_add(options.timeout)
        .unwrap_or(Timestamp::MAX);
    let mut last: Option<Step> = None;
    let mut server: Option<u64> = None;
    // Why the last look could not decide, if it could not.
    let mut unread: Option<String> = None;
    loop {
        let now = Timestamp::now();
        if now > deadline {
            let what = "the bake took longer than";
            return Err(give_up(client, server, options, what, unread.as_deref()).await);
        }
        let lists = (
            client.list_servers_matching(&servers_selector).await,
            client.list_images(Some(&images_selector)).await,
        );
        // Decide only on complete lists: a partial one could hide the server or the image. A
        // list that fails for a passing reason (an outage, the rate limit) is read again.
        let (servers, images) = match lists {
            (Ok(Source::Complete { items: s }), Ok(Source::Complete { items: i })) => (s, i),
            (Err(e), _) | (_, Err(e)) if !e.kind().is_retryable() => {
                return Err(with_cleanup(client, server, e).await);
            }
            (Err(e), _) | (_, Err(e)) => {
                unread = Some(e.to_string());
                tokio::time::sleep(options.poll).await;
                continue;
            }
            _ => {
                unread = Some("a list was read only in part".to_owned());
                tokio::time::sleep(options.poll).await;
                continue;
            }
        };
        let step = next_step(
            recipe,
            &servers,
            &images,
            now,
            options.timeout,
            options.keep.max(1),
        );
        let changed = last.as_ref() != Some(&step);
        if changed && !progress(&step) {
            return Ok(Baked::Stopped);
        }
        last = Some(step.clone());
        let result = match step {
            Step::Done { image } => return Ok(Baked::Image(image)),
            Step::AwaitPowerOff { server: id } | Step::AwaitDeletion { server: id } => {
                server = Some(id);
                tokio::time::sleep(options.poll).await;
                Ok(())
            }
            Step::AwaitImage { .. } => {
                tokio::time::sleep(options.poll).await;
                Ok(())
            }
            Step::CreateServer => match client.create_bake_server(recipe).await {
                Ok(s) => {
                    server = Some(s.id);
                    Ok(())
                }
                // An earlier attempt whose answer was lost: the next listing shows it.
                Err(e) if e.code() == Some("uniqueness_error") => Ok(()),
                Err(e) => Err(e),
            },
            Step::Snapshot { server: id } => {
                server = Some(id);
                let description = format!(
                    "gitea-ci-autoscaler {} pool {}: K3s {} and {} runner image(s)",
                    recipe.installation,
                    recipe.pool,
                    recipe.k3s_version,
                    recipe.runner_images.len()
                );
                match client
                    .create_image(id, &description, &recipe.labels())
                    .await
                {
                    Ok(_) => Ok(()),
                    // Another snapshot of it is under way: the next listing shows it.
                    Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Step::DeleteServer { server: id, .. } => client.delete(id).await,
            Step::DeleteImage { image, .. } => client.delete_image(image).await,
            Step::GiveUp { server: id } => {
                return Err(give_up(
                    client,
                    Some(id),
                    options,
                    "the server did not power off within",
                    None,
                )
                .await);
            }
        };
        if let Err(e) = result {
            return Err(with_cleanup(client, server, e).await);
        }
    }
}

/// The timeout error, after deleting the temporary server.
async fn give_up(
    client: &HetznerClient,
    server: Option<u64>,
    options: &BakeOptions,
    what: &str,
    unread: Option<&str>,
) -> HetznerError {
    let last = unread.map_or_else(String::new, |why| format!(" (the last look failed: {why})"));
    let reason = format!(
        "{what} {:#}{last}; the script's output is in the server's console and \
         /var/log/cloud-init-output.log",
        options.timeout
    );
    with_cleanup(client, server, HetznerError::Bake(reason)).await
}

/// `error`, after deleting the temporary server if there is one, and saying what became of it.
async fn with_cleanup(
    client: &HetznerClient,
    server: Option<u64>,
    error: HetznerError,
) -> HetznerError {
    let Some(id) = server else {
        return error;
    };
    let left = match client.delete(id).await {
        Ok(()) => format!("server {id} was deleted"),
        Err(e) => format!(
            "server {id} could not be deleted ({e}): run the bake again, or the daemon deletes it \
             after {:#}",
            autoscaler_core::BAKE_SERVER_LIMIT
        ),
    };
    HetznerError::Bake(format!("{error}; {left}"))
}
