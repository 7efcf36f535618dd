//! Who a token belongs to and what NetBox lets that user do: the
//! authentication check (with the caller's token) and users and object
//! permissions (with the service's token, which needs view rights on them).

use serde::Deserialize;
use serde_json::Value;
use tracing::{Instrument, info_span};

use super::types::Page;
use super::{NetboxClient, NetboxError};

/// A group reference in a user object.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupRef {
    /// Group id.
    pub id: u64,
    /// Group name.
    #[serde(default)]
    pub name: String,
}

/// The user a token belongs to, as `GET /api/authentication-check/` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenUser {
    /// User id.
    pub id: u64,
    /// Login name.
    pub username: String,
    /// Whether the account is active.
    #[serde(default = "active")]
    pub is_active: bool,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<GroupRef>,
}

fn active() -> bool {
    true
}

/// A NetBox object permission (`/api/users/permissions/`).
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectPermission {
    /// Permission id.
    pub id: u64,
    /// Permission name, as shown in NetBox.
    pub name: String,
    /// Disabled permissions grant nothing.
    #[serde(default)]
    pub enabled: bool,
    /// Object types such as `dcim.device`.
    #[serde(default)]
    pub object_types: Vec<String>,
    /// Actions such as `view` or `execute_show`.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Django lookups limiting the objects: `null`, an object, or a list of
    /// objects (any of which may match).
    #[serde(default)]
    pub constraints: Value,
}

#[derive(Debug, Deserialize)]
struct UserId {
    id: u64,
}

impl NetboxClient {
    /// The user this client's token belongs to. NetBox answers 403 for a
    /// missing, malformed, unknown, disabled or expired token alike.
    pub async fn authentication_check(&self) -> Result<TokenUser, NetboxError> {
        self.get_json("api/authentication-check/", "authentication check")
            .instrument(info_span!("netbox.authentication_check"))
            .await
    }

    /// Whether user `user_id` is a superuser. The users API hides the flag
    /// but filters on it, so the answer is whether the filtered list holds
    /// the user.
    pub async fn is_superuser(&self, user_id: u64) -> Result<bool, NetboxError> {
        let path = format!("api/users/users/?id={user_id}&is_superuser=true&brief=1&limit=1");
        let page: Page<UserId> = self
            .get_json(&path, &format!("superuser check of user {user_id}"))
            .instrument(info_span!("netbox.superuser", user_id))
            .await?;
        Ok(page.results.iter().any(|u| u.id == user_id))
    }

    /// Enabled permissions on `object_type` granted to the user directly or
    /// through any of `group_ids`; both lookups run at once.
    pub async fn object_permissions(
        &self,
        object_type: &str,
        user_id: u64,
        group_ids: &[u64],
    ) -> Result<Vec<ObjectPermission>, NetboxError> {
        let base =
            format!("api/users/permissions/?object_type={object_type}&enabled=true&limit=1000");
        let user_path = format!("{base}&user_id={user_id}");
        let by_user =
            self.get_json::<Page<ObjectPermission>>(&user_path, "permissions of the user");
        let by_groups = async {
            if group_ids.is_empty() {
                return Ok(Page {
                    results: Vec::new(),
                });
            }
            let groups: String = group_ids.iter().map(|g| format!("&group_id={g}")).collect();
            self.get_json::<Page<ObjectPermission>>(
                &format!("{base}{groups}"),
                "permissions of the groups",
            )
            .await
        };
        let span = info_span!("netbox.permissions", user_id, object_type);
        let (user, groups) = async { tokio::try_join!(by_user, by_groups) }
            .instrument(span)
            .await?;

        let mut all = user.results;
        for permission in groups.results {
            if !all.iter().any(|p| p.id == permission.id) {
                all.push(permission);
            }
        }
        Ok(all)
    }
}
