//! The harness's own broker ([`Broker`]): a Tansu process with sqlite storage that the
//! scenarios kill and start again on the same port with the same database.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::wait_until;

/// A Tansu broker with sqlite storage, owned by the harness: it can be killed and started
/// again on the same port with the same database.
pub struct Broker {
    tansu: PathBuf,
    dir: PathBuf,
    address: SocketAddr,
    process: Option<Child>,
    starts: u32,
}

impl Broker {
    /// Starts a broker on a free port, its database and log in `dir`, and waits until it
    /// answers.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("broker folder");
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let mut broker = Self {
            tansu: tansu(),
            dir: dir.to_path_buf(),
            address,
            process: None,
            starts: 0,
        };
        broker.start_again();
        broker
    }

    /// `host:port`, as clients are given it.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Kills the broker with SIGKILL (no clean shutdown) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the broker (again) on the same port with the same database; waits until it
    /// answers a Metadata request.
    pub fn start_again(&mut self) {
        assert!(self.process.is_none(), "the broker is already running");
        self.starts += 1;
        let log = self.dir.join(format!("broker-{}.log", self.starts));
        let url = format!("tcp://{}", self.address);
        let log_file = std::fs::File::create(&log).expect("broker log");
        let process = Command::new(&self.tansu)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("broker log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.tansu.display()));
        self.process = Some(process);
        let started = Instant::now();
        wait_until(Duration::from_secs(60), "the broker to answer", || {
            if let Some(Ok(Some(status))) = self.process.as_mut().map(Child::try_wait) {
                panic!(
                    "the broker exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            answers(self.address)
        });
        println!(
            "broker {} (start {}) answers after {:.1?}",
            self.address,
            self.starts,
            started.elapsed()
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Tansu binary: `$TANSU`, `tansu` on the PATH, or `~/.cargo/bin/tansu`.
fn tansu() -> PathBuf {
    let candidates = std::env::var_os("TANSU")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|path| {
                    std::env::split_paths(&path)
                        .map(|d| d.join("tansu"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .chain(std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin/tansu")));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("no tansu binary (set TANSU, or run `scripts/broker.sh install`)");
}

/// Whether a broker answers a Metadata request (v4, all topics) at `address` within 2 s: the
/// reply must carry the request's correlation id.
fn answers(address: SocketAddr) -> bool {
    const REQUEST: &[u8] =
        b"\x00\x00\x00\x14\x00\x03\x00\x04\x00\x00\x00\x2a\x00\x05probe\xff\xff\xff\xff\x00";
    let timeout = Duration::from_secs(2);
    let Ok(mut stream) = TcpStream::connect_timeout(&address, timeout) else {
        return false;
    };
    let mut reply = [0u8; 8];
    stream.set_read_timeout(Some(timeout)).is_ok()
        && stream.write_all(REQUEST).is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && reply[4..8] == [0, 0, 0, 0x2a]
}
