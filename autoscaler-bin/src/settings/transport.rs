//! Which service URLs may carry a token: `https://`, or `http://` to this machine only (a test
//! server, a local proxy), unless an operator opts in for a network they trust. An `http://` URL
//! elsewhere sends the admin token in cleartext to whoever is on the path.

use std::net::IpAddr;

/// The variable that allows `http://` to other hosts.
pub(crate) const ALLOW_INSECURE_HTTP: &str = "ALLOW_INSECURE_HTTP";

/// Whether `host` is this machine.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The URL without user name and password, for messages: a password in a URL is a secret.
pub(crate) fn redacted(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Checks a URL that will carry a token; `Err` says what is wrong, naming `name`.
pub(crate) fn check(name: &str, raw: &str, allow_insecure: bool) -> Result<(), String> {
    let shown = redacted(raw);
    let url = reqwest::Url::parse(raw)
        .map_err(|e| format!("{name}={shown:?} is not a URL ({e}); write e.g. https://host"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || url.host_str().is_some_and(is_loopback) => Ok(()),
        "http" => Err(format!(
            "{name}={shown:?} uses http://, which sends the token in cleartext: use https://, or \
             set {ALLOW_INSECURE_HTTP}=true if the network to it is trusted (http:// to this \
             machine is always allowed)"
        )),
        other => Err(format!(
            "{name}={shown:?} must start with https:// (or http:// to this machine, or anywhere \
             with {ALLOW_INSECURE_HTTP}=true), not {other}://"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_pass_and_remote_http_needs_the_opt_in() {
        assert!(check("X", "https://git.example.com/api/v1", false).is_ok());
        for local in [
            "http://127.0.0.1:3000",
            "http://localhost:3000/api/v1",
            "http://[::1]:8080",
        ] {
            assert!(check("X", local, false).is_ok(), "{local}");
        }
        let err = check("GITEA_API_URL", "http://git.example.com", false).unwrap_err();
        assert!(
            err.starts_with("GITEA_API_URL=") && err.contains(ALLOW_INSECURE_HTTP),
            "{err}"
        );
        assert!(check("X", "http://git.example.com", true).is_ok());
        assert!(check("X", "ftp://git.example.com", true).is_err());
        assert!(check("X", "git.example.com", false).is_err());
    }

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        let err = check(
            "GITEA_API_URL",
            "http://admin:hunter2@git.example.com",
            false,
        )
        .unwrap_err();
        assert!(!err.contains("hunter2") && !err.contains("admin"), "{err}");
        assert_eq!(redacted("https://u:p@h/x"), "https://h/x");
    }
}
