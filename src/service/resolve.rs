//! The caller-facing steps before a run: who asks, which device they see,
//! which command (file or config context) they mean, whether NetBox lets
//! them run it there, and the command text with its variables substituted.
//! Also the command listing and the variable choices built on those steps.

use std::borrow::Cow;

use super::authz::{AccessError, Action, Authorizer, Caller};
use super::catalogue::{CatalogueCommand, ContextCommands};
use super::credentials::CredentialStore;
use super::directory::DeviceDirectory;
use super::variables::{self, Choices, VariableDef};
use super::{CommandService, DeviceInfo, ExecuteRequest, Plan, ServiceError};
use crate::netbox::{ApiToken, Device};

/// Who may run what, and with which credentials: the parts of the service
/// that speak for callers.
pub struct Access {
    /// Resolves tokens to callers and checks their permissions.
    pub authorizer: Authorizer,
    /// Reads devices as callers see them.
    pub directory: DeviceDirectory,
    /// Chooses device credentials.
    pub credentials: CredentialStore,
}

/// A command as listed for a device and caller.
#[derive(Debug, Clone)]
pub struct ListedCommand {
    /// The command.
    pub command: CatalogueCommand,
    /// Whether the caller may run it on this device.
    pub permitted: bool,
}

/// The commands a caller sees on a device.
#[derive(Debug, Clone)]
pub struct DeviceCommands {
    /// The device.
    pub device: Device,
    /// Canonical platform slug.
    pub platform: String,
    /// File and config-context commands, config context winning.
    pub commands: Vec<ListedCommand>,
    /// Config-context entries that could not be used, with the reason.
    pub ignored: Vec<(String, String)>,
}

/// Valid values of one variable on one device.
#[derive(Debug, Clone)]
pub struct VariableChoices {
    /// The declaration.
    pub variable: VariableDef,
    /// Valid values; `None` for free text.
    pub choices: Option<Vec<String>>,
}

impl CommandService {
    /// Resolves tokens to callers (for other front ends, such as the page).
    pub fn authorizer(&self) -> &Authorizer {
        &self.access.authorizer
    }

    /// Authenticates the request's caller and names them in `requested_by`.
    pub(super) async fn caller_of(
        &self,
        request: &mut ExecuteRequest,
    ) -> Result<Caller, ServiceError> {
        let token = request.token.clone().ok_or(AccessError::MissingToken)?;
        let caller = self.access.authorizer.authenticate_token(token).await?;
        request.requested_by = if request.requested_by.is_empty() {
            caller.username().to_string()
        } else {
            format!("{} via {}", caller.username(), request.requested_by)
        };
        Ok(caller)
    }

    /// The device as the caller sees it (404 when they cannot).
    pub(super) async fn device_for(
        &self,
        caller: &Caller,
        device_id: u64,
    ) -> Result<DeviceInfo, ServiceError> {
        Ok(self
            .access
            .directory
            .device(caller.token(), device_id)
            .await?)
    }

    /// The caller, then the device as they see it. The device is not read
    /// before NetBox has vouched for the token, so unknown callers cause no
    /// reads with the service's token.
    pub(super) async fn caller_and_device(
        &self,
        request: &mut ExecuteRequest,
    ) -> Result<(Caller, DeviceInfo), ServiceError> {
        let caller = self.caller_of(request).await?;
        let device = self.device_for(&caller, request.device_id).await?;
        Ok((caller, device))
    }

    /// The commands of a device, with whether the caller may run each.
    pub async fn device_commands(
        &self,
        token: ApiToken,
        device_id: u64,
    ) -> Result<DeviceCommands, ServiceError> {
        let caller = self.access.authorizer.authenticate_token(token).await?;
        let device = self.device_for(&caller, device_id).await?.device;
        let (slug, context) = self.context_commands(&device)?;

        let commands = self
            .catalogue
            .for_device(&slug, &context)
            .into_iter()
            .map(|command| ListedCommand {
                permitted: caller.authorize(command.kind.into(), &device).is_ok(),
                command,
            })
            .collect();
        Ok(DeviceCommands {
            device,
            platform: slug,
            commands,
            ignored: context.ignored,
        })
    }

    /// The valid values of every variable of a command on a device.
    pub async fn command_choices(
        &self,
        token: ApiToken,
        device_id: u64,
        name: &str,
    ) -> Result<(Device, CatalogueCommand, Vec<VariableChoices>), ServiceError> {
        let caller = self.access.authorizer.authenticate_token(token).await?;
        let device = self.device_for(&caller, device_id).await?.device;
        let command = self.find_command(&device, name)?;

        let as_caller = self.netbox.as_caller(caller.token());
        let choices = Choices::read(&command.variables, &device, &self.netbox, &as_caller).await?;
        let variables = command
            .variables
            .iter()
            .map(|v| VariableChoices {
                variable: v.clone(),
                choices: choices.of(v.kind).map(<[String]>::to_vec),
            })
            .collect();
        Ok((device, command, variables))
    }

    /// The run's plan: the command (file or config context), the caller's
    /// permission for it on this device, and its text with the variables
    /// substituted.
    pub(super) async fn plan_for(
        &self,
        caller: &Caller,
        info: DeviceInfo,
        request: &ExecuteRequest,
    ) -> Result<Plan<'_>, ServiceError> {
        let DeviceInfo { device, ssh_port } = info;
        let connector = self.connector_for(&device)?;
        let mut command = self.find_command(&device, &request.command)?;

        let granted = caller.authorize(Action::from(command.kind), &device)?;
        tracing::debug!(user = caller.username(), %granted, "run permitted");

        if !command.variables.is_empty() || !request.variables.is_empty() {
            let as_caller = self.netbox.as_caller(caller.token());
            let choices =
                Choices::read(&command.variables, &device, &self.netbox, &as_caller).await?;
            let values = variables::resolve(
                &command.name,
                &command.variables,
                &request.variables,
                &choices,
            )?;
            command.command = variables::substitute(&command.command, &values);
        }
        Ok(Plan {
            device,
            ssh_port,
            connector,
            command: Cow::Owned(command),
        })
    }

    /// A command by name among the file's and the device's config context's.
    fn find_command(&self, device: &Device, name: &str) -> Result<CatalogueCommand, ServiceError> {
        let (slug, context) = self.context_commands(device)?;
        let mut commands = self.catalogue.for_device(&slug, &context);
        if let Some(index) = commands.iter().position(|c| c.name == name) {
            return Ok(commands.swap_remove(index));
        }
        if let Some(reason) = context.why_ignored(name) {
            return Err(ServiceError::InvalidRequest {
                reason: format!(
                    "command `{name}` in the device's config context cannot be used: {reason}"
                ),
            });
        }
        Err(ServiceError::UnknownCommand {
            name: name.to_string(),
            device: device.label(),
            platform: slug,
            available: commands.into_iter().map(|c| c.name).collect(),
        })
    }

    fn context_commands(&self, device: &Device) -> Result<(String, ContextCommands), ServiceError> {
        let connector = self.connector_for(device)?;
        let slug = connector.platform().slug().to_string();
        let netbox_slug = device.platform.as_ref().and_then(|p| p.slug.as_deref());
        let context =
            ContextCommands::from_context(device.config_context.as_ref(), &slug, netbox_slug);
        for (name, reason) in &context.ignored {
            tracing::warn!(device = %device.label(), command = %name, %reason, "config-context command ignored");
        }
        Ok((slug, context))
    }
}
