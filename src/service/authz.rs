//! Who may run what: callers are NetBox users, identified by their own API
//! token, and may run a command only under a NetBox object permission on
//! `dcim.device` with the action `execute_show` or `execute_config`.
//!
//! Identities come from NetBox's authentication check (with the caller's
//! token); superuser status and permissions with their constraints come
//! from the users API (with the service's token). Both are cached for a
//! short time, keyed by a digest of the token and by user id, so a revoked
//! token stops working within that time. Constraints are evaluated here
//! against the device as the caller sees it; a constraint this module cannot
//! evaluate refuses rather than grants. Deny by default.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::Value;
use tracing::Instrument;

use super::ServiceError;
use super::catalogue::CommandKind;
use crate::netbox::{ApiToken, Device, NamedRef, NetboxClient, NetboxError, ObjectPermission};

/// The object type execute permissions are granted on.
pub const DEVICE_OBJECT_TYPE: &str = "dcim.device";

/// What a command run needs, by the command's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run an operational (`show`) command.
    ExecuteShow,
    /// Run a configuration command.
    ExecuteConfig,
}

impl Action {
    /// The NetBox permission action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExecuteShow => "execute_show",
            Self::ExecuteConfig => "execute_config",
        }
    }
}

impl From<CommandKind> for Action {
    fn from(kind: CommandKind) -> Self {
        match kind {
            CommandKind::Show => Self::ExecuteShow,
            CommandKind::Config => Self::ExecuteConfig,
        }
    }
}

/// Why a caller was not let in, or not allowed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    /// The request carries no `Authorization` header.
    #[error("the request carries no NetBox API token")]
    MissingToken,
    /// The `Authorization` header is not a NetBox token.
    #[error("the Authorization header is not usable: {reason}")]
    MalformedToken {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// NetBox does not accept the token (unknown, disabled, expired or
    /// revoked).
    #[error("NetBox does not accept the token: {detail}")]
    TokenRefused {
        /// NetBox's words.
        detail: String,
    },
    /// The token's user is inactive.
    #[error("NetBox user {username} is inactive")]
    InactiveUser {
        /// The login name.
        username: String,
    },
    /// No permission grants the action on this device.
    #[error("{username} may not run {action} commands on {device}: {reason}")]
    Denied {
        /// The login name.
        username: String,
        /// The missing action, e.g. `execute_show`.
        action: &'static str,
        /// The device label.
        device: String,
        /// Which permissions were considered and why none applied.
        reason: String,
    },
    /// A permission that might grant the action has a constraint this
    /// service cannot evaluate, so it refuses.
    #[error(
        "{username} may not run {action} commands on {device}: the constraint `{lookup}` of NetBox permission `{permission}` cannot be evaluated by this service"
    )]
    Unevaluable {
        /// The login name.
        username: String,
        /// The action, e.g. `execute_show`.
        action: &'static str,
        /// The device label.
        device: String,
        /// The permission's name.
        permission: String,
        /// The lookup that could not be evaluated.
        lookup: String,
    },
    /// The caller named a credential profile they may not use.
    #[error("{username} may not use the credential profile `{profile}`")]
    ProfileDenied {
        /// The login name.
        username: String,
        /// The profile name.
        profile: String,
    },
}

impl AccessError {
    /// What the caller should check or try next.
    pub fn guidance(&self) -> String {
        match self {
            Self::MissingToken | Self::MalformedToken { .. } => {
                "Send your own NetBox API token: `Authorization: Bearer nbt_<key>.<secret>` or \
                 `Authorization: Token <40 characters>`; create one under your user profile in \
                 NetBox (API Tokens)."
                    .into()
            }
            Self::TokenRefused { .. } | Self::InactiveUser { .. } => {
                "Check in NetBox that the token exists, is enabled and has not expired, and that \
                 its user is active; create a new token if it was revoked."
                    .into()
            }
            Self::Denied { action, .. } => format!(
                "Ask a NetBox administrator for an object permission on DCIM > Device with the \
                 additional action `{action}` whose constraints match this device, granted to \
                 you or one of your groups."
            ),
            Self::Unevaluable { .. } => {
                "Ask a NetBox administrator to express the permission's constraints with id, \
                 name, site, role, platform, tenant or tag lookups (exact, `__in` or \
                 `__iexact`), which this service evaluates."
                    .into()
            }
            Self::ProfileDenied { .. } => {
                "Leave `credential_profile` out to use the profile chosen for the device, or \
                 ask for membership in a NetBox group the profile lists in `allowed_groups`."
                    .into()
            }
        }
    }

