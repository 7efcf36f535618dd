//! The `netbox-toolkit` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netbox_toolkit::config::Settings;
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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve { config } => serve(config),
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
        let app = Application::build(&settings)?;
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
