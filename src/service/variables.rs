//! Command variables: `<name>` placeholders in a command's text, each
//! declared with a type. Values are checked here, at the boundary, and come
//! out as [`VariableValue`]s, which substitution alone accepts.
//!
//! Text values are printable ASCII without anything a device shell could
//! read as a second command or as help (`;`, `|`, `&`, backticks, `$`,
//! `<`, `>`, `?`, `\`), never start with `-`, and match the variable's
//! pattern and length limit. NetBox-typed values (interface, VLAN, IP
//! address, site) must name an object of the device (or of its site, for
//! VLANs); a wrong value is answered with the closest valid ones.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::netbox::{Device, NetboxClient, NetboxError};

/// Longest text value unless a variable sets its own limit.
pub const DEFAULT_MAX_LENGTH: usize = 128;
/// The most any variable may allow.
pub const MAX_MAX_LENGTH: usize = 1024;
/// Characters a value may never hold: they chain commands, redirect, expand
/// or ask for help on common device shells.
const FORBIDDEN: &[char] = &[';', '|', '&', '`', '$', '<', '>', '?', '\\'];
/// At most this many close choices are suggested.
const SUGGESTIONS: usize = 5;

/// What a variable holds, and where its valid values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariableType {
    /// Free text, checked against the pattern and length limit.
    Text,
    /// The name of one of the device's interfaces.
    Interface,
    /// The 802.1Q id of a VLAN available on the device.
    VlanId,
    /// The name of a VLAN available on the device.
    VlanName,
    /// An IP address (no prefix length) assigned to the device.
    IpAddress,
    /// The slug of a site the caller can see.
    Site,
}

/// A declared variable of a catalogue command.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    /// The placeholder name, `<name>` in the command text.
    pub name: String,
    /// The value's type.
    #[serde(rename = "type", default = "text_type")]
    pub kind: VariableType,
    /// Whether a value (or a default) must be present.
    #[serde(default = "yes")]
    pub required: bool,
    /// Help for the person filling it in.
    #[serde(default)]
    pub help: String,
    /// Used when the request gives no value.
    #[serde(default)]
    pub default: Option<String>,
    /// A regular expression the whole text value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Longest text value, characters.
    #[serde(default)]
    pub max_length: Option<usize>,
}

fn text_type() -> VariableType {
    VariableType::Text
}

fn yes() -> bool {
    true
}

/// A value that passed its variable's checks; only these are substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableValue(String);

impl VariableValue {
    /// The value as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why variables could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VariableError {
    /// The request gives a value for a variable the command does not have.
    #[error("command `{command}` has no variable `{name}`")]
    Unknown {
        /// The command name.
        command: String,
        /// The variable given.
        name: String,
        /// The variables it does have.
        declared: Vec<String>,
    },
    /// A required variable has no value and no default.
    #[error("variable `{name}` of command `{command}` needs a value")]
    Missing {
        /// The command name.
        command: String,
        /// The variable.
        name: String,
        /// Its help text.
        help: String,
    },
    /// The value is not acceptable.
    #[error("variable `{name}`: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// What is wrong (never echoes the value).
        reason: String,
        /// Valid values close to the one given.
        suggestions: Vec<String>,
    },
    /// A command's declaration is inconsistent (catalogue or config context).
    #[error("command `{command}`: {reason}")]
    Declaration {
        /// The command name.
        command: String,
        /// What is wrong.
        reason: String,
    },
}

impl VariableError {
    /// What the caller should check or try next.
    pub fn guidance(&self) -> String {
        match self {
            Self::Unknown { declared, .. } if declared.is_empty() => {
                "This command takes no variables; leave `variables` out.".into()
            }
            Self::Unknown { declared, .. } => {
                format!("The command's variables are: {}.", declared.join(", "))
            }
            Self::Missing { help, .. } if !help.is_empty() => format!("Give a value: {help}"),
            Self::Missing { .. } | Self::Invalid { .. } => {
                "GET /api/v1/devices/{id}/commands/{name}/choices lists the valid values.".into()
            }
            Self::Declaration { .. } => {
                "Correct the command's declaration in the catalogue file or config context.".into()
            }
        }
    }

