//! Platforms as data: the table the connector factory and the session driver
//! read to know how a device family talks.
//!
//! The built-in table lives in `platforms.toml` beside this file and is
//! compiled into the binary; operators extend or override it from the
//! service configuration with entries of the same shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

use super::error::UnsupportedPlatformError;

const BUILTIN_PLATFORMS: &str = include_str!("platforms.toml");

/// Pager lines any platform may show even with paging turned off, such as
/// `---- More ( Press 'Q' to break ) ----`, `--More--` or `<--- More --->`.
const GENERIC_PAGER: &str =
    r"(?i)-{2,} ?more ?(\([^)\n]{0,40}\))? ?-{2,}|-- \[Q quit\|D dump\|down\]";

/// One platform entry as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformDef {
    /// Canonical slug, e.g. `cisco_ios`.
    pub slug: String,
    /// Human-readable name.
    pub name: String,
    /// Other NetBox slugs or names that mean this platform.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Regex for a whole prompt line in any mode.
    pub prompt: String,
    /// Regex for an unprivileged prompt that calls for escalation.
    #[serde(default)]
    pub exec_prompt: Option<String>,
    /// Regex for a configuration-mode prompt.
    #[serde(default)]
    pub config_prompt: Option<String>,
    /// Commands sent once after login.
    #[serde(default)]
    pub on_open: Vec<String>,
    /// Regex for a pager line that must be answered with a space.
    #[serde(default)]
    pub pager: Option<String>,
    /// Strings a device prints when it rejects a command.
    #[serde(default)]
    pub failures: Vec<String>,
    /// Privilege escalation, when the platform has an unprivileged level.
    #[serde(default)]
    pub enable: Option<EnableDef>,
    /// How to enter and leave configuration mode.
    #[serde(default)]
    pub config: Option<ConfigModeDef>,
    /// Appended to the login name (MikroTik terminal options).
    #[serde(default)]
    pub username_suffix: Option<String>,
}

/// How a platform escalates from exec to privileged mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableDef {
    /// The command that asks for privileges.
    pub command: String,
    /// Regex for the secret prompt the device may answer with.
    pub password_prompt: String,
}

/// How a platform enters, commits and leaves configuration mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigModeDef {
    /// Command that enters configuration mode.
    pub enter: String,
    /// Command that leaves configuration mode.
    pub exit: String,
    /// Command that commits the candidate, on platforms that have one.
    #[serde(default)]
    pub commit: Option<String>,
    /// Command that discards the candidate after a failure.
    #[serde(default)]
    pub abort: Option<String>,
}

#[derive(Deserialize)]
struct PlatformFile {
    #[serde(default)]
    platform: Vec<PlatformDef>,
}

/// A platform entry with its patterns compiled, ready for the driver.
#[derive(Debug)]
pub struct Platform {
    /// The entry as written.
    pub def: PlatformDef,
    /// Compiled `prompt`.
    pub prompt: Regex,
    /// Compiled `exec_prompt`.
    pub exec_prompt: Option<Regex>,
    /// Compiled `config_prompt`.
    pub config_prompt: Option<Regex>,
    /// Compiled `pager`, joined with the pager lines every platform may show.
    pub pager: Regex,
    /// Compiled `enable.password_prompt`.
    pub enable_password_prompt: Option<Regex>,
}

impl Platform {
    /// Compiles one entry; a bad pattern names the platform and the field.
    pub fn compile(def: PlatformDef) -> Result<Self, PlatformTableError> {
        let compile = |field: &str, pattern: &str| {
            Regex::new(pattern).map_err(|source| PlatformTableError::Pattern {
                slug: def.slug.clone(),
                field: field.to_string(),
                source,
            })
        };
        let optional = |field: &str, pattern: &Option<String>| {
            pattern.as_deref().map(|p| compile(field, p)).transpose()
        };

        let prompt = compile("prompt", &def.prompt)?;
        let exec_prompt = optional("exec_prompt", &def.exec_prompt)?;
        let config_prompt = optional("config_prompt", &def.config_prompt)?;
        // Blanks around a pager and the carriage return that erases it go
        // with it, so removing matches from output leaves no trace.
        let pagers = match &def.pager {
            Some(own) => format!("(?:{own})|(?:{GENERIC_PAGER})"),
            None => GENERIC_PAGER.to_string(),
        };
        let pager = compile("pager", &format!(r"[ \t]*(?:{pagers})[ \t]*\r*"))?;
        let enable_password_prompt = def
            .enable
            .as_ref()
            .map(|e| compile("enable.password_prompt", &e.password_prompt))
            .transpose()?;

        Ok(Self {
            prompt,
            exec_prompt,
            config_prompt,
            pager,
            enable_password_prompt,
            def,
        })
    }

