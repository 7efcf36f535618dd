//! Personas: what each simulated platform looks like on the wire.
//!
//! The platform table says how the connector recognises a device; a persona
//! is the device side of the same facts: concrete prompt strings for one
//! hostname, the secret prompt, canned outputs and the vendor's own words
//! when it rejects a command. The unit tests hold every persona against the
//! platform table so the two cannot drift apart.

/// What one platform's CLI prints, keyed by the platform slug.
///
/// Prompt and output templates use `{host}` and `{user}` placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Persona {
    /// The platform slug this persona speaks for.
    pub slug: &'static str,
    /// The unprivileged prompt, on platforms with an `enable` level.
    pub exec_prompt: Option<&'static str>,
    /// The prompt of a fully privileged (or the only) operational level.
    pub privileged_prompt: &'static str,
    /// The configuration-mode prompt, on platforms with a configuration mode.
    pub config_prompt: Option<&'static str>,
    /// A line printed just above the configuration prompt (`[edit]`).
    pub config_banner: Option<&'static str>,
    /// What `configure` prints before the prompt.
    pub config_enter_output: &'static str,
    /// What a successful commit prints.
    pub commit_output: &'static str,
    /// The question after `enable` when a secret is set.
    pub enable_secret_prompt: &'static str,
    /// The command that turns paging off, one of the platform's `on_open`.
    pub paging_command: Option<&'static str>,
    /// What that command prints.
    pub paging_output: &'static str,
    /// The pager line printed at the end of a page.
    pub pager_text: &'static str,
    /// A `show version`-like command.
    pub version_command: &'static str,
    /// Its output.
    pub version_output: &'static str,
    /// The answer to an unknown operational command; `{command}` is the line.
    pub unknown_command: &'static str,
    /// The answer to a configuration line the device refuses.
    pub config_rejected: &'static str,
}

impl Persona {
    /// The persona for a platform slug.
    pub fn for_slug(slug: &str) -> Option<&'static Persona> {
        PERSONAS.iter().find(|p| p.slug == slug)
    }

    /// Every persona, in table order.
    pub fn all() -> &'static [Persona] {
        PERSONAS
    }
}

/// Fills `{host}`, `{user}` and `{command}` in a persona template.
pub fn render(template: &str, host: &str, user: &str, command: &str) -> String {
    template
        .replace("{host}", host)
        .replace("{user}", user)
        .replace("{command}", command)
}

const IOS_VERSION: &str = "Cisco IOS XE Software, Version 17.09.04a\n\
Cisco IOS Software [Cupertino], ISR Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 17.9.4a\n\
Technical Support: http://www.cisco.com/techsupport\n\
\n\
ROM: IOS-XE ROMMON\n\
{host} uptime is 12 weeks, 3 days, 4 hours, 1 minute\n\
System image file is \"bootflash:packages.conf\"\n\
cisco ISR4331/K9 (1RU) processor with 1795999K/6147K bytes of memory.\n\
Configuration register is 0x2102";