    /// Valid values close to the one given, if any.
    pub fn suggestions(&self) -> Option<&[String]> {
        match self {
            Self::Invalid { suggestions, .. } if !suggestions.is_empty() => Some(suggestions),
            _ => None,
        }
    }
}

#[allow(clippy::expect_used)] // A constant pattern, compiled by the unit tests.
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z_][A-Za-z0-9_]*)>").expect("the placeholder pattern compiles")
});

/// The placeholder names in a command text, in order of first use.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for capture in PLACEHOLDER.captures_iter(text) {
        let name = capture[1].to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Checks a command's declarations against its text: every placeholder is
/// declared, every declaration used, patterns compile, limits are sane and
/// text defaults pass their own checks.
pub fn check_declarations(
    command: &str,
    text: &str,
    defs: &[VariableDef],
) -> Result<(), VariableError> {
    let declaration = |reason: String| VariableError::Declaration {
        command: command.to_string(),
        reason,
    };
    let used = placeholders(text);
    if let Some(missing) = used.iter().find(|u| !defs.iter().any(|d| &d.name == *u)) {
        return Err(declaration(format!(
            "the placeholder <{missing}> is not declared"
        )));
    }
    for def in defs {
        if !used.contains(&def.name) {
            return Err(declaration(format!(
                "variable `{}` is not used in the text",
                def.name
            )));
        }
        if defs.iter().filter(|d| d.name == def.name).count() > 1 {
            return Err(declaration(format!(
                "variable `{}` is declared twice",
                def.name
            )));
        }
        if def.max_length.is_some_and(|m| m == 0 || m > MAX_MAX_LENGTH) {
            return Err(declaration(format!(
                "variable `{}`: max_length must be 1 to {MAX_MAX_LENGTH}",
                def.name
            )));
        }
        compile_pattern(def).map_err(declaration)?;
        if let (VariableType::Text, Some(default)) = (def.kind, &def.default) {
            check_text(def, default).map_err(|err| declaration(format!("default: {err}")))?;
        }
    }
    Ok(())
}

fn compile_pattern(def: &VariableDef) -> Result<Option<Regex>, String> {
    def.pattern
        .as_ref()
        .map(|p| {
            Regex::new(&format!("^(?:{p})$")).map_err(|err| {
                format!(
                    "variable `{}`: the pattern does not compile: {err}",
                    def.name
                )
            })
        })
        .transpose()
}

/// Characters no value may hold, whatever its type.
fn check_safe(def: &VariableDef, value: &str) -> Result<(), VariableError> {
    let invalid = |reason: String| VariableError::Invalid {
        name: def.name.clone(),
        reason,
        suggestions: Vec::new(),
    };
    if value.is_empty() {
        return Err(invalid("the value is empty".into()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "the value holds the control character U+{:04X} (newlines and other control \
             characters are never sent)",
            c as u32
        )));
    }
    if !value.is_ascii() {
        return Err(invalid(
            "the value holds characters outside printable ASCII".into(),
        ));
    }
    if let Some(c) = value.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(invalid(format!(
            "the value holds `{c}`, which could chain, redirect or alter the command"
        )));
    }
    if value.starts_with('-') || value.starts_with(' ') || value.ends_with(' ') {
        return Err(invalid(
            "the value may not start with `-` or start or end with a space".into(),
        ));
    }
    Ok(())
}

fn check_text(def: &VariableDef, value: &str) -> Result<(), VariableError> {
    let limit = def.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
    let length = value.chars().count();
    if length > limit {
        return Err(VariableError::Invalid {
            name: def.name.clone(),
            reason: format!("the value is {length} characters long; the limit is {limit}"),
            suggestions: Vec::new(),
        });
    }
    check_safe(def, value)?;
    let pattern = compile_pattern(def).map_err(|reason| VariableError::Invalid {
        name: def.name.clone(),
        reason,
        suggestions: Vec::new(),
    })?;
    if pattern.is_some_and(|p| !p.is_match(value)) {
        return Err(VariableError::Invalid {
            name: def.name.clone(),
            reason: format!(
                "the value does not match the pattern {}",
                def.pattern.as_deref().unwrap_or_default()
            ),
            suggestions: Vec::new(),
        });
    }
    Ok(())
}

