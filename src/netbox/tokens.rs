//! Calls made on behalf of a person signed in to the toolkit page: trading
//! a username and password for a NetBox token, asking NetBox who a token
//! belongs to, reading as that person, and revoking the token at sign-out.
//!
//! The password passes through once and is never kept; the token lives in a
//! [`UserToken`] (a secret) for as long as the page session lasts.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info_span};

use super::token::ApiToken;
use super::{NetboxClient, NetboxError, status_error};

/// A NetBox API token belonging to a person, never to the service.
#[derive(Clone)]
pub struct UserToken {
    /// NetBox's id of the token, for revoking it.
    pub id: u64,
    token: ApiToken,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl UserToken {
    /// A token from its full text (`nbt_<key>.<secret>` or a 40-character
    /// v1 key) and its NetBox id.
    pub fn new(id: u64, token: SecretString) -> Self {
        Self {
            id,
            token: ApiToken::from_secret(token),
        }
    }

    /// The token as the service's callers present theirs.
    pub fn api_token(&self) -> &ApiToken {
        &self.token
    }
}

/// The person a token belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct NetboxUser {
    /// User id.
    pub id: u64,
    /// Login name.
    pub username: String,
}

/// A token NetBox just created for a person.
#[derive(Debug)]
pub struct ProvisionedToken {
    /// The token, ready to send.
    pub token: UserToken,
    /// Whom it belongs to.
    pub user: NetboxUser,
}

#[derive(Serialize)]
struct ProvisionBody<'a> {
    username: &'a str,
    password: &'a str,
    expires: String,
    description: &'a str,
    write_enabled: bool,
}

#[derive(Deserialize)]
struct ProvisionAnswer {
    id: u64,
    #[serde(default)]
    version: Option<u8>,
    #[serde(default)]
    key: Option<String>,
    token: SecretString,
    user: NetboxUser,
}

impl NetboxClient {
    /// Trades a username and password for a token that expires at
    /// `expires`. A wrong password is [`NetboxError::Forbidden`] with
    /// NetBox's own words.
    pub async fn provision_token(
        &self,
        username: &str,
        password: &SecretString,
        expires: time::OffsetDateTime,
        description: &str,
    ) -> Result<ProvisionedToken, NetboxError> {
        let expires = expires
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|err| NetboxError::InvalidResponse {
                url: "api/users/tokens/provision/".into(),
                reason: format!("cannot format the expiry: {err}"),
            })?;
        let body = ProvisionBody {
            username,
            password: password.expose_secret(),
            expires,
            description,
            // Journal reads need no write rights; runs go through the service's own token.
            write_enabled: false,
        };
        let url = self.api_url("api/users/tokens/provision/")?;
        let request = self.http.post(url.clone()).json(&body);
        let answer: ProvisionAnswer = self
            .execute_as(request, &url, "token")
            .instrument(info_span!("netbox.provision_token", user = username))
            .await?;
        Ok(ProvisionedToken {
            token: UserToken::new(answer.id, full_token(&answer)),
            user: answer.user,
        })
    }

    /// Reads any API object as the person, so NetBox applies their view rights.
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        token: &UserToken,
        path: &str,
        what: &str,
    ) -> Result<T, NetboxError> {
        self.as_caller(token.api_token()).get_json(path, what).await
    }

    /// Deletes the token in NetBox. A person may lack the right to delete
    /// tokens, so the service's token is tried when theirs is refused.
    pub async fn revoke_token(&self, token: &UserToken) -> Result<(), NetboxError> {
        let span = info_span!("netbox.revoke_token", token_id = token.id);
        let path = format!("api/users/tokens/{}/", token.id);
        let url = self.api_url(&path)?;

        let own = self.http.request(Method::DELETE, url.clone());
        let first = self
            .send_empty(own, &url, Some(&token.api_token().authorization()))
            .instrument(span.clone())
            .await;
        match first {
            Ok(()) | Err(NetboxError::NotFound { .. }) => Ok(()),
            Err(NetboxError::Forbidden { .. }) => {
                let service = self.http.request(Method::DELETE, url.clone());
                let auth = self.authorization();
                self.send_empty(service, &url, Some(&auth))
                    .instrument(span)
                    .await
            }
            Err(err) => Err(err),
        }
    }

    /// Sends without any token: provisioning authenticates by password.
    async fn send_empty(
        &self,
        request: reqwest::RequestBuilder,
        url: &url::Url,
        authorization: Option<&str>,
    ) -> Result<(), NetboxError> {
        let request = match authorization {
            Some(value) => request.header("Authorization", value),
            None => request,
        };
        let response = request
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|err| self.transport_error(url, err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(status_error(status, url, "token", &body))
    }
}

/// NetBox answers a v2 token as its key and its secret apart; the header
/// carries `nbt_<key>.<secret>`. A v1 token is its 40 characters.
fn full_token(answer: &ProvisionAnswer) -> SecretString {
    match (answer.version, answer.key.as_deref()) {
        (Some(2), Some(key)) if !answer.token.expose_secret().starts_with("nbt_") => {
            SecretString::from(format!("nbt_{key}.{}", answer.token.expose_secret()))
        }
        _ => answer.token.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(version: u8, key: &str, token: &str) -> ProvisionAnswer {
        ProvisionAnswer {
            id: 3,
            version: Some(version),
            key: Some(key.into()),
            token: SecretString::from(token.to_string()),
            user: NetboxUser {
                id: 1,
                username: "a".into(),
            },
        }
    }

    #[test]
    fn a_v2_token_is_sent_as_bearer_with_its_key() {
        let token = UserToken::new(3, full_token(&answer(2, "KEY", "SECRET")));
        assert_eq!(token.api_token().authorization(), "Bearer nbt_KEY.SECRET");
    }

    #[test]
    fn a_v1_token_is_sent_as_token() {
        let v1 = "a".repeat(40);
        let token = UserToken::new(3, full_token(&answer(1, "x", &v1)));
        assert_eq!(token.api_token().authorization(), format!("Token {v1}"));
    }

    #[test]
    fn the_debug_form_of_a_token_hides_it() {
        let token = UserToken::new(3, SecretString::from("nbt_K.S".to_string()));
        assert!(!format!("{token:?}").contains("nbt_"));
    }
}
