//! `image bake`: a snapshot with K3s and the runner images on it, made from a temporary server.
//!
//! The bake is a small state machine over what Hetzner lists, never over what this process
//! remembers: [`next_step`] looks at the bake servers and the pool's images and says what to do
//! next, so a bake that was stopped at any point (a crash, Ctrl-C, a lost answer) resumes where
//! it was when run again, and a bake whose image exists has nothing to do. The temporary server
//! carries the ownership label and the bake label, so what one run leaves behind the next run
//! (or the daemon, after [`BAKE_SERVER_LIMIT`](autoscaler_core::BAKE_SERVER_LIMIT)) deletes.

mod recipe;
mod run;

use std::fmt;

use autoscaler_core::{Image, ImageStatus, Server, ServerStatus, SignedDuration, Timestamp, keys};

pub use recipe::{K3S_RELEASES, Recipe};
pub use run::{BakeOptions, Baked, bake};

/// Text every bake's user data holds (the script's first comment): a person reading a server's
/// user data, and the Hetzner fake, tell a bake server by it.
pub const BAKE_MARKER: &str = "gitea-ci-autoscaler bake";

/// What the bake does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No server and no image yet: create the temporary server.
    CreateServer,
    /// The temporary server is installing; it powers itself off when done.
    AwaitPowerOff {
        /// The temporary server.
        server: u64,
    },
    /// The server is off: snapshot it.
    Snapshot {
        /// The temporary server.
        server: u64,
    },
    /// The snapshot is being written.
    AwaitImage {
        /// The image.
        image: u64,
    },
    /// A server that is no longer needed, or one too many.
    DeleteServer {
        /// The server.
        server: u64,
        /// Why it goes.
        why: &'static str,
    },
    /// An image that failed, or an old one beyond the ones kept.
    DeleteImage {
        /// The image.
        image: u64,
        /// Why it goes.
        why: &'static str,
    },
    /// The server did not power off in time: the script failed or hangs. Delete it and fail.
    GiveUp {
        /// The temporary server.
        server: u64,
    },
    /// Hetzner is deleting a server; wait until it is gone.
    AwaitDeletion {
        /// The server.
        server: u64,
    },
    /// The image exists and is available.
    Done {
        /// The image.
        image: u64,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateServer => f.write_str("creating the temporary server"),
            Self::AwaitPowerOff { server } => write!(
                f,
                "server {server} is installing K3s and the images; it powers off when done"
            ),
            Self::Snapshot { server } => write!(f, "server {server} is off: taking the snapshot"),
            Self::AwaitImage { image } => write!(f, "image {image} is being written"),
            Self::DeleteServer { server, why } => write!(f, "deleting server {server}: {why}"),
            Self::DeleteImage { image, why } => write!(f, "deleting image {image}: {why}"),
            Self::GiveUp { server } => write!(
                f,
                "server {server} did not power off in time: deleting it (its console log says why)"
            ),
            Self::AwaitDeletion { server } => write!(f, "server {server} is being deleted"),
            Self::Done { image } => write!(f, "image {image} is available"),
        }
    }
}

/// The bake's next step for `recipe`, given the servers carrying this installation's bake label
/// and the images carrying this installation's and the pool's labels, at `now`. A server that
/// has not powered off `timeout` after its creation has failed; `keep` is how many of the pool's
/// baked images are kept (the new one among them).
pub fn next_step(
    recipe: &Recipe,
    servers: &[Server],
    images: &[Image],
    now: Timestamp,
    timeout: SignedDuration,
    keep: usize,
) -> Step {
    let hash = recipe.hash();
    let owned = |labels: &std::collections::BTreeMap<String, String>| {
        labels.get(keys::OWNER) == Some(&recipe.installation)
    };
    let of_recipe = |labels: &std::collections::BTreeMap<String, String>| {
        owned(labels) && labels.get(keys::BAKE) == Some(&hash)
    };
    let mut mine: Vec<&Server> = servers.iter().filter(|s| of_recipe(&s.labels)).collect();
    mine.sort_by_key(|s| (s.created, s.id));
    let pool_images: Vec<&Image> = images
        .iter()
        .filter(|i| owned(&i.labels) && i.labels.get(keys::POOL) == Some(&recipe.pool))
        .filter(|i| i.labels.contains_key(keys::BAKE))
        .collect();
    let made = pool_images
        .iter()
        .filter(|i| i.labels.get(keys::BAKE) == Some(&hash));

    if let Some(image) = made
        .clone()
        .filter(|i| i.status == ImageStatus::Available)
        .max_by_key(|i| (i.created, i.id))
    {
        if let Some(server) = mine.iter().find(|s| s.status != ServerStatus::Deleting) {
            return Step::DeleteServer {
                server: server.id,
                why: "the image is made",
            };
        }
        if let Some(failed) = pool_images
            .iter()
            .find(|i| i.status == ImageStatus::Unavailable)
        {
            return Step::DeleteImage {
                image: failed.id,
                why: "a failed snapshot",
            };
        }
        // Older images of the pool beyond the newest `keep` (the one just made counts).
        let mut others: Vec<&&Image> = pool_images
            .iter()
            .filter(|i| i.status == ImageStatus::Available && i.id != image.id)
            .collect();
        others.sort_by_key(|i| std::cmp::Reverse((i.created, i.id)));
        if let Some(old) = others.get(keep.saturating_sub(1)..).and_then(|o| o.last()) {
            return Step::DeleteImage {
                image: old.id,
                why: "older than the images kept",
            };
        }
        return Step::Done { image: image.id };
    }
    if let Some(writing) = made.clone().find(|i| i.status == ImageStatus::Creating) {
        return Step::AwaitImage { image: writing.id };
    }
    if let Some(failed) = made.clone().find(|i| i.status == ImageStatus::Unavailable) {
        return Step::DeleteImage {
            image: failed.id,
            why: "a failed snapshot of this recipe",
        };
    }
    // One server per recipe (its name is unique, so more than one means a name was reused).
    if let Some(extra) = mine.get(1..).and_then(|m| m.first()) {
        return Step::DeleteServer {
            server: extra.id,
            why: "a second server for the same bake",
        };
    }
    let Some(server) = mine.first() else {
        return Step::CreateServer;
    };
    match server.status {
        ServerStatus::Off => Step::Snapshot { server: server.id },
        ServerStatus::Deleting => Step::AwaitDeletion { server: server.id },
        _ if server
            .created
            .saturating_add(timeout)
            .is_ok_and(|t| t <= now) =>
        {
            Step::GiveUp { server: server.id }
        }
        _ => Step::AwaitPowerOff { server: server.id },
    }
}

#[cfg(test)]
mod tests;
