//! The signals redlock-run catches: while waiting they end the wait, while
//! the command runs they are forwarded to its process group.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

/// Forwarded to the command's group (the spec's list).
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// A stream of the signals in [`FORWARDED`] received by this process.
/// Installing it replaces their default action (death) for our lifetime.
pub struct Signals {
    streams: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    pub fn install() -> io::Result<Self> {
        let streams = FORWARDED
            .iter()
            .map(|&s| Ok((s, signal(SignalKind::from_raw(s as i32))?)))
            .collect::<io::Result<_>>()?;
        Ok(Signals { streams })
    }
}

impl Stream for Signals {
    type Item = Signal;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        for (sig, stream) in self.streams.iter_mut() {
            if let Poll::Ready(Some(())) = stream.poll_recv(cx) {
                return Poll::Ready(Some(*sig));
            }
        }
        Poll::Pending
    }
}
