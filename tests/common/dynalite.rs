//! A dynalite server on a free loopback port, started by the test that needs it, killed when
//! dropped, and a loud failure if it never comes up. Shared by the library's and the CLI's
//! integration tests, so it needs nothing beyond std and the AWS SDK.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::Client;

/// Errors while starting the server.
pub type StartResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long dynalite may take to answer on its port.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A dynalite server on a free 127.0.0.1 port, killed when dropped.
pub struct Dynalite {
    child: Child,
    endpoint: String,
}

impl Dynalite {
    /// Starts dynalite, in memory, and waits until it accepts connections.
    pub fn start() -> StartResult<Self> {
        let program = dynalite_program()?;
        let mut last_error = String::new();
        // A freed port can be taken by someone else before dynalite binds it: try a few.
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            let mut child = Command::new(&program)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--createTableMs",
                    "0",
                    "--deleteTableMs",
                    "0",
                    "--updateTableMs",
                    "0",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
            match wait_for_port(&mut child, port) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    })
                }
                Err(err) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = err;
                }
            }
        }
        Err(format!("dynalite did not start: {last_error}").into())
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

fn dynalite_program() -> StartResult<PathBuf> {
    let program = match std::env::var_os("QUICKSTORE_DYNALITE") {
        Some(path) => PathBuf::from(path),
        // The workspace root holds the npm project; this file serves the CLI's tests too.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("tests/dynalite/node_modules/.bin/dynalite"))
            .find(|program| program.exists())
            .unwrap_or_else(|| PathBuf::from("tests/dynalite/node_modules/.bin/dynalite")),
    };
    if program.exists() {
        Ok(program)
    } else {
        Err(format!(
            "dynalite is not installed at {}: run `npm ci --prefix tests/dynalite` \
             (scripts/test does it), or set QUICKSTORE_DYNALITE",
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
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "nothing answered on port {port} within {STARTUP_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