/// Valid values of NetBox-typed variables, as read for one device.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    by_type: BTreeMap<String, Vec<String>>,
}

impl Choices {
    /// The valid values of a type; `None` for free text.
    pub fn of(&self, kind: VariableType) -> Option<&[String]> {
        self.by_type.get(type_key(kind)).map(Vec::as_slice)
    }

    /// Reads the valid values of every NetBox type among `defs`, all at once:
    /// device objects with the service's client, sites with the caller's.
    pub async fn read(
        defs: &[VariableDef],
        device: &Device,
        service: &NetboxClient,
        caller: &NetboxClient,
    ) -> Result<Self, NetboxError> {
        let mut kinds: Vec<VariableType> = defs.iter().map(|d| d.kind).collect();
        kinds.sort_by_key(|k| type_key(*k));
        kinds.dedup();
        let reads = kinds
            .into_iter()
            .filter(|k| *k != VariableType::Text)
            .map(|kind| async move {
                let values = read_kind(kind, device, service, caller).await?;
                Ok::<_, NetboxError>((type_key(kind).to_string(), values))
            });
        let by_type = futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .collect();
        Ok(Self { by_type })
    }
}

fn type_key(kind: VariableType) -> &'static str {
    match kind {
        VariableType::Text => "text",
        VariableType::Interface => "interface",
        VariableType::VlanId => "vlan_id",
        VariableType::VlanName => "vlan_name",
        VariableType::IpAddress => "ip_address",
        VariableType::Site => "site",
    }
}

async fn read_kind(
    kind: VariableType,
    device: &Device,
    service: &NetboxClient,
    caller: &NetboxClient,
) -> Result<Vec<String>, NetboxError> {
    let mut values: Vec<String> = match kind {
        VariableType::Text => Vec::new(),
        VariableType::Interface => service
            .device_interfaces(device.id)
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect(),
        VariableType::VlanId => service
            .device_vlans(device.id)
            .await?
            .into_iter()
            .map(|v| v.vid.to_string())
            .collect(),
        VariableType::VlanName => service
            .device_vlans(device.id)
            .await?
            .into_iter()
            .map(|v| v.name)
            .collect(),
        VariableType::IpAddress => service
            .device_ip_addresses(device.id)
            .await?
            .into_iter()
            .map(|ip| ip.address.split('/').next().unwrap_or_default().to_string())
            .collect(),
        // A caller who may see no site at all has no valid site values.
        VariableType::Site => match caller.sites().await {
            Ok(sites) => sites.into_iter().map(|s| s.slug).collect(),
            Err(NetboxError::Forbidden { .. }) => Vec::new(),
            Err(err) => return Err(err),
        },
    };
    values.sort();
    values.dedup();
    Ok(values)
}

/// Checks the given values (and defaults) against the declarations.
pub fn resolve(
    command: &str,
    defs: &[VariableDef],
    given: &BTreeMap<String, String>,
    choices: &Choices,
) -> Result<BTreeMap<String, VariableValue>, VariableError> {
    if let Some(name) = given.keys().find(|n| !defs.iter().any(|d| &d.name == *n)) {
        return Err(VariableError::Unknown {
            command: command.to_string(),
            name: name.clone(),
            declared: defs.iter().map(|d| d.name.clone()).collect(),
        });
    }

    let mut values = BTreeMap::new();
    for def in defs {
        let Some(value) = given.get(&def.name).or(def.default.as_ref()) else {
            return Err(VariableError::Missing {
                command: command.to_string(),
                name: def.name.clone(),
                help: def.help.clone(),
            });
        };
        values.insert(def.name.clone(), check_value(def, value, choices)?);
    }
    Ok(values)
}

