//! The command catalogue: the vetted commands the service will run, read
//! from a TOML file at start-up and checked against the platform table, and
//! from the `toolkit.commands` list of a device's NetBox config context,
//! which wins over the file for the same name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::variables::{self, VariableDef};
use crate::connector::PlatformRegistry;

/// Where a command was defined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandSource {
    /// The catalogue file.
    #[default]
    File,
    /// The device's NetBox config context (`toolkit.commands`).
    ConfigContext,
}

/// Whether a command reads state or changes configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    /// Operational command, sent at the prompt.
    Show,
    /// Configuration lines, sent in configuration mode.
    Config,
}

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueCommand {
    /// Unique name callers use, e.g. `show version`.
    pub name: String,
    /// Text sent to the device (one line per configuration line).
    pub command: String,
    /// What the command is for.
    #[serde(default)]
    pub description: String,
    /// Platform slugs (or aliases) the command applies to.
    pub platforms: Vec<String>,
    /// `show` or `config`.
    #[serde(rename = "type", default = "show_kind")]
    pub kind: CommandKind,
    /// Declared `<name>` placeholders of the command text.
    #[serde(default)]
    pub variables: Vec<VariableDef>,
    /// Where the command was defined.
    #[serde(skip)]
    pub source: CommandSource,
}

fn show_kind() -> CommandKind {
    CommandKind::Show
}

impl CatalogueCommand {
    /// The lines to send, for configuration commands.
    pub fn lines(&self) -> Vec<String> {
        self.command
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    #[serde(default)]
    command: Vec<CatalogueCommand>,
}

/// Why the catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file could not be read.
    #[error(
        "cannot read the command catalogue {path}: {source}; check `catalogue` in the configuration"
    )]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid catalogue TOML.
    #[error("the command catalogue {path} is invalid: {source}")]
    Parse {
        /// The path.
        path: String,
        /// The parser's complaint.
        source: toml::de::Error,
    },
    /// An entry is inconsistent.
    #[error("catalogue command `{name}`: {reason}")]
    Entry {
        /// The command name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The loaded catalogue, with platform names resolved to canonical slugs.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    commands: BTreeMap<String, CatalogueCommand>,
}

impl Catalogue {
    /// Reads and checks the catalogue file.
    pub fn load(path: &Path, platforms: &PlatformRegistry) -> Result<Self, CatalogueError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: CatalogueFile =
            toml::from_str(&text).map_err(|source| CatalogueError::Parse {
                path: shown,
                source,
            })?;
        Self::from_commands(file.command, platforms)
    }

    /// Builds a catalogue from entries, resolving platform aliases.
    pub fn from_commands(
        entries: Vec<CatalogueCommand>,
        platforms: &PlatformRegistry,
    ) -> Result<Self, CatalogueError> {
        let mut commands = BTreeMap::new();
        for mut entry in entries {
            entry.platforms = resolve_platforms(&entry, platforms)?;
            if entry.command.trim().is_empty() {
                return Err(entry_error(&entry.name, "the command text is empty"));
            }
            if commands.contains_key(&entry.name) {
                return Err(entry_error(&entry.name, "the name is used twice"));
            }
            variables::check_declarations(&entry.name, &entry.command, &entry.variables)
                .map_err(|err| entry_error(&entry.name, &err.to_string()))?;
            commands.insert(entry.name.clone(), entry);
        }
        Ok(Self { commands })
    }

    /// The commands available on a platform, by name.
    pub fn for_platform<'a>(
        &'a self,
        slug: &'a str,
    ) -> impl Iterator<Item = &'a CatalogueCommand> + 'a {
        self.commands
            .values()
            .filter(move |c| c.platforms.iter().any(|p| p == slug))
    }

    /// One command, if it exists and applies to the platform.
    pub fn find(&self, name: &str, slug: &str) -> Option<&CatalogueCommand> {
        self.commands
            .get(name)
            .filter(|c| c.platforms.iter().any(|p| p == slug))
    }

    /// The commands for one device: the file's for its platform, with its
    /// config context's commands added or, for the same name, preferred.
    pub fn for_device(&self, slug: &str, context: &ContextCommands) -> Vec<CatalogueCommand> {
        let mut merged: BTreeMap<String, CatalogueCommand> = self
            .for_platform(slug)
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        for command in &context.commands {
            merged.insert(command.name.clone(), command.clone());
        }
        merged.into_values().collect()
    }
}

/// Commands from a device's config context, with the entries that were
/// ignored and why.
#[derive(Debug, Clone, Default)]
pub struct ContextCommands {
    /// Usable commands.
    pub commands: Vec<CatalogueCommand>,
    /// `(name, reason)` of entries that could not be used.
    pub ignored: Vec<(String, String)>,
}

/// A config-context command: like a file entry, with `platforms` optional
/// (NetBox already assigns config contexts by platform).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextEntry {
    name: String,
    command: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(rename = "type", default = "show_kind")]
    kind: CommandKind,
    #[serde(default)]
    variables: Vec<VariableDef>,
}

