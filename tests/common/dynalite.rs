//! A DynamoDB-compatible server on a free loopback port, started by the test that needs it,
//! killed when dropped, and a loud failure if it never comes up: dynalite, or moto's server for
//! what dynalite lacks (transactions, streams). Shared by the library's and the CLI's
//! integration tests, so it needs nothing beyond std and the AWS SDK.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;

/// Errors while starting the server.
pub type StartResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a server may take to answer on its port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the command that starts a server on a port.
type Launch = Box<dyn Fn(u16) -> Command + Send + Sync>;

/// A local server on a free 127.0.0.1 port, killed when dropped.
pub struct Dynalite {
    child: Child,
    endpoint: String,
    port: u16,
    /// Kept for servers that can be restarted (their data lives on disk).
    relaunch: Option<Launch>,
}

/// The same harness, starting moto's server: `Moto::start_moto()`.
pub type Moto = Dynalite;

impl Dynalite {
    /// Starts dynalite, in memory, and waits until it accepts connections.
    pub fn start() -> StartResult<Self> {
        let program = program(
            "QUICKSTORE_DYNALITE",
            "tests/dynalite/node_modules/.bin/dynalite",
            "run `npm ci --prefix tests/dynalite`",
        )?;
        Self::spawn("dynalite", |port| {
            let mut command = Command::new(&program);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--createTableMs",
                    "0",
                    "--deleteTableMs",
                    "0",
                    "--updateTableMs",
                    "0",
                ])
                .stderr(Stdio::inherit());
            command
        })
    }

    /// Starts dynalite keeping its tables in `dir`, so that they survive [`restart`]: for
    /// outage tests.
    ///
    /// [`restart`]: Self::restart
    pub fn start_on_disk(dir: &std::path::Path) -> StartResult<Self> {
        let program = program(
            "QUICKSTORE_DYNALITE",
            "tests/dynalite/node_modules/.bin/dynalite",
            "run `npm ci --prefix tests/dynalite`",
        )?;
        let dir = dir.to_path_buf();
        let launch: Launch = Box::new(move |port| {
            let mut command = Command::new(&program);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--createTableMs", "0"])
                .arg("--path")
                .arg(&dir)
                .stderr(Stdio::inherit());
            command
        });
        let mut server = Self::spawn("dynalite", &launch)?;
        server.relaunch = Some(launch);
        Ok(server)
    }

    /// Kills the server: requests to it fail until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a stopped on-disk server again, on the same port and with the same data.
    pub fn restart(&mut self) -> StartResult<()> {
        let launch = self
            .relaunch
            .as_ref()
            .ok_or("only a server started with start_on_disk can restart")?;
        let mut child = launch(self.port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        wait_for_port(&mut child, self.port)?;
        self.child = child;
        Ok(())
    }

    /// Starts moto's server, in memory, and waits until it accepts connections.
    pub fn start_moto() -> StartResult<Self> {
        let program = program(
            "QUICKSTORE_MOTO",
            "tests/moto/.venv/bin/moto_server",
            "scripts/test installs it in tests/moto/.venv",
        )?;
        Self::spawn("moto_server", |port| {
            let mut command = Command::new(&program);
            // moto logs every request on stderr.
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stderr(Stdio::null());
            command
        })
    }

    fn spawn(name: &str, command: impl Fn(u16) -> Command) -> StartResult<Self> {
        let mut last_error = String::new();
        // A freed port can be taken by someone else before the server binds it: try a few.
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            let mut child = command(port)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {name}: {e}"))?;
            match wait_for_port(&mut child, port) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        port,
                        relaunch: None,
                    })
                }
                Err(err) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = err;
                }
            }
        }
        Err(format!("{name} did not start: {last_error}").into())
    }

    /// The server's URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A plain SDK client for the server.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint)
    }
}

/// A plain SDK client for a local server at `endpoint`, with dummy credentials.
pub fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server's program: `variable` if set, else `relative` under the workspace root (this file
/// serves the CLI's tests too, whose manifest is one level down).
fn program(variable: &str, relative: &str, how: &str) -> StartResult<PathBuf> {
    let program = match std::env::var_os(variable) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join(relative))
            .find(|program| program.exists())
            .unwrap_or_else(|| PathBuf::from(relative)),
    };
    if program.exists() {
        Ok(program)
    } else {
        Err(format!(
            "{} is not installed: {how} (scripts/test does it), or set {variable}",
            program.display()
        )
        .into())
    }
}

fn wait_for_port(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("dynalite exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Another process may have taken the freed port first, and this server then
            // fails to bind it and exits: only a server still running a moment later is ours.
            std::thread::sleep(Duration::from_millis(300));
            return match child.try_wait() {
                Ok(None) => Ok(()),
                Ok(Some(status)) => Err(format!("the server exited with {status}")),
                Err(err) => Err(format!("cannot tell whether the server runs: {err}")),
            };
        }
        if Instant::now() > deadline {
            return Err(format!(
                "nothing answered on port {port} within {STARTUP_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