fn check_value(
    def: &VariableDef,
    value: &str,
    choices: &Choices,
) -> Result<VariableValue, VariableError> {
    if def.kind == VariableType::Text {
        check_text(def, value)?;
        return Ok(VariableValue(value.to_string()));
    }
    // Bound the work on absurd input before comparing it with anything.
    if value.len() > MAX_MAX_LENGTH {
        return Err(VariableError::Invalid {
            name: def.name.clone(),
            reason: format!("the value is longer than {MAX_MAX_LENGTH} bytes"),
            suggestions: Vec::new(),
        });
    }
    check_safe(def, value)?;

    let valid = choices.of(def.kind).unwrap_or_default();
    let wanted = normalise(def.kind, value).map_err(|reason| VariableError::Invalid {
        name: def.name.clone(),
        reason,
        suggestions: Vec::new(),
    })?;
    match valid.iter().find(|v| **v == wanted) {
        Some(found) => Ok(VariableValue(found.clone())),
        None => Err(VariableError::Invalid {
            name: def.name.clone(),
            reason: not_found_reason(def.kind, valid.is_empty()),
            suggestions: closest(value, valid),
        }),
    }
}

/// The canonical form of a typed value, or why it cannot be one.
fn normalise(kind: VariableType, value: &str) -> Result<String, String> {
    match kind {
        VariableType::VlanId => match value.parse::<u16>() {
            Ok(vid) if (1..=4094).contains(&vid) => Ok(vid.to_string()),
            _ => Err("a VLAN id is a number from 1 to 4094".into()),
        },
        VariableType::IpAddress => value
            .parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| "an IP address is given without prefix length, e.g. 192.0.2.1".into()),
        _ => Ok(value.to_string()),
    }
}

fn not_found_reason(kind: VariableType, none: bool) -> String {
    let what = match kind {
        VariableType::Interface => "an interface of this device",
        VariableType::VlanId | VariableType::VlanName => "a VLAN available on this device",
        VariableType::IpAddress => "an IP address assigned to this device",
        VariableType::Site => "a site you can see",
        VariableType::Text => "valid",
    };
    if none {
        format!("the value is not {what}; NetBox has none")
    } else {
        format!("the value is not {what} in NetBox")
    }
}

