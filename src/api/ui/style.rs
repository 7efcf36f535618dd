//! NetBox's own look, borrowed from the NetBox instance: the page links the
//! same style sheets and logos NetBox's pages link, so it follows the
//! instance's version and theme without shipping a copy of them.
//!
//! Where NetBox serves them is read once from its login page (which needs no
//! sign-in) and cached; `ui.netbox_static_url` overrides it.

use std::time::{Duration, Instant};

use regex::Regex;
use tokio::sync::RwLock;
use url::Url;

/// How long a discovered style location is trusted.
const REFRESH: Duration = Duration::from_secs(600);

/// The NetBox assets a page links.
#[derive(Debug, Clone)]
pub struct NetboxStyle {
    /// Style sheets, in NetBox's order (Tabler bundle, then NetBox's own).
    pub stylesheets: Vec<String>,
    /// Logo for the light theme.
    pub logo_light: String,
    /// Logo for the dark theme.
    pub logo_dark: String,
    /// Favicon.
    pub icon: String,
    /// The origin the assets come from, for the Content-Security-Policy.
    pub origin: String,
}

impl NetboxStyle {
    /// The assets under a static base URL (ending in `/`).
    pub fn under(base: &Url, version: Option<&str>) -> Self {
        let file = |name: &str| {
            let mut url = base.join(name).map(String::from).unwrap_or_default();
            if let Some(v) = version {
                url.push_str("?v=");
                url.push_str(v);
            }
            url
        };
        Self {
            stylesheets: vec![file("netbox-external.css"), file("netbox.css")],
            logo_light: file("logo_netbox_dark_teal.svg"),
            logo_dark: file("logo_netbox_bright_teal.svg"),
            icon: file("netbox.ico"),
            origin: base.origin().ascii_serialization(),
        }
    }
}

/// Finds and caches where NetBox serves its assets.
pub struct StyleSource {
    fixed: Option<Url>,
    netbox: Url,
    public: Url,
    http: reqwest::Client,
    cached: RwLock<Option<(Instant, NetboxStyle)>>,
}

impl StyleSource {
    /// `fixed` wins when set; otherwise NetBox's login page at `netbox`
    /// (as the service reaches it) says, resolved against `public` (as
    /// browsers reach NetBox).
    pub fn new(fixed: Option<Url>, netbox: Url, public: Url) -> Self {
        Self {
            fixed,
            netbox,
            public,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cached: RwLock::new(None),
        }
    }

    /// The assets to link, discovering them when the cache is stale.
    pub async fn style(&self) -> NetboxStyle {
        if let Some(base) = &self.fixed {
            return NetboxStyle::under(base, None);
        }
        if let Some((at, style)) = self.cached.read().await.as_ref()
            && at.elapsed() < REFRESH
        {
            return style.clone();
        }
        let style = self.discover().await;
        *self.cached.write().await = Some((Instant::now(), style.clone()));
        style
    }

    async fn discover(&self) -> NetboxStyle {
        let fallback = self
            .public
            .join("static/")
            .unwrap_or_else(|_| self.public.clone());
        let Ok(login) = self.netbox.join("login/") else {
            return NetboxStyle::under(&fallback, None);
        };
        let page = match self.http.get(login).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read NetBox's login page for its style sheets");
                String::new()
            }
        };
        match static_base(&page, &self.public) {
            Some((base, version)) => NetboxStyle::under(&base, version.as_deref()),
            None => NetboxStyle::under(&fallback, None),
        }
    }
}

/// The static base URL and version NetBox's page links `netbox.css` with.
fn static_base(page: &str, public: &Url) -> Option<(Url, Option<String>)> {
    let link = Regex::new(r#"href="([^"]*?)netbox\.css(?:\?v=([\w.\-]+))?""#).ok()?;
    let found = link.captures(page)?;
    let base = public.join(found.get(1)?.as_str()).ok()?;
    let version = found.get(2).map(|v| v.as_str().to_string());
    Some((base, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_static_path_is_resolved_against_the_public_netbox_url() {
        let page = r#"<link rel="stylesheet" href="/static/netbox.css?v=4.7.3" />"#;
        let public = Url::parse("https://netbox.example.com/").unwrap();
        let (base, version) = static_base(page, &public).unwrap();
        assert_eq!(base.as_str(), "https://netbox.example.com/static/");
        assert_eq!(version.as_deref(), Some("4.7.3"));
        let style = NetboxStyle::under(&base, version.as_deref());
        assert_eq!(
            style.stylesheets[0],
            "https://netbox.example.com/static/netbox-external.css?v=4.7.3"
        );
        assert_eq!(style.origin, "https://netbox.example.com");
    }

    #[test]
    fn an_absolute_static_url_is_kept() {
        let page = r#"href="http://127.0.0.1:8001/static/netbox.css""#;
        let public = Url::parse("http://127.0.0.1:8000/").unwrap();
        let (base, version) = static_base(page, &public).unwrap();
        assert_eq!(base.as_str(), "http://127.0.0.1:8001/static/");
        assert!(version.is_none());
    }
}
