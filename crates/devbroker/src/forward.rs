//! The chosen address: each connection accepted there is joined to a new connection to the
//! mock broker, bytes copied both ways. librdkafka's mock cluster binds only a port the
//! kernel picks, so this is how the broker answers on a fixed address such as 9092.
//!
//! Only a client's first requests pass through here: the cluster's metadata names the mock
//! broker's own address, and clients then connect to it directly. So there are few
//! connections, and plain threads (two per connection) serve them.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Client connections still open, by number, so that stopping can close them.
type Open = Arc<Mutex<HashMap<u64, TcpStream>>>;

/// A running forwarder.
pub(crate) struct Forwarder {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    open: Open,
    acceptor: JoinHandle<()>,
}

impl Forwarder {
    /// Forwards the connections `listener` accepts to `broker`, on threads of its own.
    pub(crate) fn start(listener: TcpListener, broker: SocketAddr) -> io::Result<Forwarder> {
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let open: Open = Arc::default();
        let acceptor = {
            let (stopping, open) = (stopping.clone(), open.clone());
            std::thread::Builder::new()
                .name("devbroker-accept".into())
                .spawn(move || accept(&listener, broker, &stopping, &open))?
        };
        Ok(Forwarder {
            address,
            stopping,
            open,
            acceptor,
        })
    }

    /// Where it listens.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting and closes every forwarded connection.
    pub(crate) fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // accept() blocks: a connection of our own wakes it to see the flag.
        if TcpStream::connect(self.address).is_ok() {
            let _ = self.acceptor.join();
        }
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept(listener: &TcpListener, broker: SocketAddr, stopping: &AtomicBool, open: &Open) {
    let mut next_id = 0u64;
    for client in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let client = match client {
            Ok(client) => client,
            Err(error) => {
                // Out of file descriptors and the like: say so, wait a little, go on.
                log::warn!("cannot accept a connection: {error}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        next_id += 1;
        let (id, open) = (next_id, open.clone());
        let started = std::thread::Builder::new()
            .name(format!("devbroker-conn-{id}"))
            .spawn(move || forward(id, client, broker, &open));
        if let Err(error) = started {
            log::warn!("cannot start a thread for a connection: {error}");
        }
    }
}

/// Copies both ways until either side closes, then closes both.
fn forward(id: u64, client: TcpStream, broker: SocketAddr, open: &Open) {
    let peer = client
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let upstream = match TcpStream::connect(broker) {
        Ok(upstream) => upstream,
        Err(error) => {
            log::warn!("cannot reach the mock broker at {broker} for {peer}: {error}");
            return;
        }
    };
    // Kafka requests are small and answered one by one: send each at once.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let clones = (client.try_clone(), upstream.try_clone(), client.try_clone());
    let (Ok(client_reader), Ok(upstream_writer), Ok(registered)) = clones else {
        log::warn!("cannot share the connection from {peer} between threads");
        return;
    };
    open.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, registered);
    let requests = std::thread::Builder::new()
        .name(format!("devbroker-conn-{id}-requests"))
        .spawn(move || copy(client_reader, upstream_writer));
    copy(upstream, client);
    if let Ok(requests) = requests {
        let _ = requests.join();
    }
    open.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    log::debug!("connection from {peer} closed");
}

/// Copies `from` to `to` until `from` ends or fails, then closes both directions of both,
/// which ends the copy the other way too.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