/// The valid values nearest to `value` by edit distance, ignoring case.
pub fn closest(value: &str, valid: &[String]) -> Vec<String> {
    let wanted: Vec<char> = value.to_lowercase().chars().take(64).collect();
    let mut scored: Vec<(usize, &String)> = valid
        .iter()
        .map(|v| {
            (
                edit_distance(&wanted, &v.to_lowercase().chars().collect::<Vec<_>>()),
                v,
            )
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(SUGGESTIONS)
        .map(|(_, v)| v.clone())
        .collect()
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The command text with every placeholder replaced by its checked value.
pub fn substitute(text: &str, values: &BTreeMap<String, VariableValue>) -> String {
    PLACEHOLDER
        .replace_all(text, |caps: &regex::Captures<'_>| {
            values
                .get(&caps[1])
                .map(|v| v.as_str().to_string())
                .unwrap_or_else(|| caps[0].to_string())
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, kind: VariableType) -> VariableDef {
        VariableDef {
            name: name.into(),
            kind,
            required: true,
            help: String::new(),
            default: None,
            pattern: None,
            max_length: None,
        }
    }

    fn choices() -> Choices {
        let mut by_type = BTreeMap::new();
        by_type.insert(
            "interface".to_string(),
            vec![
                "GigabitEthernet0/1".into(),
                "GigabitEthernet0/2".into(),
                "mgmt0".into(),
            ],
        );
        by_type.insert("vlan_id".to_string(), vec!["10".into(), "20".into()]);
        by_type.insert("ip_address".to_string(), vec!["127.0.0.11".into()]);
        Choices { by_type }
    }

    fn one(d: VariableDef, value: &str) -> Result<String, VariableError> {
        let given = BTreeMap::from([(d.name.clone(), value.to_string())]);
        resolve("c", std::slice::from_ref(&d), &given, &choices())
            .map(|v| v[&d.name].as_str().to_string())
    }

    #[test]
    fn placeholders_are_found_once_each_in_order() {
        assert_eq!(
            placeholders("show int <intf> | <x> <intf> <1bad>"),
            vec!["intf", "x"]
        );
    }

    #[test]
    fn values_are_substituted_into_every_placeholder() {
        let values = BTreeMap::from([("intf".to_string(), VariableValue("Gi0/1".into()))]);
        assert_eq!(
            substitute("show int <intf>\ndesc <intf>", &values),
            "show int Gi0/1\ndesc Gi0/1"
        );
    }

    #[test]
    fn injection_attempts_in_text_values_are_refused() {
        let text = def("t", VariableType::Text);
        for attempt in [
            "Gi0/1\nreload",
            "x\rreload",
            "; reload",
            "a | include secret",
            "a && reload",
            "`reload`",
            "$(reload)",
            "a > flash:x",
            "show ?",
            "-rf",
            "caf\u{e9}",
            "\u{202e}x",
            "tab\there",
        ] {
            assert!(
                one(text.clone(), attempt).is_err(),
                "{attempt:?} was accepted"
            );
        }
        assert!(one(text.clone(), &"a".repeat(10 * 1024)).is_err());
        assert_eq!(
            one(text, "uplink to core-1 (rack 4)").unwrap(),
            "uplink to core-1 (rack 4)"
        );
    }

    #[test]
    fn text_values_must_match_the_whole_pattern() {
        let mut d = def("t", VariableType::Text);
        d.pattern = Some(r"[A-Z]{3}-\d+".into());
        assert!(one(d.clone(), "CHG-42").is_ok());
        assert!(one(d, "xCHG-42").is_err());
    }

    #[test]
    fn a_wrong_interface_is_answered_with_the_closest_ones() {
        let err = one(def("i", VariableType::Interface), "GigabitEthernet0/3").unwrap_err();
        let suggestions = err.suggestions().unwrap();
        assert_eq!(suggestions[0], "GigabitEthernet0/1", "{suggestions:?}");
        assert!(one(def("i", VariableType::Interface), "mgmt0").is_ok());
    }

    #[test]
    fn vlan_ids_and_ip_addresses_are_checked_by_value_and_membership() {
        assert_eq!(one(def("v", VariableType::VlanId), "10").unwrap(), "10");
        assert!(one(def("v", VariableType::VlanId), "30").is_err());
        assert!(one(def("v", VariableType::VlanId), "5000").is_err());
        assert!(one(def("a", VariableType::IpAddress), "127.0.0.11").is_ok());
        assert!(one(def("a", VariableType::IpAddress), "127.0.0.11/32").is_err());
    }

    #[test]
    fn defaults_apply_and_missing_or_unknown_variables_are_refused() {
        let mut d = def("t", VariableType::Text);
        d.default = Some("x".into());
        let values = resolve("c", &[d.clone()], &BTreeMap::new(), &choices()).unwrap();
        assert_eq!(values["t"].as_str(), "x");
        d.default = None;
        assert!(matches!(
            resolve("c", &[d.clone()], &BTreeMap::new(), &choices()),
            Err(VariableError::Missing { .. })
        ));
        let extra = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(matches!(
            resolve("c", &[], &extra, &choices()),
            Err(VariableError::Unknown { .. })
        ));
    }

    #[test]
    fn declarations_must_match_the_placeholders() {
        let d = def("intf", VariableType::Interface);
        assert!(check_declarations("c", "show int <intf>", std::slice::from_ref(&d)).is_ok());
        assert!(check_declarations("c", "show int <other>", std::slice::from_ref(&d)).is_err());
        assert!(check_declarations("c", "show int", &[d]).is_err());
        let mut bad = def("t", VariableType::Text);
        bad.pattern = Some("(".into());
        assert!(check_declarations("c", "x <t>", &[bad]).is_err());
    }
}