    /// Whether the caller is unknown (as opposed to known and not allowed).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::MissingToken
                | Self::MalformedToken { .. }
                | Self::TokenRefused { .. }
                | Self::InactiveUser { .. }
        )
    }
}

/// The token in an `Authorization` header value, checked for shape only.
pub fn token_from_header(header: Option<&str>) -> Result<ApiToken, AccessError> {
    let header = header.ok_or(AccessError::MissingToken)?;
    ApiToken::from_authorization(header).map_err(|reason| AccessError::MalformedToken { reason })
}

/// A caller NetBox vouched for, with what NetBox grants them.
#[derive(Debug, Clone)]
pub struct Caller {
    inner: Arc<CallerInner>,
}

#[derive(Debug)]
struct CallerInner {
    token: ApiToken,
    identity: Arc<Identity>,
    rights: Arc<Rights>,
}

#[derive(Debug)]
struct Identity {
    user_id: u64,
    username: String,
    groups: Vec<String>,
    group_ids: Vec<u64>,
}

/// What NetBox grants a user on devices.
#[derive(Debug, Default)]
struct Rights {
    superuser: bool,
    grants: Vec<Grant>,
}

impl Caller {
    /// The NetBox login name.
    pub fn username(&self) -> &str {
        &self.inner.identity.username
    }

    /// The NetBox user id.
    pub fn user_id(&self) -> u64 {
        self.inner.identity.user_id
    }

    /// Names of the user's NetBox groups.
    pub fn groups(&self) -> &[String] {
        &self.inner.identity.groups
    }

    /// Whether the user is a NetBox superuser.
    pub fn is_superuser(&self) -> bool {
        self.inner.rights.superuser
    }

    /// The caller's token, for NetBox reads made on their behalf.
    pub fn token(&self) -> &ApiToken {
        &self.inner.token
    }

    /// Whether the caller may run `action` on `device`; `Ok` names what
    /// grants it (a permission, or superuser status).
    pub fn authorize(&self, action: Action, device: &Device) -> Result<String, AccessError> {
        if self.is_superuser() {
            return Ok("superuser".into());
        }
        let mut unevaluable = None;
        let mut considered = Vec::new();
        for grant in self.inner.rights.grants.iter().filter(|g| g.allows(action)) {
            match grant.constraints.matches(device) {
                Verdict::Match => return Ok(format!("permission `{}`", grant.name)),
                Verdict::NoMatch => considered.push(format!("`{}`", grant.name)),
                Verdict::Unevaluable(lookup) => {
                    unevaluable.get_or_insert((grant.name.clone(), lookup));
                }
            }
        }

        let (username, device_label) = (self.username().to_string(), device.label());
        if let Some((permission, lookup)) = unevaluable {
            return Err(AccessError::Unevaluable {
                username,
                action: action.as_str(),
                device: device_label,
                permission,
                lookup,
            });
        }
        let reason = if considered.is_empty() {
            format!(
                "no enabled NetBox permission on dcim.device grants `{}` to the user or their groups",
                action.as_str()
            )
        } else {
            format!(
                "the constraints of {} do not match this device",
                considered.join(", ")
            )
        };
        Err(AccessError::Denied {
            username,
            action: action.as_str(),
            device: device_label,
            reason,
        })
    }

