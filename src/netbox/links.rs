//! The objects behind the toolkit page: the custom link that puts its button
//! on NetBox's device page, and the journal entries it lists as recent runs.

use serde::{Deserialize, Serialize};
use tracing::{Instrument, info_span};

use super::tokens::UserToken;
use super::types::Page;
use super::{NetboxClient, NetboxError};
use reqwest::Method;

/// A custom link as the service wants it in NetBox.
#[derive(Debug, Clone, Serialize)]
pub struct CustomLinkSpec {
    /// Unique name; the link is found again by it.
    pub name: String,
    /// Object types the link shows on, e.g. `dcim.device`.
    pub object_types: Vec<String>,
    /// Button text (a Jinja template in NetBox).
    pub link_text: String,
    /// Target URL (a Jinja template in NetBox).
    pub link_url: String,
    /// NetBox button colour, e.g. `blue`.
    pub button_class: String,
    /// Open in a new window or tab.
    pub new_window: bool,
    /// Shown or not.
    pub enabled: bool,
    /// Position among the object's custom links.
    pub weight: u16,
}

/// What [`NetboxClient::upsert_custom_link`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// No link had that name; one was made.
    Created(u64),
    /// A link had that name and differed; it was updated.
    Updated(u64),
    /// A link had that name and every field already matched.
    Unchanged(u64),
}

#[derive(Debug, Deserialize)]
struct CustomLink {
    id: u64,
    #[serde(default)]
    object_types: Vec<String>,
    #[serde(default)]
    link_text: String,
    #[serde(default)]
    link_url: String,
    #[serde(default)]
    button_class: String,
    #[serde(default)]
    new_window: bool,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    weight: u16,
}

impl CustomLink {
    fn matches(&self, spec: &CustomLinkSpec) -> bool {
        self.object_types == spec.object_types
            && self.link_text == spec.link_text
            && self.link_url == spec.link_url
            && self.button_class == spec.button_class
            && self.new_window == spec.new_window
            && self.enabled == spec.enabled
            && self.weight == spec.weight
    }
}

/// A journal entry as the page lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct JournalListing {
    /// Object id.
    pub id: u64,
    /// When it was written (RFC 3339).
    pub created: String,
    /// `success`, `danger`, ...
    pub kind: JournalKindLabel,
    /// Markdown body.
    #[serde(default)]
    pub comments: String,
    /// Its page in NetBox.
    #[serde(default)]
    pub display_url: Option<String>,
}

/// NetBox's `{value, label}` form of a choice.
#[derive(Debug, Clone, Deserialize)]
pub struct JournalKindLabel {
    /// Machine value, e.g. `success`.
    pub value: String,
    /// Human label, e.g. `Success`.
    pub label: String,
}

impl NetboxClient {
    /// Creates the custom link named `spec.name`, or brings it in line;
    /// running it twice changes nothing the second time.
    pub async fn upsert_custom_link(
        &self,
        spec: &CustomLinkSpec,
    ) -> Result<LinkChange, NetboxError> {
        let span = info_span!("netbox.custom_link", name = %spec.name);
        let name: String = url::form_urlencoded::byte_serialize(spec.name.as_bytes()).collect();
        let path = format!("api/extras/custom-links/?name={name}&limit=2");
        let page: Page<CustomLink> = self
            .get_json(&path, "custom link list")
            .instrument(span.clone())
            .await?;

        match page.results.into_iter().next() {
            None => {
                let made: CustomLink = self
                    .send_json(
                        Method::POST,
                        "api/extras/custom-links/",
                        spec,
                        "custom link",
                    )
                    .instrument(span)
                    .await?;
                Ok(LinkChange::Created(made.id))
            }
            Some(link) if link.matches(spec) => Ok(LinkChange::Unchanged(link.id)),
            Some(link) => {
                let path = format!("api/extras/custom-links/{}/", link.id);
                let _: CustomLink = self
                    .send_json(Method::PATCH, &path, spec, "custom link")
                    .instrument(span)
                    .await?;
                Ok(LinkChange::Updated(link.id))
            }
        }
    }

    /// The device's latest journal entries written by the service, newest
    /// first, read as the person so NetBox applies their view rights.
    pub async fn recent_runs(
        &self,
        token: &UserToken,
        device_id: u64,
        limit: u32,
    ) -> Result<Vec<JournalListing>, NetboxError> {
        let path = format!(
            "api/extras/journal-entries/?assigned_object_type=dcim.device\
             &assigned_object_id={device_id}&q=netbox-toolkit&ordering=-created&limit={limit}"
        );
        let page: Page<JournalListing> = self
            .get_as(
                token,
                &path,
                &format!("journal entries of device {device_id}"),
            )
            .instrument(info_span!("netbox.recent_runs", device_id))
            .await?;
        Ok(page.results)
    }
}
