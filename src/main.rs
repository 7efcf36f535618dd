//! The `netbox-toolkit` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netbox_toolkit::config::Settings;
use netbox_toolkit::connector::hostkeys::HostKeyStore;
use netbox_toolkit::startup::Application;
use netbox_toolkit::{api, telemetry};

#[derive(Parser)]
#[command(
    name = "netbox-toolkit",
    version,
    about = "Run vetted CLI commands on NetBox devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// Configuration file (TOML); `NBT_*` environment variables override it.
        #[arg(long, short, env = "NBT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// List, accept or forget recorded SSH host keys.
    HostKeys {
        /// The host-key store (`ssh.known_hosts_path` of the service).
        #[arg(long)]
        store: PathBuf,
        #[command(subcommand)]
        action: HostKeyAction,
    },
    /// Set up NetBox for the service.
    Netbox {
        #[command(subcommand)]
        action: NetboxAction,
    },
    /// Ask a running service whether it is up (for container health checks).
    Health {
        /// The health endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8080/api/v1/health")]
        url: String,
    },
}

#[derive(Subcommand)]
enum NetboxAction {
    /// Create or update the device page's custom link to the toolkit page.
    InstallLink {
        /// Configuration file (TOML) naming NetBox and the service token.
        #[arg(long, short, env = "NBT_CONFIG")]
        config: Option<PathBuf>,
        /// The service's URL as browsers reach it [default: `ui.public_url`,
        /// else http://<listen>].
        #[arg(long)]
        url_base: Option<url::Url>,
        /// The custom link's name (it is found again by this name).
        #[arg(long, default_value = "netbox-toolkit")]
        name: String,
        /// The button's text.
        #[arg(long, default_value = "Toolkit")]
        text: String,
        /// NetBox button colour: default, blue, indigo, purple, pink, red,
        /// orange, yellow, green, teal, cyan, gray, black or white.
        #[arg(long, default_value = "blue")]
        button_class: String,
        /// Open the page in the same window instead of a new one.
        #[arg(long)]
        same_window: bool,
    },
}

#[derive(Subcommand)]
enum HostKeyAction {
    /// Print every recorded key.
    List,
    /// Trust a key for `host:port` (after a change was verified out of band).
    Accept {
        /// `host:port` as the error message names it.
        addr: String,
        /// Key type, e.g. `ssh-ed25519`.
        key_type: String,
        /// SHA-256 fingerprint, e.g. `SHA256:...`.
        fingerprint: String,
    },
    /// Drop the record for `host:port`; the next connection records a key anew.
    Forget {
        /// `host:port`.
        addr: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(config),
        Command::Health { url } => health(&url),
        Command::HostKeys { store, action } => host_keys(&store, action),
        Command::Netbox {
            action:
                NetboxAction::InstallLink {
                    config,
                    url_base,
                    name,
                    text,
                    button_class,
                    same_window,
                },
        } => {
            let link = LinkChoice {
                url_base,
                name,
                text,
                button_class,
                new_window: !same_window,
            };
            install_link(config, link)
        }
        Command::Openapi => match api::openapi_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the OpenAPI document: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(config: Option<PathBuf>) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&settings.log_format);

    let result = actix_web::rt::System::new().block_on(async {
        let app = Application::build(&settings).await?;
        tracing::info!(listen = %settings.listen, port = app.port(), "netbox-toolkit listening");
        app.run()
            .await
            .map_err(|source| netbox_toolkit::startup::StartupError::Bind {
                addr: settings.listen.to_string(),
                source,
            })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "netbox-toolkit stopped");
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What `netbox install-link` was asked for.
struct LinkChoice {
    url_base: Option<url::Url>,
    name: String,
    text: String,
    button_class: String,
    new_window: bool,
}

fn install_link(config: Option<PathBuf>, choice: LinkChoice) -> ExitCode {
    let settings = match Settings::load(config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let base = choice
        .url_base
        .clone()
        .or_else(|| settings.ui.public_url.clone())
        .map(|u| u.to_string())
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let spec = netbox_toolkit::netbox::CustomLinkSpec {
        name: choice.name,
        object_types: vec!["dcim.device".into()],
        link_text: choice.text,
        link_url: format!(
            "{}/ui/devices/{{{{ object.id }}}}",
            base.trim_end_matches('/')
        ),
        button_class: choice.button_class,
        new_window: choice.new_window,
        enabled: true,
        weight: 100,
    };

    let run = async {
        let client =
            netbox_toolkit::netbox::NetboxClient::new(netbox_toolkit::netbox::NetboxSettings {
                url: settings.netbox.url.clone(),
                token: settings.netbox.token.clone(),
                timeout: std::time::Duration::from_secs(settings.netbox.timeout_s),
            })?;
        client.upsert_custom_link(&spec).await
    };
    use netbox_toolkit::netbox::LinkChange;
    match actix_web::rt::System::new().block_on(run) {
        Ok(change) => {
            let (verb, id) = match change {
                LinkChange::Created(id) => ("created", id),
                LinkChange::Updated(id) => ("updated", id),
                LinkChange::Unchanged(id) => ("already up to date:", id),
            };
            println!(
                "custom link {verb} `{}` (id {id}) -> {}",
                spec.name, spec.link_url
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}\n{}", err.guidance());
            ExitCode::FAILURE
        }
    }
}

fn health(url: &str) -> ExitCode {
    let check = async {
        let response = reqwest::Client::new()
            .get(url)
            .timeout(std::time::Duration::from_secs(3))
            .send()
            .await?;
        response.error_for_status()
    };
    match actix_web::rt::System::new().block_on(check) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {url} is not healthy: {err}");
            ExitCode::FAILURE
        }
    }
}

fn host_keys(store: &std::path::Path, action: HostKeyAction) -> ExitCode {
    let result = HostKeyStore::open(store).and_then(|store| match action {
        HostKeyAction::List => store.entries().map(|entries| {
            for (addr, record) in entries {
                println!(
                    "{addr} {} {} (since {})",
                    record.key_type, record.fingerprint, record.first_seen
                );
            }
        }),
        HostKeyAction::Accept {
            addr,
            key_type,
            fingerprint,
        } => store
            .accept(&addr, &key_type, &fingerprint)
            .map(|_| println!("accepted {key_type} {fingerprint} for {addr}")),
        HostKeyAction::Forget { addr } => store.forget(&addr).map(|existed| match existed {
            true => println!("forgot the key of {addr}"),
            false => println!("no key was recorded for {addr}"),
        }),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
