//! A handle on one connection, handed to request handlers by the accept loop (server.rs): a fault can
//! close the socket without a response byte.

use std::sync::Arc;

use tokio::sync::Notify;

/// Lets a request handler close its own connection without answering.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    pub(crate) kill: Arc<Notify>,
}

impl ConnHandle {
    /// Closes the connection as soon as the connection task sees it; no response is written.
    pub fn kill(&self) {
        self.kill.notify_one();
    }
}
