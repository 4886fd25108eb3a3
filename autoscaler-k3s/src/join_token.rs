//! Per-server join credentials: one Kubernetes bootstrap token per new server.
//!
//! K3s accepts bootstrap tokens (`K10<CA hash>::<id>.<secret>`) for agents, the same Secrets
//! `k3s token create` and `kubeadm token create` make. Each server gets its own, expiring shortly
//! after its provisioning timeout, and it is revoked once the node has joined: a joined agent
//! keeps authenticating as its node. So a CI job that reads the server's user data from the
//! metadata service finds a credential that is dead, or that at most joins one more agent for a
//! few minutes, never one that lasts the fleet's life.
//!
//! The daemon never reads a Secret: it creates the token, remembers its public id on the server
//! (a Hetzner label), and deletes it by name. Reading Secrets in `kube-system` would also read
//! the cluster's node passwords, a right this daemon does not need.
//!
//! The CA hash pins the control plane for the agent before it sends the token: the SHA-256 of
//! the cluster CA that K3s serves at `/cacerts`. The same bytes are published in every
//! namespace as the `kube-root-ca.crt` ConfigMap (K3s gives the controller manager its server
//! CA as the root CA file), which the daemon reads once.

use std::collections::BTreeMap;

use autoscaler_core::ports::JoinToken;
use autoscaler_core::{Timestamp, keys};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::K3sError;
use crate::cluster::K3sCluster;

/// Where bootstrap tokens live.
pub const TOKEN_NAMESPACE: &str = "kube-system";
/// The Secret type the API server's bootstrap authenticator reads.
pub const TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";
/// K3s's group for agent bootstrap tokens (`k3s token create` uses it).
pub const TOKEN_GROUP: &str = "system:bootstrappers:k3s:default-node-token";
/// Every token this project mints starts its description with this; the admission policy in
/// deploy/ lets the daemon create and delete only such tokens.
pub const DESCRIPTION_PREFIX: &str = "gitea-ci-autoscaler:";
/// The ConfigMap holding the cluster CA in every namespace.
const ROOT_CA: &str = "kube-root-ca.crt";

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `n` characters of `[a-z0-9]` from the operating system's random source, without bias.
fn random_chars(n: usize) -> Result<String, K3sError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::getrandom(&mut buf)
            .map_err(|e| K3sError::Config(format!("the system random source failed: {e}")))?;
        // 252 = 7 × 36: bytes above it are dropped so every character is equally likely.
        for b in buf.iter().filter(|&&b| b < 252) {
            if out.len() == n {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 36)]));
        }
    }
    Ok(out)
}

/// The Secret name of the bootstrap token `id`.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// The hash K3s puts after `K10`: SHA-256 of the CA bundle, hex.
pub fn ca_hash(ca_bundle: &str) -> String {
    hex::encode(Sha256::digest(ca_bundle.as_bytes()))
}

impl K3sCluster {
    /// The cluster CA's hash, read once from the `kube-root-ca.crt` ConfigMap.
    pub async fn cluster_ca_hash(&self) -> Result<String, K3sError> {
        if let Some(h) = self.ca_hash_cache() {
            return Ok(h);
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client(), TOKEN_NAMESPACE);
        let cm = self
            .call(
                format!("get configmap {TOKEN_NAMESPACE}/{ROOT_CA}"),
                async move { api.get(ROOT_CA).await },
            )
            .await?;
        let ca = cm
            .data
            .and_then(|d| d.get("ca.crt").cloned())
            .filter(|c| c.contains("BEGIN CERTIFICATE"))
            .ok_or_else(|| {
                K3sError::Decode(format!(
                    "the {TOKEN_NAMESPACE}/{ROOT_CA} ConfigMap holds no ca.crt certificate"
                ))
            })?;
        let hash = ca_hash(&ca);
        self.set_ca_hash_cache(hash.clone());
        Ok(hash)
    }

    /// Creates a bootstrap token for server `server` that expires at `expires`.
    pub async fn create_join_token(
        &self,
        server: &str,
        expires: Timestamp,
    ) -> Result<JoinToken, K3sError> {
        let hash = self.cluster_ca_hash().await?;
        let api: Api<Secret> = Api::namespaced(self.client(), TOKEN_NAMESPACE);
        // A clash of ids (one in 2 billion) is answered 409: draw again.
        let mut last = None;
        for _ in 0..3 {
            let (id, secret) = (random_chars(6)?, random_chars(16)?);
            let object = self.token_secret(&id, &secret, server, expires);
            let api = api.clone();
            match self
                .call(format!("create join token for {server}"), async move {
                    api.create(&PostParams::default(), &object).await
                })
                .await
            {
                Ok(_) => {
                    return Ok(JoinToken {
                        token: SecretString::from(format!("K10{hash}::{id}.{secret}")),
                        id,
                        expires,
                    });
                }
                Err(e) if e.code() == Some(409) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| K3sError::Incomplete("no token id was free".to_owned())))
    }

    fn token_secret(&self, id: &str, secret: &str, server: &str, expires: Timestamp) -> Secret {
        let installation = &self.config().installation;
        let mut s = Secret {
            type_: Some(TOKEN_TYPE.to_owned()),
            string_data: Some(BTreeMap::from([
                ("token-id".to_owned(), id.to_owned()),
                ("token-secret".to_owned(), secret.to_owned()),
                ("expiration".to_owned(), expires.to_string()),
                (
                    "usage-bootstrap-authentication".to_owned(),
                    "true".to_owned(),
                ),
                ("usage-bootstrap-signing".to_owned(), "true".to_owned()),
                ("auth-extra-groups".to_owned(), TOKEN_GROUP.to_owned()),
                (
                    "description".to_owned(),
                    format!("{DESCRIPTION_PREFIX} {installation} joins server {server}"),
                ),
            ])),
            ..Secret::default()
        };
        s.metadata.name = Some(secret_name(id));
        s.metadata.namespace = Some(TOKEN_NAMESPACE.to_owned());
        s.metadata.labels = Some(BTreeMap::from([(
            keys::OWNER.to_owned(),
            installation.clone(),
        )]));
        s
    }

    /// Deletes the bootstrap token `id`; one that is gone counts as deleted. An id that is not a
    /// token id is refused before any call.
    pub async fn delete_join_token(&self, id: &str) -> Result<(), K3sError> {
        if !keys::is_token_id(id) {
            return Err(K3sError::Config(format!(
                "`{id}` is not a bootstrap token id ([a-z0-9]{{6}})"
            )));
        }
        let api: Api<Secret> = Api::namespaced(self.client(), TOKEN_NAMESPACE);
        let name = secret_name(id);
        match self
            .call(format!("delete join token {id}"), async move {
                api.delete(&name, &DeleteParams::default()).await
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_follow_the_bootstrap_grammar_and_differ() {
        let a = random_chars(6).unwrap();
        let b = random_chars(16).unwrap();
        assert!(keys::is_token_id(&a), "{a}");
        assert_eq!(b.len(), 16);
        assert!(b.bytes().all(|c| ALPHABET.contains(&c)));
        let many: std::collections::BTreeSet<String> =
            (0..200).map(|_| random_chars(16).unwrap()).collect();
        assert_eq!(many.len(), 200);
    }

    #[test]
    fn the_ca_hash_is_sha256_hex_of_the_bundle() {
        assert_eq!(
            ca_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