    /// The canonical slug.
    pub fn slug(&self) -> &str {
        &self.def.slug
    }

    /// Whether `line` (already cleaned and trimmed) is a prompt of this platform.
    pub fn is_prompt(&self, line: &str) -> bool {
        self.prompt.is_match(line)
    }

    /// Whether a prompt line shows the unprivileged level.
    pub fn is_exec_prompt(&self, line: &str) -> bool {
        self.exec_prompt
            .as_ref()
            .is_some_and(|re| re.is_match(line))
    }

    /// Whether a prompt line shows configuration mode.
    pub fn is_config_prompt(&self, line: &str) -> bool {
        self.config_prompt
            .as_ref()
            .is_some_and(|re| re.is_match(line))
    }

    /// Whether `line` (cleaned and trimmed) is a pager waiting for a key.
    pub fn is_pager(&self, line: &str) -> bool {
        self.pager.is_match(line)
    }

    /// The first failure string found in `text`, if any.
    pub fn failure_in<'a>(&'a self, text: &str) -> Option<&'a str> {
        self.def
            .failures
            .iter()
            .map(String::as_str)
            .find(|f| text.contains(f))
    }
}

/// Why a platform table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlatformTableError {
    /// The TOML did not parse.
    #[error("platform table {origin} is not valid TOML: {source}; fix the file and restart")]
    Parse {
        /// Where the table came from.
        origin: String,
        /// The parser's complaint.
        source: toml::de::Error,
    },
    /// A pattern did not compile.
    #[error("platform `{slug}` has an invalid `{field}` pattern: {source}")]
    Pattern {
        /// The platform.
        slug: String,
        /// The field holding the pattern.
        field: String,
        /// The regex compiler's complaint.
        source: regex::Error,
    },
}

/// Every known platform, addressable by slug, name or alias.
#[derive(Debug, Clone)]
pub struct PlatformRegistry {
    by_slug: BTreeMap<String, Arc<Platform>>,
    by_alias: BTreeMap<String, String>,
}

impl PlatformRegistry {
    /// The built-in table, then `extra` entries from configuration, which
    /// replace built-in entries of the same slug.
    pub fn load(extra: &[PlatformDef]) -> Result<Self, PlatformTableError> {
        let builtin: PlatformFile =
            toml::from_str(BUILTIN_PLATFORMS).map_err(|source| PlatformTableError::Parse {
                origin: "built-in platforms.toml".into(),
                source,
            })?;

        let mut registry = Self {
            by_slug: BTreeMap::new(),
            by_alias: BTreeMap::new(),
        };
        for def in builtin.platform.into_iter().chain(extra.iter().cloned()) {
            registry.insert(Platform::compile(def)?);
        }
        Ok(registry)
    }

    fn insert(&mut self, platform: Platform) {
        let slug = platform.slug().to_string();
        for name in platform
            .def
            .aliases
            .iter()
            .chain([&platform.def.name, &slug])
        {
            self.by_alias.insert(normalize(name), slug.clone());
        }
        self.by_slug.insert(slug, Arc::new(platform));
    }

    /// Finds a platform from a NetBox platform's slug, then its name.
    pub fn resolve(
        &self,
        slug: Option<&str>,
        name: Option<&str>,
    ) -> Result<Arc<Platform>, UnsupportedPlatformError> {
        [slug, name]
            .into_iter()
            .flatten()
            .find_map(|key| self.by_alias.get(&normalize(key)))
            .and_then(|slug| self.by_slug.get(slug))
            .cloned()
            .ok_or_else(|| UnsupportedPlatformError {
                platform: slug.or(name).map(str::to_string),
                supported: self.slugs(),
            })
    }

