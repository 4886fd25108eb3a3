//! The HTTP client: servers by label, create, relabel, delete, server types and prices.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use autoscaler_core::ServerId;
use autoscaler_core::keys;
use autoscaler_core::ports::{Cloud, NewServer, Price, ProviderError};
use autoscaler_core::{ApiBudget, Image, Server, Source, Timestamp};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bake::Recipe;
use crate::cloud_init::Boot;
use crate::wire::{
    CreatedImage, ErrorBody, ImagesPage, OneServer, Paged, ServerTypesPage, ServersPage,
    SshKeysPage,
};
use crate::{HetznerError, K3sJoin, RequestBudget};

/// The official endpoint.
pub const DEFAULT_URL: &str = "https://api.hetzner.cloud/v1";

const PER_PAGE: u32 = 50;

/// What an operator sets about the endpoint and every new server: the daemon's `[hetzner]`
/// section is read as this type and printed back as it, so each key is declared here once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HetznerSettings {
    /// The API's base URL, `https://api.hetzner.cloud/v1` unless a proxy or fake stands in.
    pub url: String,
    /// SSH key names or ids for new servers (without one Hetzner mails a root password).
    pub ssh_keys: Vec<String>,
    /// Give new servers a public IPv4 address (billed separately); IPv6 is always on.
    pub enable_ipv4: bool,
    /// Private network ids to attach new servers to.
    pub networks: Vec<u64>,
    /// Firewall ids for new servers.
    pub firewalls: Vec<u64>,
}

impl Default for HetznerSettings {
    /// The official endpoint, no SSH keys, no networks or firewalls, IPv4 on.
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            ssh_keys: Vec::new(),
            enable_ipv4: true,
            networks: Vec::new(),
            firewalls: Vec::new(),
        }
    }
}

/// Where Hetzner is, how to talk to it, and what every new server gets.
#[derive(Debug, Clone)]
pub struct HetznerConfig {
    /// What the operator set.
    pub settings: HetznerSettings,
    /// A read-write API token of the project.
    pub token: SecretString,
    /// This installation's name: the ownership label's value. Only servers carrying it are
    /// listed, and so only those can ever be relabelled or deleted.
    pub installation: String,
    /// The longest one request may take.
    pub timeout: Duration,
    /// How new servers join the cluster.
    pub join: K3sJoin,
}

impl HetznerConfig {
    /// A configuration with the default settings and a 15-second timeout.
    pub fn new(token: SecretString, installation: impl Into<String>, join: K3sJoin) -> Self {
        Self {
            settings: HetznerSettings::default(),
            token,
            installation: installation.into(),
            timeout: Duration::from_secs(15),
            join,
        }
    }
}

/// One server type, with where it can be bought and at what price.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTypeInfo {
    /// Its name, e.g. `ccx33`.
    pub name: String,
    /// vCPUs.
    pub cores: f64,
    /// Memory in GB.
    pub memory: f64,
    /// `x86` or `arm`.
    pub architecture: String,
    /// Locations where it can be ordered now (listed, available, not deprecated).
    pub orderable_in: Vec<String>,
    /// Hourly prices per location.
    pub prices: Vec<Price>,
}

/// A Hetzner Cloud client for one installation's servers.
#[derive(Debug)]
pub struct HetznerClient {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    config: HetznerConfig,
    budget: Mutex<RequestBudget>,
    /// Every server's labels as last listed, created or written: what a one-label change is
    /// merged into, because Hetzner replaces the whole set on every update.
    labels: Mutex<BTreeMap<u64, BTreeMap<String, String>>>,
}

fn header_num<T: std::str::FromStr>(h: &HeaderMap, name: &str) -> Option<T> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn call_name(method: &Method, path: &str) -> String {
    format!("{method} {}", path.split('?').next().unwrap_or(path))
}

