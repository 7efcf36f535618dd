//! The command catalogue: the vetted commands the service will run, read
//! from a TOML file at start-up and checked against the platform table.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::connector::PlatformRegistry;

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