    /// Whether the caller belongs to any of `groups` (superusers always do).
    pub fn in_any_group(&self, groups: &[String]) -> bool {
        self.is_superuser() || self.groups().iter().any(|g| groups.contains(g))
    }
}

/// Resolves tokens to callers, with short-lived caches.
pub struct Authorizer {
    netbox: NetboxClient,
    identities: Cache<String, Arc<Identity>>,
    rights: Cache<u64, Arc<Rights>>,
}

impl Authorizer {
    /// An authorizer reading permissions with the service's client; answers
    /// are cached for `ttl`.
    pub fn new(netbox: NetboxClient, ttl: Duration) -> Self {
        Self {
            netbox,
            identities: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .build(),
            rights: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(100_000)
                .build(),
        }
    }

    /// The caller behind an `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, ServiceError> {
        self.authenticate_token(token_from_header(header)?).await
    }

    /// The caller behind a token the service already holds (e.g. a UI
    /// session's).
    pub async fn authenticate_token(&self, token: ApiToken) -> Result<Caller, ServiceError> {
        let identity = self.identity(&token).await?;
        let rights = self
            .rights
            .try_get_with(identity.user_id, self.fetch_rights(&identity))
            .await
            .map_err(|err| ServiceError::Netbox((*err).clone()))?;
        Ok(Caller {
            inner: Arc::new(CallerInner {
                token,
                identity,
                rights,
            }),
        })
    }

    async fn identity(&self, token: &ApiToken) -> Result<Arc<Identity>, ServiceError> {
        let key = token.fingerprint();
        if let Some(known) = self.identities.get(&key).await {
            return Ok(known);
        }

        let span = tracing::info_span!("authenticate", token = %key);
        let checked = self
            .netbox
            .as_caller(token)
            .authentication_check()
            .instrument(span)
            .await;
        let user = match checked {
            Ok(user) => user,
            // NetBox answers 403 for every token it does not accept.
            Err(NetboxError::Forbidden { detail, .. }) => {
                return Err(AccessError::TokenRefused { detail }.into());
            }
            Err(err) => return Err(err.into()),
        };
        if !user.is_active {
            return Err(AccessError::InactiveUser {
                username: user.username,
            }
            .into());
        }

        let identity = Arc::new(Identity {
            user_id: user.id,
            username: user.username,
            groups: user.groups.iter().map(|g| g.name.clone()).collect(),
            group_ids: user.groups.iter().map(|g| g.id).collect(),
        });
        self.identities.insert(key, identity.clone()).await;
        Ok(identity)
    }

    async fn fetch_rights(&self, identity: &Identity) -> Result<Arc<Rights>, NetboxError> {
        let (superuser, permissions) = tokio::try_join!(
            self.netbox.is_superuser(identity.user_id),
            self.netbox.object_permissions(
                DEVICE_OBJECT_TYPE,
                identity.user_id,
                &identity.group_ids
            )
        )?;
        let grants = permissions.into_iter().map(Grant::from).collect();
        Ok(Arc::new(Rights { superuser, grants }))
    }
}

/// An execute-capable permission with its constraints parsed.
#[derive(Debug, Clone)]
struct Grant {
    name: String,
    actions: Vec<String>,
    constraints: Constraints,
}

impl From<ObjectPermission> for Grant {
    fn from(permission: ObjectPermission) -> Self {
        Self {
            constraints: Constraints::parse(&permission.constraints),
            name: permission.name,
            actions: permission.actions,
        }
    }
}

impl Grant {
    fn allows(&self, action: Action) -> bool {
        self.actions.iter().any(|a| a == action.as_str())
    }
}

/// The outcome of matching constraints against a device.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Match,
    NoMatch,
    /// The lookup (`key: value`) that could not be evaluated.
    Unevaluable(String),
}

/// NetBox constraints: any of several sets, each a conjunction of lookups.
/// An empty set, `null` or `[]` constrains nothing.
#[derive(Debug, Clone)]
enum Constraints {
    Unconstrained,
    AnyOf(Vec<Vec<Lookup>>),
    Unevaluable(String),
}

