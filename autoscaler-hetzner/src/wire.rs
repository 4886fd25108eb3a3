//! Hetzner's JSON bodies (SPEC `server`, `server_type`, `meta.pagination`, error), the fields the
//! autoscaler reads, and their translation into the core's types.

use std::collections::BTreeMap;

use autoscaler_core::{Image, ImageStatus, Server, ServerStatus, Timestamp};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorInner,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorInner {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub(crate) next_page: Option<u32>,
    #[serde(default)]
    pub(crate) total_entries: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    pub(crate) pagination: Pagination,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServersPage {
    pub(crate) servers: Vec<ServerWire>,
    pub(crate) meta: Meta,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OneServer {
    pub(crate) server: ServerWire,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Named {
    pub(crate) name: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerWire {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) status: ServerStatus,
    pub(crate) created: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) server_type: Named,
    /// Required since `datacenter` was removed (2026-07-01).
    pub(crate) location: Named,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SshKeysPage {
    pub(crate) ssh_keys: Vec<Named>,
    pub(crate) meta: Meta,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerTypesPage {
    pub(crate) server_types: Vec<ServerTypeWire>,
    pub(crate) meta: Meta,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ServerTypeWire {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) cores: f64,
    #[serde(default)]
    pub(crate) memory: f64,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) prices: Vec<PriceWire>,
    #[serde(default)]
    pub(crate) locations: Vec<TypeLocation>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PriceWire {
    pub(crate) location: String,
    pub(crate) price_hourly: Amount,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Amount {
    pub(crate) net: String,
    pub(crate) gross: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TypeLocation {
    pub(crate) name: String,
    #[serde(default = "yes")]
    pub(crate) available: bool,
    #[serde(default)]
    pub(crate) deprecation: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// RFC 3339, also in the seconds-less form some Hetzner fixtures show (`2016-01-30T23:50+00:00`).
pub(crate) fn timestamp(raw: &str) -> Result<Timestamp, String> {
    if let Ok(t) = raw.parse() {
        return Ok(t);
    }
    // Insert the missing seconds after HH:MM.
    if raw.len() >= 16 && raw.as_bytes().get(13) == Some(&b':') {
        let fixed = format!("{}:00{}", &raw[..16], &raw[16..]);
        if let Ok(t) = fixed.parse() {
            return Ok(t);
        }
    }
    Err(format!("`{raw}` is not an RFC 3339 time"))
}

/// A page of a list: its items, read one by one, and where the next page is.
pub(crate) trait Paged: serde::de::DeserializeOwned {
    type Item;
    fn split(self) -> (Vec<Result<Self::Item, String>>, Pagination);
    fn id(item: &Self::Item) -> u64;
}

impl Paged for ServersPage {
    type Item = Server;
    fn split(self) -> (Vec<Result<Server, String>>, Pagination) {
        let items = self.servers.into_iter().map(ServerWire::into_server);
        (items.collect(), self.meta.pagination)
    }
    fn id(item: &Server) -> u64 {
        item.id
    }
}

impl Paged for ImagesPage {
    type Item = Image;
    fn split(self) -> (Vec<Result<Image, String>>, Pagination) {
        let items = self.images.into_iter().map(ImageWire::into_image);
        (items.collect(), self.meta.pagination)
    }
    fn id(item: &Image) -> u64 {
        item.id
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImagesPage {
    pub(crate) images: Vec<ImageWire>,
    pub(crate) meta: Meta,
}

/// The answer to `create_image`: the image (status `creating`) and the action writing it.
#[derive(Debug, Deserialize)]
pub(crate) struct CreatedImage {
    pub(crate) image: ImageWire,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImageWire {
    pub(crate) id: u64,
    pub(crate) status: ImageStatus,
    pub(crate) created: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

impl ImageWire {
    pub(crate) fn into_image(self) -> Result<Image, String> {
        let created =
            timestamp(&self.created).map_err(|e| format!("image {}: created: {e}", self.id))?;
        Ok(Image {
            id: self.id,
            labels: self.labels,
            created,
            status: self.status,
        })
    }
}

impl ServerWire {
    pub(crate) fn into_server(self) -> Result<Server, String> {
        let created =
            timestamp(&self.created).map_err(|e| format!("server {}: created: {e}", self.id))?;
        Ok(Server {
            id: self.id,
            name: self.name,
            labels: self.labels,
            created,
            status: self.status,
            server_type: self.server_type.name,
            location: self.location.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_without_seconds_are_read() {
        assert_eq!(
            timestamp("2016-01-30T23:50+00:00").unwrap(),
            timestamp("2016-01-30T23:50:00Z").unwrap()
        );
        assert!(timestamp("yesterday").is_err());
    }

    #[test]
    fn unknown_statuses_are_unknown_not_errors() {
        let s: ServerWire = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "a", "status": "hibernating", "created": "2026-01-01T00:00:00Z",
            "labels": {}, "server_type": {"name": "cx22"}, "location": {"name": "nbg1"}
        }))
        .unwrap();
        assert_eq!(s.into_server().unwrap().status, ServerStatus::Unknown);
    }
}