const PERSONAS: &[Persona] = &[
    Persona {
        slug: "cisco_ios",
        exec_prompt: Some("{host}>"),
        privileged_prompt: "{host}#",
        config_prompt: Some("{host}(config)#"),
        config_banner: None,
        config_enter_output: "Enter configuration commands, one per line.  End with CNTL/Z.",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("terminal length 0"),
        paging_output: "",
        pager_text: " --More-- ",
        version_command: "show version",
        version_output: IOS_VERSION,
        unknown_command: "                  ^\n% Invalid input detected at '^' marker.",
        config_rejected: "                  ^\n% Invalid input detected at '^' marker.",
    },
    Persona {
        slug: "cisco_nxos",
        exec_prompt: Some("{host}>"),
        privileged_prompt: "{host}#",
        config_prompt: Some("{host}(config)#"),
        config_banner: None,
        config_enter_output: "Enter configuration commands, one per line. End with CNTL/Z.",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("terminal length 0"),
        paging_output: "",
        pager_text: "--More--",
        version_command: "show version",
        version_output: "Cisco Nexus Operating System (NX-OS) Software\n\
TAC support: http://www.cisco.com/tac\n\
Software\n  NXOS: version 10.3(4a) [Maintenance Release]\n\
Hardware\n  cisco Nexus9000 C93180YC-FX Chassis\n\
  Device name: {host}",
        unknown_command: "                  ^\n% Invalid command at '^' marker.",
        config_rejected: "                  ^\n% Invalid command at '^' marker.",
    },
    Persona {
        slug: "cisco_iosxr",
        exec_prompt: None,
        privileged_prompt: "RP/0/RSP0/CPU0:{host}#",
        config_prompt: Some("RP/0/RSP0/CPU0:{host}(config)#"),
        config_banner: None,
        config_enter_output: "",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("terminal length 0"),
        paging_output: "",
        pager_text: " --More-- ",
        version_command: "show version",
        version_output: "Cisco IOS XR Software, Version 7.9.2\n\
Copyright (c) 2013-2023 by Cisco Systems, Inc.\n\
\n\
Build Information:\n Built By     : ingunawa\n\
\n\
cisco ASR9K () processor\nSystem uptime is 3 weeks 2 days 6 hours 11 minutes",
        unknown_command: "                  ^\n% Invalid input detected at '^' marker.",
        config_rejected: "                  ^\n% Invalid input detected at '^' marker.",
    },
    Persona {
        slug: "juniper_junos",
        exec_prompt: None,
        privileged_prompt: "{user}@{host}>",
        config_prompt: Some("{user}@{host}#"),
        config_banner: Some("[edit]"),
        config_enter_output: "Entering configuration mode",
        commit_output: "commit complete\nExiting configuration mode",
        enable_secret_prompt: "Password:",
        paging_command: Some("set cli screen-length 0"),
        paging_output: "Screen length set to 0",
        pager_text: "---(more 42%)---",
        version_command: "show version",
        version_output: "Hostname: {host}\nModel: mx204\nJunos: 22.4R3-S2.11\n\
JUNOS OS Kernel 64-bit  [20231010.1a0e4c5_builder_stable_12_224]",
        unknown_command: "                  ^\nunknown command.",
        config_rejected: "                  ^\nsyntax error.",
    },
    Persona {
        slug: "arista_eos",
        exec_prompt: Some("{host}>"),
        privileged_prompt: "{host}#",
        config_prompt: Some("{host}(config)#"),
        config_banner: None,
        config_enter_output: "",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("terminal length 0"),
        paging_output: "Pagination disabled.",
        pager_text: " --More-- ",
        version_command: "show version",
        version_output: "Arista DCS-7050SX3-48YC8\nHardware version: 11.00\n\
Software image version: 4.31.2F\nArchitecture: x86_64\nUptime: 5 weeks, 1 day",
        unknown_command: "% Invalid input",
        config_rejected: "% Invalid input",
    },
    Persona {
        slug: "huawei_vrp",
        exec_prompt: None,
        privileged_prompt: "<{host}>",
        config_prompt: Some("[{host}]"),
        config_banner: None,
        config_enter_output: "Enter system view, return user view with Ctrl+Z.",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("screen-length 0 temporary"),
        paging_output: "Info: The configuration takes effect on the current user terminal interface only.",
        pager_text: "  ---- More ----",
        version_command: "display version",
        version_output: "Huawei Versatile Routing Platform Software\n\
VRP (R) software, Version 5.170 (S5720 V200R019C10SPC500)\n\
[V200R019C10SPC500]\n\
Copyright (C) 2000-2021 HUAWEI TECH Co., Ltd.\n\
HUAWEI S5720-28X-SI-AC Routing Switch uptime is 10 weeks, 2 days",
        unknown_command: "              ^\nError: Unrecognized command found at '^' position.",
        config_rejected: "              ^\nError: Unrecognized command found at '^' position.",
    },
    Persona {
        slug: "aruba_aoscx",
        exec_prompt: Some("{host}>"),
        privileged_prompt: "{host}#",
        config_prompt: Some("{host}(config)#"),
        config_banner: None,
        config_enter_output: "",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: Some("no page"),
        paging_output: "",
        pager_text: "-- MORE --, next page: Space, next line: Enter, quit: q",
        version_command: "show version",
        version_output: "-----------------------------------------------------------------------------\n\
ArubaOS-CX\n(c) Copyright 2017-2023 Hewlett Packard Enterprise Development LP\n\
-----------------------------------------------------------------------------\n\
Version      : FL.10.12.1000\nBuild Date   : 2023-06-12 17:05:45 UTC",
        unknown_command: "Invalid input: {command}",
        config_rejected: "Invalid input: {command}",
    },
    Persona {
        slug: "mikrotik_routeros",
        exec_prompt: None,
        privileged_prompt: "[{user}@{host}] >",
        config_prompt: None,
        config_banner: None,
        config_enter_output: "",
        commit_output: "",
        enable_secret_prompt: "Password:",
        paging_command: None,
        paging_output: "",
        pager_text: "-- [Q quit|D dump|down]",
        version_command: "/system resource print",
        version_output: "                   uptime: 3w2d4h11m\n                  version: 7.14.3 (stable)\n\
               build-time: 2024-04-17 12:47:58\n         architecture-name: arm64\n\
                board-name: CCR2004-1G-12S+2XS",
        unknown_command: "bad command name {command} (line 1 column 1)",
        config_rejected: "bad command name {command} (line 1 column 1)",
    },
    Persona {
        slug: "paloalto_panos",
        exec_prompt: None,
        privileged_prompt: "{user}@{host}>",
        config_prompt: Some("{user}@{host}#"),
        config_banner: Some("[edit]"),
        config_enter_output: "Entering configuration mode",
        commit_output: "Commit job 42 is in progress. Use Ctrl+C to return to command prompt\n\
Configuration committed successfully",
        enable_secret_prompt: "Password:",
        paging_command: Some("set cli pager off"),
        paging_output: "",
        pager_text: "lines 1-23 ",
        version_command: "show system info",
        version_output: "hostname: {host}\nip-address: 192.0.2.10\nmodel: PA-VM\n\
sw-version: 11.0.3\nserial: 007051000123456",
        unknown_command: "Unknown command: {command}",
        config_rejected: "Invalid syntax.",
    },
    Persona {
        slug: "linux",
        exec_prompt: None,
        privileged_prompt: "{user}@{host}:~$",
        config_prompt: None,
        config_banner: None,
        config_enter_output: "",
        commit_output: "",
        enable_secret_prompt: "[sudo] password:",
        paging_command: None,
        paging_output: "",
        pager_text: "--More--",
        version_command: "uname -a",
        version_output: "Linux {host} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 GNU/Linux",
        unknown_command: "-bash: {command}: command not found",
        config_rejected: "-bash: {command}: command not found",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::PlatformRegistry;

    fn registry() -> PlatformRegistry {
        PlatformRegistry::load(&[]).unwrap()
    }

    /// Odd hostnames only where the vendor allows them in a hostname.
    fn hostnames_for(slug: &str) -> &'static [&'static str] {
        match slug {
            "cisco_ios" | "cisco_nxos" | "arista_eos" | "aruba_aoscx" => {
                &["core-sw1", "27N2(2960_PoE)", "AP158-#10"]
            }
            "mikrotik_routeros" | "linux" => &["core-sw1", "Core Router"],
            _ => &["core-sw1"],
        }
    }

    #[test]
    fn every_registered_platform_has_a_persona() {
        for slug in registry().slugs() {
            assert!(Persona::for_slug(&slug).is_some(), "no persona for {slug}");
        }
    }

    #[test]
    fn persona_prompts_match_their_platform_patterns() {
        let registry = registry();
        for persona in Persona::all() {
            let platform = registry.resolve(Some(persona.slug), None).unwrap();
            for host in hostnames_for(persona.slug) {
                let prompt = |t: &str| render(t, host, "admin", "");

                let privileged = prompt(persona.privileged_prompt);
                assert!(platform.is_prompt(&privileged), "{privileged}");
                assert!(!platform.is_exec_prompt(&privileged), "{privileged}");
                assert!(!platform.is_config_prompt(&privileged), "{privileged}");

                if let Some(exec) = persona.exec_prompt.map(prompt) {
                    assert!(platform.is_prompt(&exec), "{exec}");
                    assert!(platform.is_exec_prompt(&exec), "{exec}");
                    assert!(
                        platform.def.enable.is_some(),
                        "{} has no enable",
                        persona.slug
                    );
                }
                if let Some(config) = persona.config_prompt.map(prompt) {
                    assert!(platform.is_prompt(&config), "{config}");
                    assert!(platform.is_config_prompt(&config), "{config}");
                    assert!(
                        platform.def.config.is_some(),
                        "{} has no config",
                        persona.slug
                    );
                }
            }
        }
    }

    #[test]
    fn persona_paging_and_pager_match_their_platform() {
        let registry = registry();
        for persona in Persona::all() {
            let platform = registry.resolve(Some(persona.slug), None).unwrap();
            if let Some(paging) = persona.paging_command {
                assert!(platform.def.on_open.iter().any(|c| c == paging), "{paging}");
            }
            assert!(
                platform.is_pager(persona.pager_text.trim()),
                "{}: pager {:?}",
                persona.slug,
                persona.pager_text
            );
        }
    }

    #[test]
    fn persona_failure_texts_are_platform_failure_strings() {
        let registry = registry();
        for persona in Persona::all() {
            let platform = registry.resolve(Some(persona.slug), None).unwrap();
            for text in [persona.unknown_command, persona.config_rejected] {
                let text = render(text, "h", "u", "frobnicate");
                assert!(
                    platform.failure_in(&text).is_some(),
                    "{}: {text}",
                    persona.slug
                );
            }
        }
    }

    #[test]
    fn persona_enable_prompts_match_the_platform_secret_question() {
        let registry = registry();
        for persona in Persona::all().iter().filter(|p| p.exec_prompt.is_some()) {
            let platform = registry.resolve(Some(persona.slug), None).unwrap();
            let question = platform.enable_password_prompt.as_ref().unwrap();
            assert!(
                question.is_match(persona.enable_secret_prompt),
                "{}",
                persona.slug
            );
        }
    }
}