impl Constraints {
    fn parse(value: &Value) -> Self {
        let sets: Vec<&Value> = match value {
            Value::Null => return Self::Unconstrained,
            Value::Array(items) if items.is_empty() => return Self::Unconstrained,
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        let mut parsed = Vec::new();
        for set in sets {
            let Value::Object(lookups) = set else {
                return Self::Unevaluable(set.to_string());
            };
            if lookups.is_empty() {
                return Self::Unconstrained;
            }
            let mut conjunction = Vec::new();
            for (key, value) in lookups {
                match Lookup::parse(key, value) {
                    Some(lookup) => conjunction.push(lookup),
                    None => return Self::Unevaluable(format!("{key}: {value}")),
                }
            }
            parsed.push(conjunction);
        }
        Self::AnyOf(parsed)
    }

    fn matches(&self, device: &Device) -> Verdict {
        match self {
            Self::Unconstrained => Verdict::Match,
            Self::Unevaluable(lookup) => Verdict::Unevaluable(lookup.clone()),
            Self::AnyOf(sets) => {
                let any = sets
                    .iter()
                    .any(|set| set.iter().all(|lookup| lookup.matches(device)));
                if any {
                    Verdict::Match
                } else {
                    Verdict::NoMatch
                }
            }
        }
    }
}

/// The device field a lookup reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Name,
    Site(Attr),
    Role(Attr),
    Platform(Attr),
    Tenant(Attr),
    Tag(Attr),
}

/// Which attribute of a related object a lookup compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Id,
    Slug,
    Name,
}

/// One Django lookup (`site__slug__in: ["a", "b"]`) as a predicate.
#[derive(Debug, Clone)]
struct Lookup {
    field: Field,
    ignore_case: bool,
    values: Vec<Value>,
}

impl Lookup {
    /// Parses a lookup this module can evaluate; `None` for anything else.
    fn parse(key: &str, value: &Value) -> Option<Self> {
        let mut parts: Vec<&str> = key.split("__").collect();
        let (many, ignore_case) = match parts.last().copied() {
            Some("in") => (true, false),
            Some("iexact") => (false, true),
            Some("exact") => (false, false),
            _ => (false, false),
        };
        if matches!(parts.last().copied(), Some("in" | "iexact" | "exact")) {
            parts.pop();
        }
        let field = field(&parts)?;
        let values = match (many, value) {
            (true, Value::Array(items)) => items.clone(),
            (false, scalar @ (Value::String(_) | Value::Number(_))) => vec![scalar.clone()],
            _ => return None,
        };
        // `$user` and other tokens stand for the requesting user, not a device value.
        if values
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with('$')))
        {
            return None;
        }
        Some(Self {
            field,
            ignore_case,
            values,
        })
    }

    fn matches(&self, device: &Device) -> bool {
        let single =
            |r: &Option<NamedRef>, attr| r.as_ref().map(|r| attr_of(r, attr)).into_iter().collect();
        let candidates: Vec<Option<Candidate>> = match self.field {
            Field::Id => vec![Some(Candidate::Id(device.id))],
            Field::Name => vec![device.name.clone().map(Candidate::Text)],
            Field::Site(attr) => single(&device.site, attr),
            Field::Role(attr) => single(&device.role, attr),
            Field::Platform(attr) => single(&device.platform, attr),
            Field::Tenant(attr) => single(&device.tenant, attr),
            Field::Tag(attr) => device
                .tags
                .iter()
                .map(|t| {
                    Some(match attr {
                        Attr::Id => Candidate::Id(t.id),
                        Attr::Slug => Candidate::Text(t.slug.clone()),
                        Attr::Name => Candidate::Text(t.name.clone()),
                    })
                })
                .collect(),
        };
        candidates
            .iter()
            .flatten()
            .any(|c| self.values.iter().any(|v| c.equals(v, self.ignore_case)))
    }
}

