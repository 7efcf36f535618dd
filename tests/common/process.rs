//! The service as a separate process, for tests that signal or kill it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `netbox-toolkit serve` process with its own port and audit store.
pub struct ServiceProcess {
    pub child: Child,
    pub base: String,
    pub config: PathBuf,
}

/// A free loopback port (free when this returns; taken soon after by the service).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServiceProcess {
    /// Writes `config` (whose `listen` must be `127.0.0.1:0`) with a fixed port
    /// into `dir` and starts the service on it.
    pub async fn start(dir: &Path, config: &str) -> ServiceProcess {
        let port = free_port();
        let config_path = dir.join("config.toml");
        std::fs::write(
            &config_path,
            config.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
        )
        .unwrap();
        Self::start_with(&config_path, port).await
    }

    /// Starts the service on an existing configuration file listening on `port`.
    pub async fn start_with(config: &Path, port: u16) -> ServiceProcess {
        let log = std::fs::File::create(config.with_extension("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_netbox-toolkit"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let process = ServiceProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            config: config.to_path_buf(),
        };
        process.wait_until_healthy().await;
        process
    }

    /// Port the process listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{}/api/v1/health", self.base))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the service did not start; see {}",
                self.config.with_extension("log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that sends the testbed admin's NetBox token on every request.
pub fn admin_client() -> reqwest::Client {
    let token = super::Testbed::get().var("NETBOX_TOKEN");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}