impl HetznerClient {
    /// A client over `http`, which the caller built (rustls, provider installed).
    pub fn new(http: reqwest::Client, config: HetznerConfig) -> Result<Self, HetznerError> {
        let base = config.settings.url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(HetznerError::Config(format!(
                "the API URL `{base}` must start with https:// (or http:// for a local test server)"
            )));
        }
        if config.installation.is_empty() {
            return Err(HetznerError::Config(
                "the installation name is empty".to_owned(),
            ));
        }
        config.join.validate()?;
        Ok(Self {
            http,
            base,
            token: config.token.clone(),
            config,
            budget: Mutex::new(RequestBudget::default()),
            labels: Mutex::new(BTreeMap::new()),
        })
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, RequestBudget> {
        self.budget.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn known_labels(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, BTreeMap<String, String>>> {
        self.labels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the labels of `servers`; a complete listing also forgets every server it
    /// does not hold.
    fn remember_labels(&self, servers: &[Server], complete: bool) {
        let mut known = self.known_labels();
        if complete {
            known.clear();
        }
        for s in servers {
            known.insert(s.id, s.labels.clone());
        }
    }

    /// What is left of the request budget now.
    pub fn remaining_budget(&self) -> Option<u32> {
        self.budget().remaining(Timestamp::now())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Option<T>, HetznerError> {
        let call = call_name(&method, path);
        if let Err(wait) = self.budget().admit(Timestamp::now()) {
            return Err(HetznerError::BudgetSpent {
                call,
                retry_in_secs: wait.as_secs().max(1),
            });
        }
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout)
            .query(query);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|source| HetznerError::Transport {
            call: call.clone(),
            source,
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        {
            let mut budget = self.budget();
            let now = Timestamp::now();
            budget.observe(
                now,
                header_num(&headers, "RateLimit-Limit"),
                header_num(&headers, "RateLimit-Remaining"),
                header_num(&headers, "RateLimit-Reset"),
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                budget.rate_limited(now);
            } else if status.is_success() {
                budget.succeeded();
            }
        }
        let bytes = read_capped(resp)
            .await
            .map_err(|source| HetznerError::Transport {
                call: call.clone(),
                source,
            })?
            .ok_or_else(|| HetznerError::Decode {
                call: call.clone(),
                problem: format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
            })?;
        if !status.is_success() {
            let correlation = headers
                .get("X-Correlation-Id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => (b.error.code, b.error.message),
                Err(_) => (
                    format!("http_{}", status.as_u16()),
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                ),
            };
            tracing::debug!(%call, status = status.as_u16(), %code, correlation, "hetzner error");
            return Err(HetznerError::Api {
                call,
                status: status.as_u16(),
                code,
                message: format!("{message} (correlation id {correlation})"),
            });
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HetznerError::Decode {
                call,
                problem: e.to_string(),
            })
    }

    async fn send_some<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T, HetznerError> {
        let call = call_name(&method, path);
        self.send(method, path, query, body)
            .await?
            .ok_or_else(|| HetznerError::Decode {
                call,
                problem: "empty body".to_owned(),
            })
    }

    /// The label selector of the servers listed: every server with an ownership label, this
    /// installation's and any other's. The core keeps only its own (by the label's value) and
    /// says how many carry another installation's name, so a mistyped `INSTALLATION` is seen
    /// instead of met with silence.
    pub fn selector(&self) -> String {
        keys::OWNER.to_owned()
    }

    /// The servers carrying an ownership label (see [`Self::selector`]), every page.
    pub async fn list_servers(&self) -> Result<Source<Server>, HetznerError> {
        let source = self.list_servers_matching(&self.selector()).await?;
        let complete = matches!(source, Source::Complete { .. });
        self.remember_labels(source.items(), complete);
        Ok(source)
    }

    /// The servers matching a label selector, every page, by id.
    pub async fn list_servers_matching(
        &self,
        selector: &str,
    ) -> Result<Source<Server>, HetznerError> {
        let filters = [("label_selector", selector.to_owned())];
        self.list_all::<ServersPage>("/servers", &filters).await
    }

    /// The project's snapshot images, every page, by id.
    pub async fn list_images(&self, selector: Option<&str>) -> Result<Source<Image>, HetznerError> {
        let mut filters = vec![("type", "snapshot".to_owned())];
        if let Some(s) = selector {
            filters.push(("label_selector", s.to_owned()));
        }
        self.list_all::<ImagesPage>("/images", &filters).await
    }

    /// Every page of a list: a first page that fails is an error; a later one, or an item that
    /// cannot be read, makes the list [`Source::Partial`] with the reason.
    async fn list_all<P: Paged>(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Source<P::Item>, HetznerError> {
        let what = path.trim_start_matches('/');
        let mut items = Vec::new();
        let mut problems = Vec::new();
        let mut page = 1;
        let mut total = None;
        loop {
            let mut query = filters.to_vec();
            query.push(("per_page", PER_PAGE.to_string()));
            query.push(("page", page.to_string()));
            let body = match self.send_some::<P>(Method::GET, path, &query, None).await {
                Ok(b) => b,
                Err(e) if page == 1 => return Err(e),
                Err(e) => {
                    problems.push(format!("{what}: page {page} failed: {e}"));
                    break;
                }
            };
            let (read, pagination) = body.split();
            total = total.or(pagination.total_entries);
            for item in read {
                match item {
                    Ok(i) => items.push(i),
                    Err(e) => problems.push(e),
                }
            }
            match pagination.next_page {
                Some(next) if next > page => {
                    let limit = total.map_or(u64::MAX, |t| t.div_ceil(u64::from(PER_PAGE)) + 1);
                    if u64::from(next) > limit {
                        problems.push(format!(
                            "{what}: page {next} is past the {limit} pages the total needs"
                        ));
                        break;
                    }
                    page = next;
                }
                _ => break,
            }
        }
        items.sort_by_key(P::id);
        items.dedup_by_key(|i| P::id(i));
        if let Some(t) = total
            && (items.len() as u64) < t
            && problems.is_empty()
        {
            problems.push(format!(
                "{what}: read {}, but the total is {t}",
                items.len()
            ));
        }
        Ok(if problems.is_empty() {
            Source::complete(items)
        } else {
            Source::Partial {
                items,
                reason: problems.join("; "),
            }
        })
    }

    /// Creates a server that joins the cluster. A `uniqueness_error` means a server of that
    /// name exists, maybe from an earlier attempt whose answer was lost: the next listing shows it.
    pub async fn create(&self, new: &NewServer) -> Result<Server, HetznerError> {
        let own = new.join_token.as_ref();
        let boot = if new.spec.baked_image.is_some() {
            Boot::Baked
        } else {
            Boot::Install
        };
        let user_data = self.config.join.user_data(
            &new.spec.name,
            &new.spec.node_labels,
            own.map(|t| &t.token),
            boot,
        )?;
        // The token's public id goes on the server, so it can be revoked without reading any
        // Secret once the node has joined or the server is gone.
        let mut labels = new.spec.labels.clone();
        if let Some(t) = own {
            labels.insert(autoscaler_core::keys::JOIN_TOKEN.to_owned(), t.id.clone());
        }
        let body = self.server_body(
            json!({
                "name": new.spec.name,
                "server_type": new.spec.server_type,
                "location": new.spec.location,
                "image": new.spec.image,
                "labels": labels,
                "user_data": user_data,
            }),
            self.config.settings.enable_ipv4,
        );
        self.post_server(body).await
    }

    /// Creates the temporary server of a bake: the recipe's base image, type and location,
    /// its labels and user data. It always gets IPv4: the K3s downloads are not served on IPv6.
    pub async fn create_bake_server(&self, recipe: &Recipe) -> Result<Server, HetznerError> {
        let body = self.server_body(
            json!({
                "name": recipe.server_name(),
                "server_type": recipe.server_type,
                "location": recipe.location,
                "image": recipe.base_image,
                "labels": recipe.labels(),
                "user_data": recipe.user_data()?,
            }),
            true,
        );
        self.post_server(body).await
    }

    /// The settings every new server gets (SSH keys, networks, firewalls, addresses) added to
    /// `body`.
    fn server_body(&self, mut body: Value, enable_ipv4: bool) -> Value {
        body["start_after_create"] = json!(true);
        body["public_net"] = json!({"enable_ipv4": enable_ipv4, "enable_ipv6": true});
        if !self.config.settings.ssh_keys.is_empty() {
            body["ssh_keys"] = json!(self.config.settings.ssh_keys);
        }
        if !self.config.settings.networks.is_empty() {
            body["networks"] = json!(self.config.settings.networks);
        }
        if !self.config.settings.firewalls.is_empty() {
            body["firewalls"] = self
                .config
                .settings
                .firewalls
                .iter()
                .map(|id| json!({"firewall": id}))
                .collect();
        }
        body
    }

    async fn post_server(&self, body: Value) -> Result<Server, HetznerError> {
        let created: OneServer = self
            .send_some(Method::POST, "/servers", &[], Some(body))
            .await?;
        let server = created
            .server
            .into_server()
            .map_err(|problem| HetznerError::Decode {
                call: "POST /servers".to_owned(),
                problem,
            })?;
        self.known_labels().insert(server.id, server.labels.clone());
        Ok(server)
    }

    /// Starts a snapshot of server `id` with `labels`; the image is `creating` until written.
    pub async fn create_image(
        &self,
        id: u64,
        description: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Image, HetznerError> {
        let call = format!("POST /servers/{id}/actions/create_image");
        let created: CreatedImage = self
            .send_some(
                Method::POST,
                &format!("/servers/{id}/actions/create_image"),
                &[],
                Some(json!({"type": "snapshot", "description": description, "labels": labels})),
            )
            .await?;
        created
            .image
            .into_image()
            .map_err(|problem| HetznerError::Decode { call, problem })
    }

    /// Deletes an image; one that is already gone counts as deleted.
    pub async fn delete_image(&self, id: u64) -> Result<(), HetznerError> {
        match self
            .send::<Value>(Method::DELETE, &format!("/images/{id}"), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces a server's labels.
    pub async fn set_labels(
        &self,
        id: u64,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), HetznerError> {
        let path = format!("/servers/{id}");
        let _: OneServer = self
            .send_some(Method::PUT, &path, &[], Some(json!({ "labels": labels })))
            .await?;
        Ok(())
    }

    /// Sets (`Some`) or removes (`None`) one label of server `id`, keeping the others as last
    /// listed, created or written. A server not known that way is refused: the whole set would
    /// be replaced by a guess.
    pub async fn set_label(
        &self,
        id: u64,
        key: &str,
        value: Option<String>,
    ) -> Result<(), HetznerError> {
        let mut labels = self
            .known_labels()
            .get(&id)
            .cloned()
            .ok_or(HetznerError::UnknownLabels { server: id })?;
        match value {
            Some(v) => labels.insert(key.to_owned(), v),
            None => labels.remove(key),
        };
        self.set_labels(id, &labels).await?;
        self.known_labels().insert(id, labels);
        Ok(())
    }

    /// Deletes a server; one that is already gone counts as deleted.
    pub async fn delete(&self, id: u64) -> Result<(), HetznerError> {
        let result = self
            .send::<Value>(Method::DELETE, &format!("/servers/{id}"), &[], None)
            .await;
        if result.is_ok() || result.as_ref().is_err_and(HetznerError::is_not_found) {
            self.known_labels().remove(&id);
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                tracing::debug!(server = id, "server already gone");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The names of every SSH key of the project (the seed daemon put all of them on new
    /// servers; so does the daemon when no key is configured).
    pub async fn ssh_key_names(&self) -> Result<Vec<String>, HetznerError> {
        let mut names = Vec::new();
        let mut page = 1;
        loop {
            let query = [
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            let body: SshKeysPage = self
                .send_some(Method::GET, "/ssh_keys", &query, None)
                .await?;
            names.extend(body.ssh_keys.into_iter().map(|k| k.name));
            match body.meta.pagination.next_page {
                Some(next) if next > page && next < 100 => page = next,
                _ => break,
            }
        }
        Ok(names)
    }

    /// Uses these SSH keys for new servers from now on.
    pub fn set_ssh_keys(&mut self, keys: Vec<String>) {
        self.config.settings.ssh_keys = keys;
    }

    /// Every server type, with where it can be ordered and its hourly prices.
    pub async fn server_types(&self) -> Result<Vec<ServerTypeInfo>, HetznerError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let query = [
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            let body: ServerTypesPage = self
                .send_some(Method::GET, "/server_types", &query, None)
                .await?;
            for t in body.server_types {
                let mut prices = Vec::new();
                for p in &t.prices {
                    let parse = |s: &str| {
                        s.trim().parse::<f64>().map_err(|_| HetznerError::Decode {
                            call: "GET /server_types".to_owned(),
                            problem: format!("{}: price {s:?} is not a decimal", t.name),
                        })
                    };
                    prices.push(Price {
                        server_type: t.name.clone(),
                        location: p.location.clone(),
                        hourly_net: parse(&p.price_hourly.net)?,
                        hourly_gross: parse(&p.price_hourly.gross)?,
                    });
                }
                out.push(ServerTypeInfo {
                    orderable_in: t
                        .locations
                        .iter()
                        .filter(|l| l.available && l.deprecation.is_none())
                        .map(|l| l.name.clone())
                        .collect(),
                    name: t.name,
                    cores: t.cores,
                    memory: t.memory,
                    architecture: t.architecture,
                    prices,
                });
            }
            match body.meta.pagination.next_page {
                Some(next) if next > page && next < 100 => page = next,
                _ => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Cloud for HetznerClient {
    async fn servers(&self) -> Result<Source<Server>, ProviderError> {
        Ok(self.list_servers().await?)
    }

    async fn create_server(&self, server: &NewServer) -> Result<Server, ProviderError> {
        Ok(self.create(server).await?)
    }

    async fn label_server(
        &self,
        server: ServerId,
        key: &str,
        value: Option<String>,
    ) -> Result<(), ProviderError> {
        Ok(self.set_label(server.0, key, value).await?)
    }

    async fn delete_server(&self, server: ServerId) -> Result<(), ProviderError> {
        Ok(self.delete(server.0).await?)
    }

    async fn prices(&self) -> Result<Vec<Price>, ProviderError> {
        Ok(self
            .server_types()
            .await?
            .into_iter()
            .flat_map(|t| t.prices)
            .collect())
    }

    async fn images(&self) -> Result<Source<Image>, ProviderError> {
        Ok(self.list_images(None).await?)
    }

    fn budget(&self) -> Option<ApiBudget> {
        self.remaining_budget()
            .map(|remaining| ApiBudget { remaining })
    }
}

/// The largest answer read. A page of 50 servers is a few hundred KiB; anything near this is not
/// Hetzner, and reading it whole would let one answer take the daemon's memory.
const MAX_ANSWER: usize = 8 << 20;

/// The body, or `None` when it is larger than [`MAX_ANSWER`] (read no further).
async fn read_capped(mut resp: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