fn field(parts: &[&str]) -> Option<Field> {
    let relation = |attr: Option<&&str>| match attr.copied() {
        None | Some("id") | Some("pk") => Some(Attr::Id),
        Some("slug") => Some(Attr::Slug),
        Some("name") => Some(Attr::Name),
        Some(_) => None,
    };
    if parts.len() > 2 {
        return None;
    }
    let head = parts.first().copied()?;
    let attr = parts.get(1);
    Some(match head {
        "id" | "pk" if attr.is_none() => Field::Id,
        "name" if attr.is_none() => Field::Name,
        "site" => Field::Site(relation(attr)?),
        "site_id" if attr.is_none() => Field::Site(Attr::Id),
        "role" => Field::Role(relation(attr)?),
        "role_id" if attr.is_none() => Field::Role(Attr::Id),
        "platform" => Field::Platform(relation(attr)?),
        "platform_id" if attr.is_none() => Field::Platform(Attr::Id),
        "tenant" => Field::Tenant(relation(attr)?),
        "tenant_id" if attr.is_none() => Field::Tenant(Attr::Id),
        "tags" => Field::Tag(relation(attr)?),
        _ => return None,
    })
}

/// A device value to compare with a constraint value.
enum Candidate {
    Id(u64),
    Text(String),
}

fn attr_of(r: &NamedRef, attr: Attr) -> Option<Candidate> {
    match attr {
        Attr::Id => Some(Candidate::Id(r.id)),
        Attr::Slug => r.slug.clone().map(Candidate::Text),
        Attr::Name => r.name.clone().map(Candidate::Text),
    }
}