    /// Every canonical slug, sorted.
    pub fn slugs(&self) -> Vec<String> {
        self.by_slug.keys().cloned().collect()
    }
}

/// NetBox slugs use `-` or `_` and names vary in case; compare them loosely.
fn normalize(key: &str) -> String {
    key.trim().to_lowercase().replace(['-', ' '], "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> PlatformRegistry {
        PlatformRegistry::load(&[]).unwrap()
    }

    #[test]
    fn every_builtin_platform_compiles_and_is_listed() {
        let slugs = registry().slugs();
        for slug in [
            "arista_eos",
            "aruba_aoscx",
            "cisco_ios",
            "cisco_iosxr",
            "cisco_nxos",
            "huawei_vrp",
            "juniper_junos",
            "linux",
            "mikrotik_routeros",
            "paloalto_panos",
        ] {
            assert!(
                slugs.contains(&slug.to_string()),
                "{slug} missing from {slugs:?}"
            );
        }
    }

    #[test]
    fn aliases_and_names_resolve_to_the_canonical_slug() {
        let registry = registry();
        assert_eq!(
            registry.resolve(Some("ios-xe"), None).unwrap().slug(),
            "cisco_ios"
        );
        assert_eq!(
            registry.resolve(Some("nexus"), None).unwrap().slug(),
            "cisco_nxos"
        );
        assert_eq!(
            registry
                .resolve(Some("x"), Some("Arista EOS"))
                .unwrap()
                .slug(),
            "arista_eos"
        );
        assert_eq!(
            registry.resolve(Some("cisco-xr"), None).unwrap().slug(),
            "cisco_iosxr"
        );
    }

    #[test]
    fn an_unknown_platform_names_the_supported_ones() {
        let err = registry()
            .resolve(Some("acme_os"), Some("Acme OS"))
            .unwrap_err();
        assert_eq!(err.platform.as_deref(), Some("acme_os"));
        assert!(err.to_string().contains("cisco_ios"));
    }

    #[test]
    fn ios_prompt_modes_come_from_the_last_character() {
        let registry = registry();
        let ios = registry.resolve(Some("cisco_ios"), None).unwrap();
        assert!(ios.is_prompt("27N2(2960_PoE)>"));
        assert!(ios.is_exec_prompt("27N2(2960_PoE)>"));
        assert!(!ios.is_config_prompt("27N2(2960_PoE)>"));
        assert!(ios.is_prompt("AP158-#10>"));
        assert!(ios.is_exec_prompt("AP158-#10>"));
        assert!(ios.is_config_prompt("router(config-if)#"));
        assert!(!ios.is_prompt("Cisco IOS Software, Version 15.2"));
    }

    #[test]
    fn mikrotik_prompts_with_spaces_and_safe_mode_are_prompts() {
        let registry = registry();
        let ros = registry.resolve(Some("routeros"), None).unwrap();
        assert!(ros.is_prompt("[admin@Core Router] >"));
        assert!(ros.is_prompt("[admin@Core Router] <SAFE>"));
        assert!(!ros.is_prompt("[admin@Core Router] <SAFE>>"));
    }

    #[test]
    fn a_pager_that_cannot_be_disabled_is_recognised_on_every_platform() {
        let registry = registry();
        for slug in registry.slugs() {
            let platform = registry.resolve(Some(&slug), None).unwrap();
            assert!(
                platform.is_pager("---- More ( Press 'Q' to break ) ----"),
                "{slug}"
            );
            assert!(platform.is_pager("--More--"), "{slug}");
            assert!(!platform.is_pager("Gi1/0/1 is up, more or less"), "{slug}");
        }
    }

    #[test]
    fn an_operator_entry_replaces_the_builtin_one() {
        let mut def = registry().resolve(Some("linux"), None).unwrap().def.clone();
        def.on_open = vec!["unset PROMPT_COMMAND".into()];
        let registry = PlatformRegistry::load(&[def]).unwrap();
        let linux = registry.resolve(Some("linux"), None).unwrap();
        assert_eq!(linux.def.on_open, vec!["unset PROMPT_COMMAND".to_string()]);
    }
}