impl ContextCommands {
    /// Reads `toolkit.commands` from a rendered config context for a device
    /// of platform `slug` (NetBox slug `netbox_slug`). Entries naming other
    /// platforms are skipped; broken entries are kept in `ignored`.
    pub fn from_context(context: Option<&Value>, slug: &str, netbox_slug: Option<&str>) -> Self {
        let mut found = Self::default();
        let Some(entries) = context
            .and_then(|c| c.get("toolkit"))
            .and_then(|t| t.get("commands"))
        else {
            return found;
        };
        let Some(entries) = entries.as_array() else {
            found.ignored.push((
                "toolkit.commands".into(),
                "the config context's toolkit.commands is not a list".into(),
            ));
            return found;
        };

        for (index, raw) in entries.iter().enumerate() {
            let label = raw
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("toolkit.commands[{index}]"), str::to_string);
            match context_entry(raw.clone(), slug, netbox_slug) {
                Ok(Some(command)) => found.commands.push(command),
                Ok(None) => {}
                Err(reason) => found.ignored.push((label, reason)),
            }
        }
        found
    }

    /// Why a command of this name was ignored, if it was.
    pub fn why_ignored(&self, name: &str) -> Option<&str> {
        self.ignored
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, reason)| reason.as_str())
    }
}

fn context_entry(
    raw: Value,
    slug: &str,
    netbox_slug: Option<&str>,
) -> Result<Option<CatalogueCommand>, String> {
    let entry: ContextEntry = serde_json::from_value(raw).map_err(|err| err.to_string())?;
    let applies = entry.platforms.is_empty()
        || entry
            .platforms
            .iter()
            .any(|p| p == slug || Some(p.as_str()) == netbox_slug);
    if !applies {
        return Ok(None);
    }
    if entry.name.trim().is_empty() || entry.command.trim().is_empty() {
        return Err("the name and the command text must not be empty".into());
    }
    variables::check_declarations(&entry.name, &entry.command, &entry.variables)
        .map_err(|err| err.to_string())?;
    Ok(Some(CatalogueCommand {
        name: entry.name,
        command: entry.command,
        description: entry.description,
        platforms: vec![slug.to_string()],
        kind: entry.kind,
        variables: entry.variables,
        source: CommandSource::ConfigContext,
    }))
}

fn resolve_platforms(
    entry: &CatalogueCommand,
    platforms: &PlatformRegistry,
) -> Result<Vec<String>, CatalogueError> {
    if entry.platforms.is_empty() {
        return Err(entry_error(&entry.name, "it lists no platforms"));
    }
    entry
        .platforms
        .iter()
        .map(|p| {
            platforms
                .resolve(Some(p), None)
                .map(|platform| platform.slug().to_string())
                .map_err(|err| entry_error(&entry.name, &err.to_string()))
        })
        .collect()
}

fn entry_error(name: &str, reason: &str) -> CatalogueError {
    CatalogueError::Entry {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text).unwrap();
        Catalogue::from_commands(file.command, &PlatformRegistry::load(&[]).unwrap())
    }

    #[test]
    fn platform_aliases_in_the_catalogue_resolve_to_slugs() {
        let catalogue = parse(
            "[[command]]\nname = \"show version\"\ncommand = \"show version\"\nplatforms = [\"ios\", \"eos\"]\n",
        )
        .unwrap();
        assert!(catalogue.find("show version", "cisco_ios").is_some());
        assert!(catalogue.find("show version", "arista_eos").is_some());
        assert!(catalogue.find("show version", "juniper_junos").is_none());
    }

    #[test]
    fn an_unknown_platform_in_the_catalogue_is_refused_with_the_supported_list() {
        let err = parse("[[command]]\nname = \"x\"\ncommand = \"x\"\nplatforms = [\"acme\"]\n")
            .unwrap_err();
        assert!(err.to_string().contains("cisco_ios"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let entry = "[[command]]\nname = \"x\"\ncommand = \"x\"\nplatforms = [\"ios\"]\n";
        assert!(parse(&format!("{entry}{entry}")).is_err());
    }

    #[test]
    fn config_context_commands_win_over_file_commands_of_the_same_name() {
        let catalogue = parse(
            "[[command]]\nname = \"show version\"\ncommand = \"show version\"\nplatforms = [\"ios\"]\n",
        )
        .unwrap();
        let context = serde_json::json!({"toolkit": {"commands": [
            {"name": "show version", "command": "show version | include uptime"},
            {"name": "show vlan", "command": "show vlan id <vid>",
             "variables": [{"name": "vid", "type": "vlan_id"}]},
            {"name": "junos only", "command": "show chassis", "platforms": ["juniper_junos"]},
            {"name": "broken", "command": "show <x>"},
        ]}});
        let from_context = ContextCommands::from_context(Some(&context), "cisco_ios", None);
        assert_eq!(from_context.ignored.len(), 1, "{:?}", from_context.ignored);
        assert!(from_context.why_ignored("broken").is_some());

        let merged = catalogue.for_device("cisco_ios", &from_context);
        let names: Vec<_> = merged.iter().map(|c| (c.name.as_str(), c.source)).collect();
        assert_eq!(
            names,
            vec![
                ("show version", CommandSource::ConfigContext),
                ("show vlan", CommandSource::ConfigContext)
            ]
        );
        assert_eq!(merged[0].command, "show version | include uptime");
    }

    #[test]
    fn an_undeclared_placeholder_in_the_file_is_refused() {
        let err = parse(
            "[[command]]\nname = \"x\"\ncommand = \"show int <intf>\"\nplatforms = [\"ios\"]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("<intf>"), "{err}");
    }

    #[test]
    fn config_lines_skip_blank_lines() {
        let catalogue = parse(
            "[[command]]\nname = \"c\"\ntype = \"config\"\ncommand = \"\"\"\nhostname a\n\n  logging on\n\"\"\"\nplatforms = [\"ios\"]\n",
        )
        .unwrap();
        let command = catalogue.find("c", "cisco_ios").unwrap();
        assert_eq!(command.kind, CommandKind::Config);
        assert_eq!(command.lines(), vec!["hostname a", "logging on"]);
    }
}