impl Candidate {
    fn equals(&self, value: &Value, ignore_case: bool) -> bool {
        match (self, value) {
            (Self::Id(id), Value::Number(n)) => n.as_u64() == Some(*id),
            (Self::Id(id), Value::String(s)) => s.trim().parse::<u64>().ok() == Some(*id),
            (Self::Text(text), Value::String(s)) if ignore_case => text.eq_ignore_ascii_case(s),
            (Self::Text(text), Value::String(s)) => text == s,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netbox::TagRef;
    use serde_json::json;

    fn named(id: u64, slug: &str) -> Option<NamedRef> {
        Some(NamedRef {
            id,
            name: Some(slug.to_uppercase()),
            slug: Some(slug.to_string()),
        })
    }

    fn device() -> Device {
        serde_json::from_value::<Device>(json!({"id": 7, "name": "ios1"}))
            .map(|mut d| {
                d.site = named(1, "lab");
                d.role = named(2, "router");
                d.platform = named(3, "cisco_ios");
                d.tags = vec![TagRef {
                    id: 9,
                    name: "Core".into(),
                    slug: "core".into(),
                }];
                d
            })
            .unwrap()
    }

    fn verdict(constraints: Value) -> Verdict {
        Constraints::parse(&constraints).matches(&device())
    }

    #[test]
    fn no_constraints_match_every_device() {
        for c in [json!(null), json!({}), json!([]), json!([{}])] {
            assert_eq!(verdict(c.clone()), Verdict::Match, "{c}");
        }
    }

    #[test]
    fn site_role_platform_tenant_and_tag_lookups_are_evaluated() {
        assert_eq!(verdict(json!({"site__slug": "lab"})), Verdict::Match);
        assert_eq!(verdict(json!({"site__slug": "other"})), Verdict::NoMatch);
        assert_eq!(
            verdict(json!({"site_id": 1, "role__slug": "router"})),
            Verdict::Match
        );
        assert_eq!(
            verdict(json!({"site": "1", "role__slug": "switch"})),
            Verdict::NoMatch
        );
        assert_eq!(
            verdict(json!({"platform__slug__in": ["junos", "cisco_ios"]})),
            Verdict::Match
        );
        assert_eq!(verdict(json!({"tenant__slug": "acme"})), Verdict::NoMatch);
        assert_eq!(verdict(json!({"tags__slug": "core"})), Verdict::Match);
        assert_eq!(
            verdict(json!({"tags__name__iexact": "CORE"})),
            Verdict::Match
        );
        assert_eq!(verdict(json!({"tags": 9})), Verdict::Match);
    }

    #[test]
    fn id_and_name_lookups_are_evaluated() {
        assert_eq!(verdict(json!({"id__in": [1, 7]})), Verdict::Match);
        assert_eq!(verdict(json!({"id": 8})), Verdict::NoMatch);
        assert_eq!(verdict(json!({"name": "ios1"})), Verdict::Match);
        assert_eq!(verdict(json!({"name__in": ["eos1"]})), Verdict::NoMatch);
    }

    #[test]
    fn a_list_of_constraint_sets_matches_when_any_set_matches() {
        let c = json!([{"site__slug": "other"}, {"id__in": [7]}]);
        assert_eq!(verdict(c), Verdict::Match);
        let c = json!([{"site__slug": "other"}, {"id__in": [8]}]);
        assert_eq!(verdict(c), Verdict::NoMatch);
    }

    #[test]
    fn lookups_the_service_cannot_evaluate_are_reported_not_ignored() {
        for c in [
            json!({"name__startswith": "ios"}),
            json!({"status": "active"}),
            json!({"site__region__slug": "eu"}),
            json!({"custom_field_data__owner": "$user"}),
            json!({"id": "$user"}),
            json!([{"id": 7}, {"serial__icontains": "x"}]),
        ] {
            assert!(matches!(verdict(c.clone()), Verdict::Unevaluable(_)), "{c}");
        }
    }

    fn caller(superuser: bool, grants: Vec<(&str, Vec<&str>, Value)>) -> Caller {
        let grants = grants
            .into_iter()
            .map(|(name, actions, constraints)| Grant {
                name: name.into(),
                actions: actions.into_iter().map(String::from).collect(),
                constraints: Constraints::parse(&constraints),
            })
            .collect();
        Caller {
            inner: Arc::new(CallerInner {
                token: ApiToken::from_authorization("Bearer nbt_k.s").unwrap(),
                identity: Arc::new(Identity {
                    user_id: 2,
                    username: "alice".into(),
                    groups: vec!["netops".into()],
                    group_ids: vec![1],
                }),
                rights: Arc::new(Rights { superuser, grants }),
            }),
        }
    }

    #[test]
    fn superusers_may_run_everything_and_others_are_denied_by_default() {
        assert!(
            caller(true, vec![])
                .authorize(Action::ExecuteConfig, &device())
                .is_ok()
        );
        let err = caller(false, vec![])
            .authorize(Action::ExecuteShow, &device())
            .unwrap_err();
        assert!(err.to_string().contains("execute_show"), "{err}");
    }

    #[test]
    fn the_action_must_match_the_command_type() {
        let alice = caller(
            false,
            vec![("show-lab", vec!["view", "execute_show"], json!(null))],
        );
        assert!(alice.authorize(Action::ExecuteShow, &device()).is_ok());
        let err = alice
            .authorize(Action::ExecuteConfig, &device())
            .unwrap_err();
        assert!(
            matches!(
                err,
                AccessError::Denied {
                    action: "execute_config",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_evaluable_grant_wins_over_an_unevaluable_one() {
        let alice = caller(
            false,
            vec![
                ("odd", vec!["execute_show"], json!({"serial": "x"})),
                ("lab", vec!["execute_show"], json!({"site__slug": "lab"})),
            ],
        );
        assert!(alice.authorize(Action::ExecuteShow, &device()).is_ok());
        let bob = caller(
            false,
            vec![("odd", vec!["execute_show"], json!({"serial": "x"}))],
        );
        let err = bob.authorize(Action::ExecuteShow, &device()).unwrap_err();
        assert!(err.to_string().contains("`serial: \"x\"`"), "{err}");
    }
}
